"""The interpreter: a graph run through every op's semantics, in float or bit-exactly in fixed point.

``run_float`` is the float reference (the yardstick the fixed-point model is measured against
and the engine calibration runs on, in float64); ``run_fixed`` is the golden model every backend
must equal bit for bit: it runs on integer mantissas (int64), evaluating each op on its plan, and
checks every result against its type (a value outside it would be a wrap the hardware makes).

Shapes in the IR are per sample; here every non-constant tensor is a batched numpy array of shape
``(N, *shape)``, and each op is vectorized over the batch (loops run only over kernel positions
or time steps, never over samples). A constant is its per-sample ``data``; where it stands in for
a data input (an ``Add`` with a constant operand, say) it gets a batch axis of size 1 that numpy
broadcasts against ``N``. Large batches run in parts (:func:`chunk_rows`), so memory stays bounded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from fpgac.errors import ShapeError
from fpgac.ir.fixed import quantize, to_float
from fpgac.ir.graph import Graph, Node, Value
from fpgac.ir.ops import OP_SPECS, Op
from fpgac.ir.types import FixedType, FloatType
from fpgac.ir.verify import VerifyError

from .base import check_fits
from .registry import SEMANTICS

__all__ = ["CHUNK_ELEMENTS", "chunk_rows", "evaluate_fixed", "evaluate_float", "run_fixed", "run_float"]

#: what ``run_float`` accepts: arrays by input name, in ``graph.inputs`` order, or one array
Inputs: TypeAlias = Mapping[str, ArrayLike] | Sequence[ArrayLike] | np.ndarray

#: how many array elements one pass of the interpreter may hold (its values and the windows of
#: convolutions and pools): ``run_float``/``run_fixed`` split a larger batch into parts this size
CHUNK_ELEMENTS = 1 << 24


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


def evaluate_float(graph: Graph, inputs: Inputs) -> dict[str, np.ndarray]:
    """Every non-constant value's batched float64 array, by value name, batch axis first.

    Calibration reads the range of each tensor from this. Constants are left out (their values
    are their ``data``); a node whose inputs are all constant still gets a full batch axis.
    ArgMax indices are float64 here too (exact: they are small integers). The arrays are read-only
    views of the interpreter's own, so that a caller cannot corrupt one value through another.
    """
    return _evaluate(graph, inputs, False)


def evaluate_fixed(graph: Graph, inputs: Inputs) -> dict[str, np.ndarray]:
    """Every non-constant value's batched int64 mantissas, by value name (for property tests)."""
    return _evaluate(graph, inputs, True)


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


# -- the loop -------------------------------------------------------------------------------------


def _run_outputs(
    graph: Graph, inputs: Inputs, fixed: bool, convert: Callable[[Value, np.ndarray], np.ndarray]
) -> list[np.ndarray]:
    """The outputs of a run, batch by ``chunk_rows`` samples (so memory stays bounded), joined."""
    bound, n = _bind_inputs(graph, inputs)
    step = chunk_rows(graph)
    plans = _plans(graph) if fixed else None
    parts: list[list[np.ndarray]] = []
    for start in range(0, max(n, 1), step):
        rows = min(step, n - start)
        env = _run(graph, {k: a[start : start + rows] for k, a in bound.items()}, plans)
        get = _batched_mantissas if fixed else _batched
        parts.append([np.array(convert(v, np.broadcast_to(get(v, env), (rows, *v.type.shape)))) for v in graph.outputs])
    joined = [np.concatenate([part[i] for part in parts]) if len(parts) > 1 else parts[0][i]
              for i in range(len(graph.outputs))]
    return [np.moveaxis(a, 0, graph.output_batch_axes.get(v.name, 0)) for v, a in zip(graph.outputs, joined)]


def _evaluate(graph: Graph, inputs: Inputs, fixed: bool) -> dict[str, np.ndarray]:
    env, n = _bind_inputs(graph, inputs)
    env = _run(graph, env, _plans(graph) if fixed else None)
    return {value.name: np.broadcast_to(env[id(value)], (n, *value.type.shape))
            for value in graph.values() if not value.is_const}


def _plans(graph: Graph) -> dict[int, object]:
    """Every node's plan, once per run (a node without a fixed-point form is refused here)."""
    for value in graph.inputs:
        _fixed_type(value)
    plans = {}
    for node in graph.nodes:
        semantics = SEMANTICS[node.op]
        if semantics.fixed is None:
            raise VerifyError(f"node {node.name!r} ({node.op.value}): {semantics.refused}")
        for value in node.inputs:
            if value is not None:
                _fixed_type(value, node)
        plans[id(node)] = semantics.plan(node)
    return plans


def _run(graph: Graph, env: dict[int, np.ndarray], plans: dict[int, object] | None) -> dict[int, np.ndarray]:
    """Run every node on the bound inputs ``env`` (extended in place, and returned); in fixed
    mode (``plans`` given) on mantissas, inputs quantized to their types at the boundary."""
    fixed = plans is not None
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
                args.append(value.data if i in const_inputs else _batched_mantissas(value, env, node))
            elif i in const_inputs:
                args.append(_const_data(value))
            else:
                args.append(_batched(value, env, node))
        semantics = SEMANTICS[node.op]
        outputs = semantics.fixed(node, plans[id(node)], args) if fixed else semantics.float(node, args)
        for value, array in zip(node.outputs, outputs):
            if fixed:
                check_fits(node, value, array)
            env[id(value)] = array
    return env


# -- binding and conversions -------------------------------------------------------------------------------


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


def _batched_mantissas(value: Value, env: dict[int, np.ndarray], node: Node | None = None) -> np.ndarray:
    if value.is_const:
        return value.data[None]
    return _batched(value, env, node)


def _fixed_type(value: Value, node: Node | None = None) -> FixedType:
    dtype = value.type.dtype
    if not isinstance(dtype, FixedType):
        where = f"node {node.name!r} ({node.op.value}) input" if node else "graph input"
        raise VerifyError(f"{where} {value.name!r} has type {dtype}: the golden model needs a quantized graph")
    return dtype


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
