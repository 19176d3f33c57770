"""Dense, Conv and ScaleShift: constant-weight linear layers.

Fixed point: the result is exact, at ``f_x + f_w`` fractional bits; the bias (ScaleShift's
shift) is added shifted up to them. The plan holds those bits, the shifted bias mantissas and,
for Conv, the window geometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgac.ir.graph import Node
from fpgac.ir.ops import Op
from fpgac.ir.types import FixedType

from .bounds import dot_bounds, fit, mantissa_range
from .base import Args, Semantics, expect_frac, frac, lift, optional, shift_to
from .windows import Window, pad_spatial, views, window

__all__ = ["LinearPlan", "SEMANTICS"]


@dataclass(frozen=True, eq=False)
class LinearPlan:
    """``frac``: the exact result's fractional bits (``f_x + f_w``); ``bias``: the bias (or
    ScaleShift's shift) as int64 mantissas at ``frac`` (None without one); ``window``: a Conv's
    geometry (None otherwise)."""

    frac: int
    bias: np.ndarray | None
    window: Window | None = None


def plan(node: Node) -> LinearPlan:
    bits = expect_frac(node, frac(node.inputs[0]) + frac(node.inputs[1]))
    bias = node.input(2)
    shifted = None if bias is None else shift_to(bias.data, frac(bias), bits, node)
    return LinearPlan(bits, shifted, window(node) if node.op is Op.CONV else None)


def exact_type(node: Node) -> FixedType:
    """``sum_i max(w_i * lo, w_i * hi) + b`` per output over the input type's mantissas ``[lo, hi]``
    (ScaleShift: ``max(s * lo, s * hi) + shift``), at ``f_x + f_w``: no sum can wrap."""
    x, w, bias = node.inputs[0].type.dtype, node.inputs[1], node.input(2)
    bits = x.frac_bits + frac(w)
    lo, hi = mantissa_range(x)
    if node.op is Op.SCALE_SHIFT:
        sm = w.data.astype(object)
        a, b = sm * lo, sm * hi
        lows, highs = np.minimum(a, b), np.maximum(a, b)
    else:
        wm = w.data.reshape(w.data.shape[0], -1).T if node.op is Op.CONV else w.data
        lows, highs = dot_bounds(wm, lo, hi)
    if bias is not None:
        b = bias.data.astype(object) * (1 << (bits - frac(bias)))
        shape = b.shape if node.op is Op.SCALE_SHIFT else (-1,)
        lows, highs = lows + b.reshape(shape), highs + b.reshape(shape)
    return fit(node, int(np.min(lows)), int(np.max(highs)), bits)


def dense(node: Node, args: Args) -> list[np.ndarray]:
    y = args[0] @ args[1]
    bias = optional(args, 2)
    return [y if bias is None else y + bias]


def conv(node: Node, args: Args) -> list[np.ndarray]:
    """Grouped, strided, dilated convolution: an einsum over the windows of the padded input."""
    x, w, bias = args[0], args[1], optional(args, 2)
    geometry = window(node)
    groups = node.attrs["groups"]
    xp = pad_spatial(x, geometry.begins, geometry.ends, 0)
    win = views(xp, geometry)
    win = win.reshape(win.shape[0], groups, -1, *win.shape[2:])  # (B, G, C/G, *out, *kernel)
    wg = w.reshape(groups, -1, *w.shape[1:])  # (G, M/G, C/G, *kernel)
    nd = geometry.nd
    sp, ks = "xy"[:nd], "hw"[:nd]
    y = np.einsum(f"bgc{sp}{ks},gmc{ks}->bgm{sp}", win, wg, optimize=True)
    y = y.reshape(y.shape[0], -1, *geometry.out)
    return [y if bias is None else y + bias.reshape(-1, *(1,) * nd)]


def scale_shift(node: Node, args: Args) -> list[np.ndarray]:
    return [args[0] * args[1] + args[2]]


def dense_fixed(node: Node, p: LinearPlan, args: Args) -> list[np.ndarray]:
    y = np.matmul(args[0], args[1])
    return [y if p.bias is None else y + p.bias]


def conv_fixed(node: Node, p: LinearPlan, args: Args) -> list[np.ndarray]:
    (y,) = conv(node, [args[0], args[1], None])
    return [y if p.bias is None else y + p.bias.reshape(-1, *(1,) * (y.ndim - 2))]


def scale_shift_fixed(node: Node, p: LinearPlan, args: Args) -> list[np.ndarray]:
    x = args[0]
    rank = x.ndim - 1
    return [x * lift(args[1][None], rank) + lift(p.bias[None], rank)]


SEMANTICS = {
    Op.DENSE: Semantics(plan, dense, dense_fixed, exact_type=exact_type),
    Op.CONV: Semantics(plan, conv, conv_fixed, exact_type=exact_type),
    Op.SCALE_SHIFT: Semantics(plan, scale_shift, scale_shift_fixed, exact_type=exact_type),
}
