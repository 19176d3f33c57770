"""Quantization rules, one per op (the table ``RULES``): each sets its node's output types and
quantizes its constants, from the input types the quantizer has already fixed.

Every exact result takes the narrowest type holding every value the input *types* allow (so
nothing can wrap); the derived types of an op's fixed-point form (Softmax's ``x - max`` and sum,
an average's reciprocal) come from :mod:`fpgac.ir.semantics`, where the golden model reads them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from fpgac.errors import UnsupportedError, UsageError
from fpgac.ir import Act, FixedType, Node, Op, Overflow, PoolKind, Rounding, TensorType
from fpgac.ir.semantics import activation_function, difference_type, exact_type, sum_type
from fpgac.ir.semantics.activation import TABULATED_RANGES
from fpgac.ir.tables import Table

from .quantize_rnn import rule_gru, rule_lstm
from .quantize_types import MARGIN, activation_type, settle

if TYPE_CHECKING:
    from .quantize import Quantizer

__all__ = ["RULES", "rule_exact"]



def _rule_dense(q: Quantizer, node: Node) -> None:
    """Dense, Conv: weights and bias quantized (the bias at the sums' fractional bits), then the exact sums."""
    x = node.inputs[0].type.dtype
    w = q.finer_weight(node, q.weight(node, 1), x.frac_bits)
    q.bias(node, 2, x.frac_bits + w.frac_bits)
    q.set_output(node, exact_type(node))


def _rule_scale_shift(q: Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    s = q.finer_weight(node, q.weight(node, 1), x.frac_bits)
    q.bias(node, 2, x.frac_bits + s.frac_bits)
    q.set_output(node, exact_type(node))


def _rule_activation(q: Quantizer, node: Node) -> None:
    """RELU, ABS, CLIP: exact; LeakyReLU becomes a PReLU with its slope a constant, quantized as a
    weight, then exact; the smooth functions become tables."""
    kind = node.attrs["kind"]
    if kind in (Act.RELU, Act.ABS, Act.CLIP):
        q.set_output(node, exact_type(node), role="exact")
    elif kind in (Act.PRELU, Act.LEAKY_RELU):
        if kind is Act.LEAKY_RELU:
            node.inputs.append(q.graph.constant(f"{node.name}_alpha", np.array(node.attrs.pop("alpha"))))
            node.attrs["kind"] = Act.PRELU
        q.weight(node, 1)
        q.set_output(node, exact_type(node))
    elif kind in TABULATED_RANGES:
        _tabulate(q, node)
    else:
        raise UnsupportedError(f"node {node.name!r}: activation {kind.value} has no fixed-point form yet")


def _tabulate(q: Quantizer, node: Node) -> None:
    """Replace a smooth activation by a Lookup over the range where it has not settled."""
    x = node.inputs[0].type.dtype
    kind = node.attrs["kind"]
    known = TABULATED_RANGES[kind]
    out = q.target(node.output)
    if known is not None and q.layer(q.owners(node.output)).result is None and q.config.precision is None:
        out = activation_type(*known, out.width, int_bits=0 if known[0] >= 0 else 1)
    if kind is Act.SIGMOID:
        lo, hi = -settle(out.frac_bits), settle(out.frac_bits)
    elif kind is Act.TANH:
        lo, hi = -settle(out.frac_bits + 1, 2.0), settle(out.frac_bits + 1, 2.0)
    elif kind is Act.HARD_SIGMOID:
        a, b = node.attrs["alpha"], node.attrs["beta"]
        lo, hi = sorted(((0.0 - b) / a, (1.0 - b) / a))
    else:
        rng = node.inputs[0].range or (x.min_value, x.max_value)
        lo, hi = rng[0] * MARGIN, rng[1] * MARGIN
    attrs = {k: v for k, v in node.attrs.items() if k != "kind"}
    table = Table.build(kind.value, activation_function(kind, attrs), x, out, lo, hi, q.config.table_size,
                        interpolate=True)
    node.op = Op.LOOKUP
    node.attrs = {"kind": kind, "table": table}
    q.set_output(node, out, role="table")
    q.record(node.name, "table", node.output, out)


def _rule_softmax(q: Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    n = node.inputs[0].type.shape[node.attrs["axis"]]
    bits = q.bits(q.layer([node.name]), "result")
    z = difference_type(x)  # x - max(x): exact
    frac_e = bits + 2
    exp_t = FixedType(frac_e + 1, 1, False, Rounding.RND, Overflow.SAT)
    exp = Table.build("exp", np.exp, z, exp_t, -settle(frac_e), 0.0, q.config.table_size, interpolate=True)
    total = sum_type(exp_t, n)
    node.attrs["exp"] = exp
    if node.attrs["log"]:
        log_int = max(1, math.floor(math.log2(max(math.log(n), 1e-9))) + 1) if n > 1 else 1
        log_t = FixedType(bits + log_int, log_int, False, Rounding.RND, Overflow.SAT)
        node.attrs["log_table"] = Table.build("log", np.log, total, log_t, 1.0, float(n), q.config.table_size,
                                              interpolate=True)
    else:
        recip_t = FixedType(bits + 3, 1, False, Rounding.RND, Overflow.SAT)
        node.attrs["reciprocal"] = Table.build("reciprocal", lambda s: 1.0 / s, total, recip_t, 1.0, float(n),
                                               q.config.table_size, interpolate=True)
    q.set_output(node, exact_type(node), role="exact")


def _reciprocal_bits(q: Quantizer, node: Node, count: int) -> int:
    return q.bits(q.layer([node.name]), "result") + max(0, math.ceil(math.log2(count))) + 1


def _rule_pool(q: Quantizer, node: Node) -> None:
    """An average's reciprocal bits (the result width, plus the count's bits, plus one), then the exact type."""
    if node.attrs["kind"] is not PoolKind.MAX:
        taps = math.prod(node.attrs["kernel"]) if node.op is Op.POOL else math.prod(node.inputs[0].type.shape[1:])
        node.attrs["reciprocal_bits"] = _reciprocal_bits(q, node, taps)
    q.set_output(node, exact_type(node), role="exact" if node.attrs["kind"] is PoolKind.MAX else "accum")

def _rule_binary(q: Quantizer, node: Node) -> None:
    for i, v in enumerate(node.inputs):
        if v.is_const:
            q.weight(node, i)
    q.set_output(node, exact_type(node), role="accum" if node.op in (Op.ADD, Op.SUB) else "exact")


def _rule_div(q: Quantizer, node: Node) -> None:
    divisor = node.inputs[1]
    if not divisor.is_const:
        raise UnsupportedError(f"node {node.name!r} (Div): dividing by a run-time tensor has no fixed-point form; "
                               "only division by a constant is supported")
    if np.any(divisor.data == 0):
        raise UsageError(f"node {node.name!r} (Div): divides by zero")
    node.op = Op.MUL
    node.inputs[1] = q.graph.constant(f"{divisor.name}_reciprocal", 1.0 / divisor.data)
    q.narrow(node, 0)
    _rule_binary(q, node)


def rule_exact(q: Quantizer, node: Node) -> None:
    """An op that does not round (Concat, Reshape, ArgMax, a new elementwise op...): its constants
    quantized like weights, its output the exact type its semantics give."""
    for i, v in enumerate(node.inputs):
        if v is not None and v.is_const and not isinstance(v.type.dtype, FixedType):
            q.weight(node, i)
    q.set_output(node, exact_type(node), role="exact")





def _rule_pad(q: Quantizer, node: Node) -> None:
    """The fill put on the input's grid (rounded half up), then the exact type."""
    x = node.inputs[0].type.dtype
    p = int(np.floor(node.attrs["value"] / x.lsb + 0.5)) if np.isfinite(node.attrs["value"]) else 0
    node.attrs["value"] = float(p * x.lsb)
    q.set_output(node, exact_type(node), role="exact")





def _rule_lookup(q: Quantizer, node: Node) -> None:
    """A Lookup is quantization's own form of a smooth activation: its table fixes its output type."""
    node.output.type = TensorType(node.attrs["table"].out_type, node.output.type.shape)


def _rule_quant(q: Quantizer, node: Node) -> None:
    if not isinstance(node.output.type.dtype, FixedType):
        node.output.type = TensorType(q.target(node.output), node.output.type.shape)



#: IR op -> its quantization rule; an op not here takes :func:`rule_exact` (its exact type)
RULES: dict[Op, Callable[[Quantizer, Node], None]] = {
    Op.DENSE: _rule_dense,
    Op.CONV: _rule_dense,
    Op.SCALE_SHIFT: _rule_scale_shift,
    Op.ACTIVATION: _rule_activation,
    Op.SOFTMAX: _rule_softmax,
    Op.POOL: _rule_pool,
    Op.GLOBAL_POOL: _rule_pool,
    Op.ADD: _rule_binary,
    Op.SUB: _rule_binary,
    Op.MUL: _rule_binary,
    Op.MAX: _rule_binary,
    Op.MIN: _rule_binary,
    Op.DIV: _rule_div,
    Op.PAD: _rule_pad,
    Op.LSTM: rule_lstm,
    Op.GRU: rule_gru,
    Op.QUANT: _rule_quant,
    Op.LOOKUP: _rule_lookup,
}
