"""The import rule of docs/architecture.md, checked on the source: each layer imports only the
layers below it, never a private name of another package, and nothing imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "fpgac"

#: package -> the fpgac packages (and top-level modules) it may import besides itself
ALLOWED = {
    "ir": {"errors"},
    "frontend": {"ir", "errors"},
    "passes": {"ir", "errors", "progress"},
    "hdl": set(),
    "backends": {"ir", "hdl", "errors", "progress", "provenance", "cache", "devices", "__init__"},
    "sim": {"ir"},
    "devices": {"errors"},  # the FPGA parts' capacities: a leaf table, as errors is
}


def _module(path: Path) -> str:
    return ".".join(path.relative_to(ROOT.parent).with_suffix("").parts)


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(absolute module, names imported from it) of every import in a file, relative ones resolved."""
    tree = ast.parse(path.read_text())
    package = _module(path).rsplit(".", 1)[0] if path.name != "__init__.py" else _module(path).removesuffix(".__init__")
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, [alias.name for alias in node.names]))
    return found


def _top(module: str) -> str | None:
    """The fpgac package (or top-level module) a module belongs to."""
    parts = module.split(".")
    if parts[0] != "fpgac":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


FILES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_one_way(path: Path) -> None:
    own = _top(_module(path))
    for module, names in _imports(path):
        target = _top(module)
        if target is None or target == own:
            continue
        if own in ALLOWED:
            allowed = ALLOWED[own]
            # a package's own submodule imported through the package (fpgac.ir.semantics from fpgac.ir)
            assert target in allowed, f"{path.relative_to(ROOT)} imports {module}: {own} may import only {sorted(allowed)}"
        assert target != "cli", f"{path.relative_to(ROOT)} imports the CLI"
        private = [n for n in names if n.startswith("_") and n != "__version__"]
        assert not private, f"{path.relative_to(ROOT)} imports private {private} from another package ({module})"
        assert not any(part.startswith("_") and part != "__init__" for part in module.split(".")), \
            f"{path.relative_to(ROOT)} imports the private module {module}"


def test_hdl_knows_nothing_of_the_ir() -> None:
    for path in (ROOT / "hdl").rglob("*.py"):
        assert not [m for m, _ in _imports(path) if _top(m) not in (None, "hdl")], path
