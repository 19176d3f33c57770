"""Adder graphs: adders over input variables with signs and shifts, their exact ranges, their
carry-chain bits, and their evaluation on integers. :mod:`fpgac.hdl.cmvm` builds them; the Dense
layer elaborates them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Adder", "AdderGraph", "Term", "evaluate"]

#: a signed, shifted variable: ``sign * (var << shift)``; vars ``0..n_in-1`` are the inputs
Term = tuple[int, int, int]


@dataclass(frozen=True)
class Adder:
    """``a_sign * (var_a << a_shift) + b_sign * (var_b << b_shift) + const``: one adder or
    subtractor (``b`` is -1 for ``a``'s term plus the constant alone: a bias added)."""

    a: int
    a_shift: int
    a_sign: int
    b: int
    b_shift: int
    b_sign: int
    const: int = 0


@dataclass
class AdderGraph:
    """Adders over ``n_in`` input variables; adder ``k`` defines variable ``n_in + k``.

    ``outputs[j]`` is ``(var, shift, sign)``: output ``j`` equals ``sign * (var << shift)``, or an
    int for an output that is that constant (every weight zero: the bias). ``shared`` counts the
    adders made by subexpression sharing, ``tree`` those of the per-output sums (bias included).
    """

    n_in: int
    adders: list[Adder] = field(default_factory=list)
    outputs: list[Term | int] = field(default_factory=list)
    shared: int = 0
    tree: int = 0

    @property
    def count(self) -> int:
        return len(self.adders)

    def bounds(self, lo: Sequence[int], hi: Sequence[int]) -> list[tuple[int, int]]:
        """The exact ``(lo, hi)`` of every variable, from the inputs' ranges."""
        out = [(int(a), int(b)) for a, b in zip(lo, hi)]
        for add in self.adders:
            out.append(_adder_range(add, out))
        return out

    def cost(self, ranges: Sequence[tuple[int, int]]) -> int:
        """Full-adder bits of all adders for inputs in ``ranges`` (an estimate of the LUTs of the
        carry chains): the sum of :meth:`spans`."""
        return sum(self.spans(ranges))

    def spans(self, ranges: Sequence[tuple[int, int]]) -> list[int]:
        """Each adder's carry chain in bits for inputs in ``ranges``: its width less the low bits
        that only one operand has (they pass through)."""
        bounds = self.bounds([r[0] for r in ranges], [r[1] for r in ranges])
        return [max(1, _width(bounds[self.n_in + k]) - _carry_free(add)) for k, add in enumerate(self.adders)]

    def depths(self) -> list[int]:
        """Adder levels from the inputs to every variable."""
        depth = [0] * self.n_in
        for add in self.adders:
            depth.append(max(depth[add.a], depth[add.b] if add.b >= 0 else 0) + 1)
        return depth


def _carry_free(add: Adder) -> int:
    """The adder's low bits that one operand alone has (the other's are zero): they pass
    through without a carry chain, unless that operand is subtracted."""
    if add.b >= 0:
        (s0, g0), s1 = min((add.a_shift, add.a_sign), (add.b_shift, add.b_sign)), max(add.a_shift, add.b_shift)
        return s1 if g0 > 0 else s0
    tz = _trailing_zeros(add.const)
    if tz < add.a_shift or add.a_sign > 0:
        return max(add.a_shift, tz)
    return add.a_shift


def _adder_range(add: Adder, bounds: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The range of an adder's value from its operands' (exact when both are one variable)."""
    if add.a == add.b:  # x * (a_sign * 2**a_shift + b_sign * 2**b_shift)
        r = _term_range(bounds[add.a], 0, 1)
        k = add.a_sign * (1 << add.a_shift) + add.b_sign * (1 << add.b_shift)
        lo, hi = sorted((r[0] * k, r[1] * k))
        return lo + add.const, hi + add.const
    ra = _term_range(bounds[add.a], add.a_shift, add.a_sign)
    rb = _term_range(bounds[add.b], add.b_shift, add.b_sign) if add.b >= 0 else (0, 0)
    return ra[0] + rb[0] + add.const, ra[1] + rb[1] + add.const


def _trailing_zeros(n: int) -> int:
    return (n & -n).bit_length() - 1 if n else 0


def _term_range(r: tuple[int, int], shift: int, sign: int) -> tuple[int, int]:
    lo, hi = r[0] << shift, r[1] << shift
    return (lo, hi) if sign > 0 else (-hi, -lo)


def evaluate(graph: AdderGraph, x: np.ndarray) -> np.ndarray:
    """The graph on integer inputs ``x`` (``(n, n_in)``, exact in Python integers): ``(n, n_out)``."""
    x = np.asarray(x, dtype=object)
    values = [x[:, i] for i in range(graph.n_in)]
    for add in graph.adders:
        b = add.b_sign * (values[add.b] * (1 << add.b_shift)) if add.b >= 0 else 0
        values.append(add.a_sign * (values[add.a] * (1 << add.a_shift)) + b + add.const)
    cols = [np.full(len(x), o, dtype=object) if isinstance(o, int) else o[2] * (values[o[0]] * (1 << o[1]))
            for o in graph.outputs]
    return np.stack(cols, axis=1) if cols else np.zeros((len(x), 0), dtype=object)


def _width(r: tuple[int, int]) -> int:
    """Bits of the narrowest two's-complement (or unsigned, when ``lo >= 0``) word holding ``r``."""
    lo, hi = r
    if lo >= 0:
        return max(1, hi.bit_length())
    return 1 + max((-lo - 1).bit_length(), max(hi, 0).bit_length())
