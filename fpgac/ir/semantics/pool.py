"""Pool and GlobalPool: max and average over windows (or over all positions).

Max pooling is exact (padding never wins). An average is ``sum * round_half_up(2**K / count)``
with ``K = reciprocal_bits`` (an attribute the Quantize pass chose) and ``count`` the taps of the
window inside the input (or its explicit pads, with ``count_include_pad``); the output has ``f_x
+ K`` fractional bits. The plan holds the window, every window's count and reciprocal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fpgac.ir.graph import Node
from fpgac.ir.ops import Op, PoolKind
from fpgac.ir.types import FixedType

from .base import Args, Semantics, expect_frac, frac, same_type
from .bounds import fit, mantissa_range
from .windows import Window, pad_spatial, round_half_up_reciprocal, views, window

__all__ = ["GlobalPoolPlan", "PoolPlan", "SEMANTICS", "reciprocal_type", "sum_type"]


def sum_type(x: FixedType, count: int) -> FixedType:
    """The exact type of a sum of ``count`` values of type ``x`` (a window's, before the reciprocal)."""
    grow = max(count - 1, 0).bit_length()
    return FixedType(x.width + grow, x.int_bits + grow, x.signed)


def reciprocal_type(bits: int) -> FixedType:
    """The type holding ``round_half_up(2**bits / count)`` for every count >= 1 (at most 1.0)."""
    return FixedType(bits + 1, 1, False)


@dataclass(frozen=True, eq=False)
class PoolPlan:
    """``window``: the geometry; ``frac``: the output's fractional bits; ``sum_type``: the exact
    type of a window's sum (:func:`sum_type`). For an average:
    ``bits`` (K), and per output position (spatial shape) ``counts`` and ``reciprocals``
    (``round_half_up(2**K / count)``); None for max."""

    window: Window
    frac: int
    sum_type: FixedType
    bits: int | None = None
    counts: np.ndarray | None = None
    reciprocals: np.ndarray | None = None

    @property
    def average(self) -> bool:
        return self.bits is not None


@dataclass(frozen=True)
class GlobalPoolPlan:
    """``count``: the positions reduced (all spatial ones); for an average ``bits`` (K) and
    ``reciprocal`` = ``round_half_up(2**K / count)``."""

    count: int
    frac: int
    sum_type: FixedType
    bits: int | None = None
    reciprocal: int | None = None

    @property
    def average(self) -> bool:
        return self.bits is not None


def plan(node: Node) -> PoolPlan:
    w = window(node)
    total = sum_type(node.inputs[0].type.dtype, w.taps)
    if node.attrs["kind"] is PoolKind.MAX:
        return PoolPlan(w, expect_frac(node, frac(node.inputs[0])), total)
    bits = node.attrs["reciprocal_bits"]
    counts = w.counts(node.attrs["count_include_pad"])
    return PoolPlan(w, expect_frac(node, frac(node.inputs[0]) + bits), total, bits, counts,
                    round_half_up_reciprocal(counts, bits))


def global_plan(node: Node) -> GlobalPoolPlan:
    count = math.prod(node.inputs[0].type.shape[1:])
    total = sum_type(node.inputs[0].type.dtype, count)
    if node.attrs["kind"] is PoolKind.MAX:
        return GlobalPoolPlan(count, expect_frac(node, frac(node.inputs[0])), total)
    bits = node.attrs["reciprocal_bits"]
    return GlobalPoolPlan(count, expect_frac(node, frac(node.inputs[0]) + bits), total, bits,
                          int(round_half_up_reciprocal(count, bits)))


def exact_type(node: Node) -> FixedType:
    """Max: the input's; average: ``sum * round_half_up(2**K / count)`` over every count a window
    can have, at ``f_x + K``."""
    x = node.inputs[0].type.dtype
    if node.attrs["kind"] is PoolKind.MAX:
        return same_type(node)
    taps = window(node).taps if node.op is Op.POOL else math.prod(node.inputs[0].type.shape[1:])
    bits = node.attrs["reciprocal_bits"]
    counts = np.arange(1, taps + 1, dtype=np.int64)
    worst = int((counts * round_half_up_reciprocal(counts, bits)).max())
    lo, hi = mantissa_range(x)
    return fit(node, min(lo, 0) * worst, max(hi, 0) * worst, x.frac_bits + bits)


def _max(x: np.ndarray, w: Window, floor: float | int) -> np.ndarray:
    """Window maxima; padding holds ``floor``, below every element (-inf, or int64's minimum)."""
    xp = pad_spatial(x, w.begins, w.ends_ext, floor)
    return views(xp, w).max(axis=tuple(range(-w.nd, 0)))


def _sums(x: np.ndarray, w: Window) -> np.ndarray:
    """The window sums (exact for int64; padding adds nothing)."""
    xp = pad_spatial(x, w.begins, w.ends_ext, 0)
    return views(xp, w).sum(axis=tuple(range(-w.nd, 0)))


def pool(node: Node, args: Args) -> list[np.ndarray]:
    w = window(node)
    if node.attrs["kind"] is PoolKind.MAX:
        return [_max(args[0], w, -np.inf)]
    count = w.counts(node.attrs["count_include_pad"])
    return [_sums(args[0], w) / np.maximum(count, 1.0)]  # a window wholly in padding gives 0


def pool_fixed(node: Node, p: PoolPlan, args: Args) -> list[np.ndarray]:
    if not p.average:
        return [_max(args[0], p.window, np.iinfo(np.int64).min)]
    return [_sums(args[0], p.window) * p.reciprocals]


def global_pool(node: Node, args: Args) -> list[np.ndarray]:
    x = args[0]
    reduce = np.max if node.attrs["kind"] is PoolKind.MAX else np.mean
    return [reduce(x, axis=tuple(range(2, x.ndim)), keepdims=True)]


def global_pool_fixed(node: Node, p: GlobalPoolPlan, args: Args) -> list[np.ndarray]:
    x = args[0]
    axes = tuple(range(2, x.ndim))
    if not p.average:
        return [x.max(axis=axes, keepdims=True)]
    return [x.sum(axis=axes, keepdims=True) * np.int64(p.reciprocal)]


SEMANTICS = {
    Op.POOL: Semantics(plan, pool, pool_fixed, exact_type=exact_type),
    Op.GLOBAL_POOL: Semantics(global_plan, global_pool, global_pool_fixed, exact_type=exact_type),
}
