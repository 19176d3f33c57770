"""Softmax and LogSoftmax along one axis.

Fixed point: ``z = x - max(x)`` (exact, in ``z_type``: one more bit than x), ``e = exp[z]`` from
the ``exp`` table, ``S = sum e`` (exact, in ``sum_type``), then ``y = e * reciprocal[S]`` at
``f_e + f_r``, or for LogSoftmax ``y = (z << z_shift) - (log[S] << log_shift)`` at ``max(f_x,
f_log)``. The plan holds those types, tables and shifts, and the axis as (outer, n, inner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fpgac.ir.graph import Node
from fpgac.ir.ops import Op
from fpgac.ir.tables import Table
from fpgac.ir.types import FixedType
from fpgac.ir.verify import VerifyError

from .base import Args, Semantics, expect_frac
from .bounds import fit

__all__ = ["SoftmaxPlan", "SEMANTICS", "difference_type", "mantissas", "sum_type"]


def difference_type(x: FixedType) -> FixedType:
    """The exact type of ``x - max(x)`` for ``x`` of type ``x``: never positive, one bit wider."""
    return FixedType(x.width + 1, x.int_bits + 1, True)


def sum_type(e: FixedType, n: int) -> FixedType:
    """The exact type of a sum of ``n`` values of the (unsigned) type ``e``."""
    grow = max(1, math.ceil(math.log2(n))) if n > 1 else 0
    return FixedType(e.width + grow, e.int_bits + grow, False)


@dataclass(frozen=True, eq=False)
class SoftmaxPlan:
    """Along ``axis`` (``n`` values; ``outer`` and ``inner`` elements around it): ``z_type``
    (``x - max``), the ``exp`` table, ``sum_type`` (``sum e``), and either the ``reciprocal``
    table or, for LogSoftmax, the ``log`` table with the shifts that align ``z`` and ``log S``
    to the output's ``frac``."""

    axis: int
    outer: int
    n: int
    inner: int
    z_type: FixedType
    exp: Table
    sum_type: FixedType
    frac: int
    reciprocal: Table | None = None
    log: Table | None = None
    z_shift: int = 0
    log_shift: int = 0


def plan(node: Node) -> SoftmaxPlan:
    x = node.inputs[0].type.dtype
    shape, axis = node.inputs[0].type.shape, node.attrs["axis"]
    exp = node.attrs["exp"]
    z = difference_type(x)
    second = node.attrs["log_table"] if node.attrs["log"] else node.attrs["reciprocal"]
    if exp.in_type.frac_bits != z.frac_bits or second.in_type.frac_bits != exp.out_type.frac_bits:
        raise VerifyError(f"node {node.name!r} (Softmax): tables {exp!r}, {second!r} do not fit its input {x}")
    geometry = dict(axis=axis, outer=math.prod(shape[:axis]), n=shape[axis], inner=math.prod(shape[axis + 1:]),
                    z_type=z, exp=exp, sum_type=second.in_type)
    if node.attrs["log"]:
        bits = expect_frac(node, max(x.frac_bits, second.out_type.frac_bits))
        return SoftmaxPlan(**geometry, frac=bits, log=second, z_shift=bits - x.frac_bits,
                           log_shift=bits - second.out_type.frac_bits)
    bits = expect_frac(node, exp.out_type.frac_bits + second.out_type.frac_bits)
    return SoftmaxPlan(**geometry, frac=bits, reciprocal=second)


def exact_type(node: Node) -> FixedType:
    """From the tables the Quantize pass built: ``e * reciprocal`` in ``[0, max e * max r]`` at
    ``f_e + f_r``; LogSoftmax ``z - log S`` at ``max(f_x, f_log)``, at most 0."""
    x = node.inputs[0].type.dtype
    exp = node.attrs["exp"]
    if node.attrs["log"]:
        log = node.attrs["log_table"].out_type
        bits = max(x.frac_bits, log.frac_bits)
        zlo = difference_type(x).min_mantissa << (bits - x.frac_bits)
        return fit(node, zlo - (log.max_mantissa << (bits - log.frac_bits)), 0, bits)
    recip = node.attrs["reciprocal"].out_type
    return fit(node, 0, exp.out_type.max_mantissa * recip.max_mantissa, exp.out_type.frac_bits + recip.frac_bits)


def softmax(node: Node, args: Args) -> list[np.ndarray]:
    """Softmax or log-softmax, shifted by the maximum so that exp never overflows."""
    x, axis = args[0], node.attrs["axis"] + 1
    shifted = x - x.max(axis=axis, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return [shifted - log_sum if node.attrs["log"] else np.exp(shifted - log_sum)]


def mantissas(x: np.ndarray, axis: int, exp: Table, reciprocal: Table | None, log: Table | None = None,
              z_shift: int = 0, log_shift: int = 0) -> np.ndarray:
    """The fixed-point softmax of mantissas ``x`` along ``axis`` (of the array), with a plan's
    tables and shifts: what :func:`softmax_fixed` computes, for a caller whose values are laid out
    another way (the amaranth target's lane groups)."""
    z = x - x.max(axis=axis, keepdims=True)
    e = exp.lookup(z)
    total = e.sum(axis=axis, keepdims=True)
    if log is not None:
        return np.left_shift(z, z_shift) - np.left_shift(log.lookup(total), log_shift)
    return e * reciprocal.lookup(total)


def softmax_fixed(node: Node, p: SoftmaxPlan, args: Args) -> list[np.ndarray]:
    return [mantissas(args[0], p.axis + 1, p.exp, p.reciprocal, p.log, p.z_shift, p.log_shift)]


SEMANTICS = {Op.SOFTMAX: Semantics(plan, softmax, softmax_fixed, exact_type=exact_type)}
