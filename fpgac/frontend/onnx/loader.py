"""Loading an ONNX file into the IR: reading (external data included), shape inference, checking
the initializers, folding constant nodes, and running every node through the table of
lowerings (``LOWERINGS``) in graph order.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper
from onnx.reference import ReferenceEvaluator

from fpgac.errors import (
    FpgacError,
    InvalidModelError,
    ModelFileError,
    ShapeError,
    UnsupportedError,
    UsageError,
)
from fpgac.ir import (
    Act,
    FloatType,
    Graph,
    Op,
    PoolKind,
    TensorType,
)

from .context import (
    FLOAT_TYPES,
    MAX_TENSOR_ELEMENTS,
    Lowering,
    LoweringContext,
    Poison,
    Tensor,
    identifier,
    log,
    node_attrs,
)
from .elementwise import BINARY_OPS, lower_binary, lower_identity, lower_neg
from .layers import (
    lower_activation,
    lower_batchnorm,
    lower_clip,
    lower_conv,
    lower_gemm,
    lower_global_pool,
    lower_matmul,
    lower_pool,
    lower_prelu,
    lower_rnn,
    lower_softmax,
)
from .qonnx import QONNX_DOMAINS, QONNX_LOWERINGS, QONNX_OPS
from .shape import (
    lower_argmax,
    lower_concat,
    lower_flatten,
    lower_gather,
    lower_pad,
    lower_reshape,
    lower_slice,
    lower_split,
    lower_squeeze,
    lower_transpose,
    lower_unsqueeze,
)

#: ops whose constant result holds its input's values, moved: a quantized weight keeps its grid
_MOVES_VALUES = frozenset({"Identity", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})


LOWERINGS: dict[str, Lowering] = {
    "Gemm": lower_gemm,
    "MatMul": lower_matmul,
    "Conv": lower_conv,
    "BatchNormalization": lower_batchnorm,
    "MaxPool": lower_pool(PoolKind.MAX),
    "AveragePool": lower_pool(PoolKind.AVG),
    "GlobalMaxPool": lower_global_pool(PoolKind.MAX),
    "GlobalAveragePool": lower_global_pool(PoolKind.AVG),
    "Relu": lower_activation(Act.RELU),
    "LeakyRelu": lower_activation(Act.LEAKY_RELU, alpha=0.01),
    "PRelu": lower_prelu,
    "Sigmoid": lower_activation(Act.SIGMOID),
    "HardSigmoid": lower_activation(Act.HARD_SIGMOID, alpha=0.2, beta=0.5),
    "HardSwish": lower_activation(Act.HARD_SWISH),
    "Tanh": lower_activation(Act.TANH),
    "Clip": lower_clip,
    "Elu": lower_activation(Act.ELU, alpha=1.0),
    "Selu": lower_activation(Act.SELU, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875),
    "Softplus": lower_activation(Act.SOFTPLUS),
    "Softsign": lower_activation(Act.SOFTSIGN),
    "Abs": lower_activation(Act.ABS),
    "Neg": lower_neg,
    "Softmax": lower_softmax(False),
    "LogSoftmax": lower_softmax(True),
    **{op: lower_binary for op in BINARY_OPS},
    "Concat": lower_concat,
    "Flatten": lower_flatten,
    "Reshape": lower_reshape,
    "Transpose": lower_transpose,
    "Squeeze": lower_squeeze,
    "Unsqueeze": lower_unsqueeze,
    "Identity": lower_identity,
    "Dropout": lower_identity,
    "Cast": lower_identity,
    "Pad": lower_pad,
    "Slice": lower_slice,
    "Split": lower_split,
    "Gather": lower_gather,
    "ArgMax": lower_argmax,
    "LSTM": lower_rnn(Op.LSTM),
    "GRU": lower_rnn(Op.GRU),
}


SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(LOWERINGS))

_SUPPORTED_TEXT = ", ".join(SUPPORTED_OPS)


# -------------------------------------------------------------------------------------------
# Loading
# -------------------------------------------------------------------------------------------


def _read_model(path: str | os.PathLike) -> onnx.ModelProto:
    p = Path(path)
    if not p.exists():
        raise ModelFileError(f"{p}: no such file")
    if p.is_dir():
        raise ModelFileError(f"{p}: is a directory, not an ONNX model file")
    try:
        data = p.read_bytes()
    except OSError as err:
        raise ModelFileError(f"{p}: cannot read it ({err.strerror})") from None
    if not data:
        raise ModelFileError(f"{p}: the file is empty, not an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception:  # protobuf raises DecodeError, or RuntimeWarning-ish errors; any means unreadable
        raise ModelFileError(
            f"{p}: not a readable ONNX model (the protobuf does not parse: is the file truncated or "
            "of another format?)"
        ) from None
    if model.ir_version <= 0 or not model.graph.output or not (model.graph.node or model.graph.input):
        raise ModelFileError(f"{p}: not an ONNX model (no IR version, graph inputs or outputs)")
    _load_external(model, p)
    return model


def _load_external(model: onnx.ModelProto, path: Path) -> None:
    """Bring in weights kept in files beside the model, as PyTorch's dynamo exporter writes them."""
    base = path.parent
    for tensor in _all_tensors(model):
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in tensor.external_data}
        location = info.get("location", "")
        target = (base / location).resolve()
        if not location or not target.is_file():
            raise ModelFileError(
                f"{path}: tensor {tensor.name!r} keeps its data in {location!r}, which is missing "
                f"(expected at {base / location}): copy it beside the model"
            )
        if base.resolve() not in target.parents:
            raise ModelFileError(f"{path}: external data {location!r} of {tensor.name!r} lies outside the model's folder")
    try:
        onnx.load_external_data_for_model(model, str(base))
    except Exception as err:
        raise ModelFileError(f"{path}: cannot read its external data ({err})") from None


def _all_tensors(model: onnx.ModelProto):
    yield from model.graph.initializer
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.TENSOR:
                yield attr.t


def _infer_shapes(model: onnx.ModelProto, source: str) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    except onnx.shape_inference.InferenceError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "inconsistent shapes"
        raise InvalidModelError(f"{source}: ONNX shape inference fails: {first}") from None
    except Exception as err:  # checker-level failures surface as other exception types
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InvalidModelError(f"{source}: the model is not valid ONNX: {first}") from None


def _check_initializers(model: onnx.ModelProto, source: str) -> dict[str, np.ndarray]:
    consts: dict[str, np.ndarray] = {}
    users: dict[str, str] = {}
    for node in model.graph.node:
        for name in node.input:
            users.setdefault(name, f"node {node.name or node.output[0]!r} ({node.op_type})")
    for tensor in model.graph.initializer:
        try:
            array = numpy_helper.to_array(tensor)
        except Exception as err:
            raise InvalidModelError(f"{source}: initializer {tensor.name!r} cannot be read ({err})") from None
        if array.dtype.kind == "f":
            bad = ~np.isfinite(array)
            if bad.any():
                kinds = " and ".join(k for k, m in (("NaN", np.isnan(array)), ("Inf", np.isinf(array))) if m.any())
                raise InvalidModelError(
                    f"{source}: initializer {tensor.name!r} (used by {users.get(tensor.name, 'no node')}) "
                    f"holds {kinds} in {int(bad.sum())} of {array.size} values: fix or retrain the model"
                )
        consts[tensor.name] = array
    return consts


def _fold(cx: LoweringContext, node: onnx.NodeProto) -> list[np.ndarray]:
    """Evaluate a node on constant inputs with ONNX's own reference implementation."""
    if node.op_type in ("Shape", "Size"):
        x = cx.env[node.input[0]]
        shape = np.array(x.full_shape if isinstance(x, Tensor) else np.shape(x), dtype=np.int64)
        if node.op_type == "Size":
            return [np.array(np.prod(shape), dtype=np.int64)]
        a = node_attrs(node)
        start, end = a.get("start", 0), a.get("end", None)
        return [shape[start:end]]
    feeds = {name: cx.env[name] for name in node.input if name}
    try:
        evaluator = ReferenceEvaluator(node, opsets={"": cx.opset})
        results = evaluator.run(None, feeds)
    except Exception as err:
        raise cx.unsupported(f"cannot evaluate on constants ({type(err).__name__}: {err})") from None
    return [np.asarray(r) for r in results]


def load_onnx(path: str | os.PathLike, *, outputs: Sequence[str] | None = None, seq_len: int | None = None) -> Graph:
    """Read an ONNX model and lower it to the IR (float types, ONNX-like layer ops).

    ``outputs`` picks graph outputs by name; by default every output the hardware can compute is
    kept (an output that needs an unsupported node is dropped with a warning, unless none is left).
    ``seq_len`` fixes every symbolic input dimension but the batch (a sequence length) at that size.
    """
    source = str(path)
    model = _read_model(path)
    if seq_len is not None:
        if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
            raise UsageError(f"--seq-len must be a positive integer, not {seq_len!r}")
        for inp in model.graph.input:
            for dim in list(inp.type.tensor_type.shape.dim)[1:]:
                if not dim.HasField("dim_value"):
                    dim.dim_value = seq_len
    cx = LoweringContext(model, source)
    consts = _check_initializers(model, source)
    inferred = _infer_shapes(model, source)
    known_shapes = _value_shapes(inferred)
    cx.env.update(consts)
    for out in model.graph.output:
        cx.graph.reserve(identifier(out.name))

    for inp in model.graph.input:
        if inp.name in consts:
            continue
        cx.env[inp.name] = lower_input(cx, inp)

    for node in model.graph.node:
        cx.node = node
        inputs = [cx.env.get(name) if name else None for name in node.input]
        missing = [name for name, v in zip(node.input, inputs) if name and v is None]
        if missing:
            raise InvalidModelError(f"{cx.where()}: input {missing[0]!r} is not produced by any node")
        poisoned = next((v for v in inputs if isinstance(v, Poison)), None)
        if poisoned is not None:
            cx.set_outputs([poisoned] * len(node.output))
            continue
        try:
            if node.domain in QONNX_DOMAINS and node.op_type in QONNX_LOWERINGS:
                QONNX_LOWERINGS[node.op_type](cx, node_attrs(node))
            elif node.domain in QONNX_DOMAINS:
                raise cx.unsupported(
                    f"QONNX op {node.op_type} is not one fpgac compiles; it lowers {', '.join(QONNX_OPS)}"
                )
            elif node.domain not in ("", "ai.onnx"):
                raise cx.unsupported(f"op {node.op_type} of domain {node.domain!r} is not one fpgac compiles")
            elif node.op_type in ("Shape", "Size") or all(v is None or isinstance(v, np.ndarray) for v in inputs):
                cx.set_outputs(_fold(cx, node))
                if node.op_type in _MOVES_VALUES and node.input[0] in cx.grids:
                    cx.grids[node.output[0]] = cx.grids[node.input[0]]
            elif node.op_type in LOWERINGS:
                LOWERINGS[node.op_type](cx, node_attrs(node))
            else:
                raise cx.unsupported(
                    f"op {node.op_type} is not supported on run-time tensors; fpgac lowers {_SUPPORTED_TEXT}"
                )
        except FpgacError as err:
            cx.set_outputs([Poison(err)] * len(node.output))
            continue
        _check_against_inference(cx, node, known_shapes)

    cx.node = None
    graph = cx.graph
    names = [o.name for o in model.graph.output]
    if outputs is not None:
        unknown = [o for o in outputs if o not in names]
        if unknown:
            raise UsageError(f"{source}: no output named {unknown[0]!r}; the model's outputs are {', '.join(names)}")
        wanted = list(outputs)
    else:
        wanted = names
    kept: list[str] = []
    dropped: list[tuple[str, FpgacError]] = []
    for name in wanted:
        value = cx.env.get(name)
        if isinstance(value, Poison):
            dropped.append((name, value.error))
        elif not isinstance(value, Tensor):
            dropped.append((name, UnsupportedError(
                f"{source}: output {name!r} is a constant, not computed from the inputs")))
        else:
            kept.append(name)
    if dropped and (outputs is not None or not kept):
        raise dropped[0][1]
    for name, error in dropped:
        log.warning("dropping output %r, which the hardware cannot compute: %s", name, error)
    for name in kept:
        t = cx.env[name]
        value = t.value
        if value in graph.outputs or value in graph.inputs:
            (value,) = graph.add_node(Op.RESHAPE, [value], [value.type], {"shape": value.type.shape},
                                      name=identifier(name)).outputs
        graph.outputs.append(value)
        if t.batch_axis:
            graph.output_batch_axes[value.name] = t.batch_axis
        graph.rename(value, identifier(name))
    graph.remove_unused()
    return graph


def lower_input(cx: LoweringContext, inp: onnx.ValueInfoProto) -> Tensor:
    source = cx.source
    ttype = inp.type.tensor_type
    if not inp.type.HasField("tensor_type"):
        raise UnsupportedError(f"{source}: input {inp.name!r} is not a tensor")
    if ttype.elem_type not in FLOAT_TYPES:
        name = onnx.TensorProto.DataType.Name(ttype.elem_type)
        raise UnsupportedError(f"{source}: input {inp.name!r} has element type {name}; fpgac compiles float inputs")
    if not ttype.HasField("shape"):
        raise ShapeError(f"{source}: input {inp.name!r} has no shape: export the model with a fixed input shape")
    dims = list(ttype.shape.dim)
    if not dims:
        raise ShapeError(f"{source}: input {inp.name!r} is a scalar; fpgac wants a batch as its first dimension")
    if dims[0].HasField("dim_value") and dims[0].dim_value > 1:
        log.warning("%s: input %r was exported with a fixed batch of %d; fpgac builds hardware for one sample "
                    "and runs a batch of any size one sample at a time (export with batch 1 or a dynamic "
                    "batch to silence this)", source, inp.name, dims[0].dim_value)
    shape = []
    for i, dim in enumerate(dims[1:], start=1):
        if not dim.HasField("dim_value"):
            label = f" ({dim.dim_param!r})" if dim.dim_param else ""
            raise ShapeError(
                f"{source}: input {inp.name!r} dimension {i}{label} is symbolic; only the first (batch) "
                "dimension may be: give its size with --seq-len N (a sequence length), or export the model with a "
                "fixed size for the others"
            )
        if dim.dim_value <= 0:
            raise ShapeError(f"{source}: input {inp.name!r} dimension {i} is {dim.dim_value}")
        shape.append(int(dim.dim_value))
    if math.prod(shape) > MAX_TENSOR_ELEMENTS:
        raise ShapeError(
            f"{source}: input {inp.name!r} of {math.prod(shape)} elements per sample {shape} exceeds the "
            f"{MAX_TENSOR_ELEMENTS} fpgac can place in hardware"
        )
    bits = {onnx.TensorProto.DOUBLE: 64, onnx.TensorProto.FLOAT16: 16}.get(ttype.elem_type, 32)
    value = cx.graph.add_input(identifier(inp.name), TensorType(FloatType(bits), tuple(shape)))
    return Tensor(value, 0)


def _value_shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    shapes = {}
    for info in [*model.graph.value_info, *model.graph.output]:
        t = info.type.tensor_type
        if t.HasField("shape"):
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return shapes


def _check_against_inference(cx: LoweringContext, node: onnx.NodeProto, known: dict[str, list[int | None]]) -> None:
    """Our per-sample shapes must agree with ONNX's shape inference wherever it knows them."""
    for name in node.output:
        value = cx.env.get(name)
        if not isinstance(value, Tensor) or name not in known:
            continue
        onnx_shape = known[name]
        ours = value.full_shape
        if len(onnx_shape) != len(ours):
            raise AssertionError(f"{cx.where()}: lowered {name!r} to rank {len(ours)}, ONNX says {onnx_shape}")
        for i, (a, b) in enumerate(zip(onnx_shape, ours)):
            if i != value.batch_axis and a is not None and a != b:
                raise AssertionError(f"{cx.where()}: lowered {name!r} to {list(ours)}, ONNX says {onnx_shape}")
