"""What every lowering shares: the tensors it tracks (run-time values with their batch axis,
constants, poisoned results), the lowering context of one model, and names.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from fpgac.errors import (
    FpgacError,
    ShapeError,
    UnsupportedError,
)
from fpgac.ir import (
    MAX_EXACT_WIDTH,
    FixedType,
    FloatType,
    Graph,
    Node,
    Op,
    TensorType,
    Value,
    infer_shapes,
)
from fpgac.ir.ops import ShapeRuleError

log = logging.getLogger(__name__)

#: a per-sample tensor larger than this is refused: no FPGA design holds it, and it is usually a
#: sign of a wrong export (a symbolic size fixed to something huge)
MAX_TENSOR_ELEMENTS = 1 << 20

FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}


@dataclass
class Tensor:
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
class Grid:
    """Where a QONNX quantizer put a constant: ``value = mantissa * 2**-frac``, mantissas signed or not."""

    frac: int
    signed: bool


@dataclass
class Poison:
    """What a node that could not be lowered produces: its error, raised if an output needs it."""

    error: FpgacError


Sym = np.ndarray | Tensor | Poison


class LoweringContext:
    """State of one model's conversion: the symbol table, the graph, the opset."""

    def __init__(self, model: onnx.ModelProto, source: str) -> None:
        self.model = model
        self.source = source
        self.opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
        self.graph = Graph(identifier(model.graph.name or Path(source).stem))
        self.env: dict[str, Sym] = {}
        #: constants a QONNX quantizer put on a power-of-two grid, by ONNX name: emitted as fixed point
        self.grids: dict[str, Grid] = {}
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

    def sym(self, index: int) -> Sym:
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

    def grid(self, index: int) -> Grid | None:
        """The power-of-two grid a QONNX quantizer put constant input ``index`` on, if any."""
        return self.grids.get(self.node.input[index]) if self.has(index) else None

    def tensor(self, index: int) -> Tensor:
        value = self.sym(index)
        if not isinstance(value, Tensor):
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

    def constant(self, array: np.ndarray, name: str, grid: Grid | None = None) -> Value:
        """A float constant; a fixed-point one when a QONNX quantizer put ``array`` on ``grid``."""
        fixed = fixed_constant(array, grid) if grid is not None else None
        if fixed is not None:
            return self.graph.constant(identifier(name), fixed[1], fixed[0])
        return self.graph.constant(identifier(name), np.asarray(array, dtype=np.float64))

    def per_sample_const(self, array: np.ndarray, like: Tensor, name: str, grid: Grid | None = None) -> Value:
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

    def set_outputs(self, values: Sequence[Sym]) -> None:
        for name, value in zip(self.node.output, values):
            if name:
                self.env[name] = value

    def axis(self, axis: int, t: Tensor, what: str = "axis") -> int:
        """An ONNX axis of ``t`` as a per-sample axis; the batch axis itself is refused."""
        full = axis + t.rank if axis < 0 else axis
        if not 0 <= full < t.rank:
            raise self.unsupported(f"{what} {axis} is out of range for rank {t.rank}")
        if full == t.batch_axis:
            raise self.unsupported(f"{what} {axis} is the batch axis: fpgac computes each sample on its own")
        return full - (full > t.batch_axis)

    def reshape(self, t: Tensor, shape: Sequence[int], batch_axis: int, suffix: str = "_reshape") -> Tensor:
        shape = tuple(int(d) for d in shape)
        if shape == t.value.type.shape:
            return Tensor(t.value, batch_axis)
        (out,) = self.emit(Op.RESHAPE, [t.value], {"shape": shape}, suffix=suffix)
        return Tensor(out, batch_axis)


def identifier(name: str) -> str:
    """A printable name for IR values: ONNX names may hold '/', ':' and spaces."""
    cleaned = "".join(c if c.isalnum() or c in "._" else "_" for c in str(name)).strip("_")
    return cleaned or "v"


def node_attrs(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def ints(values: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in np.asarray(values).reshape(-1))


# -------------------------------------------------------------------------------------------
# Lowerings: one function an ONNX op (or family), in a table at the end.
# -------------------------------------------------------------------------------------------

Lowering = Callable[[LoweringContext, dict[str, Any]], None]


def fixed_constant(array: np.ndarray, grid: Grid) -> tuple[FixedType, np.ndarray] | None:
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
