"""Ops that move elements or pick one: Concat, Reshape, Transpose, Pad, Slice, ArgMax.

Fixed point: Reshape, Transpose and Slice move mantissas as they are; Concat shifts each input up
to the output's fractional bits; Pad fills with its value's mantissa (which must be exact in the
type); ArgMax gives an unsigned index. The plans hold Concat's shifts and Pad's fill mantissa.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgac.ir.graph import Node
from fpgac.ir.ops import Op
from fpgac.ir.types import FixedType
from fpgac.ir.verify import VerifyError

from .base import NO_PLAN, Args, Semantics, frac, full_batch, same_type, shift_to
from .bounds import fit, mantissa_range, shifted

__all__ = ["ConcatPlan", "PadPlan", "SEMANTICS", "argmax_index"]


@dataclass(frozen=True)
class ConcatPlan:
    """``frac``: the output's fractional bits; ``shifts``: each input's shift up to them."""

    frac: int
    shifts: tuple[int, ...]


@dataclass(frozen=True)
class PadPlan:
    """``fill``: the padding value as a mantissa of the output type."""

    fill: int


def concat_plan(node: Node) -> ConcatPlan:
    out = frac(node.output)
    for v in node.inputs:
        if frac(v) > out:
            raise VerifyError(f"node {node.name!r} ({node.op.value}): cannot align {frac(v)} to {out} fractional "
                              "bits exactly")
    return ConcatPlan(out, tuple(out - frac(v) for v in node.inputs))


def pad_plan(node: Node) -> PadPlan:
    t = node.output.type.dtype
    value = node.attrs["value"] / t.lsb
    if value != int(value) or not t.min_mantissa <= value <= t.max_mantissa:
        raise VerifyError(f"node {node.name!r} (Pad): value {node.attrs['value']} is not exact in {t}")
    return PadPlan(int(value))


def concat_type(node: Node) -> FixedType:
    """Every input shifted to the largest fractional bits; the range of them all."""
    types = [v.type.dtype for v in node.inputs]
    bits = max(t.frac_bits for t in types)
    ranges = [shifted(*mantissa_range(t), bits - t.frac_bits) for t in types]
    return fit(node, min(r[0] for r in ranges), max(r[1] for r in ranges), bits)


def pad_type(node: Node) -> FixedType:
    """The input's range and the fill (which the Quantize pass put on the input's grid)."""
    x = node.inputs[0].type.dtype
    fill = int(round(node.attrs["value"] / x.lsb)) if np.isfinite(node.attrs["value"]) else 0
    lo, hi = mantissa_range(x)
    return fit(node, min(lo, fill), max(hi, fill), x.frac_bits)


def concat(node: Node, args: Args) -> list[np.ndarray]:
    return [np.concatenate(full_batch(args), axis=node.attrs["axis"] + 1)]


def concat_fixed(node: Node, p: ConcatPlan, args: Args) -> list[np.ndarray]:
    parts = [shift_to(m, 0, s, node) for m, s in zip(args, p.shifts)]
    return [np.concatenate(full_batch(parts), axis=node.attrs["axis"] + 1)]


def reshape(node: Node, args: Args) -> list[np.ndarray]:
    return [args[0].reshape(args[0].shape[0], *node.attrs["shape"])]


def transpose(node: Node, args: Args) -> list[np.ndarray]:
    return [args[0].transpose(0, *(p + 1 for p in node.attrs["perm"]))]


def _pad(x: np.ndarray, pads, fill) -> np.ndarray:
    r = x.ndim - 1
    return np.pad(x, [(0, 0)] + [(pads[i], pads[r + i]) for i in range(r)], constant_values=fill)


def pad(node: Node, args: Args) -> list[np.ndarray]:
    return [_pad(args[0], node.attrs["pads"], node.attrs["value"])]


def pad_fixed(node: Node, p: PadPlan, args: Args) -> list[np.ndarray]:
    return [_pad(args[0], node.attrs["pads"], p.fill)]


def slice_(node: Node, args: Args) -> list[np.ndarray]:
    a = node.attrs
    index = tuple(slice(s, e if e >= 0 else None, t) for s, e, t in zip(a["starts"], a["ends"], a["steps"]))
    return [args[0][(slice(None), *index)]]


def argmax_index(x: np.ndarray, axis: int, select_last: bool) -> np.ndarray:
    """The position of the largest value along ``axis`` (ties: the first, or the last)."""
    if select_last:
        return x.shape[axis] - 1 - np.argmax(np.flip(x, axis=axis), axis=axis)
    return np.argmax(x, axis=axis)


def argmax(node: Node, args: Args) -> list[np.ndarray]:
    """The index of the largest value along the axis (ties: first, or last with
    ``select_last_index``); float64 in float mode (exact: small integers)."""
    x, axis = args[0], node.attrs["axis"] + 1
    index = argmax_index(x, axis, node.attrs["select_last_index"])
    if node.attrs["keepdims"]:
        index = np.expand_dims(index, axis)
    return [index.astype(np.float64)]


def _moved(function):
    """A float function that only moves elements, as a fixed one: the same on mantissas."""
    return lambda node, p, args: function(node, args)


def _no_plan(node: Node):
    return NO_PLAN


SEMANTICS = {
    Op.CONCAT: Semantics(concat_plan, concat, concat_fixed, exact_type=concat_type),
    Op.RESHAPE: Semantics(_no_plan, reshape, _moved(reshape), exact_type=same_type),
    Op.TRANSPOSE: Semantics(_no_plan, transpose, _moved(transpose), exact_type=same_type),
    Op.PAD: Semantics(pad_plan, pad, pad_fixed, exact_type=pad_type),
    Op.SLICE: Semantics(_no_plan, slice_, _moved(slice_), exact_type=same_type),
    Op.ARGMAX: Semantics(_no_plan, argmax, lambda node, p, args: [argmax(node, args)[0].astype(np.int64)],
                         exact_type=lambda node: node.output.type.dtype),  # the index type, set by the frontend
}
