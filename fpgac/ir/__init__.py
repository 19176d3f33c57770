"""The layer-level, typed intermediate representation."""

from fpgac.ir.fixed import (
    MAX_EXACT_WIDTH,
    add_type,
    mul_type,
    quantize,
    requantize,
    to_float,
)
from fpgac.ir.graph import Graph, Node, Value
from fpgac.ir.ops import ACT_PARAMS, OP_SPECS, Act, Op, PoolKind, infer_shapes
from fpgac.ir.printer import format_graph
from fpgac.ir.serialize import load_graph, save_graph
from fpgac.ir.types import (
    DType,
    FixedType,
    FloatType,
    Overflow,
    Rounding,
    Sparsity,
    TensorType,
    parse_type,
)
from fpgac.ir.verify import VerifyError, verify

__all__ = [
    "ACT_PARAMS",
    "MAX_EXACT_WIDTH",
    "OP_SPECS",
    "Act",
    "DType",
    "FixedType",
    "FloatType",
    "Graph",
    "Node",
    "Op",
    "Overflow",
    "PoolKind",
    "Rounding",
    "Sparsity",
    "TensorType",
    "Value",
    "VerifyError",
    "add_type",
    "format_graph",
    "infer_shapes",
    "load_graph",
    "mul_type",
    "parse_type",
    "quantize",
    "requantize",
    "save_graph",
    "to_float",
    "verify",
]
