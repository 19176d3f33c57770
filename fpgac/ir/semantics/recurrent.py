"""LSTM and GRU: the float recurrences (ONNX, forward) and the golden model's, step by step in integers.

Every backend implements exactly these steps: exact integer products and sums, a requantization
where a value is stored, and table lookups for sigmoid and tanh. The types and tables are node
attributes chosen by the Quantize pass (:mod:`fpgac.passes.quantize_rnn`); nothing here chooses
one, and each is checked: an exact value outside its type raises ``VerifyError``.

Notation. ``f_T`` is the fractional bits of type ``T``; ``v << k`` (``k >= 0``) is exact.
``rq(v, T)`` requantizes the exact value ``v`` to ``T`` with ``T``'s rounding and overflow, as an
``ap_fixed`` assignment does (:func:`fpgac.ir.requantize`); the pass gives every such ``T`` RND
(round half toward +inf) and SAT. Exact intermediates hold their ap_fixed expression type
(:func:`exact_types`); any type that holds the value rounds it the same way.

Types: x's ``X``, the constants' ``W``, ``R``, ``B`` (``h0`` has ``S``, ``c0`` has ``C``), and the
attributes ``accum_type`` A, ``gate_type`` G, ``state_type`` S (h, Y, Y_h), ``cell_type`` C (c,
Y_c); tables ``sigmoid`` (output type ``s``), ``tanh`` (``u``), ``tanh_cell`` (``v``). ``F = f_A
= max(f_X + f_W, f_S + f_R)``. Bias halves at F: ``bx = Wb << (F - f_B)``, ``bh = Rb << (F -
f_B)`` (0 without B); gate rows in ONNX order. The tables hold ``x >= 0`` and are read by magnitude (twice as
fine as a table over both signs with the same entries)::

    sig(g) = sigmoid[|g|]  if g >= 0  else  (1 << f_s) - sigmoid[|g|]      sigmoid(-x) = 1 - sigmoid(x)
    th(g)  = tanh[|g|]     if g >= 0  else  -tanh[|g|]                      tanh(-x) = -tanh(x)

with ``table[m] = values[clip((m >> shift) - offset, 0, size - 1)]`` (``Table.lookup``) and
``|g|`` exact, a mantissa of the table's ``in_type`` (``ufixed<W, I>`` for a G of
``fixed<W, I>``). ``h`` starts at ``h0`` or 0, ``c`` at ``c0`` or 0; per sample, t = 0 .. T-1:

LSTM (gates i, o, f, c)::

    1. a = (W x_t << (F - f_X - f_W)) + (R h << (F - f_S - f_R)) + bx + bh     exact, in A
    2. g = rq(a, G)                                                          RND, SAT
    3. i, o, f = sig(g_i), sig(g_o), sig(g_f);  k = th(g_c)
    4. c = rq(f*c + i*k, C)      exact at f_s + max(f_C, f_u)                RND, SAT
    5. h = rq(o * th_cell(c), S) exact at f_s + f_v (th_cell: th with tanh_cell)  RND, SAT
    6. Y[t] = h;   after the last step Y_h = h, Y_c = c

GRU (gates z, r, n)::

    1. ax = (W x_t << (F - f_X - f_W)) + bx;  ah = (R h << (F - f_S - f_R)) + bh   exact, in A
    2. z = sig(rq(ax_z + ah_z, G));  r = sig(rq(ax_r + ah_r, G))                 RND, SAT
    3. linear_before_reset = 1:
           n = th(rq((ax_n << f_s) + r * ah_n, G))        exact at F + f_s;      RND, SAT
       linear_before_reset = 0 (ah_n unused):
           q = rq(r * h, S)                               exact at f_s + f_S;    RND, SAT (never: |r h| <= |h|)
           n = th(rq(ax_n + (R_n q << (F - f_S - f_R)) + bh_n, G))   sum exact, in A;  RND, SAT
    4. h = rq(((1 << f_s) - z) * n + z * h, S)     exact at f_s + max(f_u, f_S);  RND, SAT
    5. Y[t] = h;   after the last step Y_h = h

The pass bounds every sum of step 1 exactly (from the types of x and h and the weights), so A is
a proof that none wraps: only the ``rq`` steps round or saturate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgac.ir.fixed import add_type, mul_type, requantize
from fpgac.ir.graph import Node
from fpgac.ir.ops import Op
from fpgac.ir.tables import Table
from fpgac.ir.types import FixedType
from fpgac.ir.verify import VerifyError

from .activation import _sigmoid as _float_sigmoid
from .base import Args, Semantics, optional

__all__ = ["RecurrentPlan", "SEMANTICS", "exact_types", "signed_sigmoid", "signed_tanh"]


@dataclass(frozen=True, eq=False)
class RecurrentPlan:
    """A quantized LSTM's or GRU's types and tables (the attributes the Quantize pass set,
    checked to fit each other) and ``exact``: the types of the exact products and sums each step
    rounds (:func:`exact_types`)."""

    hidden: int
    accum_type: FixedType
    gate_type: FixedType
    state_type: FixedType
    cell_type: FixedType | None
    sigmoid: Table
    tanh: Table
    tanh_cell: Table | None
    exact: dict[str, FixedType]
    #: step 1's shifts to the accumulator's fractional bits: of ``W x`` and of ``R h``
    input_shift: int
    state_shift: int
    #: the bias halves (``Wb``, ``Rb``) as int64 mantissas at the accumulator's fractional bits (zeros without B)
    input_bias: np.ndarray
    state_bias: np.ndarray

    @property
    def gates(self) -> int:
        return 4 if self.cell_type is not None else 3


def _frac(node: Node, index: int) -> int:
    return node.inputs[index].type.dtype.frac_bits


def _fits(node: Node, what: str, m: np.ndarray, t: FixedType) -> None:
    if m.size and (m.min() < t.min_mantissa or m.max() > t.max_mantissa):
        raise VerifyError(
            f"node {node.name!r} ({node.op.value}): {what} mantissas {m.min()}..{m.max()} overflow {t} "
            f"({t.min_mantissa}..{t.max_mantissa})"
        )


def _rq(node: Node, what: str, m: np.ndarray, src: FixedType, dst: FixedType) -> np.ndarray:
    """``rq(m, dst)`` of an exact value checked to lie in ``src`` (the type its expression has)."""
    _fits(node, what, m, src)
    return requantize(m, src, dst)


def _sigmoid(table: Table, g: np.ndarray) -> np.ndarray:
    """``sig(g)``: ``sigmoid[|g|]``, or ``1 - sigmoid[|g|]`` for ``g < 0``."""
    v = table.lookup(np.abs(g))
    return np.where(g >= 0, v, (np.int64(1) << table.out_type.frac_bits) - v)


def _tanh(table: Table, g: np.ndarray) -> np.ndarray:
    """``th(g)``: ``tanh[|g|]``, or ``-tanh[|g|]`` for ``g < 0``."""
    v = table.lookup(np.abs(g))
    return np.where(g >= 0, v, -v)


#: the public names of ``sig`` and ``th`` (a backend's model of its hardware computes them alike)
signed_sigmoid, signed_tanh = _sigmoid, _tanh


def _check_tables(node: Node, pairs: list[tuple[str, FixedType]]) -> None:
    for name, in_type in pairs:
        table = node.attrs[name]
        if table.in_type.frac_bits != in_type.frac_bits:
            raise VerifyError(f"node {node.name!r} ({node.op.value}): table {name} {table} does not index {in_type}")
    if node.attrs["sigmoid"].out_type.frac_bits < 0:
        raise VerifyError(f"node {node.name!r} ({node.op.value}): sigmoid output {node.attrs['sigmoid'].out_type} "
                          "cannot hold 1 exactly")


def _check_outputs(node: Node, types: list[FixedType]) -> None:
    for value, t in zip(node.outputs, types):
        if value.type.dtype != t:
            raise VerifyError(
                f"node {node.name!r} ({node.op.value}): output {value.name!r} has type {value.type.dtype}, "
                f"the recurrence stores {t}"
            )


def exact_types(node: Node) -> dict[str, FixedType]:
    """The ap_fixed types of the exact products and sums a step rounds, from the node's attributes.

    The golden model checks each intermediate against its type; the Quantize pass checks that
    none is wider than :data:`fpgac.ir.MAX_EXACT_WIDTH`. (Any type that holds the exact value
    rounds it the same way: these are the ones C++ gives the expressions.)
    """
    a = node.attrs
    s, u = a["sigmoid"].out_type, a["tanh"].out_type
    state = a["state_type"]
    if node.op is Op.LSTM:
        return {
            "cell_sum": add_type(mul_type(s, a["cell_type"]), mul_type(s, u)),  # f*c + i*k
            "output_product": mul_type(s, a["tanh_cell"].out_type),  # o * th_cell(c)
        }
    one_minus = add_type(FixedType(max(s.frac_bits, 0) + 2, 2), s)  # 1 - z
    types = {"state_sum": add_type(mul_type(one_minus, u), mul_type(s, state))}  # (1-z)*n + z*h
    if a["linear_before_reset"]:
        types["reset_sum"] = add_type(a["accum_type"], mul_type(s, a["accum_type"]))  # (ax_n << f_s) + r*ah_n
    else:
        types["reset_product"] = mul_type(s, state)  # r * h
    return types


class _Projections:
    """Step 1's exact products: ``W x_t`` and ``R v``, shifted to the accumulator's fractional bits."""

    def __init__(self, p: RecurrentPlan, args: list[np.ndarray | None]) -> None:
        self.sh = p.state_shift
        self.r = args[2].T.astype(np.int64)
        self.gx = np.left_shift(np.matmul(args[0], args[1].T.astype(np.int64)), p.input_shift)  # (N, T, gates*H)
        self.bx, self.bh = p.input_bias, p.state_bias

    def rec(self, v: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
        return np.left_shift(np.matmul(v, self.r[:, rows]), self.sh)


def _initial(node: Node, args: list[np.ndarray | None], index: int, t: FixedType, batch: int) -> np.ndarray:
    """The initial state: input ``index`` (which must have the state's type ``t``), or zeros."""
    arg, hidden = args[index], node.attrs["hidden_size"]
    if arg is not None and node.inputs[index].type.dtype != t:
        raise VerifyError(f"node {node.name!r} ({node.op.value}): initial state {node.inputs[index].name!r} has "
                          f"type {node.inputs[index].type.dtype}, the state is {t}")
    return np.broadcast_to(np.zeros(hidden, dtype=np.int64) if arg is None else arg, (batch, hidden)).astype(np.int64)


def plan(node: Node) -> RecurrentPlan:
    a = node.attrs
    lstm = node.op is Op.LSTM
    gate_t, state_t = a["gate_type"], a["state_type"]
    if lstm:
        _check_tables(node, [("sigmoid", gate_t), ("tanh", gate_t), ("tanh_cell", a["cell_type"])])
        _check_outputs(node, [state_t, state_t, a["cell_type"]])
    else:
        _check_tables(node, [("sigmoid", gate_t), ("tanh", gate_t)])
        _check_outputs(node, [state_t, state_t])
    acc, hidden, gates = a["accum_type"], a["hidden_size"], 4 if lstm else 3
    sx = acc.frac_bits - _frac(node, 0) - _frac(node, 1)
    sh = acc.frac_bits - state_t.frac_bits - _frac(node, 2)
    bias = node.input(3)
    sb = acc.frac_bits - (bias.type.dtype.frac_bits if bias is not None else acc.frac_bits)
    if min(sx, sh, sb) < 0:
        raise VerifyError(f"node {node.name!r} ({node.op.value}): accum_type {acc} is coarser than its terms")
    b = (np.zeros(2 * gates * hidden, dtype=np.int64) if bias is None
         else np.left_shift(np.asarray(bias.data, dtype=np.int64), sb))
    return RecurrentPlan(hidden, acc, gate_t, state_t, a["cell_type"] if lstm else None,
                         a["sigmoid"], a["tanh"], a["tanh_cell"] if lstm else None, exact_types(node),
                         sx, sh, b[: gates * hidden], b[gates * hidden:])


def _initial_state(state: np.ndarray | None, batch: int, hidden: int) -> np.ndarray:
    return np.broadcast_to(np.zeros(hidden) if state is None else state, (batch, hidden))


def lstm(node: Node, args: Args) -> list[np.ndarray]:
    """ONNX LSTM, forward, gates i, o, f, c; the input projection is done for all steps at once."""
    x, w, r = args[0], args[1], args[2]
    hidden = node.attrs["hidden_size"]
    bias = optional(args, 3)
    batch, steps = x.shape[0], x.shape[1]
    gx = x @ w.T
    if bias is not None:
        gx = gx + bias[: 4 * hidden] + bias[4 * hidden :]
    h = _initial_state(optional(args, 4), batch, hidden)
    c = _initial_state(optional(args, 5), batch, hidden)
    ys = np.empty((batch, steps, hidden))
    for t in range(steps):
        i, o, f, g = np.split(gx[:, t] + h @ r.T, 4, axis=-1)
        c = _float_sigmoid(f) * c + _float_sigmoid(i) * np.tanh(g)
        h = _float_sigmoid(o) * np.tanh(c)
        ys[:, t] = h
    return [ys, np.array(h), np.array(c)]


def gru(node: Node, args: Args) -> list[np.ndarray]:
    """ONNX GRU, forward, gates z, r, h; ``linear_before_reset`` moves where r multiplies."""
    x, w, r = args[0], args[1], args[2]
    hidden = node.attrs["hidden_size"]
    bias = optional(args, 3)
    if bias is None:
        bias = np.zeros(6 * hidden)
    wb, rb = bias[: 3 * hidden], bias[3 * hidden :]
    r_h = r[2 * hidden :]
    batch, steps = x.shape[0], x.shape[1]
    gx = x @ w.T + wb
    h = _initial_state(optional(args, 4), batch, hidden)
    ys = np.empty((batch, steps, hidden))
    for t in range(steps):
        xz, xr, xh = np.split(gx[:, t], 3, axis=-1)
        hz, hr, hh = np.split(h @ r.T + rb, 3, axis=-1)
        z, reset = _float_sigmoid(xz + hz), _float_sigmoid(xr + hr)
        if node.attrs["linear_before_reset"]:
            n = np.tanh(xh + reset * hh)
        else:
            n = np.tanh(xh + (reset * h) @ r_h.T + rb[2 * hidden :])
        h = (1.0 - z) * n + z * h
        ys[:, t] = h
    return [ys, np.array(h)]


def lstm_fixed(node: Node, p: RecurrentPlan, args: Args) -> list[np.ndarray]:
    """ONNX LSTM, forward, in integers: the module docstring's steps, vectorized over the batch."""
    args = args + [None] * (6 - len(args))
    hidden = p.hidden
    acc_t, gate_t, cell_t, state_t = p.accum_type, p.gate_type, p.cell_type, p.state_type
    sigmoid, tanh, tanh_cell = p.sigmoid, p.tanh, p.tanh_cell
    s, u_t = sigmoid.out_type, tanh.out_type
    exact = p.exact
    fc, fu = s.frac_bits + cell_t.frac_bits, s.frac_bits + u_t.frac_bits
    fsum = max(fc, fu)

    proj = _Projections(p, args)
    batch, steps = proj.gx.shape[0], proj.gx.shape[1]
    h = _initial(node, args, 4, state_t, batch)
    c = _initial(node, args, 5, cell_t, batch)
    bias = proj.bx + proj.bh
    ys = np.empty((batch, steps, hidden), dtype=np.int64)
    for t in range(steps):
        acc = proj.gx[:, t] + proj.rec(h) + bias
        g = _rq(node, "gate pre-activation", acc, acc_t, gate_t)
        gi, go, gf, gc = np.split(g, 4, axis=-1)
        i, o, f, k = _sigmoid(sigmoid, gi), _sigmoid(sigmoid, go), _sigmoid(sigmoid, gf), _tanh(tanh, gc)
        total = np.left_shift(f * c, fsum - fc) + np.left_shift(i * k, fsum - fu)
        c = _rq(node, "f*c + i*k", total, exact["cell_sum"], cell_t)
        h = _rq(node, "o*th_cell(c)", o * _tanh(tanh_cell, c), exact["output_product"], state_t)
        ys[:, t] = h
    return [ys, h.copy(), c.copy()]


def gru_fixed(node: Node, p: RecurrentPlan, args: Args) -> list[np.ndarray]:
    """ONNX GRU, forward, in integers: the module docstring's steps, vectorized over the batch."""
    args = args + [None] * (5 - len(args))
    hidden = p.hidden
    acc_t, gate_t, state_t = p.accum_type, p.gate_type, p.state_type
    sigmoid, tanh = p.sigmoid, p.tanh
    s, u_t = sigmoid.out_type, tanh.out_type
    one = np.int64(1) << s.frac_bits
    exact = p.exact
    fn, fh = s.frac_bits + u_t.frac_bits, s.frac_bits + state_t.frac_bits
    fsum = max(fn, fh)
    lbr = bool(node.attrs["linear_before_reset"])

    proj = _Projections(p, args)
    zr, nn = slice(0, 2 * hidden), slice(2 * hidden, 3 * hidden)
    batch, steps = proj.gx.shape[0], proj.gx.shape[1]
    h = _initial(node, args, 4, state_t, batch)
    ys = np.empty((batch, steps, hidden), dtype=np.int64)
    for t in range(steps):
        ax = proj.gx[:, t] + proj.bx
        _fits(node, "W x + Wb", ax, acc_t)
        ah = proj.rec(h, zr if not lbr else slice(None)) + (proj.bh if lbr else proj.bh[zr])
        _fits(node, "R h + Rb", ah, acc_t)
        g = _rq(node, "z/r pre-activation", ax[:, zr] + ah[:, zr], acc_t, gate_t)
        z, r = np.split(_sigmoid(sigmoid, g), 2, axis=-1)
        if lbr:
            pre = np.left_shift(ax[:, nn], s.frac_bits) + r * ah[:, nn]
            g_n = _rq(node, "n pre-activation", pre, exact["reset_sum"], gate_t)
        else:
            q = _rq(node, "r*h", r * h, exact["reset_product"], state_t)
            pre = ax[:, nn] + proj.rec(q, nn) + proj.bh[nn]
            g_n = _rq(node, "n pre-activation", pre, acc_t, gate_t)
        n = _tanh(tanh, g_n)
        total = np.left_shift((one - z) * n, fsum - fn) + np.left_shift(z * h, fsum - fh)
        h = _rq(node, "(1-z)*n + z*h", total, exact["state_sum"], state_t)
        ys[:, t] = h
    return [ys, h.copy()]


SEMANTICS = {
    Op.LSTM: Semantics(plan, lstm, lstm_fixed),
    Op.GRU: Semantics(plan, gru, gru_fixed),
}
