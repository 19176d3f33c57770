"""Every failure a user can cause is an :class:`FpgacError`.

The CLI prints ``str(error)`` as one line and exits 2; nothing else reaches the user as a
traceback. Subclasses say which kind of failure it was, so that callers (and tests) can tell a
bad file from an unsupported op without matching on text.
"""

from __future__ import annotations

__all__ = [
    "FpgacError",
    "ModelFileError",
    "UnsupportedError",
    "ShapeError",
    "InvalidModelError",
    "UsageError",
]


class FpgacError(Exception):
    """A failure caused by the user's input: a file, a model, an option or an array."""


class ModelFileError(FpgacError):
    """The model file is missing, unreadable, truncated or not ONNX."""


class UnsupportedError(FpgacError):
    """The model uses an op, attribute or data type that fpgac does not compile."""


class ShapeError(FpgacError):
    """A shape is dynamic, too large for hardware, or does not match what was expected."""


class InvalidModelError(FpgacError):
    """The model is well-formed ONNX but its contents are unusable (NaN weights, say)."""


class UsageError(FpgacError):
    """A bad command-line option or API argument."""
