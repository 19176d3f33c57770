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
from fpgac.ir.semantics import activation_function, difference_type, round_half_up_reciprocal, sum_type
from fpgac.ir.tables import Table

from .quantize_rnn import rule_gru, rule_lstm
from .quantize_types import MARGIN, activation_type, bound_type, dot_bounds, mantissa_range, settle, shifted

if TYPE_CHECKING:
    from .quantize import Quantizer

__all__ = ["RULES"]

#: activations that become tables, and the output range each is known to have (None: calibrated)
TABULATED: dict[Act, tuple[float, float] | None] = {
    Act.SIGMOID: (0.0, 1.0),
    Act.HARD_SIGMOID: (0.0, 1.0),
    Act.TANH: (-1.0, 1.0),
    Act.SOFTSIGN: (-1.0, 1.0),
    Act.ELU: None,
    Act.SELU: None,
    Act.SOFTPLUS: None,
}


def _fit(node: Node, lo: int, hi: int, frac: int) -> FixedType:
    return bound_type(lo, hi, frac, f"layer {node.name!r} ({node.op.value})")


def _rule_dense(q: Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    w = q.finer_weight(node, q.weight(node, 1), x.frac_bits)
    frac = x.frac_bits + w.frac_bits
    wm = node.inputs[1].data
    if node.op is Op.CONV:
        wm = wm.reshape(wm.shape[0], -1).T
    lows, highs = dot_bounds(wm, *mantissa_range(x))
    bias = q.bias(node, 2, frac)
    if bias.size:
        lows, highs = lows + bias.reshape(-1), highs + bias.reshape(-1)
    q.set_output(node, _fit(node, int(lows.min()), int(highs.max()), frac))


def _rule_scale_shift(q: Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    s = q.finer_weight(node, q.weight(node, 1), x.frac_bits)
    frac = x.frac_bits + s.frac_bits
    bm = q.bias(node, 2, frac)
    sm = node.inputs[1].data.astype(object)
    lo, hi = mantissa_range(x)
    a, b = sm * lo, sm * hi
    lows, highs = np.minimum(a, b) + bm, np.maximum(a, b) + bm
    q.set_output(node, _fit(node, int(np.min(lows)), int(np.max(highs)), frac))


def _rule_activation(q: Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    kind = node.attrs["kind"]
    lo, hi = mantissa_range(x)
    if kind is Act.RELU:
        q.set_output(node, _fit(node, 0, hi, x.frac_bits), role="exact")
    elif kind is Act.ABS:
        q.set_output(node, _fit(node, 0, max(hi, -lo), x.frac_bits), role="exact")
    elif kind is Act.CLIP:
        q.set_output(node, FixedType(x.width, x.int_bits, x.signed), role="exact")
    elif kind in (Act.PRELU, Act.LEAKY_RELU):
        if kind is Act.LEAKY_RELU:
            node.inputs.append(q.graph.constant(f"{node.name}_alpha", np.array(node.attrs.pop("alpha"))))
            node.attrs["kind"] = Act.PRELU
        s = q.weight(node, 1)
        sm = node.inputs[1].data.astype(object)
        # x >= 0 gives x << fs in [0, hi << fs]; x < 0 gives x * slope, extreme at x = lo
        cands = [max(hi, 0) << s.frac_bits, 0] + ([int(np.min(sm * lo)), int(np.max(sm * lo))] if lo < 0 else [])
        q.set_output(node, _fit(node, min(cands), max(cands), x.frac_bits + s.frac_bits))
    elif kind in TABULATED:
        _tabulate(q, node)
    else:
        raise UnsupportedError(f"node {node.name!r}: activation {kind.value} has no fixed-point form yet")


def _tabulate(q: Quantizer, node: Node) -> None:
    """Replace a smooth activation by a Lookup over the range where it has not settled."""
    x = node.inputs[0].type.dtype
    kind = node.attrs["kind"]
    known = TABULATED[kind]
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
        log = Table.build("log", np.log, total, log_t, 1.0, float(n), q.config.table_size, interpolate=True)
        node.attrs["log_table"] = log
        frac = max(x.frac_bits, log_t.frac_bits)
        zlo = z.min_mantissa << (frac - x.frac_bits)
        q.set_output(node, _fit(node, zlo - (log_t.max_mantissa << (frac - log_t.frac_bits)), 0, frac), role="exact")
    else:
        recip_t = FixedType(bits + 3, 1, False, Rounding.RND, Overflow.SAT)
        recip = Table.build("reciprocal", lambda s: 1.0 / s, total, recip_t, 1.0, float(n), q.config.table_size,
                            interpolate=True)
        node.attrs["reciprocal"] = recip
        frac = exp_t.frac_bits + recip_t.frac_bits
        q.set_output(node, _fit(node, 0, exp_t.max_mantissa * recip_t.max_mantissa, frac), role="exact")


def _reciprocal_bits(q: Quantizer, node: Node, count: int) -> int:
    return q.bits(q.layer([node.name]), "result") + max(0, math.ceil(math.log2(count))) + 1


def _rule_pool(q: Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    if node.attrs["kind"] is PoolKind.MAX:
        q.set_output(node, FixedType(x.width, x.int_bits, x.signed), role="exact")
        return
    taps = math.prod(node.attrs["kernel"]) if node.op is Op.POOL else math.prod(node.inputs[0].type.shape[1:])
    bits = _reciprocal_bits(q, node, taps)
    node.attrs["reciprocal_bits"] = bits
    lo, hi = mantissa_range(x)
    # count * round(2**bits / count) over every count a window can have
    counts = np.arange(1, taps + 1, dtype=np.int64)
    worst = int((counts * round_half_up_reciprocal(counts, bits)).max())
    q.set_output(node, _fit(node, min(lo, 0) * worst, max(hi, 0) * worst, x.frac_bits + bits))


def _rule_binary(q: Quantizer, node: Node) -> None:
    types = [q.weight(node, i) if v.is_const else v.type.dtype for i, v in enumerate(node.inputs)]
    (a, b) = types
    ra, rb = mantissa_range(a), mantissa_range(b)
    if node.op is Op.MUL:
        corners = [x * y for x in ra for y in rb]
        q.set_output(node, _fit(node, min(corners), max(corners), a.frac_bits + b.frac_bits))
        return
    frac = max(a.frac_bits, b.frac_bits)
    (alo, ahi), (blo, bhi) = shifted(*ra, frac - a.frac_bits), shifted(*rb, frac - b.frac_bits)
    lo, hi = {
        Op.ADD: (alo + blo, ahi + bhi),
        Op.SUB: (alo - bhi, ahi - blo),
        Op.MAX: (max(alo, blo), max(ahi, bhi)),
        Op.MIN: (min(alo, blo), min(ahi, bhi)),
    }[node.op]
    q.set_output(node, _fit(node, lo, hi, frac), role="accum" if node.op in (Op.ADD, Op.SUB) else "exact")


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


def _rule_concat(q: Quantizer, node: Node) -> None:
    types = [q.weight(node, i) if v.is_const else v.type.dtype for i, v in enumerate(node.inputs)]
    frac = max(t.frac_bits for t in types)
    ranges = [shifted(*mantissa_range(t), frac - t.frac_bits) for t in types]
    q.set_output(node, _fit(node, min(r[0] for r in ranges), max(r[1] for r in ranges), frac), role="exact")


def _rule_same(q: Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    q.set_output(node, FixedType(x.width, x.int_bits, x.signed), role="exact")


def _rule_pad(q: Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    p = int(np.floor(node.attrs["value"] / x.lsb + 0.5)) if np.isfinite(node.attrs["value"]) else 0
    node.attrs["value"] = float(p * x.lsb)
    lo, hi = mantissa_range(x)
    q.set_output(node, _fit(node, min(lo, p), max(hi, p), x.frac_bits), role="exact")


def _rule_argmax(q: Quantizer, node: Node) -> None:
    return  # the index type is already a FixedType


def _rule_quant(q: Quantizer, node: Node) -> None:
    if not isinstance(node.output.type.dtype, FixedType):
        node.output.type = TensorType(q.target(node.output), node.output.type.shape)



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
    Op.CONCAT: _rule_concat,
    Op.RESHAPE: _rule_same,
    Op.TRANSPOSE: _rule_same,
    Op.SLICE: _rule_same,
    Op.PAD: _rule_pad,
    Op.ARGMAX: _rule_argmax,
    Op.LSTM: rule_lstm,
    Op.GRU: rule_gru,
    Op.QUANT: _rule_quant,
}
