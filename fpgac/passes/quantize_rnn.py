"""Quantization rules of LSTM and GRU: the types and tables of their fixed-point steps.

The steps are in :mod:`fpgac.ir.semantics.recurrent`; here is how each type is chosen and why it holds.
``bits`` is the layer's result width (``layers[name].result_bits`` or ``.bits``, else the global
``bits``). Every chosen type is RND (round half toward +inf) and SAT unless it is exact.

- **W, R**: weights like any layer's (``weight_bits``, ``weight``). **B**: at (at most) the
  accumulator's fractional bits ``F = max(f_x + f_W, f_h + f_R)``, so adding it is exact.
- **state_type** (h, Y, Y_h): ``fixed<bits, 1>``. Every h the recurrence stores is
  ``o * tanh(c)`` or ``(1-z)*n + z*h``, a product or a convex combination of values in
  [-1, 1], so it never saturates. More integer bits only if a given ``h0`` needs them (``h0`` is
  quantized to this type). A layer ``result`` override (or ``precision``) replaces it.
- **accum_type**: exact. Bounds come from the mantissa ranges of x's *type* and of state_type
  (not |h| <= 1 but every mantissa h's type holds, so the bound is a proof for any input):
  ``sum_k max(w_k*lo, w_k*hi)`` per gate row plus both biases, over every sum step 1 forms
  (GRU: the x part and the h part alone too). A layer ``accum`` override must hold them.
- **gate_type**: ``bits`` wide. Its integer bits trade rounding the pre-activation (an error
  of slope x half an LSB) against saturating it (the function's distance to its limit at the
  type's edge): of the integer bits up to those holding the exact bound of the pre-activations
  (no saturation at all), the ones with the least worst error over sigmoid and tanh. At 16 bits
  that reaches past where sigmoid settles (SAT there changes nothing the tables give); at 6 bits
  it stops at +-4, where rounding to a quarter would cost more than the clipped tail.
- **tables**: sigmoid to ``ufixed<bits, 0>``, tanh to ``fixed<bits, 1>``, indexed by the
  magnitude (``ufixed<W, I>`` of a ``fixed<W, I>`` input; the sign is applied after, so the
  same entries are twice as fine) over ``[0, reach]`` with at most ``table_size`` entries. The
  reach is where the function settles to within half an output LSB
  (as ``Lookup``'s), or, when that many entries cannot get there at one input LSB each, the
  bucket width (a power of two) with the least worst error: bucket error (slope x half a
  bucket) against the tail beyond the reach. At 16 bits and 1024 entries: sigmoid to 8
  (buckets of 2**-7), tanh to 4 (2**-8).
- **cell_type** (LSTM c, Y_c): ``bits`` wide, the fewer integer bits of a proof and a cap. The
  proof: with ``f, i <= 1`` and ``|k| <= 1``, ``|c_t| <= |c_{t-1}| + 1 + lsb/2`` (the last term
  is RND), so ``|c| <= max|c0| + T*(1 + lsb/2)`` for a sequence of T steps. The cap: the integer
  bits reaching ``tanh_cell``'s settle point (and any given ``c0``). When the cap is the smaller
  (at 16 bits from T = 8 on: the examples' T = 10 gives ``fixed<16, 4>``), c saturates only
  beyond where tanh(c) has settled: that step's h is unchanged, and later steps see the
  clipped c. This is the one saturation the bounds do not rule out.
- ``precision`` (one type for everything) sets every type and both table outputs to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir import MAX_EXACT_WIDTH, Act, FixedType, Node, Overflow, Rounding, TensorType, Value
from fpgac.ir.tables import Table
from fpgac.ir.semantics import activation_function, exact_types

from .quantize_types import bound_type, dot_bounds, settle

if TYPE_CHECKING:
    from .quantize import LayerConfig, Quantizer

__all__ = ["rule_lstm", "rule_gru"]


def _ints(magnitude: float) -> int:
    """Integer bits of a signed type whose range ``[-2**(I-1), 2**(I-1))`` holds ``+-magnitude``."""
    return math.floor(math.log2(magnitude)) + 2 if magnitude > 0 else 1


def _largest(value: Value | None) -> float:
    """The largest magnitude in a (float) constant such as an initial state; 0 when absent."""
    return float(np.abs(value.data).max()) if value is not None and value.data.size else 0.0


def _fixed(bits: int, int_bits: int, signed: bool = True) -> FixedType:
    return FixedType(bits, int_bits, signed, Rounding.RND, Overflow.SAT)


class _Recurrent:
    """What both rules share: weights, state type, accumulator bounds, gate type and tables."""

    def __init__(self, q: Quantizer, node: Node, gates: int) -> None:

        self.q, self.node = q, node
        self.layer: LayerConfig = q.layer([node.name])
        self.bits = q.bits(self.layer, "result")
        self.precision = q.config.precision
        hidden = node.attrs["hidden_size"]
        x = node.inputs[0].type.dtype
        w, r = q.weight(node, 1), q.weight(node, 2)

        h0 = node.input(4)
        self.state = self.layer.result or self.precision
        if self.state is None:
            self.state = _fixed(self.bits, max(1, _ints(_largest(h0))))
        if h0 is not None:
            q.set_const(node, 4, self.state, "state")

        self.frac = frac = max(x.frac_bits + w.frac_bits, self.state.frac_bits + r.frac_bits)
        q.bias(node, 3, frac)
        self.wx = self._shifted(dot_bounds(node.inputs[1].data.T, x.min_mantissa, x.max_mantissa),
                                frac - x.frac_bits - w.frac_bits)
        self.rh = self._shifted(dot_bounds(node.inputs[2].data.T, self.state.min_mantissa, self.state.max_mantissa),
                                frac - self.state.frac_bits - r.frac_bits)
        bias = node.input(3)
        if bias is None:
            b = np.zeros(2 * gates * hidden, dtype=object)
        else:
            b = bias.data.astype(object) * (1 << (frac - bias.type.dtype.frac_bits))
        self.bx, self.bh = b[: gates * hidden], b[gates * hidden :]

        self.sig_out = self.precision or _fixed(self.bits, 0, signed=False)
        self.tanh_out = self.precision or _fixed(self.bits, 1)

    @staticmethod
    def _shifted(bounds: tuple[np.ndarray, np.ndarray], by: int) -> tuple[np.ndarray, np.ndarray]:
        return bounds[0] * (1 << by), bounds[1] * (1 << by)

    def accum(self, lows: list[np.ndarray], highs: list[np.ndarray]) -> FixedType:
        """The exact type of every sum in ``lows``/``highs`` (or the layer's ``accum``, if it holds them)."""
        lo, hi = int(min(a.min() for a in lows)), int(max(a.max() for a in highs))
        t = bound_type(lo, hi, self.frac, f"layer {self.node.name!r} ({self.node.op.value})")
        a = self.layer.accum
        if a is None:
            return t
        if a.frac_bits != t.frac_bits or a.min_mantissa > t.min_mantissa or a.max_mantissa < t.max_mantissa:
            raise UsageError(
                f"layer {self.node.name!r}: accum type {a} cannot hold every sum exactly; it needs {t} "
                "(fpgac never lets an accumulator wrap)"
            )
        return a

    def gate(self, lows: list[np.ndarray], highs: list[np.ndarray]) -> FixedType:
        """The gate type: the integer bits (up to the pre-activations' exact bound) whose worst
        error, rounding against saturating, is least over both tables."""
        if self.precision is not None:
            return self.precision
        bound = max(-int(min(a.min() for a in lows)), int(max(a.max() for a in highs))) * 2.0**-self.frac
        top = _ints(bound)

        def worst(int_bits: int) -> float:
            lsb = _fixed(self.bits, int_bits).lsb
            return max(_worst(kind, lsb, 2.0 ** (int_bits - 1), bound) for kind in _SHAPE)

        return _fixed(self.bits, min(range(top - self.bits, top + 1), key=lambda i: (worst(i), -i)))

    def table(self, kind: Act, in_type: FixedType) -> Table:
        out = self.sig_out if kind is Act.SIGMOID else self.tanh_out
        reach = _reach(kind, in_type, out, self.q.config.table_size)
        magnitude = FixedType(in_type.width, in_type.int_bits, signed=False)
        return Table.build(kind.value, activation_function(kind, {}), magnitude, out, 0.0, reach,
                           self.q.config.table_size, interpolate=True)

    def finish(self, attrs: dict[str, object], outputs: list[FixedType], internal: dict[str, FixedType]) -> None:
        """Set the attributes and output types, check the exact intermediates' widths, record it all."""
        node, q = self.node, self.q
        node.attrs.update(attrs)
        too_wide = "; use fewer bits (--bits) or narrower overrides"
        try:
            exact = exact_types(node)
        except UsageError as err:  # wider than 64 bits
            raise UsageError(f"layer {node.name!r} ({node.op.value}): {err}{too_wide}") from None
        for name, t in exact.items():
            if t.width > MAX_EXACT_WIDTH:
                raise UsageError(f"layer {node.name!r} ({node.op.value}): its exact {name.replace('_', ' ')} needs "
                                 f"{t.width} bits (at most {MAX_EXACT_WIDTH}){too_wide}")
        for index, t in enumerate(outputs):
            q.set_output(node, t, index, role="result")
            q.record(node.name, "result", node.outputs[index], t)
        hidden = node.attrs["hidden_size"]
        for name, t in internal.items():
            q.record(node.name, "accum" if name == "accum_type" else "result",
                      Value(f"{node.name}.{name}", TensorType(t, (hidden,))), t)
        for name, table in attrs.items():
            if isinstance(table, Table):
                q.record(node.name, "table", Value(f"{node.name}.{name}", TensorType(table.out_type, (table.size,))),
                          table.out_type)


#: each tabulated function: its steepest slope, and its distance to its limit at x >= 0
_SHAPE: dict[Act, tuple[float, Callable[[float], float]]] = {
    Act.SIGMOID: (0.25, lambda x: 1.0 / (1.0 + math.exp(x))),
    Act.TANH: (1.0, lambda x: 1.0 - math.tanh(x)),
}


def _worst(kind: Act, step: float, reach: float, bound: float = math.inf) -> float:
    """The worst error of ``kind`` read at inputs ``step`` apart up to ``+-reach`` and constant
    beyond (inputs never beyond ``bound``): the slope times half a step, or the distance to the
    limit at the reach, whichever is larger."""
    slope, tail = _SHAPE[kind]
    return max(slope * step / 2, tail(reach) if reach < bound else 0.0)


def _reach(kind: Act, in_type: FixedType, out: FixedType, size: int) -> float:
    """How far a table over ``|x|`` reaches: its settle point, or less when ``size`` is short.

    ``size`` buckets of ``2**s`` input LSBs reach ``(size - 1) * bucket``. The reach is the
    settle point (where the function is within half an output LSB of its limit, as for
    ``Lookup``) if the finest buckets that get there are also the ones with the least
    :func:`_worst` error; else the reach of the bucket width with the least.
    """
    limit = settle(out.frac_bits) if kind is Act.SIGMOID else settle(out.frac_bits + 1, 2.0)
    best = (math.inf, limit)
    for s in range(64):
        bucket = in_type.lsb * 2.0**s
        reach = min((size - 1) * bucket, limit)
        best = min(best, (_worst(kind, bucket, reach, limit), reach))
        if reach >= limit:
            break
    return best[1]


def _cell_type(rec: _Recurrent, steps: int) -> FixedType:
    """The cell state's type: the fewer integer bits of the proof and the cap (module docstring)."""
    if rec.precision is not None:
        return rec.precision
    c0 = _largest(rec.node.input(5))
    proof = 1
    while c0 + steps * (1 + _fixed(rec.bits, proof).lsb / 2) > _fixed(rec.bits, proof).max_value:
        proof += 1
    cap = max(_ints(settle(rec.tanh_out.frac_bits + 1, 2.0)), _ints(c0))
    return _fixed(rec.bits, min(proof, cap))


def rule_lstm(q: Quantizer, node: Node) -> None:
    """LSTM: one accumulator and gate type for the four gates; cell and state types; three tables."""
    rec = _Recurrent(q, node, 4)
    lows, highs = [rec.wx[0] + rec.rh[0] + rec.bx + rec.bh], [rec.wx[1] + rec.rh[1] + rec.bx + rec.bh]
    acc = rec.accum(lows, highs)
    gate = rec.gate(lows, highs)
    cell = _cell_type(rec, node.inputs[0].type.shape[0])
    if node.input(5) is not None:
        q.set_const(node, 5, cell, "state")
    attrs = {
        "accum_type": acc, "gate_type": gate, "cell_type": cell, "state_type": rec.state,
        "sigmoid": rec.table(Act.SIGMOID, gate), "tanh": rec.table(Act.TANH, gate),
        "tanh_cell": rec.table(Act.TANH, cell),
    }
    rec.finish(attrs, [rec.state, rec.state, cell], {"accum_type": acc, "gate_type": gate, "cell_type": cell})


def rule_gru(q: Quantizer, node: Node) -> None:
    """GRU: one accumulator and gate type for z, r and n; the state type; two tables."""
    rec = _Recurrent(q, node, 3)
    hidden = node.attrs["hidden_size"]
    zr = slice(0, 2 * hidden)
    full = [rec.wx[k] + rec.rh[k] + rec.bx + rec.bh for k in (0, 1)]
    # z and r sum both parts; the n row sums them too (r*h lies in state_type's range, as h does)
    # unless linear_before_reset holds them apart; either way each part alone is bounded as well
    rows = zr if node.attrs["linear_before_reset"] else slice(None)
    lows = [full[0][rows], rec.wx[0] + rec.bx, rec.rh[0] + rec.bh]
    highs = [full[1][rows], rec.wx[1] + rec.bx, rec.rh[1] + rec.bh]
    acc = rec.accum(lows, highs)
    if node.attrs["linear_before_reset"]:  # n's pre-activation is ax_n + r*ah_n with 0 <= r <= 1
        ax, ah = (rec.wx[0] + rec.bx, rec.wx[1] + rec.bx), (rec.rh[0] + rec.bh, rec.rh[1] + rec.bh)
        n = slice(2 * hidden, None)
        zero = np.zeros(hidden, dtype=object)
        gate = rec.gate([full[0][zr], ax[0][n] + np.minimum(ah[0][n], zero)],
                        [full[1][zr], ax[1][n] + np.maximum(ah[1][n], zero)])
    else:
        gate = rec.gate(full[:1], full[1:])
    attrs = {
        "accum_type": acc, "gate_type": gate, "state_type": rec.state,
        "sigmoid": rec.table(Act.SIGMOID, gate), "tanh": rec.table(Act.TANH, gate),
    }
    rec.finish(attrs, [rec.state, rec.state], {"accum_type": acc, "gate_type": gate})
