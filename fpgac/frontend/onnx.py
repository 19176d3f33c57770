"""ONNX -> IR: the only module that imports ``onnx``.

Every ONNX tensor is tracked as either a constant (a numpy array, folded at compile time) or a
run-time tensor: an IR ``Value`` with a per-sample shape plus the axis where the batch sits in the
ONNX layout. The batch is the first dimension of every graph input, symbolic or fixed (at 1, as
exporters often leave it); exporters may move it later (``Transpose`` before an LSTM), so each
lowering maps ONNX axes to per-sample axes through that batch axis.

Shape arithmetic (``Shape``, ``Gather``, ``Concat``, ``ConstantOfShape``, ...) runs at compile time
with ``onnx.reference`` on constants; ``Shape`` of a run-time tensor reads a batch of 1. A node whose
inputs are all constant is folded the same way, whatever its op.

A node that cannot be lowered poisons what it produces instead of failing at once: graph outputs
that do not depend on it are still compiled (``outputs=None`` keeps every output the hardware can
compute), and the error is raised only if an output the user wants needs it.

QONNX models (what Brevitas exports) carry their own quantizers, ``Quant`` (``IntQuant``),
``BipolarQuant`` and ``Trunc``: on constants they are evaluated exactly, and weights they put on a
power-of-two grid become fixed-point constants; on run-time tensors they become IR ``Quant`` nodes
(see "QONNX quantizers" below).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    MAX_EXACT_WIDTH,
    Act,
    FixedType,
    FloatType,
    Graph,
    Node,
    Op,
    Overflow,
    PoolKind,
    Rounding,
    TensorType,
    Value,
    infer_shapes,
)
from fpgac.ir.ops import ShapeRuleError

__all__ = ["MAX_TENSOR_ELEMENTS", "QONNX_DOMAINS", "QONNX_OPS", "SUPPORTED_OPS", "identifier", "load_onnx"]

log = logging.getLogger(__name__)

#: a per-sample tensor larger than this is refused: no FPGA design holds it, and it is usually a
#: sign of a wrong export (a symbolic size fixed to something huge)
MAX_TENSOR_ELEMENTS = 1 << 20

_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}


@dataclass
class _Tensor:
    """A run-time tensor: the IR value and where the batch axis is in the ONNX layout."""

    value: Value
    batch_axis: int

    @property
    def rank(self) -> int:
        """Rank in the ONNX layout (with the batch axis)."""
        return self.value.type.rank + 1

    @property
    def full_shape(self) -> tuple[int, ...]:
        """The ONNX shape with a batch of 1."""
        s = list(self.value.type.shape)
        s.insert(self.batch_axis, 1)
        return tuple(s)


@dataclass(frozen=True)
class _Grid:
    """Where a QONNX quantizer put a constant: ``value = mantissa * 2**-frac``, mantissas signed or not."""

    frac: int
    signed: bool


@dataclass
class _Poison:
    """What a node that could not be lowered produces: its error, raised if an output needs it."""

    error: FpgacError


_Sym = np.ndarray | _Tensor | _Poison


class _Lowering:
    """State of one model's conversion: the symbol table, the graph, the opset."""

    def __init__(self, model: onnx.ModelProto, source: str) -> None:
        self.model = model
        self.source = source
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.graph = Graph(identifier(model.graph.name or Path(source).stem))
        self.env: dict[str, _Sym] = {}
        #: constants a QONNX quantizer put on a power-of-two grid, by ONNX name: emitted as fixed point
        self.grids: dict[str, _Grid] = {}
        self.node: onnx.NodeProto | None = None  # the node being lowered, for messages

    # -- messages -------------------------------------------------------------------------

    def where(self) -> str:
        node = self.node
        if node is None:
            return self.source
        return f"{self.source}: node {node.name or node.output[0]!r} ({node.op_type})"

    def unsupported(self, what: str) -> UnsupportedError:
        return UnsupportedError(f"{self.where()}: {what}")

    # -- symbol access ------------------------------------------------------------------------

    def has(self, index: int) -> bool:
        node = self.node
        return index < len(node.input) and node.input[index] != ""

    def sym(self, index: int) -> _Sym:
        return self.env[self.node.input[index]]

    def const(self, index: int, what: str = "") -> np.ndarray | None:
        """Input ``index`` as a constant array; ``None`` if absent; an error if run-time."""
        if not self.has(index):
            return None
        value = self.sym(index)
        if not isinstance(value, np.ndarray):
            raise self.unsupported(
                f"input {index} ({what or self.node.input[index]!r}) must be a constant known at "
                "compile time, but it is computed at run time"
            )
        return value

    def grid(self, index: int) -> _Grid | None:
        """The power-of-two grid a QONNX quantizer put constant input ``index`` on, if any."""
        return self.grids.get(self.node.input[index]) if self.has(index) else None

    def tensor(self, index: int) -> _Tensor:
        value = self.sym(index)
        if not isinstance(value, _Tensor):
            raise self.unsupported(f"input {index} is a constant where a run-time tensor was expected")
        return value

    # -- building -------------------------------------------------------------------------

    def emit(
        self,
        op: Op,
        inputs: Sequence[Value | None],
        attrs: dict[str, Any] | None = None,
        dtypes: Sequence[Any] | None = None,
        suffix: str = "",
    ) -> list[Value]:
        """Add an IR node; its output shapes come from the IR's own shape rules."""
        base = identifier((self.node.name or self.node.output[0] or op.value) if self.node else op.value)
        try:
            shapes = infer_shapes(Node(op, base, list(inputs), [], dict(attrs or {})))
        except ShapeRuleError as err:
            raise self.unsupported(f"cannot lower to {op.value}: {err}") from None
        for shape in shapes:
            if math.prod(shape) > MAX_TENSOR_ELEMENTS:
                raise ShapeError(
                    f"{self.where()}: a tensor of {math.prod(shape)} elements per sample {list(shape)} "
                    f"exceeds the {MAX_TENSOR_ELEMENTS} fpgac can place in hardware"
                )
        if dtypes is None:
            # float results are as wide as the widest run-time float input (double models stay double)
            bits = max((v.type.dtype.bits for v in inputs if v is not None and not v.is_const
                        and isinstance(v.type.dtype, FloatType)), default=32)
            dtypes = [FloatType(bits)] * len(shapes)
        node = self.graph.add_node(
            op, inputs, [TensorType(d, s) for d, s in zip(dtypes, shapes)], attrs, name=base + suffix
        )
        return node.outputs

    def constant(self, array: np.ndarray, name: str, grid: _Grid | None = None) -> Value:
        """A float constant; a fixed-point one when a QONNX quantizer put ``array`` on ``grid``."""
        fixed = _fixed_constant(array, grid) if grid is not None else None
        if fixed is not None:
            return self.graph.constant(identifier(name), fixed[1], fixed[0])
        return self.graph.constant(identifier(name), np.asarray(array, dtype=np.float64))

    def per_sample_const(self, array: np.ndarray, like: _Tensor, name: str, grid: _Grid | None = None) -> Value:
        """A constant broadcast against ``like`` (ONNX rules), as a per-sample constant."""
        return self.constant(self.drop_batch(array, like.rank, like.batch_axis), name, grid)

    def drop_batch(self, array: np.ndarray, rank: int, batch_axis: int) -> np.ndarray:
        """Remove the axis of ``array`` that broadcasting aligns with the batch axis."""
        array = np.asarray(array, dtype=np.float64)
        if array.ndim > rank:
            raise self.unsupported(
                f"a constant of shape {list(array.shape)} broadcasts to more axes than the tensor it "
                f"meets (rank {rank}): that would add axes in front of the batch"
            )
        offset = rank - array.ndim
        if batch_axis >= offset:
            axis = batch_axis - offset
            if array.shape[axis] != 1:
                raise self.unsupported(
                    f"a constant of shape {list(array.shape)} has {array.shape[axis]} entries along the "
                    "batch axis: per-sample constants must not vary with the batch"
                )
            array = np.squeeze(array, axis)
        return array

    def set_outputs(self, values: Sequence[_Sym]) -> None:
        for name, value in zip(self.node.output, values):
            if name:
                self.env[name] = value

    def axis(self, axis: int, t: _Tensor, what: str = "axis") -> int:
        """An ONNX axis of ``t`` as a per-sample axis; the batch axis itself is refused."""
        full = axis + t.rank if axis < 0 else axis
        if not 0 <= full < t.rank:
            raise self.unsupported(f"{what} {axis} is out of range for rank {t.rank}")
        if full == t.batch_axis:
            raise self.unsupported(f"{what} {axis} is the batch axis: fpgac computes each sample on its own")
        return full - (full > t.batch_axis)

    def reshape(self, t: _Tensor, shape: Sequence[int], batch_axis: int, suffix: str = "_reshape") -> _Tensor:
        shape = tuple(int(d) for d in shape)
        if shape == t.value.type.shape:
            return _Tensor(t.value, batch_axis)
        (out,) = self.emit(Op.RESHAPE, [t.value], {"shape": shape}, suffix=suffix)
        return _Tensor(out, batch_axis)


def identifier(name: str) -> str:
    """A printable name for IR values: ONNX names may hold '/', ':' and spaces."""
    cleaned = "".join(c if c.isalnum() or c in "._" else "_" for c in str(name)).strip("_")
    return cleaned or "v"


def _attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _ints(values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(values).reshape(-1))


# -------------------------------------------------------------------------------------------
# Lowerings: one function an ONNX op (or family), in a table at the end.
# -------------------------------------------------------------------------------------------

Lowering = Callable[[_Lowering, dict[str, Any]], None]


def _dense(cx: _Lowering, x: _Tensor, weight: np.ndarray, bias: np.ndarray | None,
           grids: tuple[_Grid | None, _Grid | None] = (None, None)) -> None:
    if x.batch_axis == x.rank - 1:
        raise cx.unsupported("the batch axis is the one the weights would be applied to")
    inputs = [x.value, cx.constant(weight, f"{cx.node.name or cx.node.output[0]}.weight", grids[0])]
    if bias is not None:
        inputs.append(cx.constant(bias, f"{cx.node.name or cx.node.output[0]}.bias", grids[1]))
    (out,) = cx.emit(Op.DENSE, inputs)
    cx.set_outputs([_Tensor(out, x.batch_axis)])


def _lower_gemm(cx: _Lowering, a: dict[str, Any]) -> None:
    if a.get("transA", 0):
        raise cx.unsupported("Gemm with transA=1 would transpose the batch into the reduction")
    x = cx.tensor(0)
    if x.rank != 2 or x.batch_axis != 0:
        raise cx.unsupported(f"Gemm wants a [batch, features] input, got rank {x.rank}")
    b = cx.const(1, "B (the weight)")
    weight = (b.T if a.get("transB", 0) else b) * a.get("alpha", 1.0)
    bias = None
    c = cx.const(2, "C (the bias)")
    if c is not None:
        c = np.asarray(c, dtype=np.float64) * a.get("beta", 1.0)
        if c.ndim == 2:
            c = cx.drop_batch(c, 2, 0)
        bias = np.broadcast_to(c, (weight.shape[1],)).copy()
    _dense(cx, x, np.asarray(weight, dtype=np.float64), bias, (cx.grid(1), cx.grid(2)))


def _lower_matmul(cx: _Lowering, a: dict[str, Any]) -> None:
    left, right = cx.sym(0), cx.sym(1)
    if isinstance(left, _Tensor) and isinstance(right, _Tensor):
        raise cx.unsupported("MatMul of two run-time tensors: fpgac needs one side to be constant weights")
    if not isinstance(left, _Tensor):
        raise cx.unsupported("MatMul with the constant on the left: export as x @ W")
    weight = cx.const(1, "the weight")
    if weight.ndim != 2 or left.rank < 2:
        raise cx.unsupported(
            f"MatMul of rank {left.rank} by a constant of shape {list(weight.shape)}: only x @ W with a 2D W"
        )
    _dense(cx, left, weight, None, (cx.grid(1), None))


def _lower_conv(cx: _Lowering, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    weight = cx.const(1, "W (the kernel)")
    bias = cx.const(2, "B (the bias)")
    nd = x.rank - 2
    if x.batch_axis != 0:
        raise cx.unsupported("Conv input must have the batch first")
    if nd not in (1, 2):
        raise cx.unsupported(f"{nd}D convolution: fpgac compiles 1D and 2D convolutions")
    kernel = tuple(weight.shape[2:])
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != kernel:
        raise InvalidModelError(f"{cx.where()}: kernel_shape {a['kernel_shape']} does not match W {weight.shape}")
    attrs = _window_attrs(cx, a, x.value.type.shape[1:], kernel)
    attrs["groups"] = int(a.get("group", 1))
    inputs = [x.value, cx.constant(weight, f"{cx.node.name or cx.node.output[0]}.weight", cx.grid(1))]
    if bias is not None:
        inputs.append(cx.constant(bias, f"{cx.node.name or cx.node.output[0]}.bias", cx.grid(2)))
    (out,) = cx.emit(Op.CONV, inputs, attrs)
    cx.set_outputs([_Tensor(out, 0)])


def _window_attrs(cx: _Lowering, a: dict[str, Any], spatial: tuple[int, ...], kernel: tuple[int, ...]) -> dict:
    """strides, dilations and explicit pads (auto_pad resolved) of a Conv or Pool node."""
    nd = len(spatial)
    strides = tuple(a.get("strides", (1,) * nd))
    dilations = tuple(a.get("dilations", (1,) * nd))
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", ""):
        pads = tuple(a.get("pads", (0,) * (2 * nd)))
    elif auto_pad == "VALID":
        pads = (0,) * (2 * nd)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else large)
            ends.append(large if auto_pad == "SAME_UPPER" else small)
        pads = tuple(begins + ends)
    else:
        raise cx.unsupported(f"auto_pad {auto_pad!r}")
    if any(p < 0 for p in pads):
        raise cx.unsupported(f"negative pads {list(pads)}")
    return {"strides": strides, "dilations": dilations, "pads": pads}


def _lower_pool(kind: PoolKind) -> Lowering:
    def lower(cx: _Lowering, a: dict[str, Any]) -> None:
        x = cx.tensor(0)
        nd = x.rank - 2
        if x.batch_axis != 0:
            raise cx.unsupported("pooling input must have the batch first")
        if nd not in (1, 2):
            raise cx.unsupported(f"{nd}D pooling: fpgac compiles 1D and 2D pooling")
        if len(cx.node.output) > 1 and cx.node.output[1]:
            raise cx.unsupported("MaxPool's Indices output")
        kernel = tuple(a["kernel_shape"])
        attrs = _window_attrs(cx, a, x.value.type.shape[1:], kernel)
        attrs.update(
            kind=kind,
            kernel=kernel,
            ceil_mode=bool(a.get("ceil_mode", 0)),
            count_include_pad=bool(a.get("count_include_pad", 0)),
        )
        (out,) = cx.emit(Op.POOL, [x.value], attrs)
        cx.set_outputs([_Tensor(out, 0)])

    return lower


def _lower_global_pool(kind: PoolKind) -> Lowering:
    def lower(cx: _Lowering, a: dict[str, Any]) -> None:
        x = cx.tensor(0)
        if x.batch_axis != 0 or x.rank < 3:
            raise cx.unsupported("global pooling wants a [batch, channels, *spatial] input")
        (out,) = cx.emit(Op.GLOBAL_POOL, [x.value], {"kind": kind})
        cx.set_outputs([_Tensor(out, 0)])

    return lower


def _lower_activation(kind: Act, **defaults: float) -> Lowering:
    def lower(cx: _Lowering, a: dict[str, Any]) -> None:
        x = cx.tensor(0)
        attrs: dict[str, Any] = {"kind": kind}
        for name, default in defaults.items():
            attrs[name] = float(a.get(name, default))
        (out,) = cx.emit(Op.ACTIVATION, [x.value], attrs)
        cx.set_outputs([_Tensor(out, x.batch_axis)])

    return lower


def _lower_prelu(cx: _Lowering, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    slope = cx.const(1, "slope")
    if slope.ndim == 1 and x.rank > 2 and slope.shape[0] == x.full_shape[1] and slope.shape[0] != 1:
        # PyTorch's per-channel PReLU on an opset < 7 export: the slope is [C], meant for axis 1
        slope = slope.reshape((-1,) + (1,) * (x.rank - 2))
    value = cx.per_sample_const(slope, x, f"{cx.node.name or cx.node.output[0]}.slope", cx.grid(1))
    (out,) = cx.emit(Op.ACTIVATION, [x.value, value], {"kind": Act.PRELU})
    cx.set_outputs([_Tensor(out, x.batch_axis)])


def _lower_clip(cx: _Lowering, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    if cx.opset < 11:
        lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
    else:
        lo_c, hi_c = cx.const(1, "min"), cx.const(2, "max")
        lo = -np.inf if lo_c is None else float(lo_c)
        hi = np.inf if hi_c is None else float(hi_c)
    lo = -np.inf if lo <= -3.4e38 else float(lo)
    hi = np.inf if hi >= 3.4e38 else float(hi)
    kind_attrs: dict[str, Any] = {"kind": Act.CLIP, "min": lo, "max": hi}
    if lo == 0.0 and hi == np.inf:
        kind_attrs = {"kind": Act.RELU}
    (out,) = cx.emit(Op.ACTIVATION, [x.value], kind_attrs)
    cx.set_outputs([_Tensor(out, x.batch_axis)])


def _lower_softmax(log_: bool) -> Lowering:
    def lower(cx: _Lowering, a: dict[str, Any]) -> None:
        x = cx.tensor(0)
        default = -1 if cx.opset >= 13 else 1
        axis = int(a.get("axis", default))
        full = axis + x.rank if axis < 0 else axis
        if cx.opset < 13 and full != x.rank - 1:
            # before opset 13: softmax over all axes from `axis` on, flattened together
            if x.batch_axis >= full:
                raise cx.unsupported(f"softmax over axes {full}.. includes the batch axis")
            shape = x.value.type.shape
            first = cx.axis(full, x)
            flat = cx.reshape(x, shape[:first] + (math.prod(shape[first:]),), x.batch_axis, "_flat")
            (out,) = cx.emit(Op.SOFTMAX, [flat.value], {"axis": first, "log": log_})
            cx.set_outputs([cx.reshape(_Tensor(out, x.batch_axis), shape, x.batch_axis, "_unflat")])
            return
        (out,) = cx.emit(Op.SOFTMAX, [x.value], {"axis": cx.axis(axis, x), "log": log_})
        cx.set_outputs([_Tensor(out, x.batch_axis)])

    return lower


def _lower_batchnorm(cx: _Lowering, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    if a.get("training_mode", 0) or any(cx.node.output[1:]):
        raise cx.unsupported("BatchNormalization in training mode (export the model in eval mode)")
    if x.batch_axis != 0 or x.rank < 2:
        raise cx.unsupported("BatchNormalization wants a [batch, channels, ...] input")
    scale, bias, mean, var = (np.asarray(cx.const(i, n), np.float64) for i, n in
                              ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
    if np.any(var + a.get("epsilon", 1e-5) <= 0):
        raise InvalidModelError(f"{cx.where()}: variance + epsilon is not positive")
    s = scale / np.sqrt(var + a.get("epsilon", 1e-5))
    t = bias - mean * s
    per_channel = (-1,) + (1,) * (x.rank - 2)
    name = cx.node.name or cx.node.output[0]
    inputs = [x.value, cx.constant(s.reshape(per_channel), f"{name}.scale"),
              cx.constant(t.reshape(per_channel), f"{name}.shift")]
    (out,) = cx.emit(Op.SCALE_SHIFT, inputs)
    cx.set_outputs([_Tensor(out, 0)])


_BINARY = {"Add": Op.ADD, "Sub": Op.SUB, "Mul": Op.MUL, "Div": Op.DIV, "Max": Op.MAX, "Min": Op.MIN, "Sum": Op.ADD}


def _binary(cx: _Lowering, op: Op, left: _Sym, right: _Sym, suffix: str = "",
            grids: tuple[_Grid | None, _Grid | None] = (None, None)) -> _Tensor:
    if isinstance(left, np.ndarray) and isinstance(right, np.ndarray):
        raise AssertionError("constant operands are folded before lowering")
    if op is Op.DIV and isinstance(right, np.ndarray):
        if np.any(right == 0):
            raise InvalidModelError(f"{cx.where()}: division by a constant zero")
        op, right, grids = Op.MUL, 1.0 / np.asarray(right, np.float64), (grids[0], None)
    if isinstance(left, _Tensor) and isinstance(right, _Tensor):
        if left.rank - left.batch_axis != right.rank - right.batch_axis:
            raise cx.unsupported(
                f"the operands' batch axes ({left.batch_axis} of rank {left.rank}, {right.batch_axis} "
                f"of rank {right.rank}) do not line up under broadcasting"
            )
        batch = max(left.rank, right.rank) - (left.rank - left.batch_axis)
        inputs = [left.value, right.value]
    else:
        t = left if isinstance(left, _Tensor) else right
        name = f"{cx.node.name or cx.node.output[0]}.const"
        inputs = [
            v.value if isinstance(v, _Tensor) else cx.per_sample_const(v, t, name, grid)
            for v, grid in zip((left, right), grids)
        ]
        batch = t.batch_axis
    (out,) = cx.emit(op, inputs, suffix=suffix)
    return _Tensor(out, batch)


def _lower_binary(cx: _Lowering, a: dict[str, Any]) -> None:
    op = _BINARY[cx.node.op_type]
    if cx.opset < 7 and a.get("broadcast", 0) and "axis" in a:
        raise cx.unsupported("legacy broadcast with an explicit axis (opset < 7)")
    operands = [cx.sym(i) for i in range(len(cx.node.input))]
    acc = operands[0]
    if len(operands) == 1:
        cx.set_outputs([acc])
        return
    for i, operand in enumerate(operands[1:]):
        if isinstance(acc, np.ndarray) and isinstance(operand, np.ndarray):
            acc = _fold_numpy(op, acc, operand)
            continue
        grids = (cx.grid(0) if i == 0 else None, cx.grid(i + 1))
        acc = _binary(cx, op, acc, operand, suffix=f"_{i}" if i else "", grids=grids)
    cx.set_outputs([acc])


def _fold_numpy(op: Op, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return {Op.ADD: np.add, Op.SUB: np.subtract, Op.MUL: np.multiply, Op.DIV: np.divide,
            Op.MAX: np.maximum, Op.MIN: np.minimum}[op](a, b)


def _lower_neg(cx: _Lowering, a: dict[str, Any]) -> None:
    cx.set_outputs([_binary(cx, Op.MUL, cx.tensor(0), np.array(-1.0))])


def _lower_identity(cx: _Lowering, a: dict[str, Any]) -> None:
    if cx.node.op_type == "Dropout" and len(cx.node.output) > 1 and cx.node.output[1]:
        raise cx.unsupported("Dropout's mask output")
    if cx.node.op_type == "Cast":
        to = a.get("to")
        if to not in _FLOAT_TYPES:
            raise cx.unsupported(
                f"Cast of a run-time tensor to {onnx.TensorProto.DataType.Name(to)}: only casts between "
                "float types are no-ops fpgac can drop"
            )
    cx.set_outputs([cx.sym(0)])


def _lower_concat(cx: _Lowering, a: dict[str, Any]) -> None:
    parts = [cx.sym(i) for i in range(len(cx.node.input)) if cx.has(i)]
    tensors = [p for p in parts if isinstance(p, _Tensor)]
    ref = tensors[0]
    if any(t.batch_axis != ref.batch_axis or t.rank != ref.rank for t in tensors):
        raise cx.unsupported("Concat of tensors whose batch axes differ")
    axis = cx.axis(int(a["axis"]), ref)
    name = f"{cx.node.name or cx.node.output[0]}.const"
    inputs = [p.value if isinstance(p, _Tensor) else cx.per_sample_const(p, ref, name) for p in parts]
    (out,) = cx.emit(Op.CONCAT, inputs, {"axis": axis})
    cx.set_outputs([_Tensor(out, ref.batch_axis)])


def _lower_flatten(cx: _Lowering, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    axis = int(a.get("axis", 1))
    axis = axis + x.rank if axis < 0 else axis
    full = x.full_shape
    if x.batch_axis != 0 or axis == 0 or math.prod(full[1:axis]) != 1:
        raise cx.unsupported(f"Flatten at axis {axis} would merge the batch with other axes")
    cx.set_outputs([cx.reshape(x, (math.prod(full[axis:]),), 0)])


def _lower_reshape(cx: _Lowering, a: dict[str, Any]) -> None:
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


def _lower_transpose(cx: _Lowering, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    perm = list(a.get("perm", range(x.rank - 1, -1, -1)))
    b = x.batch_axis
    new_batch = perm.index(b)
    per_sample = [p - (p > b) for p in perm if p != b]
    if per_sample == sorted(per_sample):
        cx.set_outputs([_Tensor(x.value, new_batch)])
        return
    (out,) = cx.emit(Op.TRANSPOSE, [x.value], {"perm": tuple(per_sample)})
    cx.set_outputs([_Tensor(out, new_batch)])


def _axes_arg(cx: _Lowering, a: dict[str, Any], index: int) -> list[int] | None:
    if "axes" in a:
        return [int(v) for v in a["axes"]]
    axes = cx.const(index, "axes")
    return None if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]


def _lower_squeeze(cx: _Lowering, a: dict[str, Any]) -> None:
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


def _lower_unsqueeze(cx: _Lowering, a: dict[str, Any]) -> None:
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


def _lower_pad(cx: _Lowering, a: dict[str, Any]) -> None:
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
    cx.set_outputs([_Tensor(out, b)])


def _slice_tensor(cx: _Lowering, x: _Tensor, ranges: dict[int, tuple[int, int, int]], suffix: str = "") -> _Tensor:
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
    return _Tensor(out, x.batch_axis)


def _normalize_range(start: int, end: int, step: int, size: int) -> tuple[int, int, int]:
    start, end, _ = slice(start, end, step).indices(size)
    if step < 0 and end < 0:
        end = -1
    return start, end, step


def _lower_slice(cx: _Lowering, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    if cx.opset < 10:
        starts, ends = list(a["starts"]), list(a["ends"])
        axes = list(a.get("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = list(_ints(cx.const(1, "starts"))), list(_ints(cx.const(2, "ends")))
        axes_c, steps_c = cx.const(3, "axes"), cx.const(4, "steps")
        axes = list(range(len(starts))) if axes_c is None else list(_ints(axes_c))
        steps = [1] * len(starts) if steps_c is None else list(_ints(steps_c))
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


def _lower_split(cx: _Lowering, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    axis = cx.axis(int(a.get("axis", 0)), x)
    size = x.value.type.shape[axis]
    count = len(cx.node.output)
    split = a.get("split")
    if split is None and cx.opset >= 13:
        c = cx.const(1, "split")
        split = None if c is None else list(_ints(c))
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


def _lower_gather(cx: _Lowering, a: dict[str, Any]) -> None:
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


def _lower_argmax(cx: _Lowering, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    axis = int(a.get("axis", 0))
    per_axis = cx.axis(axis, x)
    keep = bool(a.get("keepdims", 1))
    size = x.value.type.shape[per_axis]
    index_type = FixedType(max(1, (size - 1).bit_length()), max(1, (size - 1).bit_length()), signed=False)
    attrs = {"axis": per_axis, "keepdims": keep, "select_last_index": bool(a.get("select_last_index", 0))}
    (out,) = cx.emit(Op.ARGMAX, [x.value], attrs, dtypes=[index_type])
    full_axis = axis + x.rank if axis < 0 else axis
    cx.set_outputs([_Tensor(out, x.batch_axis - (not keep and full_axis < x.batch_axis))])


def _lower_rnn(op: Op) -> Lowering:
    gates = 4 if op is Op.LSTM else 3

    def lower(cx: _Lowering, a: dict[str, Any]) -> None:
        name = op.value
        direction = a.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction != "forward":
            raise cx.unsupported(f"{name} direction {direction!r}: fpgac compiles forward RNNs")
        if "clip" in a or a.get("input_forget", 0):
            raise cx.unsupported(f"{name} with clip or input_forget")
        if "activations" in a:
            want = [b"Sigmoid", b"Tanh", b"Tanh"] if op is Op.LSTM else [b"Sigmoid", b"Tanh"]
            if list(a["activations"]) != want:
                raise cx.unsupported(f"{name} activations {a['activations']}: only the defaults")
        layout = int(a.get("layout", 0))
        x = cx.tensor(0)
        if x.rank != 3 or x.batch_axis != (1 if layout == 0 else 0):
            raise cx.unsupported(
                f"{name} with layout={layout} wants the batch at axis {1 if layout == 0 else 0} of a rank-3 "
                f"input; here it is at axis {x.batch_axis} of rank {x.rank}"
            )
        w, r = cx.const(1, "W"), cx.const(2, "R")
        h = int(a.get("hidden_size", w.shape[1] // gates))
        bias = cx.const(3, "B")
        if cx.has(4):
            lens = cx.const(4, "sequence_lens")
            if np.any(np.asarray(lens) != x.value.type.shape[0]):
                raise cx.unsupported(f"{name} with sequence_lens shorter than the sequence")
        if op is Op.LSTM and cx.has(7):
            peep = cx.const(7, "P")
            if np.any(peep != 0):
                raise cx.unsupported("LSTM peephole weights")
        base = cx.node.name or cx.node.output[0]
        # x is [T, N, F] (layout 0) or [N, T, F] (layout 1): per sample [T, F] either way
        inputs: list[Value | None] = [x.value, cx.constant(w[0], f"{base}.W", cx.grid(1)),
                                      cx.constant(r[0], f"{base}.R", cx.grid(2))]
        inputs.append(None if bias is None else cx.constant(bias[0], f"{base}.B", cx.grid(3)))
        state_batch_axis = 1 if layout == 0 else 0
        for index in ((5, 6) if op is Op.LSTM else (5,)):
            state = cx.const(index, "initial state") if cx.has(index) else None
            if state is None:
                inputs.append(None)
                continue
            state = cx.drop_batch(state, 3, state_batch_axis).reshape(-1)
            # the zeros exporters build with ConstantOfShape are the default: leave the input absent
            inputs.append(None if not np.any(state) else cx.constant(state, f"{base}.state{index - 5}"))
        while inputs and inputs[-1] is None:
            inputs.pop()
        attrs: dict[str, Any] = {"hidden_size": h}
        if op is Op.GRU:
            attrs["linear_before_reset"] = bool(a.get("linear_before_reset", 0))
        outs = cx.emit(op, inputs, attrs)
        seq = outs[0]
        seq_batch_axis = 2 if layout == 0 else 0  # ONNX Y is [T, 1, N, H] or [N, T, 1, H]
        results: list[_Sym] = [cx.reshape(_Tensor(seq, seq_batch_axis), (seq.type.shape[0], 1, h), seq_batch_axis, "_Y")]
        for state in outs[1:]:
            results.append(cx.reshape(_Tensor(state, state_batch_axis), (1, h), state_batch_axis, "_state"))
        cx.set_outputs(results)

    return lower


# -------------------------------------------------------------------------------------------
# QONNX quantizers (what Brevitas exports): Quant/IntQuant, BipolarQuant, Trunc
#
# Semantics from qonnx's operator docs (docs/qonnx-custom-ops/*.md). With v = x / scale + zeropt:
#   Quant:        q = round(clamp(v, min_int, max_int)); y = (q - zeropt) * scale
#   BipolarQuant: y = (x >= 0 ? 1 : -1) * scale
#   Trunc v1 (5 inputs):  q = round_mode(round_half_even(v) / 2**(in_bits - out_bits))
#                         y = (q - zeropt) * scale
#   Trunc v2 (6 inputs):  t = 2**round(log2(out_scale / scale))
#                         q = round_mode(clamp(round_half_even(v) / t, min_int, max_int))
#                         y = (q - zeropt / t) * out_scale
# Clamping before rounding to integer bounds equals rounding first (rounding is monotone and keeps
# integers), which is what an ap_fixed conversion does: round, then saturate.
# -------------------------------------------------------------------------------------------

#: the domains QONNX's quantizers appear under: qonnx's own, FINN's older one and Brevitas's export
QONNX_DOMAINS: tuple[str, ...] = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")

#: the widest quantizer fpgac takes: a Quant's integer must stay exact through float64 and int64
_MAX_QUANT_BITS = 32


def _round_half_even(v: np.ndarray) -> np.ndarray:
    return np.round(v)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """HALF_UP: to nearest, ties away from zero (exact: ``a - floor(a)`` has no rounding error)."""
    a = np.abs(v)
    whole = np.floor(a)
    return np.copysign(whole + (a - whole >= 0.5), v) + 0.0


def _round_half_toward_zero(v: np.ndarray) -> np.ndarray:
    """HALF_DOWN: to nearest, ties toward zero."""
    a = np.abs(v)
    whole = np.floor(a)
    return np.copysign(whole + (a - whole > 0.5), v) + 0.0


def _round_away(v: np.ndarray) -> np.ndarray:
    """UP: away from zero."""
    return np.copysign(np.ceil(np.abs(v)), v) + 0.0


@dataclass(frozen=True)
class _RoundingMode:
    """A QONNX rounding mode: exactly, for constants, and as the ap_fixed mode (None: none exists)."""

    exact: Callable[[np.ndarray], np.ndarray]
    hardware: Rounding | None


#: QONNX's rounding modes (names case-insensitive); ROUND_TO_ZERO is Brevitas's name for DOWN
_ROUNDING_MODES: dict[str, _RoundingMode] = {
    "ROUND": _RoundingMode(_round_half_even, Rounding.RND_CONV),
    "HALF_EVEN": _RoundingMode(_round_half_even, Rounding.RND_CONV),
    "FLOOR": _RoundingMode(np.floor, Rounding.TRN),
    "DOWN": _RoundingMode(lambda v: np.trunc(v) + 0.0, Rounding.TRN_ZERO),
    "ROUND_TO_ZERO": _RoundingMode(lambda v: np.trunc(v) + 0.0, Rounding.TRN_ZERO),
    "HALF_UP": _RoundingMode(_round_half_away, Rounding.RND_INF),
    "HALF_DOWN": _RoundingMode(_round_half_toward_zero, Rounding.RND_ZERO),
    "CEIL": _RoundingMode(lambda v: np.ceil(v) + 0.0, None),
    "UP": _RoundingMode(_round_away, None),
}

_HARDWARE_MODES = ", ".join(name for name, mode in _ROUNDING_MODES.items() if mode.hardware is not None)


def _int_bounds(signed: bool, narrow: bool, bits: int) -> tuple[int, int]:
    """QONNX's min_int/max_int: the integer range of a quantizer."""
    if signed:
        return -(1 << (bits - 1)) + narrow, (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - narrow


def _pow2_exponents(scale: np.ndarray) -> np.ndarray | None:
    """``e`` with ``scale == 2**e`` elementwise, or None if some scale is not a power of two."""
    mantissa, exponent = np.frexp(np.asarray(scale, dtype=np.float64))
    return exponent.astype(np.int64) - 1 if np.all(mantissa == 0.5) else None


def _fixed_constant(array: np.ndarray, grid: _Grid) -> tuple[FixedType, np.ndarray] | None:
    """The narrowest FixedType with ``grid.frac`` fractional bits holding ``array``, and its mantissas.

    None if some value is off the grid (a later computation moved it) or the mantissas need more
    than the exact-arithmetic width.
    """
    scaled = np.ldexp(np.asarray(array, dtype=np.float64), grid.frac)
    if not np.all(np.isfinite(scaled)) or np.any(scaled != np.floor(scaled)):
        return None
    if scaled.size and np.abs(scaled).max() >= 2.0**MAX_EXACT_WIDTH:
        return None
    mantissas = scaled.astype(np.int64)
    hi = int(mantissas.max(initial=0))
    lo = int(mantissas.min(initial=0))
    signed = grid.signed or lo < 0
    if signed:
        width = 1 + max(hi.bit_length(), (-lo - 1).bit_length() if lo < 0 else 0)
    else:
        width = max(1, hi.bit_length())
    if width > MAX_EXACT_WIDTH:
        return None
    return FixedType(width, width - grid.frac, signed), mantissas


def _qonnx_inputs(cx: _Lowering, counts: tuple[int, ...], names: str) -> None:
    got = len(cx.node.input)
    if got not in counts or not all(cx.has(i) for i in range(got)):
        want = " or ".join(map(str, counts))
        raise InvalidModelError(f"{cx.where()}: takes {want} inputs ({names}), got {got}")


def _qonnx_scale(cx: _Lowering, index: int, what: str = "scale") -> np.ndarray:
    scale = np.asarray(cx.const(index, what), dtype=np.float64)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        bad = float(scale[~(np.isfinite(scale) & (scale > 0))].reshape(-1)[0])
        raise InvalidModelError(f"{cx.where()}: {what} must be positive and finite, but holds {bad!r}")
    return scale


def _qonnx_zeropt(cx: _Lowering, index: int) -> np.ndarray:
    zeropt = np.asarray(cx.const(index, "zeropt"), dtype=np.float64)
    if not np.all(np.isfinite(zeropt)):
        raise InvalidModelError(f"{cx.where()}: zeropt holds NaN or Inf")
    return zeropt


def _qonnx_bitwidth(cx: _Lowering, index: int, what: str = "bitwidth") -> int:
    bits = np.asarray(cx.const(index, what), dtype=np.float64).reshape(-1)
    if bits.size == 0 or np.any(bits != bits[0]):
        raise cx.unsupported(f"{what} must be one number, but has {bits.size} different values")
    value = float(bits[0])
    if not (np.isfinite(value) and value == round(value) and value >= 1):
        raise InvalidModelError(f"{cx.where()}: {what} must be a positive integer, not {value!r}")
    if value > _MAX_QUANT_BITS:
        raise cx.unsupported(f"{what} {int(value)} exceeds the {_MAX_QUANT_BITS} bits fpgac quantizes to")
    return int(value)


def _qonnx_rounding(cx: _Lowering, a: dict[str, Any], default: str) -> tuple[str, _RoundingMode]:
    name = a.get("rounding_mode", default)
    name = (name.decode() if isinstance(name, bytes) else str(name)).upper()
    if name not in _ROUNDING_MODES:
        raise InvalidModelError(
            f"{cx.where()}: rounding_mode {name!r} is not a QONNX mode ({', '.join(_ROUNDING_MODES)})"
        )
    return name, _ROUNDING_MODES[name]


def _hardware_rounding(cx: _Lowering, name: str, mode: _RoundingMode) -> Rounding:
    if mode.hardware is None:
        raise cx.unsupported(
            f"rounding_mode {name} on a run-time tensor has no ap_fixed equivalent; fpgac takes {_HARDWARE_MODES}"
        )
    return mode.hardware


def _overflow(cx: _Lowering, signed: bool, narrow: bool) -> Overflow:
    if narrow and not signed:
        raise cx.unsupported(
            "narrow unsigned quantization (0 to 2**bits - 2) on a run-time tensor has no ap_fixed overflow mode"
        )
    return Overflow.SAT_SYM if narrow else Overflow.SAT


def _same_shape(cx: _Lowering, x: _Tensor, *params: np.ndarray) -> None:
    """Scales and zero points may not broadcast the tensor they quantize to a larger shape."""
    try:
        shape = np.broadcast_shapes(x.full_shape, *(np.shape(p) for p in params))
    except ValueError:
        shape = None
    if shape != x.full_shape:
        shapes = ", ".join(str(list(np.shape(p))) for p in params)
        raise cx.unsupported(f"parameters of shapes {shapes} do not broadcast to the input's {list(x.full_shape)}")


def _set_constant(cx: _Lowering, values: np.ndarray, grid: _Grid | None) -> None:
    cx.set_outputs([np.asarray(values, dtype=np.float64)])
    if grid is not None:
        cx.grids[cx.node.output[0]] = grid


def _grid_of(scale: np.ndarray, zeropt: np.ndarray, signed: bool) -> _Grid | None:
    """The grid of a quantized constant: every scale a power of two and no zero point."""
    exponents = _pow2_exponents(scale)
    if exponents is None or np.any(zeropt != 0):
        return None
    return _Grid(int(-exponents.min()), signed)


def _scalar_exponent(scale: np.ndarray, zeropt: np.ndarray) -> int | None:
    """``e`` if the scale is one power of two ``2**e`` and the zero point is 0; else None."""
    exponents = _pow2_exponents(scale)
    if exponents is None or np.any(zeropt != 0) or np.any(exponents != exponents.reshape(-1)[0]):
        return None
    return int(exponents.reshape(-1)[0])


def _quant_node(cx: _Lowering, x: Value, dtype: FixedType, suffix: str = "") -> Value:
    (out,) = cx.emit(Op.QUANT, [x], dtypes=[dtype], suffix=suffix)
    return out


def _lower_qonnx_quant(cx: _Lowering, a: dict[str, Any]) -> None:
    _qonnx_inputs(cx, (4,), "x, scale, zeropt, bitwidth")
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    name, mode = _qonnx_rounding(cx, a, "ROUND")
    scale, zeropt, bits = _qonnx_scale(cx, 1), _qonnx_zeropt(cx, 2), _qonnx_bitwidth(cx, 3)
    if bits == 1 and signed:
        raise cx.unsupported(
            "a 1-bit signed Quant is [-1, 0] by the QONNX spec but bipolar +-1 in qonnx's executor; "
            "export it as BipolarQuant"
        )
    lo, hi = _int_bounds(signed, narrow, bits)
    x = cx.sym(0)
    if isinstance(x, np.ndarray):
        q = mode.exact(np.clip(np.asarray(x, dtype=np.float64) / scale + zeropt, lo, hi))
        _set_constant(cx, (q - zeropt) * scale, _grid_of(scale, zeropt, signed))
        return
    x = cx.tensor(0)
    _same_shape(cx, x, scale, zeropt)
    rounding, overflow = _hardware_rounding(cx, name, mode), _overflow(cx, signed, narrow)
    exponent = _scalar_exponent(scale, zeropt)
    if exponent is not None:
        # one QUANT: the mantissa is the QONNX integer, the binary point sits where the scale says
        out = _quant_node(cx, x.value, FixedType(bits, bits + exponent, signed, rounding, overflow))
        cx.set_outputs([_Tensor(out, x.batch_axis)])
        return
    # any other scale, or a zero point: to the integer domain and back around an integer QUANT;
    # what follows the QUANT is as wide a float as the input
    base = cx.node.name or cx.node.output[0]
    after = [x.value.type.dtype] if isinstance(x.value.type.dtype, FloatType) else None
    zero = cx.per_sample_const(zeropt, x, f"{base}.zeropt") if np.any(zeropt != 0) else None
    (v,) = cx.emit(Op.MUL, [x.value, cx.per_sample_const(1.0 / scale, x, f"{base}.inv_scale")], suffix="_prescale")
    if zero is not None:
        (v,) = cx.emit(Op.ADD, [v, zero], suffix="_zeropt")
    v = _quant_node(cx, v, FixedType(bits, bits, signed, rounding, overflow), suffix="_int")
    if zero is not None:
        (v,) = cx.emit(Op.SUB, [v, zero], dtypes=after, suffix="_unzeropt")
    (out,) = cx.emit(Op.MUL, [v, cx.per_sample_const(scale, x, f"{base}.scale")], dtypes=after, suffix="_rescale")
    cx.set_outputs([_Tensor(out, x.batch_axis)])


def _lower_qonnx_bipolar_quant(cx: _Lowering, a: dict[str, Any]) -> None:
    _qonnx_inputs(cx, (2,), "x, scale")
    scale = _qonnx_scale(cx, 1)
    x = cx.sym(0)
    if not isinstance(x, np.ndarray):
        raise cx.unsupported("BipolarQuant of a run-time tensor is a sign function, which fpgac has no IR op for")
    values = np.where(np.asarray(x, dtype=np.float64) >= 0, 1.0, -1.0) * scale
    _set_constant(cx, values, _grid_of(scale, np.zeros(()), True))


def _lower_qonnx_trunc(cx: _Lowering, a: dict[str, Any]) -> None:
    """Trunc: version 1 (5 inputs) or version 2 (6 inputs, with out_scale, signed and narrow)."""
    _qonnx_inputs(cx, (5, 6), "x, scale, zeropt, in_bitwidth, [out_scale,] out_bitwidth")
    v2 = len(cx.node.input) == 6
    name, mode = _qonnx_rounding(cx, a, "FLOOR")
    scale, zeropt, in_bits = _qonnx_scale(cx, 1), _qonnx_zeropt(cx, 2), _qonnx_bitwidth(cx, 3, "in_bitwidth")
    out_scale = _qonnx_scale(cx, 4, "out_scale") if v2 else scale
    out_bits = _qonnx_bitwidth(cx, 5 if v2 else 4, "out_bitwidth")
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    if v2:
        shift = np.exp2(np.round(np.log2(out_scale / scale)))
        lo, hi = _int_bounds(signed, narrow, out_bits)
    else:
        shift = np.exp2(float(in_bits - out_bits))
        lo, hi = -np.inf, np.inf  # version 1 does not clamp
    x = cx.sym(0)
    if isinstance(x, np.ndarray):
        y = np.round(np.asarray(x, dtype=np.float64) / scale + zeropt)
        q = mode.exact(np.clip(y / shift, lo, hi))
        _set_constant(cx, (q - zeropt / shift) * out_scale if v2 else (q - zeropt) * scale, None)
        return
    x = cx.tensor(0)
    _same_shape(cx, x, scale, zeropt, out_scale)
    exponent = _scalar_exponent(scale, zeropt)
    out_exponent = _scalar_exponent(out_scale, zeropt)
    if exponent is None or out_exponent is None:
        raise cx.unsupported(
            "Trunc on a run-time tensor needs a power-of-two scalar scale"
            + (" and out_scale" if v2 else "") + " and a zero zeropt"
        )
    rounding = _hardware_rounding(cx, name, mode)
    if v2:
        # round to the input grid, then to the out_scale grid saturating to out_bitwidth: the second
        # QUANT has the narrower type
        overflow = _overflow(cx, signed, narrow)
        rounded = _trunc_round_input(cx, x.value, exponent, in_bits, out_bits + out_exponent - exponent)
        dtype = FixedType(out_bits, out_bits + out_exponent, signed, rounding, overflow)
        cx.set_outputs([_Tensor(_quant_node(cx, rounded, dtype), x.batch_axis)])
        return
    # version 1 keeps the input's scale: the integer shrinks by k = in - out bits, and nothing
    # clamps, so the output type is as wide as the rounded input's range needs
    rounded = _trunc_round_input(cx, x.value, exponent, in_bits, 0)
    k = in_bits - out_bits
    dtype = rounded.type.dtype
    shift = -dtype.frac_bits - exponent - k  # from the rounded input's mantissa to the output's integer
    if shift >= 0:
        lo, hi = dtype.min_mantissa << shift, dtype.max_mantissa << shift
    else:  # floor and ceiling of the shifted bounds, which any rounding stays within
        lo, hi = dtype.min_mantissa >> -shift, -(-dtype.max_mantissa >> -shift)
    width = 1 + max(max(hi, 0).bit_length(), max(-lo - 1, 0).bit_length())
    base = cx.node.name or cx.node.output[0]
    (shifted,) = cx.emit(Op.MUL, [rounded, cx.constant(np.exp2(-float(k)), f"{base}.shift")], suffix="_shift")
    dtype = FixedType(width, width + exponent, True, rounding, Overflow.SAT)
    cx.set_outputs([_Tensor(_quant_node(cx, shifted, dtype), x.batch_axis)])


def _trunc_round_input(cx: _Lowering, x: Value, exponent: int, in_bits: int, out_span: int) -> Value:
    """Trunc's first step, ``round_half_even(x / scale) * scale``: a QUANT unless ``x`` is on that grid.

    Its type holds every ``in_bits``-bit integer, signed or not, and ``2**out_span`` (the output's
    range in units of the input scale), so where it saturates the output saturates anyway.
    """
    if _on_grid(x, exponent):
        return x
    width = max(in_bits + 1, out_span + 2, 2)
    if width > MAX_EXACT_WIDTH:
        raise cx.unsupported(
            f"Trunc would need a {width}-bit intermediate, more than the {MAX_EXACT_WIDTH} fpgac takes"
        )
    return _quant_node(cx, x, FixedType(width, width + exponent, True, Rounding.RND_CONV, Overflow.SAT), "_round")


def _on_grid(x: Value, exponent: int) -> bool:
    """Whether ``x`` is a QUANT output whose every value is a multiple of ``2**exponent``."""
    dtype = x.type.dtype
    return (x.producer is not None and x.producer.op is Op.QUANT and isinstance(dtype, FixedType)
            and -dtype.frac_bits >= exponent)


_QONNX_LOWERINGS: dict[str, Lowering] = {
    "Quant": _lower_qonnx_quant,
    "IntQuant": _lower_qonnx_quant,
    "BipolarQuant": _lower_qonnx_bipolar_quant,
    "Trunc": _lower_qonnx_trunc,
}

QONNX_OPS: tuple[str, ...] = tuple(sorted(_QONNX_LOWERINGS))

#: ops whose constant result holds its input's values, moved: a quantized weight keeps its grid
_MOVES_VALUES = frozenset({"Identity", "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})


_LOWERINGS: dict[str, Lowering] = {
    "Gemm": _lower_gemm,
    "MatMul": _lower_matmul,
    "Conv": _lower_conv,
    "BatchNormalization": _lower_batchnorm,
    "MaxPool": _lower_pool(PoolKind.MAX),
    "AveragePool": _lower_pool(PoolKind.AVG),
    "GlobalMaxPool": _lower_global_pool(PoolKind.MAX),
    "GlobalAveragePool": _lower_global_pool(PoolKind.AVG),
    "Relu": _lower_activation(Act.RELU),
    "LeakyRelu": _lower_activation(Act.LEAKY_RELU, alpha=0.01),
    "PRelu": _lower_prelu,
    "Sigmoid": _lower_activation(Act.SIGMOID),
    "HardSigmoid": _lower_activation(Act.HARD_SIGMOID, alpha=0.2, beta=0.5),
    "Tanh": _lower_activation(Act.TANH),
    "Clip": _lower_clip,
    "Elu": _lower_activation(Act.ELU, alpha=1.0),
    "Selu": _lower_activation(Act.SELU, alpha=1.67326319217681884765625, gamma=1.05070102214813232421875),
    "Softplus": _lower_activation(Act.SOFTPLUS),
    "Softsign": _lower_activation(Act.SOFTSIGN),
    "Abs": _lower_activation(Act.ABS),
    "Neg": _lower_neg,
    "Softmax": _lower_softmax(False),
    "LogSoftmax": _lower_softmax(True),
    **{op: _lower_binary for op in _BINARY},
    "Concat": _lower_concat,
    "Flatten": _lower_flatten,
    "Reshape": _lower_reshape,
    "Transpose": _lower_transpose,
    "Squeeze": _lower_squeeze,
    "Unsqueeze": _lower_unsqueeze,
    "Identity": _lower_identity,
    "Dropout": _lower_identity,
    "Cast": _lower_identity,
    "Pad": _lower_pad,
    "Slice": _lower_slice,
    "Split": _lower_split,
    "Gather": _lower_gather,
    "ArgMax": _lower_argmax,
    "LSTM": _lower_rnn(Op.LSTM),
    "GRU": _lower_rnn(Op.GRU),
}


SUPPORTED_OPS: tuple[str, ...] = tuple(sorted(_LOWERINGS))

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


def _fold(cx: _Lowering, node: onnx.NodeProto) -> list[np.ndarray]:
    """Evaluate a node on constant inputs with ONNX's own reference implementation."""
    if node.op_type in ("Shape", "Size"):
        x = cx.env[node.input[0]]
        shape = np.array(x.full_shape if isinstance(x, _Tensor) else np.shape(x), dtype=np.int64)
        if node.op_type == "Size":
            return [np.array(np.prod(shape), dtype=np.int64)]
        a = _attrs(node)
        start, end = a.get("start", 0), a.get("end", None)
        return [shape[start:end]]
    feeds = {name: cx.env[name] for name in node.input if name}
    try:
        evaluator = ReferenceEvaluator(node, opsets={"": cx.opset})
        results = evaluator.run(None, feeds)
    except Exception as err:
        raise cx.unsupported(f"cannot evaluate on constants ({type(err).__name__}: {err})") from None
    return [np.asarray(r) for r in results]


def load_onnx(path: str | os.PathLike, *, outputs: Sequence[str] | None = None) -> Graph:
    """Read an ONNX model and lower it to the IR (float types, ONNX-like layer ops).

    ``outputs`` picks graph outputs by name; by default every output the hardware can compute is
    kept (an output that needs an unsupported node is dropped with a warning, unless none is left).
    """
    source = str(path)
    model = _read_model(path)
    cx = _Lowering(model, source)
    consts = _check_initializers(model, source)
    inferred = _infer_shapes(model, source)
    known_shapes = _value_shapes(inferred)
    cx.env.update(consts)
    for out in model.graph.output:
        cx.graph.reserve(identifier(out.name))

    for inp in model.graph.input:
        if inp.name in consts:
            continue
        cx.env[inp.name] = _lower_input(cx, inp)

    for node in model.graph.node:
        cx.node = node
        inputs = [cx.env.get(name) if name else None for name in node.input]
        missing = [name for name, v in zip(node.input, inputs) if name and v is None]
        if missing:
            raise InvalidModelError(f"{cx.where()}: input {missing[0]!r} is not produced by any node")
        poisoned = next((v for v in inputs if isinstance(v, _Poison)), None)
        if poisoned is not None:
            cx.set_outputs([poisoned] * len(node.output))
            continue
        try:
            if node.domain in QONNX_DOMAINS and node.op_type in _QONNX_LOWERINGS:
                _QONNX_LOWERINGS[node.op_type](cx, _attrs(node))
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
            elif node.op_type in _LOWERINGS:
                _LOWERINGS[node.op_type](cx, _attrs(node))
            else:
                raise cx.unsupported(
                    f"op {node.op_type} is not supported on run-time tensors; fpgac lowers {_SUPPORTED_TEXT}"
                )
        except FpgacError as err:
            cx.set_outputs([_Poison(err)] * len(node.output))
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
        if isinstance(value, _Poison):
            dropped.append((name, value.error))
        elif not isinstance(value, _Tensor):
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


def _lower_input(cx: _Lowering, inp: onnx.ValueInfoProto) -> _Tensor:
    source = cx.source
    ttype = inp.type.tensor_type
    if not inp.type.HasField("tensor_type"):
        raise UnsupportedError(f"{source}: input {inp.name!r} is not a tensor")
    if ttype.elem_type not in _FLOAT_TYPES:
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
                "dimension may be: export the model with a fixed size for the others"
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
    return _Tensor(value, 0)


def _value_shapes(model: onnx.ModelProto) -> dict[str, list[int | None]]:
    shapes = {}
    for info in [*model.graph.value_info, *model.graph.output]:
        t = info.type.tensor_type
        if t.HasField("shape"):
            shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]
    return shapes


def _check_against_inference(cx: _Lowering, node: onnx.NodeProto, known: dict[str, list[int | None]]) -> None:
    """Our per-sample shapes must agree with ONNX's shape inference wherever it knows them."""
    for name in node.output:
        value = cx.env.get(name)
        if not isinstance(value, _Tensor) or name not in known:
            continue
        onnx_shape = known[name]
        ours = value.full_shape
        if len(onnx_shape) != len(ours):
            raise AssertionError(f"{cx.where()}: lowered {name!r} to rank {len(ours)}, ONNX says {onnx_shape}")
        for i, (a, b) in enumerate(zip(onnx_shape, ours)):
            if i != value.batch_axis and a is not None and a != b:
                raise AssertionError(f"{cx.where()}: lowered {name!r} to {list(ours)}, ONNX says {onnx_shape}")
