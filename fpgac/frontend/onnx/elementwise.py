"""Lowerings of the elementwise ops of two tensors (Add, Sub, Mul, Div, Max, Min, Sum), Neg,
and the ops that pass a value through (Identity, Dropout, Cast).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from fpgac.errors import (
    InvalidModelError,
)
from fpgac.ir import (
    Op,
)

from .context import FLOAT_TYPES, Grid, LoweringContext, Sym, Tensor

BINARY_OPS = {"Add": Op.ADD, "Sub": Op.SUB, "Mul": Op.MUL, "Div": Op.DIV, "Max": Op.MAX, "Min": Op.MIN, "Sum": Op.ADD}


def _binary(cx: LoweringContext, op: Op, left: Sym, right: Sym, suffix: str = "",
            grids: tuple[Grid | None, Grid | None] = (None, None)) -> Tensor:
    if isinstance(left, np.ndarray) and isinstance(right, np.ndarray):
        raise AssertionError("constant operands are folded before lowering")
    if op is Op.DIV and isinstance(right, np.ndarray):
        if np.any(right == 0):
            raise InvalidModelError(f"{cx.where()}: division by a constant zero")
        op, right, grids = Op.MUL, 1.0 / np.asarray(right, np.float64), (grids[0], None)
    if isinstance(left, Tensor) and isinstance(right, Tensor):
        if left.rank - left.batch_axis != right.rank - right.batch_axis:
            raise cx.unsupported(
                f"the operands' batch axes ({left.batch_axis} of rank {left.rank}, {right.batch_axis} "
                f"of rank {right.rank}) do not line up under broadcasting"
            )
        batch = max(left.rank, right.rank) - (left.rank - left.batch_axis)
        inputs = [left.value, right.value]
    else:
        t = left if isinstance(left, Tensor) else right
        name = f"{cx.node.name or cx.node.output[0]}.const"
        inputs = [
            v.value if isinstance(v, Tensor) else cx.per_sample_const(v, t, name, grid)
            for v, grid in zip((left, right), grids)
        ]
        batch = t.batch_axis
    (out,) = cx.emit(op, inputs, suffix=suffix)
    return Tensor(out, batch)


def lower_binary(cx: LoweringContext, a: dict[str, Any]) -> None:
    op = BINARY_OPS[cx.node.op_type]
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


def lower_neg(cx: LoweringContext, a: dict[str, Any]) -> None:
    cx.set_outputs([_binary(cx, Op.MUL, cx.tensor(0), np.array(-1.0))])


def lower_identity(cx: LoweringContext, a: dict[str, Any]) -> None:
    if cx.node.op_type == "Dropout" and len(cx.node.output) > 1 and cx.node.output[1]:
        raise cx.unsupported("Dropout's mask output")
    if cx.node.op_type == "Cast":
        to = a.get("to")
        if to not in FLOAT_TYPES:
            raise cx.unsupported(
                f"Cast of a run-time tensor to {onnx.TensorProto.DataType.Name(to)}: only casts between "
                "float types are no-ops fpgac can drop"
            )
    cx.set_outputs([cx.sym(0)])
