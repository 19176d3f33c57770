"""The layer-level, typed intermediate representation."""

from fpgac.ir.graph import Graph, Node, Value
from fpgac.ir.ops import ACT_PARAMS, OP_SPECS, Act, Op, PoolKind, infer_shapes
from fpgac.ir.printer import format_graph
from fpgac.ir.types import DType, FixedType, FloatType, Overflow, Rounding, Sparsity, TensorType, parse_type
from fpgac.ir.verify import VerifyError, verify

__all__ = [
    "ACT_PARAMS",
    "Act",
    "DType",
    "FixedType",
    "FloatType",
    "Graph",
    "Node",
    "OP_SPECS",
    "Op",
    "Overflow",
    "PoolKind",
    "Rounding",
    "Sparsity",
    "TensorType",
    "Value",
    "VerifyError",
    "format_graph",
    "infer_shapes",
    "parse_type",
    "verify",
]
