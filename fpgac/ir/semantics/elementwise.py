"""Add, Sub, Mul, Div, Max and Min of two tensors (numpy broadcasting of per-sample shapes).

Fixed point: Add, Sub, Max and Min shift both inputs up to the output's fractional bits (the
larger of theirs) and are exact; Mul is exact at ``f_a + f_b``; Div has no fixed-point form
(quantization turns a division by a constant into a multiplication). The plan holds each input's
shift.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fpgac.ir.graph import Node
from fpgac.ir.ops import Op
from fpgac.ir.types import FixedType
from fpgac.ir.verify import VerifyError

from .base import Args, Semantics, expect_frac, frac, lift
from .bounds import fit, mantissa_range, shifted

__all__ = ["BinaryPlan", "SEMANTICS"]

_FUNCTIONS: dict[Op, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    Op.ADD: np.add, Op.SUB: np.subtract, Op.MUL: np.multiply, Op.DIV: np.divide, Op.MAX: np.maximum,
    Op.MIN: np.minimum,
}


@dataclass(frozen=True)
class BinaryPlan:
    """``frac``: the output's fractional bits; ``shifts``: how far each input is shifted up to
    them (both 0 for Mul, whose product has ``f_a + f_b``)."""

    frac: int
    shifts: tuple[int, int]


def plan(node: Node) -> BinaryPlan:
    a, b = (frac(v) for v in node.inputs)
    if node.op is Op.MUL:
        return BinaryPlan(expect_frac(node, a + b), (0, 0))
    out = frac(node.output)
    if out < max(a, b):
        raise VerifyError(f"node {node.name!r} ({node.op.value}): cannot align {max(a, b)} to {out} fractional "
                          "bits exactly")
    return BinaryPlan(out, (out - a, out - b))


def exact_type(node: Node) -> FixedType:
    """Mul: the corner products at ``f_a + f_b``; Add/Sub/Max/Min: on both inputs shifted to the
    larger fractional bits."""
    a, b = (v.type.dtype for v in node.inputs)
    ra, rb = mantissa_range(a), mantissa_range(b)
    if node.op is Op.MUL:
        corners = [x * y for x in ra for y in rb]
        return fit(node, min(corners), max(corners), a.frac_bits + b.frac_bits)
    bits = max(a.frac_bits, b.frac_bits)
    (alo, ahi), (blo, bhi) = shifted(*ra, bits - a.frac_bits), shifted(*rb, bits - b.frac_bits)
    lo, hi = {
        Op.ADD: (alo + blo, ahi + bhi),
        Op.SUB: (alo - bhi, ahi - blo),
        Op.MAX: (max(alo, blo), max(ahi, bhi)),
        Op.MIN: (min(alo, blo), min(ahi, bhi)),
    }[node.op]
    return fit(node, lo, hi, bits)


def binary(node: Node, args: Args) -> list[np.ndarray]:
    rank = node.output.type.rank
    return [_FUNCTIONS[node.op](lift(args[0], rank), lift(args[1], rank))]


def binary_fixed(node: Node, p: BinaryPlan, args: Args) -> list[np.ndarray]:
    rank = node.output.type.rank
    a, b = (lift(np.left_shift(np.asarray(m, dtype=np.int64), s), rank) for m, s in zip(args, p.shifts))
    return [_FUNCTIONS[node.op](a, b)]


SEMANTICS = {op: Semantics(plan, binary, binary_fixed, exact_type=exact_type)
             for op in (Op.ADD, Op.SUB, Op.MUL, Op.MAX, Op.MIN)}
SEMANTICS[Op.DIV] = Semantics(plan, binary, None, "quantization turns a division by a constant into a multiplication")
