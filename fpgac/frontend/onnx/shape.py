"""Lowerings of the ops that move or pick elements: Concat, Flatten, Reshape, Transpose,
Squeeze, Unsqueeze, Pad, Slice, Split, Gather, ArgMax.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fpgac.errors import (
    InvalidModelError,
)
from fpgac.ir import (
    FixedType,
    Op,
)

from .context import LoweringContext, Tensor, ints


def lower_concat(cx: LoweringContext, a: dict[str, Any]) -> None:
    parts = [cx.sym(i) for i in range(len(cx.node.input)) if cx.has(i)]
    tensors = [p for p in parts if isinstance(p, Tensor)]
    ref = tensors[0]
    if any(t.batch_axis != ref.batch_axis or t.rank != ref.rank for t in tensors):
        raise cx.unsupported("Concat of tensors whose batch axes differ")
    axis = cx.axis(int(a["axis"]), ref)
    name = f"{cx.node.name or cx.node.output[0]}.const"
    inputs = [p.value if isinstance(p, Tensor) else cx.per_sample_const(p, ref, name) for p in parts]
    (out,) = cx.emit(Op.CONCAT, inputs, {"axis": axis})
    cx.set_outputs([Tensor(out, ref.batch_axis)])


def lower_flatten(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    axis = int(a.get("axis", 1))
    axis = axis + x.rank if axis < 0 else axis
    full = x.full_shape
    if x.batch_axis != 0 or axis == 0 or math.prod(full[1:axis]) != 1:
        raise cx.unsupported(f"Flatten at axis {axis} would merge the batch with other axes")
    cx.set_outputs([cx.reshape(x, (math.prod(full[axis:]),), 0)])


def lower_reshape(cx: LoweringContext, a: dict[str, Any]) -> None:
    """Reshape that keeps every sample's data together.

    That holds when all axes in front of the batch have size 1 (so the batch is outermost in
    memory) and the target puts the batch in the leading run of 1s (or at its -1). Which of those
    positions is the batch: the -1 if there is one, else the batch's old position, else axis 0.
    """
    x = cx.tensor(0)
    target = [int(d) for d in cx.const(1, "shape")]
    full = x.full_shape
    if not a.get("allowzero", 0):
        target = [full[i] if d == 0 and i < len(full) else d for i, d in enumerate(target)]
    per_sample = x.value.type.shape
    lead = 0
    while lead < len(target) and target[lead] in (1, -1):
        lead += 1
    batch = None
    if -1 in target[:lead]:
        batch = target.index(-1)
    elif x.batch_axis < lead:
        batch = x.batch_axis
    elif lead:
        batch = 0
    if math.prod(full[: x.batch_axis]) != 1 or batch is None:
        raise cx.unsupported(
            f"Reshape of {list(full)} (a batch of 1 at axis {x.batch_axis}) to {target} would mix the batch "
            "with other axes"
        )
    rest = target[:batch] + target[batch + 1:]
    if -1 in rest:
        if rest.count(-1) > 1 or target[batch] == -1:
            raise cx.unsupported(f"Reshape to {target}: more than one unknown dimension")
        known = math.prod(d for d in rest if d != -1)
        if known == 0 or math.prod(per_sample) % known:
            raise InvalidModelError(f"{cx.where()}: cannot reshape {list(full)} to {target}")
        rest[rest.index(-1)] = math.prod(per_sample) // known
    if math.prod(rest) != math.prod(per_sample):
        raise cx.unsupported(f"Reshape of {list(full)} to {target} would mix the batch with other axes")
    cx.set_outputs([cx.reshape(x, rest, batch)])


def lower_transpose(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    perm = list(a.get("perm", range(x.rank - 1, -1, -1)))
    b = x.batch_axis
    new_batch = perm.index(b)
    per_sample = [p - (p > b) for p in perm if p != b]
    if per_sample == sorted(per_sample):
        cx.set_outputs([Tensor(x.value, new_batch)])
        return
    (out,) = cx.emit(Op.TRANSPOSE, [x.value], {"perm": tuple(per_sample)})
    cx.set_outputs([Tensor(out, new_batch)])


def _axes_arg(cx: LoweringContext, a: dict[str, Any], index: int) -> list[int] | None:
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    axes = cx.const(index, "axes")
    return None if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]


def lower_squeeze(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    full = x.full_shape
    axes = _axes_arg(cx, a, 1)
    if axes is None:
        axes = [i for i, d in enumerate(full) if d == 1 and i != x.batch_axis]
    axes = sorted({d + x.rank if d < 0 else d for d in axes})
    if x.batch_axis in axes:
        raise cx.unsupported("Squeeze of the batch axis: fpgac keeps the batch")
    if any(full[d] != 1 for d in axes):
        raise InvalidModelError(f"{cx.where()}: Squeeze of axes {axes} of shape {list(full)} that are not 1")
    keep = [d for d in range(x.rank) if d not in axes]
    batch = keep.index(x.batch_axis)
    cx.set_outputs([cx.reshape(x, [full[d] for d in keep if d != x.batch_axis], batch)])


def lower_unsqueeze(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    axes = _axes_arg(cx, a, 1)
    rank = x.rank + len(axes)
    axes = sorted({d + rank if d < 0 else d for d in axes})
    dims = iter(range(x.rank))
    layout = [None if i in axes else next(dims) for i in range(rank)]
    full = x.full_shape
    batch = layout.index(x.batch_axis)
    shape = [1 if d is None else full[d] for i, d in enumerate(layout) if i != batch]
    cx.set_outputs([cx.reshape(x, shape, batch)])


def lower_pad(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    mode = a.get("mode", b"constant")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    if mode != "constant":
        raise cx.unsupported(f"Pad mode {mode!r}: fpgac pads with a constant only")
    if cx.opset < 11:
        pads, value = list(a.get("pads", a.get("paddings", []))), float(a.get("value", 0.0))
    else:
        pads = [int(v) for v in cx.const(1, "pads")]
        c = cx.const(2, "constant_value")
        value = 0.0 if c is None else float(np.asarray(c).reshape(()))
    axes = _axes_arg(cx, {}, 3) if cx.opset >= 18 else None
    if axes is not None:
        full_pads = [0] * (2 * x.rank)
        for i, ax in enumerate(axes):
            ax = ax + x.rank if ax < 0 else ax
            full_pads[ax], full_pads[x.rank + ax] = pads[i], pads[len(axes) + i]
        pads = full_pads
    if len(pads) != 2 * x.rank:
        raise InvalidModelError(f"{cx.where()}: {len(pads)} pads for rank {x.rank}")
    if any(p < 0 for p in pads):
        raise cx.unsupported("negative pads (cropping)")
    b = x.batch_axis
    if pads[b] or pads[x.rank + b]:
        raise cx.unsupported("padding along the batch axis")
    begins = [p for i, p in enumerate(pads[: x.rank]) if i != b]
    ends = [p for i, p in enumerate(pads[x.rank:]) if i != b]
    (out,) = cx.emit(Op.PAD, [x.value], {"pads": tuple(begins + ends), "value": value})
    cx.set_outputs([Tensor(out, b)])


def _slice_tensor(cx: LoweringContext, x: Tensor, ranges: dict[int, tuple[int, int, int]], suffix: str = "") -> Tensor:
    """Slice per-sample axes: ``ranges`` maps a per-sample axis to a normalized (start, end, step)."""
    shape = x.value.type.shape
    starts, ends, steps = [], [], []
    for axis, size in enumerate(shape):
        start, end, step = ranges.get(axis, (0, size, 1))
        starts.append(start)
        ends.append(end)
        steps.append(step)
    if all(r == (0, shape[ax], 1) for ax, r in ranges.items()):
        return x
    (out,) = cx.emit(Op.SLICE, [x.value], {"starts": tuple(starts), "ends": tuple(ends), "steps": tuple(steps)},
                     suffix=suffix)
    return Tensor(out, x.batch_axis)


def _normalize_range(start: int, end: int, step: int, size: int) -> tuple[int, int, int]:
    start, end, _ = slice(start, end, step).indices(size)
    if step < 0 and end < 0:
        end = -1
    return start, end, step


def lower_slice(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    if cx.opset < 10:
        starts, ends = list(a["starts"]), list(a["ends"])
        axes = list(a.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = list(ints(cx.const(1, "starts"))), list(ints(cx.const(2, "ends")))
        axes_c, steps_c = cx.const(3, "axes"), cx.const(4, "steps")
        axes = list(range(len(starts))) if axes_c is None else list(ints(axes_c))
        steps = [1] * len(starts) if steps_c is None else list(ints(steps_c))
    full = x.full_shape
    ranges = {}
    for start, end, axis, step in zip(starts, ends, axes, steps):
        axis = axis + x.rank if axis < 0 else axis
        if step == 0:
            raise InvalidModelError(f"{cx.where()}: Slice step 0")
        rng = _normalize_range(start, end, step, full[axis])
        if axis == x.batch_axis:
            if len(range(*slice(start, end, step).indices(full[axis]))) == 1:
                continue  # selecting "all" of a batch of 1, as exporters do for x[:]
            raise cx.unsupported("Slice along the batch axis")
        ranges[cx.axis(axis, x)] = rng
    cx.set_outputs([_slice_tensor(cx, x, ranges)])


def lower_split(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    axis = cx.axis(int(a.get("axis", 0)), x)
    size = x.value.type.shape[axis]
    count = len(cx.node.output)
    split = a.get("split")
    if split is None and cx.opset >= 13:
        c = cx.const(1, "split")
        split = None if c is None else list(ints(c))
    if split is None:
        chunk = -(-size // count)
        split = [min(chunk, size - i * chunk) for i in range(count)]
    split = [int(s) for s in split]
    if sum(split) != size or len(split) != count:
        raise InvalidModelError(f"{cx.where()}: split {split} of a {size}-long axis into {count} outputs")
    outputs, start = [], 0
    for i, length in enumerate(split):
        outputs.append(_slice_tensor(cx, x, {axis: (start, start + length, 1)}, suffix=f"_{i}"))
        start += length
    cx.set_outputs(outputs)


def lower_gather(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    index = cx.const(1, "indices")
    if np.asarray(index).ndim != 0:
        raise cx.unsupported("Gather of a run-time tensor with more than a single constant index")
    axis = int(a.get("axis", 0))
    axis = axis + x.rank if axis < 0 else axis
    per_axis = cx.axis(axis, x)
    size = x.value.type.shape[per_axis]
    i = int(index) + size if int(index) < 0 else int(index)
    if not 0 <= i < size:
        raise InvalidModelError(f"{cx.where()}: index {int(index)} out of range for size {size}")
    picked = _slice_tensor(cx, x, {per_axis: (i, i + 1, 1)})
    shape = list(picked.value.type.shape)
    del shape[per_axis]
    batch = x.batch_axis - (axis < x.batch_axis)
    cx.set_outputs([cx.reshape(picked, shape, batch)])


def lower_argmax(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    axis = int(a.get("axis", 0))
    per_axis = cx.axis(axis, x)
    keep = bool(a.get("keepdims", 1))
    size = x.value.type.shape[per_axis]
    index_type = FixedType(max(1, (size - 1).bit_length()), max(1, (size - 1).bit_length()), signed=False)
    attrs = {"axis": per_axis, "keepdims": keep, "select_last_index": bool(a.get("select_last_index", 0))}
    (out,) = cx.emit(Op.ARGMAX, [x.value], attrs, dtypes=[index_type])
    full_axis = axis + x.rank if axis < 0 else axis
    cx.set_outputs([Tensor(out, x.batch_axis - (not keep and full_axis < x.batch_axis))])
