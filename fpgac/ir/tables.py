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

An ``interpolate`` table instead holds the function at the *start* of each bucket (and one entry
past the last) and interpolates linearly between neighbours, in integers::

    a = clip(m - (offset << shift), 0, (size - 1) << shift)
    i = a >> shift;  r = a - (i << shift)
    y = values[i] + (((values[min(i + 1, size - 1)] - values[i]) * r) >> shift)   # >> floors

One multiplier per lookup buys an error quadratic in the bucket width instead of linear: with
1024 entries a 16-bit sigmoid or exp is within a few output LSBs, and neighbouring inputs no
longer share one output (which would turn close logits into argmax ties).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fpgac.ir.fixed import quantize
from fpgac.ir.types import FixedType, parse_type

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
    interpolate: bool = False

    @property
    def size(self) -> int:
        return int(self.values.shape[0])

    def lookup(self, m: np.ndarray) -> np.ndarray:
        """The output mantissas for input mantissas ``m`` (int64, of ``in_type``)."""
        m = np.asarray(m, dtype=np.int64)
        if not self.interpolate:
            return self.values[np.clip(np.right_shift(m, self.shift) - self.offset, 0, self.size - 1)]
        a = np.clip(m - (self.offset << self.shift), 0, (self.size - 1) << self.shift)
        i = np.right_shift(a, self.shift)
        r = a - np.left_shift(i, self.shift)
        here, there = self.values[i], self.values[np.minimum(i + 1, self.size - 1)]
        return here + np.right_shift((there - here) * r, self.shift)

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
        *,
        interpolate: bool = False,
    ) -> Table:
        """Tabulate ``f`` over ``[lo, hi]`` (clipped to ``in_type``) with at most ``max_size`` entries.

        The shift is the smallest that fits the interval in ``max_size`` buckets, so a narrow
        input is tabulated exactly (one entry per representable value).
        """
        lo_m = max(in_type.min_mantissa, int(np.floor(lo / in_type.lsb)))
        hi_m = min(in_type.max_mantissa, int(np.ceil(hi / in_type.lsb)))
        hi_m = max(hi_m, lo_m)
        extra = 1 if interpolate else 0  # an interpolating table also holds the end of its last bucket
        shift = 0
        while (hi_m >> shift) - (lo_m >> shift) + 1 + extra > max_size:
            shift += 1
        offset = lo_m >> shift
        size = (hi_m >> shift) - offset + 1 + extra
        first = (np.arange(size, dtype=np.float64) + offset) * float(1 << shift)
        points = first if interpolate else first + ((1 << shift) - 1) / 2.0
        values = quantize(f(points * in_type.lsb), out_type)
        values.setflags(write=False)
        return cls(function, in_type, out_type, shift, offset, values, interpolate)

    def describe(self) -> dict:
        """Everything but the values, as plain data (the values go to an array file beside it)."""
        return {"function": self.function, "in_type": str(self.in_type), "out_type": str(self.out_type),
                "shift": self.shift, "offset": self.offset, "interpolate": self.interpolate}

    @classmethod
    def from_description(cls, description: dict, values: np.ndarray) -> Table:
        """The table :meth:`describe` described, with its ``values``."""
        d = description
        return cls(d["function"], parse_type(d["in_type"]), parse_type(d["out_type"]), d["shift"], d["offset"],
                   np.asarray(values), d["interpolate"])

    def __repr__(self) -> str:
        how = ", interpolated" if self.interpolate else ""
        return f"Table({self.function}, {self.size} entries{how}, {self.in_type} -> {self.out_type})"

    __str__ = __repr__
