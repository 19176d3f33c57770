"""Lookup tables: how fixed-point hardware computes sigmoid, tanh, exp and reciprocals.

A :class:`Table` is computed once, in Python, when a graph is quantized, and stored in the IR (as
a node attribute). The golden model looks values up in it, and every backend embeds the same
``values`` array, so all of them agree exactly: no backend evaluates a transcendental function.

Indexing, the one rule every backend implements::

    index = clip((m >> shift) - offset, 0, size - 1)      # m: input mantissa, >> arithmetic
    y     = values[index]                                  # a mantissa of out_type

So a table covers the input interval ``[offset << shift, (offset + size) << shift)`` in mantissa
units, one entry per ``2**shift`` consecutive mantissas; inputs below or above it read the first
or last entry (the function is taken as flat outside, which is why a table's range is chosen
where the function has settled to within half an output LSB). Entry ``i`` holds the function at
the middle of its bucket, rounded to ``out_type``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fpgac.ir.fixed import quantize
from fpgac.ir.types import FixedType

__all__ = ["Table", "DEFAULT_TABLE_SIZE"]

#: the most entries a table gets unless configured otherwise (hls4ml's default is also 1024)
DEFAULT_TABLE_SIZE = 1024


@dataclass(frozen=True, eq=False)
class Table:
    """A function of one fixed-point input, tabulated; see the module docstring for indexing."""

    function: str
    in_type: FixedType
    out_type: FixedType
    shift: int
    offset: int
    values: np.ndarray  # int64 mantissas of out_type, read-only

    @property
    def size(self) -> int:
        return int(self.values.shape[0])

    def lookup(self, m: np.ndarray) -> np.ndarray:
        """The output mantissas for input mantissas ``m`` (int64, of ``in_type``)."""
        index = np.clip(np.right_shift(np.asarray(m, dtype=np.int64), self.shift) - self.offset, 0, self.size - 1)
        return self.values[index]

    @classmethod
    def build(
        cls,
        function: str,
        f: Callable[[np.ndarray], np.ndarray],
        in_type: FixedType,
        out_type: FixedType,
        lo: float,
        hi: float,
        max_size: int = DEFAULT_TABLE_SIZE,
    ) -> Table:
        """Tabulate ``f`` over ``[lo, hi]`` (clipped to ``in_type``) with at most ``max_size`` entries.

        The shift is the smallest that fits the interval in ``max_size`` buckets, so a narrow
        input is tabulated exactly (one entry per representable value).
        """
        lo_m = max(in_type.min_mantissa, int(np.floor(lo / in_type.lsb)))
        hi_m = min(in_type.max_mantissa, int(np.ceil(hi / in_type.lsb)))
        hi_m = max(hi_m, lo_m)
        shift = 0
        while (hi_m >> shift) - (lo_m >> shift) + 1 > max_size:
            shift += 1
        offset = lo_m >> shift
        size = (hi_m >> shift) - offset + 1
        first = (np.arange(size, dtype=np.float64) + offset) * float(1 << shift)
        middle = (first + ((1 << shift) - 1) / 2.0) * in_type.lsb
        values = quantize(f(middle), out_type)
        values.setflags(write=False)
        return cls(function, in_type, out_type, shift, offset, values)

    def __repr__(self) -> str:
        return f"Table({self.function}, {self.size} entries, {self.in_type} -> {self.out_type})"

    __str__ = __repr__
