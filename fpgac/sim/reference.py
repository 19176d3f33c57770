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

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike

from fpgac.errors import ShapeError
from fpgac.ir import OP_SPECS, Act, FixedType, FloatType, Graph, Node, Op, PoolKind, Value, VerifyError
from fpgac.ir.fixed import quantize, requantize, to_float
from fpgac.sim.recurrent import gru_fixed, lstm_fixed

__all__ = ["run_float", "evaluate_float", "run_fixed", "evaluate_fixed", "activation_function"]

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
    indices = _index_values(graph)

    def output(value: Value, array: np.ndarray) -> np.ndarray:
        return array.astype(np.int64 if id(value) in indices else _float_dtype(value))

    return _run_outputs(graph, inputs, False, output)


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


#: how many array elements one pass of the interpreter may hold (its values and the windows of
#: convolutions and pools): ``run_float``/``run_fixed`` split a larger batch into parts this size
CHUNK_ELEMENTS = 1 << 24


def chunk_rows(graph: Graph) -> int:
    """How many samples one pass of the interpreter takes at most (at least 1)."""
    per_sample = sum(v.type.size for v in graph.values() if not v.is_const)
    for node in graph.nodes:
        if node.op in (Op.CONV, Op.POOL):
            kernel = math.prod(node.attrs["kernel"]) if node.op is Op.POOL else math.prod(node.inputs[1].type.shape[1:])
            groups = node.attrs.get("groups", 1) if node.op is Op.CONV else 1
            channels = node.output.type.shape[0]
            per_sample += node.output.type.size // channels * kernel * (groups if node.op is Op.CONV else channels)
    return max(1, CHUNK_ELEMENTS // max(per_sample, 1))


def _run_outputs(
    graph: Graph, inputs: Inputs, fixed: bool, convert: Callable[[Value, np.ndarray], np.ndarray]
) -> list[np.ndarray]:
    """The outputs of a run, batch by ``chunk_rows`` samples (so memory stays bounded), joined."""
    bound, n = _bind_inputs(graph, inputs)
    step = chunk_rows(graph)
    parts: list[list[np.ndarray]] = []
    for start in range(0, max(n, 1), step):
        rows = min(step, n - start)
        env = _run(graph, {k: a[start : start + rows] for k, a in bound.items()}, fixed)
        get = _batched_mantissas if fixed else _batched
        parts.append([np.array(convert(v, np.broadcast_to(get(v, env), (rows, *v.type.shape)))) for v in graph.outputs])
    joined = [np.concatenate([part[i] for part in parts]) if len(parts) > 1 else parts[0][i]
              for i in range(len(graph.outputs))]
    return [np.moveaxis(a, 0, graph.output_batch_axes.get(v.name, 0)) for v, a in zip(graph.outputs, joined)]


def _evaluate(graph: Graph, inputs: Inputs, fixed: bool = False) -> tuple[dict[int, np.ndarray], int]:
    """Run every node in order; the environment maps ``id(value)`` to its batched array."""
    env, n = _bind_inputs(graph, inputs)
    return _run(graph, env, fixed), n


def _run(graph: Graph, env: dict[int, np.ndarray], fixed: bool) -> dict[int, np.ndarray]:
    """Run every node on the bound inputs ``env`` (extended in place, and returned).

    In fixed mode the arrays are int64 mantissas of each value's FixedType: inputs are quantized
    to their types at the boundary, constants are their mantissas, and every op's result is
    checked against its output type (a value outside it would be a wrap the hardware makes).
    """
    table = _FIXED_OPS if fixed else _FLOAT_OPS
    if fixed:
        for value in graph.inputs:
            env[id(value)] = quantize(env[id(value)], _fixed_type(value))
    for node in graph.nodes:
        const_inputs = OP_SPECS[node.op].const_inputs
        args: list[np.ndarray | None] = []
        for i, value in enumerate(node.inputs):
            if value is None:
                args.append(None)
            elif fixed:
                _fixed_type(value, node)
                args.append(value.data if i in const_inputs else _batched_mantissas(value, env, node))
            elif i in const_inputs:
                args.append(_const_data(value))
            else:
                args.append(_batched(value, env, node))
        outputs = table[node.op](node, args)
        for value, array in zip(node.outputs, outputs):
            if fixed:
                _check_fits(node, value, array)
            env[id(value)] = array
    return env


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


def activation_function(kind: Act, attrs: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """The float function of an elementwise activation (what quantization tabulates)."""
    return lambda x: _ACTIVATIONS[kind](np.asarray(x, dtype=np.float64), attrs)


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
    if node.attrs["kind"] is PoolKind.MAX:
        return [_max_pool(node, args[0], -np.inf)]
    total, count = _avg_pool_parts(node, args[0])
    return [total / np.maximum(count, 1.0)]  # a window wholly in padding (only if pads >= kernel) gives 0


def _pool_geometry(node: Node, x: np.ndarray) -> tuple[Any, ...]:
    """Spatial rank, sizes, window parameters, and the end pads extended for ceil_mode."""
    a = node.attrs
    nd = x.ndim - 2
    size, out = x.shape[2:], node.output.type.shape[1:]
    kernel, strides, dilations = a["kernel"], a["strides"], a["dilations"]
    begins, ends = a["pads"][:nd], a["pads"][nd:]
    extra = [
        max(0, (o - 1) * s + d * (k - 1) + 1 - (n + b + e))
        for o, s, d, k, n, b, e in zip(out, strides, dilations, kernel, size, begins, ends)
    ]
    return nd, size, out, kernel, strides, dilations, begins, ends, [e + m for e, m in zip(ends, extra)]


def _max_pool(node: Node, x: np.ndarray, floor: float | int) -> np.ndarray:
    """Window maxima; padding holds ``floor``, below every element (-inf, or int64's minimum)."""
    nd, _, out, kernel, strides, dilations, begins, _, ends_ext = _pool_geometry(node, x)
    xp = _pad_spatial(x, begins, ends_ext, floor)
    return _windows(xp, kernel, strides, dilations, out).max(axis=tuple(range(-nd, 0)))


def _avg_pool_parts(node: Node, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The window sums (exact for int64) and how many taps each window counts."""
    nd, size, out, kernel, strides, dilations, begins, ends, ends_ext = _pool_geometry(node, x)
    taps = tuple(range(-nd, 0))
    xp = _pad_spatial(x, begins, ends_ext, 0)
    total = _windows(xp, kernel, strides, dilations, out).sum(axis=taps)
    # how many taps of each window count: a 0/1 mask over the padded input, pooled the same way
    mask = np.zeros((1, 1, *xp.shape[2:]), dtype=np.int64)
    if node.attrs["count_include_pad"]:
        mask[(0, 0, *(slice(0, n + b + e) for n, b, e in zip(size, begins, ends)))] = 1
    else:
        mask[(0, 0, *(slice(b, b + n) for n, b in zip(size, begins)))] = 1
    count = _windows(mask, kernel, strides, dilations, out).sum(axis=taps)
    return total, count


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
    Op.LOOKUP: lambda node, args: [_lookup_float(node, args[0])],
}


def _lookup_float(node: Node, x: np.ndarray) -> np.ndarray:
    """A table in float mode: the input rounded to the table's input type, the entry as a value."""
    table = node.attrs["table"]
    return to_float(table.lookup(quantize(x, table.in_type)), table.out_type)


# -- the fixed-point golden model -----------------------------------------------------------------
#
# Every array is int64 mantissas of its value's FixedType; the op reference's "Fixed-point
# semantics" paragraph (fpgac/ir/ops.py) is what each function implements. Ops that only move
# elements reuse the float functions, which never look at the element values.


def run_fixed(graph: Graph, inputs: Inputs, *, mantissas: bool = False) -> list[np.ndarray]:
    """Run a quantized ``graph`` bit-exactly on a batch: the golden model every backend must equal.

    Float inputs are quantized to the graph inputs' types (their rounding and overflow modes).
    Outputs are laid out as ``run_float`` lays them out; they are the exact float64 values of the
    output mantissas, or, with ``mantissas=True``, the int64 mantissas themselves (ArgMax indices
    are int64 either way).
    """
    indices = _index_values(graph)

    def output(value: Value, array: np.ndarray) -> np.ndarray:
        return array if mantissas or id(value) in indices else to_float(array, value.type.dtype)

    return _run_outputs(graph, inputs, True, output)


def evaluate_fixed(graph: Graph, inputs: Inputs) -> dict[str, np.ndarray]:
    """Every non-constant value's batched int64 mantissas, by value name (for property tests)."""
    env, n = _evaluate(graph, inputs, fixed=True)
    return {
        value.name: np.broadcast_to(env[id(value)], (n, *value.type.shape))
        for value in graph.values()
        if not value.is_const
    }


def _fixed_type(value: Value, node: Node | None = None) -> FixedType:
    dtype = value.type.dtype
    if not isinstance(dtype, FixedType):
        where = f"node {node.name!r} ({node.op.value}) input" if node else "graph input"
        raise VerifyError(f"{where} {value.name!r} has type {dtype}: the golden model needs a quantized graph")
    return dtype


def _batched_mantissas(value: Value, env: dict[int, np.ndarray], node: Node | None = None) -> np.ndarray:
    if value.is_const:
        return value.data[None]
    return _batched(value, env, node)


def _check_fits(node: Node, value: Value, array: np.ndarray) -> None:
    """An op's exact result must fit its output type: otherwise the hardware would wrap."""
    t = _fixed_type(value)
    if array.dtype != np.int64:
        raise VerifyError(f"node {node.name!r} ({node.op.value}) gave {array.dtype} mantissas, not int64")
    if array.size and (array.min() < t.min_mantissa or array.max() > t.max_mantissa):
        raise VerifyError(
            f"node {node.name!r} ({node.op.value}): output {value.name!r} mantissas "
            f"{array.min()}..{array.max()} overflow {t} ({t.min_mantissa}..{t.max_mantissa})"
        )


def _frac(value: Value) -> int:
    return value.type.dtype.frac_bits


def _shift_to(m: np.ndarray, src: int, dst: int, node: Node) -> np.ndarray:
    """Mantissas with ``src`` fractional bits, exactly, at ``dst >= src`` fractional bits."""
    if dst < src:
        raise VerifyError(f"node {node.name!r} ({node.op.value}): cannot align {src} to {dst} fractional bits exactly")
    return np.left_shift(np.asarray(m, dtype=np.int64), dst - src)


def _expect_frac(node: Node, frac: int) -> None:
    if _frac(node.output) != frac:
        raise VerifyError(
            f"node {node.name!r} ({node.op.value}): output type {node.output.type.dtype} has "
            f"{_frac(node.output)} fractional bits, the exact result has {frac}"
        )


def _bias(node: Node, index: int, frac: int) -> np.ndarray | None:
    value = node.input(index)
    return None if value is None else _shift_to(value.data, _frac(value), frac, node)


def _dense_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    frac = _frac(node.inputs[0]) + _frac(node.inputs[1])
    _expect_frac(node, frac)
    y = np.matmul(args[0], args[1])
    bias = _bias(node, 2, frac)
    return [y if bias is None else y + bias]


def _conv_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    frac = _frac(node.inputs[0]) + _frac(node.inputs[1])
    _expect_frac(node, frac)
    (y,) = _conv(node, [args[0], args[1], None])
    bias = _bias(node, 2, frac)
    return [y if bias is None else y + bias.reshape(-1, *(1,) * (y.ndim - 2))]


def _round_half_up_reciprocal(count: np.ndarray, bits: int) -> np.ndarray:
    """``round(2**bits / count)``, ties up, in integers: the averaging pools' multiplier."""
    count = np.asarray(count, dtype=np.int64)
    return ((np.int64(1) << (bits + 1)) // np.maximum(count, 1) + 1) >> 1


def _pool_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x, a = args[0], node.attrs
    if a["kind"] is PoolKind.MAX:
        _expect_frac(node, _frac(node.inputs[0]))
        return [_max_pool(node, x, np.iinfo(np.int64).min)]
    bits = a["reciprocal_bits"]
    _expect_frac(node, _frac(node.inputs[0]) + bits)
    total, count = _avg_pool_parts(node, x)
    return [total * _round_half_up_reciprocal(count, bits)]


def _global_pool_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = args[0]
    axes = tuple(range(2, x.ndim))
    if node.attrs["kind"] is PoolKind.MAX:
        _expect_frac(node, _frac(node.inputs[0]))
        return [x.max(axis=axes, keepdims=True)]
    bits = node.attrs["reciprocal_bits"]
    _expect_frac(node, _frac(node.inputs[0]) + bits)
    count = int(np.prod(x.shape[2:]))
    return [x.sum(axis=axes, keepdims=True) * _round_half_up_reciprocal(np.int64(count), bits)]


def _activation_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x, kind = args[0], node.attrs["kind"]
    fx = _frac(node.inputs[0])
    if kind is Act.PRELU:
        fs = _frac(node.inputs[1])
        _expect_frac(node, fx + fs)
        slope = _lift(args[1][None], x.ndim - 1)
        return [np.where(x >= 0, np.left_shift(x, fs), x * slope)]
    _expect_frac(node, fx)
    if kind is Act.RELU:
        return [np.maximum(x, 0)]
    if kind is Act.ABS:
        return [np.abs(x)]
    if kind is Act.CLIP:
        t = node.inputs[0].type.dtype
        lo = t.min_mantissa if node.attrs["min"] == -np.inf else max(t.min_mantissa, int(np.ceil(node.attrs["min"] / t.lsb)))
        hi = t.max_mantissa if node.attrs["max"] == np.inf else min(t.max_mantissa, int(np.floor(node.attrs["max"] / t.lsb)))
        return [np.minimum(np.maximum(x, lo), hi)]
    raise VerifyError(f"node {node.name!r}: Activation {kind.value} has no exact fixed-point form; "
                      "quantization turns it into a Lookup")


def _lookup_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    table = node.attrs["table"]
    if table.in_type.frac_bits != _frac(node.inputs[0]) or table.out_type != node.output.type.dtype:
        raise VerifyError(f"node {node.name!r} (Lookup): table {table} does not fit {node.inputs[0].type.dtype} -> "
                          f"{node.output.type.dtype}")
    return [table.lookup(args[0])]


def _softmax_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    """``z = x - max`` (exact), ``e = exp(z)`` and ``S = sum e`` (exact), then a reciprocal or log table."""
    x, axis = args[0], node.attrs["axis"] + 1
    z = x - x.max(axis=axis, keepdims=True)
    exp = node.attrs["exp"]
    e = exp.lookup(z)
    total = e.sum(axis=axis, keepdims=True)
    if node.attrs["log"]:
        log = node.attrs["log_table"]
        frac = max(_frac(node.inputs[0]), log.out_type.frac_bits)
        _expect_frac(node, frac)
        return [_shift_to(z, _frac(node.inputs[0]), frac, node) - _shift_to(log.lookup(total), log.out_type.frac_bits, frac, node)]
    recip = node.attrs["reciprocal"]
    _expect_frac(node, exp.out_type.frac_bits + recip.out_type.frac_bits)
    return [e * recip.lookup(total)]


def _scale_shift_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    x = args[0]
    frac = _frac(node.inputs[0]) + _frac(node.inputs[1])
    _expect_frac(node, frac)
    rank = x.ndim - 1
    scale = _lift(args[1][None], rank)
    shift = _lift(_shift_to(args[2], _frac(node.inputs[2]), frac, node)[None], rank)
    return [x * scale + shift]


def _aligned_binary(function: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> OpFunction:
    """Add/Sub/Max/Min: both inputs shifted up to the output's fractional bits."""

    def apply(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
        frac, rank = _frac(node.output), node.output.type.rank
        a, b = (_lift(_shift_to(m, _frac(v), frac, node), rank) for m, v in zip(args, node.inputs))
        return [function(a, b)]

    return apply


def _mul_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    _expect_frac(node, _frac(node.inputs[0]) + _frac(node.inputs[1]))
    rank = node.output.type.rank
    return [_lift(args[0], rank) * _lift(args[1], rank)]


def _concat_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    frac = _frac(node.output)
    parts = [_shift_to(m, _frac(v), frac, node) for m, v in zip(args, node.inputs)]
    return [np.concatenate(_full_batch(parts), axis=node.attrs["axis"] + 1)]


def _pad_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    t = node.output.type.dtype
    value = node.attrs["value"] / t.lsb
    if value != int(value) or not t.min_mantissa <= value <= t.max_mantissa:
        raise VerifyError(f"node {node.name!r} (Pad): value {node.attrs['value']} is not exact in {t}")
    x, pads = args[0], node.attrs["pads"]
    r = x.ndim - 1
    widths = [(0, 0)] + [(pads[i], pads[r + i]) for i in range(r)]
    return [np.pad(x, widths, constant_values=int(value))]


def _argmax_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    (index,) = _argmax(node, args)
    return [index.astype(np.int64)]


def _quant_fixed(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
    return [requantize(args[0], node.inputs[0].type.dtype, node.output.type.dtype)]


def _not_in_fixed(reason: str) -> OpFunction:
    def refuse(node: Node, args: list[np.ndarray | None]) -> list[np.ndarray]:
        raise VerifyError(f"node {node.name!r} ({node.op.value}): {reason}")

    return refuse


_FIXED_OPS: dict[Op, OpFunction] = {
    Op.DENSE: _dense_fixed,
    Op.CONV: _conv_fixed,
    Op.POOL: _pool_fixed,
    Op.GLOBAL_POOL: _global_pool_fixed,
    Op.ACTIVATION: _activation_fixed,
    Op.SOFTMAX: _softmax_fixed,
    Op.SCALE_SHIFT: _scale_shift_fixed,
    Op.ADD: _aligned_binary(np.add),
    Op.SUB: _aligned_binary(np.subtract),
    Op.MUL: _mul_fixed,
    Op.DIV: _not_in_fixed("quantization turns a division by a constant into a multiplication"),
    Op.MAX: _aligned_binary(np.maximum),
    Op.MIN: _aligned_binary(np.minimum),
    Op.CONCAT: _concat_fixed,
    Op.RESHAPE: _reshape,
    Op.TRANSPOSE: _transpose,
    Op.PAD: _pad_fixed,
    Op.SLICE: _slice,
    Op.ARGMAX: _argmax_fixed,
    Op.LSTM: lstm_fixed,
    Op.GRU: gru_fixed,
    Op.QUANT: _quant_fixed,
    Op.LOOKUP: _lookup_fixed,
}
