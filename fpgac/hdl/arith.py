"""Constant-coefficient arithmetic: CSD digits, exact-width sums, and pipelined reduction trees.

Every intermediate signal gets the narrowest width its exact bounds allow (bounds are tracked in
Python integers while the netlist is built), so a sum never wraps and no bit is wasted.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from amaranth.hdl import Const, Module, Signal, Value

from fpgac.hdl.lanes import Pipeline, shape_for

__all__ = ["Term", "TermBuilder", "csd", "stages_for", "tree_depth", "tree_reduce"]


def csd(n: int) -> list[tuple[int, int]]:
    """The canonical signed digits of ``n``: ``(shift, sign)`` pairs with ``n = sum(sign << shift)``.

    The non-adjacent form: no two non-zero digits are neighbours, so it has the fewest non-zero
    digits of any signed-binary form (on average a third of the bits), and a constant product
    ``x * n`` costs one adder per digit after the first.
    """
    n = int(n)
    digits = []
    shift = 0
    while n:
        if n & 1:
            d = 2 - (n & 3)  # +1 when n = 1 (mod 4), -1 when n = 3 (mod 4)
            n -= d
            digits.append((shift, d))
        n >>= 1
        shift += 1
    return digits


def tree_depth(n: int) -> int:
    """Levels of a pairwise tree over ``n`` leaves (0 for one leaf or none)."""
    return max(0, (n - 1).bit_length())


@dataclass(frozen=True)
class Term:
    """A signed summand ``(-1 if neg else 1) * value``, with ``value`` in ``[lo, hi]``.

    Keeping the sign apart lets ``a + (-b)`` be built as one subtractor instead of a negation
    and an adder.
    """

    value: Value
    neg: bool
    lo: int
    hi: int

    @property
    def is_const(self) -> bool:
        return isinstance(self.value, Const)

    @property
    def bounds(self) -> tuple[int, int]:
        """Bounds of the signed quantity the term stands for."""
        return (-self.hi, -self.lo) if self.neg else (self.lo, self.hi)


class TermBuilder:
    """Makes the adders of a sum of terms in a module, counting them (for tests and reports)."""

    def __init__(self, m: Module, name: str = "t") -> None:
        self._m = m
        self._name = name
        self.adders = 0

    def _wire(self, expr: Value, lo: int, hi: int) -> Signal:
        s = Signal(shape_for(lo, hi), name=f"{self._name}{self.adders}")
        self._m.d.comb += s.eq(expr)
        self.adders += 1
        return s

    def add(self, a: Term, b: Term) -> Term:
        if a.is_const and b.is_const:
            v = a.bounds[0] + b.bounds[0]
            return Term(Const(v, shape_for(v, v)), False, v, v)
        if a.neg == b.neg:
            lo, hi = a.lo + b.lo, a.hi + b.hi
            return Term(self._wire(a.value + b.value, lo, hi), a.neg, lo, hi)
        pos, neg = (a, b) if b.neg else (b, a)
        lo, hi = pos.lo - neg.hi, pos.hi - neg.lo
        return Term(self._wire(pos.value - neg.value, lo, hi), False, lo, hi)

    def positive(self, t: Term) -> Term:
        """The same quantity with ``neg`` false (a negation, when needed)."""
        if not t.neg:
            return t
        lo, hi = t.bounds
        if t.is_const:
            return Term(Const(lo, shape_for(lo, lo)), False, lo, lo)
        return Term(self._wire(-t.value, lo, hi), False, lo, hi)

    def register(self, pipe: Pipeline, t: Term) -> Term:
        if t.is_const:
            return t
        return Term(pipe.reg(t.value, shape_for(t.lo, t.hi)), t.neg, t.lo, t.hi)


T = TypeVar("T")


def tree_reduce(
    pipe: Pipeline,
    groups: Sequence[Sequence[T]],
    combine: Callable[[T, T], T],
    register: Callable[[T], T],
    levels_per_stage: int,
    *,
    carry: Sequence[Value] = (),
    final_stage: bool = True,
) -> tuple[list[T], list[Value]]:
    """Reduce each group pairwise (neighbours first, so order is kept), all groups in lockstep.

    A pipeline stage is opened after every ``levels_per_stage`` levels and, with ``final_stage``,
    after the last one (at level 0 if no group needs a level). ``carry`` are values that must
    travel alongside (re-registered at each stage). Returns the roots and the carried values.
    An odd element out passes a level unchanged. Every group must be non-empty.
    """
    if levels_per_stage < 1:
        raise ValueError(f"levels_per_stage must be at least 1, not {levels_per_stage!r}")
    groups = [list(g) for g in groups]
    if any(not g for g in groups):
        raise ValueError("every group of a reduction tree needs at least one element")
    carry = list(carry)
    depth = max((tree_depth(len(g)) for g in groups), default=0)
    level = 0
    while True:
        last = level == depth
        if (last and final_stage) or (not last and level > 0 and level % levels_per_stage == 0):
            pipe.stage()
            groups = [[register(x) for x in g] for g in groups]
            carry = [pipe.reg(c) for c in carry]
        if last:
            break
        groups = [
            [combine(g[i], g[i + 1]) for i in range(0, len(g) - 1, 2)] + ([g[-1]] if len(g) % 2 else [])
            for g in groups
        ]
        level += 1
    return [g[0] for g in groups], carry


def stages_for(depth: int, levels_per_stage: int, final_stage: bool = True) -> int:
    """How many stages :func:`tree_reduce` opens for a tree of ``depth`` levels."""
    inner = max(0, (depth - 1) // levels_per_stage) if depth > 0 else 0
    return inner + (1 if final_stage else 0)
