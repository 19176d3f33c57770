"""LSTM and GRU over a whole sequence: one gate matrix product per step, then each hidden unit's
gates, cell and state through a short pipeline, a group of units a cycle.

The numbers are those of the golden model (``fpgac.ir.semantics.recurrent``), given here as plain
integers: per step ``t`` the ``4 * hidden`` gate sums are ``[x_t, h] @ weights + bias`` (the shifts
to the accumulator's fractional bits folded into ``weights``). Sum ``k`` of unit ``j`` is column
``k * hidden + j``: LSTM ``i, o, f, c``; GRU ``z, r, n_x, n_h`` (``linear_before_reset = 1``)::

    LSTM  g = rq(a, G);  i, o, f = sig(g_i, g_o, g_f);  k = th(g_c)
          c = rq((f*c << .) + (i*k << .), C);  h = rq(o * th_cell(c), S)
    GRU   z, r = sig(rq(a_z, G)), sig(rq(a_r, G));  n = th(rq((a_nx << f_s) + r*a_nh, G))
          h = rq((((1 << f_s) - z)*n << .) + (z*h << .), S)

with ``sig(g) = sigmoid[|g|]`` or ``(1 << f_s) - sigmoid[|g|]`` for ``g < 0``, and ``th(g) = ±tanh[|g|]``.

Two forms:

- ``reuse`` 1, fully parallel: the sums by a :class:`Dense` (adder trees), then every unit at once
  through the elementwise pipeline (eight register stages: a carry chain or a table read each);
- folded (``reuse`` R > 1): a multiply-accumulate array of ``4 * units * simd`` multipliers, each
  used about R times per step. Pass ``g`` computes the four sums of hidden units ``g * units ..``
  over ``ceil((n_x + hidden) / simd)`` cycles, ``simd`` inputs a cycle (the same ones for all
  multipliers, from a register of the step's input and state that rotates by ``simd`` lanes a
  cycle: no multiplexer); the weights stream from ROMs (block RAM when large), one word per cycle
  at a counted address; each pass's sums go through the elementwise pipeline while the
  next pass accumulates, a few units a cycle (as many as fit in a pass's cycles, so the tables
  and multipliers of the pipeline are few). A step costs ``passes * ceil((n_x + hidden) / simd)
  + 13`` cycles (14 with ROMs deeper than a block RAM: their banks' words registered, then one
  picked), plus the cycles a pass's units take through the pipeline when it takes fewer than
  all of them at once.

The state ``h`` stays fixed during a step (the product reads it) and the new state is shifted in
as groups finish; the per-unit state the pipeline reads (``c``, and ``h`` for a GRU) is held in
rotating registers, so the group a pass reads is always the low lanes and no register is
addressed by a group counter. One sequence is in flight at a time: the input is taken when idle,
the output is held until taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from fpgac.hdl.dense import Dense
from fpgac.hdl.fold import BANK_WORDS
from fpgac.hdl.gate_sums import GateSums, bounds_add, bounds_mul, bounds_shl
from fpgac.hdl.lanes import Component, Lanes, Pipeline, shape_for
from fpgac.hdl.lookup import TableSpec, table_finish, table_reads
from fpgac.hdl.requant import Overflow, Rounding, requant_expr

__all__ = ["Fixed", "Recurrent", "folding"]

#: register stages of the elementwise pipeline
PIPELINE_STAGES = 8


@dataclass(frozen=True)
class Fixed:
    """A fixed-point format a value is requantized to: ``width`` bits, ``frac`` fractional bits."""

    width: int
    frac: int
    signed: bool = True
    rounding: object = Rounding.TRN
    overflow: object = Overflow.WRAP

    @property
    def lanes(self) -> Lanes:
        return Lanes(1, self.width, self.signed)

    def rq(self, m: Module, value: Value, bounds: tuple[int, int], frac: int) -> Value:
        """``value`` (``frac`` fractional bits, within ``bounds``) requantized to this format."""
        return requant_expr(m, value, bounds[0], bounds[1], frac - self.frac, self.lanes,
                            Rounding.cast(self.rounding), Overflow.cast(self.overflow))


def folding(hidden: int, inputs: int, reuse: int) -> tuple[int, int]:
    """``(units, simd)`` of the folded form for ``reuse``: ``4 * units * simd`` multipliers, about
    ``4 * hidden * inputs / reuse`` of them; ``units`` divides ``hidden``."""
    want = max(1, -(-4 * hidden * inputs // max(1, reuse)))
    if want >= 4 * hidden:
        return hidden, min(inputs, -(-want // (4 * hidden)))
    return max(d for d in range(1, hidden + 1) if hidden % d == 0 and 4 * d <= max(4, want)), 1


class Recurrent(GateSums, Component):
    """An LSTM (``kind="lstm"``) or GRU (``"gru"``) over a sequence, see the module docstring.

    Parameters
    ----------
    kind : "lstm" or "gru"
    x : Lanes
        One step's input: ``n_x`` lanes; a sequence is ``steps`` words (beats) on ``i``.
    steps, n_x, hidden : int
    weights : integer array ``[n_x + hidden, 4 * hidden]``; bias : ``[4 * hidden]``
        The gate sums at ``acc_frac`` fractional bits.
    acc_frac : int
    gate, state : Fixed
        The gate pre-activations' and the state's (h, Y) formats; ``cell`` the LSTM's c.
    sigmoid, tanh, tanh_cell : TableSpec (or ``fpgac.ir.tables.Table``)
        Read by magnitude, mantissas of the gate format (``tanh_cell``: of the cell format);
        ``sigmoid_frac``, ``tanh_frac``, ``tanh_cell_frac`` are their outputs' fractional bits.
    h0, c0 : integer arrays ``[hidden]`` (the initial state; zeros when None)
    output : 0, 1 or 2
        What ``o`` carries: ``Y`` (a word of ``hidden`` lanes of ``state`` per step), or the last
        ``h`` or ``c`` (one word per sequence).
    reuse : int
        1: fully parallel, the sums by adder trees (:class:`Dense`, ``clock_period`` placing its
        registers); more: folded, each multiplier used about ``reuse`` times per step
        (:func:`folding`).
    bank_words : int
        Folded: weight ROMs deeper than this are banks of this many words (a stage more,
        :func:`~fpgac.hdl.fold.banked`). Default :data:`~fpgac.hdl.fold.BANK_WORDS`.

    Ports ``i``, ``o``: a word per step in (taken when the step starts), ``out_beats`` words per
    sequence out (each held until taken; a step that would overwrite one not yet taken waits).
    :attr:`period`: cycles per step; :attr:`latency` (``steps * period``): from the first input
    word's transfer to the last output word's, without stalls; :attr:`interval` the same.
    """

    def __init__(self, kind: str, x: Lanes, *, steps: int, n_x: int, hidden: int, weights: object, bias: object,
                 acc_frac: int, gate: Fixed, state: Fixed, sigmoid: object, sigmoid_frac: int, tanh: object,
                 tanh_frac: int, cell: Fixed | None = None, tanh_cell: object = None, tanh_cell_frac: int = 0,
                 h0: object = None, c0: object = None, output: int = 0, reuse: int = 1,
                 clock_period: float | None = None, bank_words: int = BANK_WORDS) -> None:
        if kind not in ("lstm", "gru"):
            raise ValueError(f"Recurrent kind must be 'lstm' or 'gru', not {kind!r}")
        if kind == "lstm" and (cell is None or tanh_cell is None):
            raise ValueError("an LSTM needs a cell format and a tanh_cell table")
        if x.count != n_x:
            raise ValueError(f"Recurrent input {x} is not a step of {n_x} lanes")
        if output not in (0, 1, 2) or (output == 2 and kind != "lstm"):
            raise ValueError(f"Recurrent output {output!r}: 0 (Y), 1 (h) or, for an LSTM, 2 (c)")
        self.kind, self.steps, self.n_x, self.hidden, self.output = kind, steps, n_x, hidden, output
        self.bank_words = bank_words
        self.acc_frac, self.gate, self.state, self.cell = acc_frac, gate, state, cell
        self.sigmoid, self.tanh = TableSpec.cast(sigmoid), TableSpec.cast(tanh)
        self.tanh_cell = TableSpec.cast(tanh_cell) if tanh_cell is not None else None
        self.fracs = {"s": sigmoid_frac, "u": tanh_frac, "v": tanh_cell_frac}
        self.h0 = [int(v) for v in (np.zeros(hidden, dtype=np.int64) if h0 is None else np.asarray(h0).reshape(-1))]
        self.c0 = [int(v) for v in (np.zeros(hidden, dtype=np.int64) if c0 is None else np.asarray(c0).reshape(-1))]
        self.in_lanes = x
        self.h_lanes = Lanes(hidden, state.width, state.signed)
        self.c_lanes = Lanes(hidden, cell.width, cell.signed) if cell is not None else None
        # one format for the matrix product's input lanes: x's and h's
        self.v_lanes = Lanes.fitting(n_x + hidden, min(x.min, state.lanes.min), max(x.max, state.lanes.max))
        w = np.asarray(weights, dtype=np.int64)
        if w.shape != (n_x + hidden, 4 * hidden):
            raise ValueError(f"Recurrent weights must be [{n_x + hidden}, {4 * hidden}], not {list(w.shape)}")
        self.weights = w
        self.bias = np.zeros(4 * hidden, dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
        self.out_lanes = self.c_lanes if output == 2 else self.h_lanes
        self.in_beats, self.out_beats = steps, steps if output == 0 else 1
        if reuse == 1:
            self.matvec = Dense(w, self.bias, x=self.v_lanes, clock_period=clock_period)
            self.bounds = self.matvec.bounds
            self.units, self.simd, self.chunks = hidden, n_x + hidden, 1
            step = self.matvec.latency + PIPELINE_STAGES + 1
        else:
            self.matvec = None
            self.units, self.simd = folding(hidden, n_x + hidden, reuse)
            self.chunks = -(-(n_x + hidden) // self.simd)  # cycles a pass takes
            # each term's bounds, then a sum's (all terms) and a partial sum's (any prefix of them)
            lo_v, hi_v = self.v_lanes.min, self.v_lanes.max
            term_lo, term_hi = np.minimum(w * lo_v, w * hi_v), np.maximum(w * lo_v, w * hi_v)
            self.bounds = [(int(b + term_lo[:, j].sum()), int(b + term_hi[:, j].sum())) for j, b in enumerate(self.bias)]
            self.partial = (int(min(0, (self.bias + np.minimum(term_lo, 0).sum(axis=0)).min(), self.bias.min())),
                            int(max(0, (self.bias + np.maximum(term_hi, 0).sum(axis=0)).max(), self.bias.max())))
            # the elementwise pipeline takes a pass's units a few at a time, done before the next pass's
            self.lanes = -(-self.units // self.chunks)
            while self.units % self.lanes:
                self.lanes += 1
            step = (hidden // self.units) * self.chunks + 4 + self.fold_extra_stages + PIPELINE_STAGES + (
                self.units // self.lanes if self.lanes < self.units else 0)
        if reuse == 1:
            self.lanes = hidden
        self.groups = hidden // self.units
        self.multipliers = 4 * self.units * self.simd if reuse > 1 else None
        self.period = step
        self.latency = self.interval = steps * step
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    # -- the elementwise pipeline ------------------------------------------------------------

    def _sum_bounds(self, k: int) -> tuple[int, int]:
        """The bounds of gate sum ``k`` over every unit (the lanes all have the product's format)."""
        bounds = self.bounds[k * self.hidden:(k + 1) * self.hidden]
        return min(lo for lo, _ in bounds), max(hi for _, hi in bounds)

    def _magnitude(self, m: Module, g: Value, fmt: Fixed, name: str) -> tuple[Signal, Value]:
        """``|g|`` and the sign of a value of format ``fmt``."""
        lanes = fmt.lanes
        mag = Signal(shape_for(0, max(-lanes.min, lanes.max)), name=name)
        m.d.comb += mag.eq(Mux(g < 0, -g, g) if lanes.signed else g)
        return mag, (g < 0) if lanes.signed else Const(0, 1)

    def _gate_magnitudes(self, m: Module, acc: list[list[Value]], gates: int) -> tuple[list[Value], list[Value]]:
        """The first ``gates`` sums of every unit requantized to the gate format, as magnitudes and
        signs (gate-major: gate 0's units first)."""
        mags, negs = [], []
        for k in range(gates):
            for p, a in enumerate(acc[k]):
                g = self.gate.rq(m, a, self._sum_bounds(k), self.acc_frac)
                mag, neg = self._magnitude(m, g, self.gate, f"mag{k}_{p}")
                mags.append(mag)
                negs.append(neg)
        return mags, negs

    def _signed_table(self, spec: TableSpec, read, negative: Value, one: int | None) -> tuple[Value, tuple[int, int]]:
        """``sig``/``th`` of a read: ``one - v`` (``one`` given) or ``-v`` where the argument was negative."""
        lo, hi = spec.bounds
        v = table_finish(spec, read)
        if one is not None:
            return Mux(negative, one - v, v), (min(lo, one - hi), max(hi, one - lo))
        return Mux(negative, -v, v), (min(lo, -hi), max(hi, -lo))

    def _lstm(self, m: Module, pipe: Pipeline, acc: list[list[Value]], h_old: list[Value], c_old: list[Value]):
        fs, fu, fv = self.fracs["s"], self.fracs["u"], self.fracs["v"]
        gate, cell, state = self.gate, self.cell, self.state
        one = 1 << fs
        n = self.lanes
        # 1: the gate pre-activations, requantized, as magnitude and sign
        mags, negs = self._gate_magnitudes(m, acc, 4)
        pipe.stage()
        mags = [pipe.reg(v, name=f"gmag{q}") for q, v in enumerate(mags)]
        negs = [pipe.reg(v, name=f"gneg{q}") for q, v in enumerate(negs)]
        c_old = [pipe.reg(v, name=f"c_in{p}") for p, v in enumerate(c_old)]
        # 2: the tables read
        top = max(gate.lanes.max, -gate.lanes.min)
        sig, th = table_reads(m, pipe, [(self.sigmoid, mags[:3 * n], 0, top, "sigmoid"),
                                        (self.tanh, mags[3 * n:], 0, top, "tanh")])
        negs = [pipe.reg(v, name=f"neg{q}") for q, v in enumerate(negs)]
        c_old = [pipe.reg(v, name=f"c_old{p}") for p, v in enumerate(c_old)]
        values = ([self._signed_table(self.sigmoid, r, neg, one) for r, neg in zip(sig, negs[:3 * n])]
                  + [self._signed_table(self.tanh, r, neg, None) for r, neg in zip(th, negs[3 * n:])])
        # 3: i, o, f and k
        pipe.stage()
        regs = [pipe.reg(v, shape_for(*b), name=f"act{q}") for q, (v, b) in enumerate(values)]
        bounds = [b for _, b in values]
        c_old = [pipe.reg(v, name=f"c_old_{p}") for p, v in enumerate(c_old)]
        fc, fk = fs + cell.frac, fs + fu
        total = max(fc, fk)
        c_range = (cell.lanes.min, cell.lanes.max)
        # 4: the products f*c and i*k
        fcs, iks = [], []
        for p in range(n):
            i, f, k = regs[p], regs[2 * n + p], regs[3 * n + p]
            ib, fb, kb = bounds[p], bounds[2 * n + p], bounds[3 * n + p]
            fcs.append((f * c_old[p], bounds_mul(fb, c_range)))
            iks.append((i * k, bounds_mul(ib, kb)))
        pipe.stage()
        fcs = [(pipe.reg(v, shape_for(*b), name=f"fc{p}"), b) for p, (v, b) in enumerate(fcs)]
        iks = [(pipe.reg(v, shape_for(*b), name=f"ik{p}"), b) for p, (v, b) in enumerate(iks)]
        outs = [pipe.reg(regs[n + p], name=f"o_{p}") for p in range(n)]
        # 5: the new cell, and its magnitude and sign
        new_c, mags, negs = [], [], []
        for p in range(n):
            s = (fcs[p][0] << (total - fc)) + (iks[p][0] << (total - fk))
            sbounds = bounds_add(bounds_shl(fcs[p][1], total - fc), bounds_shl(iks[p][1], total - fk))
            c = cell.rq(m, s, sbounds, total)
            mag, neg = self._magnitude(m, c, cell, f"cmag{p}")
            new_c.append(c)
            mags.append(mag)
            negs.append(neg)
        pipe.stage()
        new_c = [pipe.reg(c, cell.lanes.shape, name=f"c_next{p}") for p, c in enumerate(new_c)]
        mags = [pipe.reg(v, name=f"cmag_{p}") for p, v in enumerate(mags)]
        negs = [pipe.reg(v, name=f"cneg_{p}") for p, v in enumerate(negs)]
        outs = [pipe.reg(v, name=f"o__{p}") for p, v in enumerate(outs)]
        # 6: tanh of the cell read
        (reads,) = table_reads(m, pipe, [(self.tanh_cell, mags, 0, max(cell.lanes.max, -cell.lanes.min), "tanh_cell")])
        outs = [pipe.reg(v, name=f"o{p}") for p, v in enumerate(outs)]
        new_c = [pipe.reg(c, name=f"c_new{p}") for p, c in enumerate(new_c)]
        negs = [pipe.reg(v, name=f"cneg{p}") for p, v in enumerate(negs)]
        ths = [self._signed_table(self.tanh_cell, reads[p], negs[p], None) for p in range(n)]
        # 7: th_cell(c)
        pipe.stage()
        ths = [(pipe.reg(v, shape_for(*b), name=f"thc{p}"), b) for p, (v, b) in enumerate(ths)]
        outs = [pipe.reg(v, name=f"o___{p}") for p, v in enumerate(outs)]
        new_c = [pipe.reg(c, name=f"c_new_{p}") for p, c in enumerate(new_c)]
        # 8: h = rq(o * th_cell(c))
        new_h = [state.rq(m, outs[p] * t, bounds_mul(bounds[n + p], tb), fs + fv) for p, (t, tb) in enumerate(ths)]
        pipe.stage()
        return ([pipe.reg(v, state.lanes.shape, name=f"h_out{p}") for p, v in enumerate(new_h)],
                [pipe.reg(v, cell.lanes.shape, name=f"c_out{p}") for p, v in enumerate(new_c)])

    def _gru(self, m: Module, pipe: Pipeline, acc: list[list[Value]], h_old: list[Value], c_old: list[Value]):
        fs, fu = self.fracs["s"], self.fracs["u"]
        gate, state = self.gate, self.state
        one = 1 << fs
        n = self.lanes
        # 1: z and r pre-activations, requantized, as magnitude and sign
        mags, negs = self._gate_magnitudes(m, acc, 2)
        pipe.stage()
        mags = [pipe.reg(v, name=f"gmag{q}") for q, v in enumerate(mags)]
        negs = [pipe.reg(v, name=f"gneg{q}") for q, v in enumerate(negs)]
        nx = [pipe.reg(v, name=f"nx_in{p}") for p, v in enumerate(acc[2])]
        nh = [pipe.reg(v, name=f"nh_in{p}") for p, v in enumerate(acc[3])]
        h_old = [pipe.reg(v, name=f"h_in{p}") for p, v in enumerate(h_old)]
        # 2: the sigmoid read
        top = max(gate.lanes.max, -gate.lanes.min)
        (sig,) = table_reads(m, pipe, [(self.sigmoid, mags, 0, top, "sigmoid")])
        negs = [pipe.reg(v, name=f"neg{q}") for q, v in enumerate(negs)]
        nx = [pipe.reg(v, name=f"nx{p}") for p, v in enumerate(nx)]
        nh = [pipe.reg(v, name=f"nh{p}") for p, v in enumerate(nh)]
        h_old = [pipe.reg(v, name=f"h_old{p}") for p, v in enumerate(h_old)]
        values = [self._signed_table(self.sigmoid, r, neg, one) for r, neg in zip(sig, negs)]
        # 3: z and r
        pipe.stage()
        regs = [pipe.reg(v, shape_for(*b), name=f"act{q}") for q, (v, b) in enumerate(values)]
        bounds = [b for _, b in values]
        nx = [pipe.reg(v, name=f"nx_{p}") for p, v in enumerate(nx)]
        nh = [pipe.reg(v, name=f"nh_{p}") for p, v in enumerate(nh)]
        h_old = [pipe.reg(v, name=f"h_old_{p}") for p, v in enumerate(h_old)]
        # 4: r * (R_n h + Rb_n)
        rns = [(regs[n + p] * nh[p], bounds_mul(bounds[n + p], self._sum_bounds(3))) for p in range(n)]
        pipe.stage()
        rns = [(pipe.reg(v, shape_for(*b), name=f"rn{p}"), b) for p, (v, b) in enumerate(rns)]
        nx = [pipe.reg(v, name=f"nx__{p}") for p, v in enumerate(nx)]
        z = [pipe.reg(regs[p], name=f"z_{p}") for p in range(n)]
        h_old = [pipe.reg(v, name=f"h_prev_{p}") for p, v in enumerate(h_old)]
        # 5: n's pre-activation, requantized, as magnitude and sign
        mags, negs = [], []
        for p in range(n):
            pre = (nx[p] << fs) + rns[p][0]
            pb = bounds_add(bounds_shl(self._sum_bounds(2), fs), rns[p][1])
            g = gate.rq(m, pre, pb, self.acc_frac + fs)
            mag, neg = self._magnitude(m, g, gate, f"nmag{p}")
            mags.append(mag)
            negs.append(neg)
        pipe.stage()
        mags = [pipe.reg(v, name=f"nmag_{p}") for p, v in enumerate(mags)]
        negs = [pipe.reg(v, name=f"nneg_{p}") for p, v in enumerate(negs)]
        z = [pipe.reg(v, name=f"z__{p}") for p, v in enumerate(z)]
        h_old = [pipe.reg(v, name=f"h_prev__{p}") for p, v in enumerate(h_old)]
        # 6: the tanh read
        (reads,) = table_reads(m, pipe, [(self.tanh, mags, 0, top, "tanh")])
        z = [pipe.reg(v, name=f"z{p}") for p, v in enumerate(z)]
        h_old = [pipe.reg(v, name=f"h_prev{p}") for p, v in enumerate(h_old)]
        negs = [pipe.reg(v, name=f"nneg{p}") for p, v in enumerate(negs)]
        ns = [self._signed_table(self.tanh, reads[p], negs[p], None) for p in range(n)]
        # 7: n
        pipe.stage()
        ns = [(pipe.reg(v, shape_for(*b), name=f"n{p}"), b) for p, (v, b) in enumerate(ns)]
        z = [pipe.reg(v, name=f"z___{p}") for p, v in enumerate(z)]
        h_old = [pipe.reg(v, name=f"h_last{p}") for p, v in enumerate(h_old)]
        # 8: h = rq(((1 - z) * n << .) + (z * h << .))
        fn, fh = fs + fu, fs + state.frac
        total = max(fn, fh)
        h_range = (state.lanes.min, state.lanes.max)
        new_h = []
        for p in range(n):
            t, tb = ns[p]
            zb = bounds[p]
            s = ((one - z[p]) * t << (total - fn)) + (z[p] * h_old[p] << (total - fh))
            sb = bounds_add(bounds_shl(bounds_mul((one - zb[1], one - zb[0]), tb), total - fn),
                            bounds_shl(bounds_mul(zb, h_range), total - fh))
            new_h.append(state.rq(m, s, sb, total))
        pipe.stage()
        return [pipe.reg(v, state.lanes.shape, name=f"h_out{p}") for p, v in enumerate(new_h)], []

    # -- the sequence ------------------------------------------------------------------------

    def elaborate(self, platform: object) -> Module:
        m = Module()
        T, H, P = self.steps, self.hidden, self.lanes
        G = H // P  # issues per step
        x, hl, sw = self.in_lanes, self.h_lanes, self.state.width
        cw = self.cell.width if self.cell is not None else 1
        folded = self.matvec is None
        c_lanes = Lanes(H, cw, self.cell.signed) if self.cell is not None else None
        h_init, c_init = hl.pack(self.h0), c_lanes.pack(self.c0) if c_lanes is not None else 0

        h = Signal(H * sw, name="h", init=h_init)  # the state, fixed during a step
        h_rot = Signal(H * sw, name="h_rot", init=h_init)  # h, rotated a group at each issue
        c = Signal(H * cw, name="c", init=c_init)  # the cell, rotated a group at each issue
        h_new = Signal(H * sw, name="h_new", reset_less=True)  # the next state, shifted in by groups
        c_new = Signal(H * cw, name="c_new", reset_less=True)
        y_out = Signal(self.out_lanes.bits, name="y_out", reset_less=True)
        y_valid = Signal(name="y_valid")
        t = Signal(range(max(T, 2)), name="t")
        done = Signal(range(G + 1), name="done")  # groups finished in this step

        v = [*x.split(self.i.payload), *hl.split(h)]  # the product's input lanes, taken at ``start``

        # the elementwise pipeline: ``issue`` takes the sums of the next group
        issue = Signal(name="issue")
        pipe = Pipeline(m, issue, name="cell")
        acc, start, sums_used = (self._folded if folded else self._parallel)(m, v, issue)
        h_old = Lanes(P, sw, self.state.signed).split(h_rot[:P * sw])
        c_old = Lanes(P, cw, self.cell.signed).split(c[:P * cw]) if self.cell is not None else []
        new_h, new_c = (self._lstm if self.kind == "lstm" else self._gru)(m, pipe, acc, h_old, c_old)
        finished, _ = pipe.finish(Const(1, 1))
        assert pipe.latency == PIPELINE_STAGES
        if G > 1:
            with m.If(issue):
                m.d.sync += [h_rot.eq(Cat(h_rot[P * sw:], h_rot[:P * sw])), c.eq(Cat(c[P * cw:], c[:P * cw]))]

        next_h = Cat(h_new[P * sw:], *new_h) if G > 1 else Cat(*new_h)
        next_c = (Cat(c_new[P * cw:], *new_c) if G > 1 else Cat(*new_c)) if new_c else c_new
        last = Signal(name="last")  # this cycle finishes the step
        m.d.comb += last.eq(finished & (done == G - 1))
        with m.If(finished):
            m.d.sync += [h_new.eq(next_h), c_new.eq(next_c), done.eq(done + 1)]

        produce = Signal(name="produce")  # this step ends with an output word
        m.d.comb += [produce.eq(1 if self.output == 0 else t == T - 1),
                     self.o.valid.eq(y_valid), self.o.payload.eq(y_out)]
        with m.If(self.o.ready):
            m.d.sync += y_valid.eq(0)
        with m.FSM(name="seq"):
            with m.State("STEP"):  # the next step starts with its input, once its output has room
                with m.If(self.i.valid & (~produce | ~y_valid | self.o.ready)):
                    m.d.comb += [self.i.ready.eq(1), start.eq(1)]
                    m.d.sync += done.eq(0)
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(last):
                    m.d.comb += sums_used.eq(1)
                    with m.If(produce):
                        m.d.sync += [y_out.eq(next_c if self.output == 2 else next_h), y_valid.eq(1)]
                    with m.If(t == T - 1):  # the sequence is done: the next one starts from h0, c0
                        m.d.sync += [h.eq(h_init), h_rot.eq(h_init), c.eq(c_init), t.eq(0)]
                    with m.Else():
                        m.d.sync += [h.eq(next_h), h_rot.eq(next_h), c.eq(next_c), t.eq(t + 1)]
                    m.next = "STEP"
        return m
