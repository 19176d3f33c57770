"""Exact types: the narrowest FixedType holding every value an op can produce from the values its
input types allow. These are the bounds that prove no accumulator or intermediate wraps; each
family module's ``exact_type`` builds on them, and the Quantize pass sets what they give."""

from __future__ import annotations

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir.fixed import MAX_EXACT_WIDTH
from fpgac.ir.graph import Node
from fpgac.ir.types import FixedType

__all__ = ["bound_type", "dot_bounds", "fit", "mantissa_range", "shifted"]


def bound_type(lo: int, hi: int, frac: int, what: str) -> FixedType:
    """The narrowest type with ``frac`` fractional bits whose mantissas cover ``[lo, hi]``."""
    lo, hi = int(min(lo, 0)), int(max(hi, 0))
    signed = lo < 0
    width = max(hi.bit_length(), (-lo - 1).bit_length()) + 1 if signed else max(hi.bit_length(), 1)
    if width > MAX_EXACT_WIDTH:
        raise UsageError(
            f"{what} needs {width} bits to hold every value exactly (at most {MAX_EXACT_WIDTH}); "
            "use fewer bits (--bits) or narrower overrides"
        )
    return FixedType(width, width - frac, signed)


def fit(node: Node, lo: int, hi: int, frac: int) -> FixedType:
    """:func:`bound_type` for ``node``'s output (its name in the message when it is too wide)."""
    return bound_type(lo, hi, frac, f"layer {node.name!r} ({node.op.value})")


def mantissa_range(t: FixedType) -> tuple[int, int]:
    return t.min_mantissa, t.max_mantissa


def shifted(lo: int, hi: int, by: int) -> tuple[int, int]:
    return lo << by, hi << by


def dot_bounds(w: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output column of ``w`` [K, M] (int mantissas): the least and greatest ``x @ w`` over ``x in [lo, hi]^K``."""
    wo = w.astype(object)
    a, b = wo * lo, wo * hi
    return np.minimum(a, b).sum(axis=0), np.maximum(a, b).sum(axis=0)
