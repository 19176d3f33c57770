"""See ../shared/DESIGN.md; filled by later issues."""
