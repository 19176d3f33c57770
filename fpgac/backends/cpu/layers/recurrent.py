"""LSTM and GRU in C, step by step as :mod:`fpgac.ir.semantics.recurrent` computes them; the
types, tables, step-1 shifts and biases come from the op's plan."""

from __future__ import annotations

import numpy as np

from fpgac.ir import FixedType, Node, semantics

from ..arith import requantizer, sigmoid_by_magnitude, tanh_by_magnitude
from ..cgen import compute_type, container, maxabs, rng, shl
from ..program import Layer, Program
from .common import Rows, const_for, unsupported, where

__all__ = ["gru", "lstm"]


class _Recurrent:
    """What LSTM and GRU share: the weights as rows, the biases, the step-1 shifts, the state types."""

    def __init__(self, p: Program, node: Node) -> None:
        self.plan = plan = semantics.plan(node)
        self.H = plan.hidden
        self.acc, self.gate, self.state = plan.accum_type, plan.gate_type, plan.state_type
        x = node.inputs[0]
        self.T, self.F = x.type.shape
        self.sx, self.sh = plan.input_shift, plan.state_shift
        self.W = Rows(p, node, node.inputs[1], node.inputs[1].data, "W")
        self.R = Rows(p, node, node.inputs[2], node.inputs[2].data, "R")
        self.bx, self.bh = plan.input_bias.astype(object), plan.state_bias.astype(object)
        self.xmax, self.hmax = maxabs(x.type.dtype), maxabs(self.state)
        self.ax_bound = self.W.row_bound(self.xmax) * (1 << self.sx)
        self.ah_bound = self.R.row_bound(self.hmax) * (1 << self.sh)
        for i, t in ((4, self.state), (5, plan.cell_type)):
            v = node.input(i)
            if v is not None and v.type.dtype != t:
                raise unsupported(node, f"initial state {v.name!r} has type {v.type.dtype}, the state is {t}")

    def init_state(self, p: Program, node: Node, L: Layer, index: int, name: str, t: FixedType) -> str:
        arr = L.local(container(t), name, self.H)
        v = node.input(index)
        if v is None:
            L.w(f"for ({p.index} u = 0; u < {self.H}; u++)", f"    {arr}[u] = 0;")
        else:
            c = p.const(f"{node.name}_{name}0", container(t), v.data, "constants", f"{v.name}: initial {name}")
            L.w(f"for ({p.index} u = 0; u < {self.H}; u++)", f"    {arr}[u] = {c}[u];")
        return arr


def lstm(p: Program, node: Node) -> None:
    """:func:`fpgac.ir.semantics.recurrent.lstm_fixed`, steps 1-6, per sample."""
    r = _Recurrent(p, node)
    a = r.plan
    H, T, F = r.H, r.T, r.F
    cell, s_t, u_t = a.cell_type, a.sigmoid.out_type, a.tanh.out_type
    exact = a.exact
    fc, fu = s_t.frac_bits + cell.frac_bits, s_t.frac_bits + u_t.frac_bits
    fsum = max(fc, fu)
    bias = r.bx + r.bh
    sum_bound = int(max(np.abs(bias) + r.ax_bound + r.ah_bound, default=0))
    ct = compute_type((-sum_bound, sum_bound), rng(r.acc), rng(exact["cell_sum"]), rng(exact["output_product"]),
                      where=where(node))
    B = const_for(p, node, "bias", bias, "biases", f"Wb + Rb at {r.acc.frac_bits} fractional bits")
    rq_gate = requantizer(p, r.acc, r.gate)
    rq_cell = requantizer(p, exact["cell_sum"], cell)
    rq_state = requantizer(p, exact["output_product"], r.state)
    sig = sigmoid_by_magnitude(p, a.sigmoid, r.gate)
    th = tanh_by_magnitude(p, a.tanh, r.gate)
    th_cell = tanh_by_magnitude(p, a.tanh_cell, cell)
    L = Layer(p, node)
    X = L.input(0, "x")
    Y, YH, YC = (L.output(i, n) for i, n in enumerate(("y", "y_h", "y_c")))
    w, it = L.w, p.index
    h = r.init_state(p, node, L, 4, "h", r.state)
    c = r.init_state(p, node, L, 5, "c", cell)
    g = L.local(container(r.gate), "g", 4 * H)
    with w.block(f"for ({it} t = 0; t < {T}; t++)"):
        w(f"const {p.ctype(node.inputs[0])} *xt = {X} + t * {F};")
        with w.block(f"for ({it} j = 0; j < {4 * H}; j++)"):
            w(f"{ct} ax = 0, ah = 0;")
            with w.block(""):
                r.W.dot(w, ct, "ax", "j", "xt", it, r.xmax)
            with w.block(""):
                r.R.dot(w, ct, "ah", "j", h, it, r.hmax)
            w(f"{g}[j] = {rq_gate}({shl(ct, 'ax', r.sx)} + {shl(ct, 'ah', r.sh)} + {B}[j]);")
        with w.block(f"for ({it} u = 0; u < {H}; u++)"):
            w(f"const {ct} i = {sig}({g}[u]), o = {sig}({g}[{H} + u]), f = {sig}({g}[{2 * H} + u]);",
              f"const {ct} k = {th}({g}[{3 * H} + u]);",
              f"{c}[u] = {rq_cell}({shl(ct, f'f * {c}[u]', fsum - fc)} + {shl(ct, 'i * k', fsum - fu)});",
              f"{h}[u] = {rq_state}(o * {th_cell}({c}[u]));",
              f"{Y}[t * {H} + u] = {h}[u];")
    with w.block(f"for ({it} u = 0; u < {H}; u++)"):
        w(f"{YH}[u] = {h}[u];", f"{YC}[u] = {c}[u];")
    L.finish(f"forward LSTM, {T} steps, {F} inputs, {H} units; W: {r.W.describe()}; R: {r.R.describe()}",
             f"gate sums exact in {ct}, requantized to {r.gate}; c {cell}, h {r.state}")


def gru(p: Program, node: Node) -> None:
    """:func:`fpgac.ir.semantics.recurrent.gru_fixed`, steps 1-5, per sample."""
    r = _Recurrent(p, node)
    a = r.plan
    H, T, F = r.H, r.T, r.F
    s_t, u_t = a.sigmoid.out_type, a.tanh.out_type
    lbr = bool(node.attrs["linear_before_reset"])
    exact = a.exact
    one = 1 << s_t.frac_bits
    fn, fh = s_t.frac_bits + u_t.frac_bits, s_t.frac_bits + r.state.frac_bits
    fsum = max(fn, fh)
    ax_b = int(max(np.abs(r.bx) + r.ax_bound, default=0))
    ah_b = int(max(np.abs(r.bh) + r.ah_bound, default=0))
    extra = [rng(exact["reset_sum"])] if lbr else [rng(exact["reset_product"])]
    ct = compute_type((-ax_b, ax_b), (-ah_b, ah_b), (-ax_b - ah_b, ax_b + ah_b), rng(r.acc), rng(exact["state_sum"]),
                      *extra, where=where(node))
    BX = const_for(p, node, "bx", r.bx, "biases", f"Wb at {r.acc.frac_bits} fractional bits")
    BH = const_for(p, node, "bh", r.bh, "biases", f"Rb at {r.acc.frac_bits} fractional bits")
    rq_gate = requantizer(p, r.acc, r.gate)
    rq_state = requantizer(p, exact["state_sum"], r.state)
    sig = sigmoid_by_magnitude(p, a.sigmoid, r.gate)
    th = tanh_by_magnitude(p, a.tanh, r.gate)
    L = Layer(p, node)
    X = L.input(0, "x")
    Y, YH = L.output(0, "y"), L.output(1, "y_h")
    w, it = L.w, p.index
    h = r.init_state(p, node, L, 4, "h", r.state)
    ax = L.local(ct, "ax", 3 * H)
    ah = L.local(ct, "ah", 3 * H)
    z = L.local(ct, "z", H)
    rr = L.local(ct, "rg", H)
    if lbr:
        rq_n = requantizer(p, exact["reset_sum"], r.gate)
    else:
        rq_q = requantizer(p, exact["reset_product"], r.state)
        rq_n = rq_gate
        q = L.local(container(r.state), "q", H)
    with w.block(f"for ({it} t = 0; t < {T}; t++)"):
        w(f"const {p.ctype(node.inputs[0])} *xt = {X} + t * {F};")
        with w.block(f"for ({it} j = 0; j < {3 * H}; j++)"):
            w(f"{ct} acc = 0;")
            with w.block(""):
                r.W.dot(w, ct, "acc", "j", "xt", it, r.xmax)
            w(f"{ax}[j] = {shl(ct, 'acc', r.sx)} + {BX}[j];")
        with w.block(f"for ({it} j = 0; j < {3 * H if lbr else 2 * H}; j++)"):
            w(f"{ct} acc = 0;")
            with w.block(""):
                r.R.dot(w, ct, "acc", "j", h, it, r.hmax)
            w(f"{ah}[j] = {shl(ct, 'acc', r.sh)} + {BH}[j];")
        with w.block(f"for ({it} u = 0; u < {H}; u++)"):
            w(f"{z}[u] = {sig}({rq_gate}({ax}[u] + {ah}[u]));",
              f"{rr}[u] = {sig}({rq_gate}({ax}[{H} + u] + {ah}[{H} + u]));")
        if not lbr:
            with w.block(f"for ({it} u = 0; u < {H}; u++)"):
                w(f"{q}[u] = {rq_q}({rr}[u] * {h}[u]);")
        with w.block(f"for ({it} u = 0; u < {H}; u++)"):
            if lbr:
                pre = f"{shl(ct, f'{ax}[{2 * H} + u]', s_t.frac_bits)} + {rr}[u] * {ah}[{2 * H} + u]"
                w(f"const {ct} n = {th}({rq_n}({pre}));")
            else:
                w(f"{ct} acc = 0;")
                with w.block(""):
                    r.R.dot(w, ct, "acc", f"{2 * H} + u", q, it, r.hmax)
                w(f"const {ct} n = {th}({rq_n}({ax}[{2 * H} + u] + {shl(ct, 'acc', r.sh)} + {BH}[{2 * H} + u]));")
            total = f"{shl(ct, f'({one} - {z}[u]) * n', fsum - fn)} + {shl(ct, f'{z}[u] * {h}[u]', fsum - fh)}"
            w(f"{h}[u] = {rq_state}({total});",
              f"{Y}[t * {H} + u] = {h}[u];")
    w(f"for ({it} u = 0; u < {H}; u++)", f"    {YH}[u] = {h}[u];")
    L.finish(f"forward GRU, {T} steps, {F} inputs, {H} units, linear_before_reset={int(lbr)}; "
             f"W: {r.W.describe()}; R: {r.R.describe()}",
             f"sums exact in {ct}, gates requantized to {r.gate}; h {r.state}")
