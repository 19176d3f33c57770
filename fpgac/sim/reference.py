"""The float reference interpreter of the IR: what a graph computes, before any quantization.

It is the yardstick the fixed-point model is measured against and the engine calibration runs
on, so it follows the op reference in :mod:`fpgac.ir.ops` to the letter and computes in float64.

Shapes in the IR are per sample; here every non-constant tensor is a batched numpy array of shape
``(N, *shape)``, and each op is vectorized over the batch (loops run only over kernel positions
or time steps, never over samples). A constant is its per-sample ``data``; where it stands in for
a data input (an ``Add`` with a constant operand, say) it gets a batch axis of size 1 that numpy
broadcasts against ``N``.

Each op is one function in :data:`_FLOAT_OPS` (a table, so that a new op without an
interpretation fails loudly at the first run and in the test that checks the table is complete).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from fpgac.errors import ShapeError
from fpgac.ir import OP_SPECS, Act, FixedType, FloatType, Graph, Node, Op, PoolKind, Value, VerifyError
from fpgac.ir.fixed import quantize, to_float

__all__ = ["run_float", "evaluate_float"]

#: what ``run_float`` accepts: arrays by input name, in ``graph.inputs`` order, or one array
Inputs: TypeAlias = Mapping[str, ArrayLike] | Sequence[ArrayLike] | np.ndarray

#: an op's interpretation: the node and its arguments -> its outputs, batched.
#: ``args[i]`` is the per-sample ``data`` when input ``i`` must be constant (a weight), else a
#: batched array (batch axis of size N, or 1 for a constant); ``None`` for an absent input.
OpFunction: TypeAlias = Callable[[Node, list[np.ndarray | None]], list[np.ndarray]]


# -- public API ---------------------------------------------------------------------------------


def run_float(graph: Graph, inputs: Inputs) -> list[np.ndarray]:
    """Run ``graph`` in float on a batch and give its outputs as the source model would.

    Each output comes back with the batch axis where ``graph.output_batch_axes`` puts it (an
    ONNX LSTM's ``Y`` has it second) and in the element type the model declares, as onnxruntime
    gives it: float32 (or the width of the output's ``FloatType``: a float64 model's outputs do
    not fit in float32), and int64 for indices (ArgMax outputs and what merely moves them
    around). So the result can be compared with the ONNX model's directly.
    """
    env, n = _evaluate(graph, inputs)
    indices = _index_values(graph)
    results = []
    for value in graph.outputs:
        array = np.broadcast_to(_batched(value, env), (n, *value.type.shape))
        array = array.astype(np.int64 if id(value) in indices else _float_dtype(value))
        results.append(np.moveaxis(array, 0, graph.output_batch_axes.get(value.name, 0)))
    return results


def evaluate_float(graph: Graph, inputs: Inputs) -> dict[str, np.ndarray]:
    """Every non-constant value's batched float64 array, by value name, batch axis first.

    Calibration reads the range of each tensor from this. Constants are left out (their values
    are their ``data``); a node whose inputs are all constant still gets a full batch axis.
    ArgMax indices are float64 here too (exact: they are small integers). The arrays are read-only
    views of the interpreter's own, so that a caller cannot corrupt one value through another.
    """
    env, n = _evaluate(graph, inputs)
    values = {}
    for value in graph.values():
        if not value.is_const:
            values[value.name] = np.broadcast_to(env[id(value)], (n, *value.type.shape))
    return values


# -- driver -------------------------------------------------------------------------------------


def _evaluate(graph: Graph, inputs: Inputs) -> tuple[dict[int, np.ndarray], int]:
    """Run every node in order; the environment maps ``id(value)`` to its batched array."""
    env, n = _bind_inputs(graph, inputs)
    for node in graph.nodes:
        const_inputs = OP_SPECS[node.op].const_inputs
        args: list[np.ndarray | None] = []
        for i, value in enumerate(node.inputs):
            if value is None:
                args.append(None)
            elif i in const_inputs:
                args.append(_const_data(value))
            else:
                args.append(_batched(value, env, node))
        outputs = _FLOAT_OPS[node.op](node, args)
        for value, array in zip(node.outputs, outputs):
            env[id(value)] = array
    return env, n


def _float_dtype(value: Value) -> np.dtype:
    """The numpy float type of an output: its FloatType's width; float32 for a (float-mode) fixed type."""
    dtype = value.type.dtype
    return np.dtype(f"float{dtype.bits}") if isinstance(dtype, FloatType) else np.dtype(np.float32)


def _const_data(value: Value) -> np.ndarray:
    """A constant's float64 values: its data, or its mantissas scaled when it has a FixedType."""
    if isinstance(value.type.dtype, FixedType):
        return to_float(value.data, value.type.dtype)
    return np.asarray(value.data, dtype=np.float64)


def _batched(value: Value, env: dict[int, np.ndarray], node: Node | None = None) -> np.ndarray:
    if value.is_const:
        return _const_data(value)[None]
    try:
        return env[id(value)]
    except KeyError:
        where = f"node {node.name!r} ({node.op.value}) reads" if node else "graph output"
        raise VerifyError(f"{where} {value.name!r} before it is defined") from None


def _expected_shape(value: Value) -> str:
    return "(" + ", ".join(["N", *map(str, value.type.shape)]) + (",)" if not value.type.shape else ")")


def _bind_inputs(graph: Graph, inputs: Inputs) -> tuple[dict[int, np.ndarray], int]:
    """Check the user's arrays against the graph's inputs: the first place a wrong batch fails.

    A wrong shape would otherwise surface as a numpy broadcasting error deep inside some op, so
    each problem is named here, with the input and the shape that was expected.
    """
    names = [v.name for v in graph.inputs]
    listed = ", ".join(repr(name) for name in names)
    if isinstance(inputs, Mapping):
        unknown = [k for k in inputs if k not in names]
        if unknown:
            raise ShapeError(f"unknown input {unknown[0]!r}; the graph's inputs are {listed}")
        for value in graph.inputs:
            if value.name not in inputs:
                raise ShapeError(f"input {value.name!r} is missing (expected shape {_expected_shape(value)})")
        arrays = [inputs[name] for name in names]
    elif isinstance(inputs, (list, tuple)):
        if len(inputs) != len(names):
            raise ShapeError(f"expected {len(names)} input(s) ({listed}), got {len(inputs)}")
        arrays = list(inputs)
    else:
        if len(names) != 1:
            raise ShapeError(f"expected {len(names)} input(s) ({listed}), got a single array")
        arrays = [inputs]

    env: dict[int, np.ndarray] = {}
    batch: tuple[str, int] | None = None
    for value, given in zip(graph.inputs, arrays):
        try:
            array = np.asarray(given)
        except ValueError:  # numpy refuses ragged nested lists
            raise ShapeError(f"input {value.name!r} is not numeric (a ragged nested sequence)") from None
        if array.dtype.kind not in "biuf":
            raise ShapeError(f"input {value.name!r} is not numeric (dtype {array.dtype})")
        if array.ndim != value.type.rank + 1 or array.shape[1:] != value.type.shape:
            raise ShapeError(f"input {value.name!r} has shape {array.shape}, expected {_expected_shape(value)}")
        if batch is not None and array.shape[0] != batch[1]:
            raise ShapeError(
                f"input {value.name!r} has batch size {array.shape[0]}, but input {batch[0]!r} has {batch[1]}"
            )
        batch = batch or (value.name, array.shape[0])
        env[id(value)] = array.astype(np.float64)
    return env, batch[1] if batch else 1


#: ops that only move elements, so an index in is an index out
_INDEX_MOVING = {Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.PAD, Op.CONCAT, Op.QUANT}


def _index_values(graph: Graph) -> set[int]:
    """The ids of the values holding ArgMax indices, which ``run_float`` returns as int64."""
    indices: set[int] = set()
    for node in graph.nodes:
        data = [v for v in node.inputs if v is not None and not v.is_const]
        if node.op is Op.ARGMAX or (node.op in _INDEX_MOVING and data and all(id(v) in indices for v in data)):
            indices.update(id(v) for v in node.outputs)
    return indices


# -- elementwise helpers ------------------------------------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1/(1+e^-x) without overflow: e^-|x| never exceeds 1."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    """x if x > 0 else alpha*(e^x-1); the exponent is clipped so large x cannot overflow."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


def _lift(array: np.ndarray, rank: int) -> np.ndarray:
    """Give a batched array ``rank`` per-sample axes by inserting 1s after the batch axis.

    Per-sample shapes broadcast with trailing axes aligned; inserting the axes here keeps the
    batch axis from being aligned with a per-sample one.
    """
    missing = rank + 1 - array.ndim
    return array.reshape(array.shape[:1] + (1,) * missing + array.shape[1:])


def _full_batch(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Broadcast batch axes of size 1 (constants) to the batch size of the others."""
    n = max(a.shape[0] for a in arrays)
    return [np.broadcast_to(a, (n, *a.shape[1:])) for a in arrays]


_ACTIVATIONS: dict[Act, Callable[[np.ndarray, dict[str, Any]], np.ndarray]] = {
    Act.RELU: lambda x, a: np.maximum(x, 0.0),
    Act.LEAKY_RELU: lambda x, a: np.where(x >= 0, x, a["alpha"] * x),
    Act.SIGMOID: lambda x, a: _sigmoid(x),
    Act.HARD_SIGMOID: lambda x, a: np.clip(a["alpha"] * x + a["beta"], 0.0, 1.0),
    Act.TANH: lambda x, a: np.tanh(x),
    Act.CLIP: lambda x, a: np.minimum(np.maximum(x, a["min"]), a["max"]),
    Act.ELU: lambda x, a: _elu(x, a["alpha"]),
    Act.SELU: lambda x, a: a["gamma"] * _elu(x, a["alpha"]),
    Act.SOFTPLUS: lambda x, a: np.logaddexp(0.0, x),
    Act.SOFTSIGN: lambda x, a: x / (1.0 + np.abs(x)),
    Act.ABS: lambda x, a: np.abs(x),
}


def _optional(args: list[np.ndarray | None], index: int) -> np.ndarray | None:
    return args[index] if index < len(args) else None


# -- op functions -------------------------------------------------------------------------------


def _dense(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    y = args[0] @ args[1]
    bias = _optional(args, 2)
    return [y if bias is None else y + bias]


def _windows(
    x: np.ndarray, kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int], out: Sequence[int]
) -> np.ndarray:
    """View a padded ``(B, C, *spatial)`` array as ``(B, C, *out, *kernel)`` receptive fields.

    An im2col without the copy: a sliding window as wide as the dilated kernel, stepped by the
    stride over the output positions and by the dilation over the taps.
    """
    nd = len(kernel)
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    view = sliding_window_view(x, spans, axis=tuple(range(2, 2 + nd)))
    index = (
        (slice(None), slice(None))
        + tuple(slice(0, o * s, s) for o, s in zip(out, strides))
        + tuple(slice(None, None, d) for d in dilations)
    )
    return view[index]


def _pad_spatial(x: np.ndarray, begins: Sequence[int], ends: Sequence[int], fill: float) -> np.ndarray:
    return np.pad(x, [(0, 0), (0, 0), *zip(begins, ends)], constant_values=fill)


def _conv(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x, w, bias = args[0], args[1], _optional(args, 2)
    a = node.attrs
    nd, groups = x.ndim - 2, a["groups"]
    out = node.output.type.shape[1:]
    xp = _pad_spatial(x, a["pads"][:nd], a["pads"][nd:], 0.0)
    win = _windows(xp, w.shape[2:], a["strides"], a["dilations"], out)
    win = win.reshape(win.shape[0], groups, -1, *win.shape[2:])  # (B, G, C/G, *out, *kernel)
    wg = w.reshape(groups, -1, *w.shape[1:])  # (G, M/G, C/G, *kernel)
    sp, ks = "xy"[:nd], "hw"[:nd]
    y = np.einsum(f"bgc{sp}{ks},gmc{ks}->bgm{sp}", win, wg, optimize=True)
    y = y.reshape(y.shape[0], -1, *out)
    return [y if bias is None else y + bias.reshape(-1, *(1,) * nd)]


def _pool(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """Max or average pooling, with ONNX's ceil_mode and count_include_pad rules.

    With ``ceil_mode`` the last window may run past the end padding; it is extended just enough
    for that window to fit. That extension is never counted by ``count_include_pad``: only the
    explicit pads are (as onnxruntime and PyTorch do).
    """
    x, a = args[0], node.attrs
    nd = x.ndim - 2
    size, out = x.shape[2:], node.output.type.shape[1:]
    kernel, strides, dilations = a["kernel"], a["strides"], a["dilations"]
    begins, ends = a["pads"][:nd], a["pads"][nd:]
    extra = [
        max(0, (o - 1) * s + d * (k - 1) + 1 - (n + b + e))
        for o, s, d, k, n, b, e in zip(out, strides, dilations, kernel, size, begins, ends)
    ]
    ends_ext = [e + more for e, more in zip(ends, extra)]
    taps = tuple(range(-nd, 0))
    if a["kind"] is PoolKind.MAX:
        xp = _pad_spatial(x, begins, ends_ext, -np.inf)
        return [_windows(xp, kernel, strides, dilations, out).max(axis=taps)]
    xp = _pad_spatial(x, begins, ends_ext, 0.0)
    total = _windows(xp, kernel, strides, dilations, out).sum(axis=taps)
    # how many taps of each window count: a 0/1 mask over the padded input, pooled the same way
    mask = np.zeros((1, 1, *xp.shape[2:]))
    if a["count_include_pad"]:
        mask[(0, 0, *(slice(0, n + b + e) for n, b, e in zip(size, begins, ends)))] = 1.0
    else:
        mask[(0, 0, *(slice(b, b + n) for n, b in zip(size, begins)))] = 1.0
    count = _windows(mask, kernel, strides, dilations, out).sum(axis=taps)
    return [total / np.maximum(count, 1.0)]  # a window wholly in padding (only if pads >= kernel) gives 0


def _global_pool(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = args[0]
    axes = tuple(range(2, x.ndim))
    reduce = np.max if node.attrs["kind"] is PoolKind.MAX else np.mean
    return [reduce(x, axis=axes, keepdims=True)]


def _activation(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x, kind = args[0], node.attrs["kind"]
    if kind is Act.PRELU:
        return [np.where(x >= 0, x, args[1] * x)]
    return [_ACTIVATIONS[kind](x, node.attrs)]


def _softmax(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """Softmax or log-softmax, shifted by the maximum so that exp never overflows."""
    x, axis = args[0], node.attrs["axis"] + 1
    shifted = x - x.max(axis=axis, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return [shifted - log_sum if node.attrs["log"] else np.exp(shifted - log_sum)]


def _scale_shift(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [args[0] * args[1] + args[2]]


def _binary(function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> OpFunction:
    def apply(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
        rank = node.output.type.rank
        return [function(_lift(args[0], rank), _lift(args[1], rank))]

    return apply


def _concat(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [np.concatenate(_full_batch(args), axis=node.attrs["axis"] + 1)]


def _reshape(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [args[0].reshape(args[0].shape[0], *node.attrs["shape"])]


def _transpose(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [args[0].transpose(0, *(p + 1 for p in node.attrs["perm"]))]


def _pad(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x, pads = args[0], node.attrs["pads"]
    r = x.ndim - 1
    widths = [(0, 0)] + [(pads[i], pads[r + i]) for i in range(r)]
    return [np.pad(x, widths, constant_values=node.attrs["value"])]


def _slice(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    a = node.attrs
    index = tuple(slice(s, e if e >= 0 else None, t) for s, e, t in zip(a["starts"], a["ends"], a["steps"]))
    return [args[0][(slice(None), *index)]]


def _argmax(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x, axis = args[0], node.attrs["axis"] + 1
    if node.attrs["select_last_index"]:
        index = x.shape[axis] - 1 - np.argmax(np.flip(x, axis=axis), axis=axis)
    else:
        index = np.argmax(x, axis=axis)
    if node.attrs["keepdims"]:
        index = np.expand_dims(index, axis)
    return [index.astype(np.float64)]


def _initial_state(state: np.ndarray | None, batch: int, hidden: int) -> np.ndarray:
    return np.broadcast_to(np.zeros(hidden) if state is None else state, (batch, hidden))


def _lstm(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """ONNX LSTM, forward, gates i, o, f, c; the input projection is done for all steps at once."""
    x, w, r = args[0], args[1], args[2]
    hidden = node.attrs["hidden_size"]
    bias = _optional(args, 3)
    batch, steps = x.shape[0], x.shape[1]
    gx = x @ w.T
    if bias is not None:
        gx = gx + bias[: 4 * hidden] + bias[4 * hidden :]
    h = _initial_state(_optional(args, 4), batch, hidden)
    c = _initial_state(_optional(args, 5), batch, hidden)
    ys = np.empty((batch, steps, hidden))
    for t in range(steps):
        i, o, f, g = np.split(gx[:, t] + h @ r.T, 4, axis=-1)
        c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
        h = _sigmoid(o) * np.tanh(c)
        ys[:, t] = h
    return [ys, np.array(h), np.array(c)]


def _gru(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """ONNX GRU, forward, gates z, r, h; ``linear_before_reset`` moves where r multiplies."""
    x, w, r = args[0], args[1], args[2]
    hidden = node.attrs["hidden_size"]
    bias = _optional(args, 3)
    if bias is None:
        bias = np.zeros(6 * hidden)
    wb, rb = bias[: 3 * hidden], bias[3 * hidden :]
    r_h = r[2 * hidden :]
    batch, steps = x.shape[0], x.shape[1]
    gx = x @ w.T + wb
    h = _initial_state(_optional(args, 4), batch, hidden)
    ys = np.empty((batch, steps, hidden))
    for t in range(steps):
        xz, xr, xh = np.split(gx[:, t], 3, axis=-1)
        hz, hr, hh = np.split(h @ r.T + rb, 3, axis=-1)
        z, reset = _sigmoid(xz + hz), _sigmoid(xr + hr)
        if node.attrs["linear_before_reset"]:
            n = np.tanh(xh + reset * hh)
        else:
            n = np.tanh(xh + (reset * h) @ r_h.T + rb[2 * hidden :])
        h = (1.0 - z) * n + z * h
        ys[:, t] = h
    return [ys, np.array(h)]


def _quant(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """A Quant whose output has a FixedType rounds and saturates even in float mode.

    Such a node comes from the model itself (a QONNX ``Quant``): the network was trained with it,
    so it is part of the float model. A Quant with a float output is the identity.
    """
    dtype = node.output.type.dtype
    if isinstance(dtype, FixedType):
        return [to_float(quantize(args[0], dtype), dtype)]
    return [args[0]]


_FLOAT_OPS: dict[Op, OpFunction] = {
    Op.DENSE: _dense,
    Op.CONV: _conv,
    Op.POOL: _pool,
    Op.GLOBAL_POOL: _global_pool,
    Op.ACTIVATION: _activation,
    Op.SOFTMAX: _softmax,
    Op.SCALE_SHIFT: _scale_shift,
    Op.ADD: _binary(np.add),
    Op.SUB: _binary(np.subtract),
    Op.MUL: _binary(np.multiply),
    Op.DIV: _binary(np.divide),
    Op.MAX: _binary(np.maximum),
    Op.MIN: _binary(np.minimum),
    Op.CONCAT: _concat,
    Op.RESHAPE: _reshape,
    Op.TRANSPOSE: _transpose,
    Op.PAD: _pad,
    Op.SLICE: _slice,
    Op.ARGMAX: _argmax,
    Op.LSTM: _lstm,
    Op.GRU: _gru,
    Op.QUANT: _quant,
}
