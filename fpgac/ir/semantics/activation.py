"""Activation (elementwise functions) and Lookup (their tabulated fixed-point form).

Fixed point: RELU, ABS and CLIP are exact on the input's mantissas (CLIP's bounds rounded inward
to the input type: the plan's ``clip``); PRELU (LeakyReLU becomes one, with a constant slope) is
``x << f_s`` for ``x >= 0`` else ``x * slope``, at ``f_x + f_s``. The smooth functions (sigmoid,
tanh, ELU...) have no exact form: quantization replaces them by a Lookup of a
:class:`~fpgac.ir.tables.Table` (:func:`function` gives the float function it tabulates).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fpgac.ir.fixed import quantize, to_float
from fpgac.ir.graph import Node
from fpgac.ir.ops import Act, Op
from fpgac.ir.tables import Table
from fpgac.ir.types import FixedType
from fpgac.ir.verify import VerifyError

from .base import Args, Semantics, expect_frac, frac, lift, same_type
from .bounds import fit, mantissa_range

__all__ = ["EXACT", "TABULATED_RANGES", "ActivationPlan", "LookupPlan", "SEMANTICS", "function"]

#: the kinds with an exact fixed-point form; the rest are tabulated
EXACT = (Act.RELU, Act.ABS, Act.CLIP, Act.PRELU)

#: the smooth kinds, which quantization turns into a Lookup table, and the output range each is
#: known to have (None: the calibrated one); every backend renders a Lookup, so a new smooth
#: activation needs its float function below and an entry here, nothing in any backend
TABULATED_RANGES: dict[Act, tuple[float, float] | None] = {
    Act.SIGMOID: (0.0, 1.0),
    Act.HARD_SIGMOID: (0.0, 1.0),
    Act.TANH: (-1.0, 1.0),
    Act.SOFTSIGN: (-1.0, 1.0),
    Act.ELU: None,
    Act.SELU: None,
    Act.SOFTPLUS: None,
    Act.HARD_SWISH: None,
}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1/(1+e^-x) without overflow: e^-|x| never exceeds 1."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _elu(x: np.ndarray, alpha: float) -> np.ndarray:
    """x if x > 0 else alpha*(e^x-1); the exponent is clipped so large x cannot overflow."""
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))


_FUNCTIONS: dict[Act, Callable[[np.ndarray, dict[str, Any]], np.ndarray]] = {
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
    Act.HARD_SWISH: lambda x, a: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0),
}


def function(kind: Act, attrs: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """The float function of an elementwise activation (what quantization tabulates)."""
    return lambda x: _FUNCTIONS[kind](np.asarray(x, dtype=np.float64), attrs)


@dataclass(frozen=True)
class ActivationPlan:
    """``kind``; ``clip``: CLIP's bounds as mantissas of the input type (rounded inward, within
    the type); ``slope_frac``: PRELU's slope fractional bits (its output has ``f_x + slope_frac``)."""

    kind: Act
    clip: tuple[int, int] | None = None
    slope_frac: int = 0


def clip_bounds(lo: float, hi: float, t) -> tuple[int, int]:
    """CLIP's ``[lo, hi]`` as mantissas of ``t``: rounded inward, limited to the type."""
    lo_m = t.min_mantissa if lo == -math.inf else max(t.min_mantissa, int(np.ceil(lo / t.lsb)))
    hi_m = t.max_mantissa if hi == math.inf else min(t.max_mantissa, int(np.floor(hi / t.lsb)))
    return lo_m, hi_m


def plan(node: Node) -> ActivationPlan:
    kind = node.attrs["kind"]
    fx = frac(node.inputs[0])
    if kind is Act.PRELU:
        fs = frac(node.inputs[1])
        expect_frac(node, fx + fs)
        return ActivationPlan(kind, slope_frac=fs)
    if kind not in EXACT:
        raise VerifyError(f"node {node.name!r}: Activation {kind.value} has no exact fixed-point form; "
                          "quantization turns it into a Lookup")
    expect_frac(node, fx)
    if kind is Act.CLIP:
        return ActivationPlan(kind, clip_bounds(node.attrs["min"], node.attrs["max"], node.inputs[0].type.dtype))
    return ActivationPlan(kind)


def exact_type(node: Node) -> FixedType:
    """RELU ``[0, hi]``, ABS ``[0, max(hi, -lo)]``, CLIP the input's type; PRELU: ``x << f_s`` for
    ``x >= 0`` and ``x * slope`` below, at ``f_x + f_s``."""
    x = node.inputs[0].type.dtype
    kind = node.attrs["kind"]
    lo, hi = mantissa_range(x)
    if kind is Act.RELU:
        return fit(node, 0, hi, x.frac_bits)
    if kind is Act.ABS:
        return fit(node, 0, max(hi, -lo), x.frac_bits)
    if kind is Act.CLIP:
        return same_type(node)
    if kind is Act.PRELU:
        slope = node.inputs[1]
        sm = slope.data.astype(object)
        cands = [max(hi, 0) << frac(slope), 0] + ([int(np.min(sm * lo)), int(np.max(sm * lo))] if lo < 0 else [])
        return fit(node, min(cands), max(cands), x.frac_bits + frac(slope))
    raise VerifyError(f"node {node.name!r}: Activation {kind.value} has no exact fixed-point form; "
                      "quantization turns it into a Lookup")


def activation(node: Node, args: Args) -> list[np.ndarray]:
    x, kind = args[0], node.attrs["kind"]
    if kind is Act.PRELU:
        return [np.where(x >= 0, x, args[1] * x)]
    return [_FUNCTIONS[kind](x, node.attrs)]


def activation_fixed(node: Node, p: ActivationPlan, args: Args) -> list[np.ndarray]:
    x = args[0]
    if p.kind is Act.PRELU:
        slope = lift(args[1][None], x.ndim - 1)
        return [np.where(x >= 0, np.left_shift(x, p.slope_frac), x * slope)]
    if p.kind is Act.RELU:
        return [np.maximum(x, 0)]
    if p.kind is Act.ABS:
        return [np.abs(x)]
    lo, hi = p.clip
    return [np.minimum(np.maximum(x, lo), hi)]


@dataclass(frozen=True, eq=False)
class LookupPlan:
    """The node's table (indexing in :mod:`fpgac.ir.tables`), checked to fit its input and output."""

    table: Table


def lookup_plan(node: Node) -> LookupPlan:
    table = node.attrs["table"]
    if table.in_type.frac_bits != frac(node.inputs[0]) or table.out_type != node.output.type.dtype:
        raise VerifyError(f"node {node.name!r} (Lookup): table {table} does not fit {node.inputs[0].type.dtype} -> "
                          f"{node.output.type.dtype}")
    return LookupPlan(table)


def lookup(node: Node, args: Args) -> list[np.ndarray]:
    """A table in float mode: the input rounded to the table's input type, the entry as a value."""
    table = node.attrs["table"]
    return [to_float(table.lookup(quantize(args[0], table.in_type)), table.out_type)]


def lookup_fixed(node: Node, p: LookupPlan, args: Args) -> list[np.ndarray]:
    return [p.table.lookup(args[0])]


SEMANTICS = {
    Op.ACTIVATION: Semantics(plan, activation, activation_fixed, exact_type=exact_type),
    Op.LOOKUP: Semantics(lookup_plan, lookup, lookup_fixed),
}
