"""LSTM and GRU over a whole sequence: one gate matrix product per step, then each hidden unit's
gates, cell and state through a short pipeline, a group of units a cycle.

The numbers are those of the golden model (``fpgac.ir.semantics.recurrent``), given here as plain
integers: per step ``t`` the ``4 * hidden`` gate sums are ``[x_t, h] @ weights + bias`` (the shifts
to the accumulator's fractional bits folded into ``weights``), computed by a :class:`Dense`
(``reuse`` 1: adder trees) or a :class:`DenseReuse` (multiply-accumulate units serving ``reuse``
weights each). Sum ``k`` of unit ``j`` is column ``k * hidden + j``: LSTM ``i, o, f, c``; GRU
``z, r, n_x, n_h`` (``linear_before_reset = 1``)::

    LSTM  g = rq(a, G);  i, o, f = sig(g_i, g_o, g_f);  k = th(g_c)
          c = rq((f*c << .) + (i*k << .), C);  h = rq(o * th_cell(c), S)
    GRU   z, r = sig(rq(a_z, G)), sig(rq(a_r, G));  n = th(rq((a_nx << f_s) + r*a_nh, G))
          h = rq((((1 << f_s) - z)*n << .) + (z*h << .), S)

with ``sig(g) = sigmoid[|g|]`` or ``(1 << f_s) - sigmoid[|g|]`` for ``g < 0``, and ``th(g) = ±tanh[|g|]``.

The pipeline takes ``units`` hidden units a cycle (a divisor of ``hidden``), so a step costs the
matrix product's latency plus ``hidden / units`` cycles plus the pipeline's four; the state is
held in rotating registers (the group a cycle reads is always the low lanes) and the new state is
shifted in as groups finish, so no register is addressed by a group counter. One sequence is in
flight at a time: the input is taken when idle, the output is held until taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from fpgac.hdl.dense import Dense, DenseReuse
from fpgac.hdl.lanes import Component, Lanes, Pipeline, shape_for
from fpgac.hdl.lookup import TableSpec, table_finish, table_reads
from fpgac.hdl.requant import Overflow, Rounding, requant_expr

__all__ = ["Fixed", "Recurrent", "group_size"]

#: register stages of the elementwise pipeline
PIPELINE_STAGES = 4


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


def group_size(hidden: int, reuse: int) -> int:
    """Hidden units the pipeline takes a cycle: the smallest divisor of ``hidden`` of at least
    ``hidden / reuse``, so the pipeline's cycles per step are about the matrix product's."""
    want = -(-hidden // max(1, reuse))
    return min(d for d in range(1, hidden + 1) if hidden % d == 0 and d >= want)


def _mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    corners = [x * y for x in a for y in b]
    return min(corners), max(corners)


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


def _shl(a: tuple[int, int], k: int) -> tuple[int, int]:
    return a[0] << k, a[1] << k


class Recurrent(Component):
    """An LSTM (``kind="lstm"``) or GRU (``"gru"``) over a sequence, see the module docstring.

    Parameters
    ----------
    kind : "lstm" or "gru"
    x : Lanes
        The input word: ``steps * n_x`` lanes, step-major (the input's mantissas).
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
        What the output word holds: ``Y`` (``steps * hidden`` lanes of ``state``), ``h`` or ``c``.
    reuse : int
        1: the gate sums by adder trees (:class:`Dense`, ``clock_period`` placing its registers);
        more: by multiply-accumulate units each serving up to ``reuse`` weights
        (:class:`DenseReuse`), and ``group_size(hidden, reuse)`` units a cycle in the pipeline.

    Ports ``i``, ``o``. :attr:`latency`: cycles from the input's transfer to the output's, without
    stalls; :attr:`interval`: one more (the next sequence enters once the output is taken).
    """

    def __init__(self, kind: str, x: Lanes, *, steps: int, n_x: int, hidden: int, weights: object, bias: object,
                 acc_frac: int, gate: Fixed, state: Fixed, sigmoid: object, sigmoid_frac: int, tanh: object,
                 tanh_frac: int, cell: Fixed | None = None, tanh_cell: object = None, tanh_cell_frac: int = 0,
                 h0: object = None, c0: object = None, output: int = 0, reuse: int = 1,
                 clock_period: float | None = None) -> None:
        if kind not in ("lstm", "gru"):
            raise ValueError(f"Recurrent kind must be 'lstm' or 'gru', not {kind!r}")
        if kind == "lstm" and (cell is None or tanh_cell is None):
            raise ValueError("an LSTM needs a cell format and a tanh_cell table")
        if x.count != steps * n_x:
            raise ValueError(f"Recurrent input {x} is not {steps} steps of {n_x} lanes")
        if output not in (0, 1, 2) or (output == 2 and kind != "lstm"):
            raise ValueError(f"Recurrent output {output!r}: 0 (Y), 1 (h) or, for an LSTM, 2 (c)")
        self.kind, self.steps, self.n_x, self.hidden, self.output = kind, steps, n_x, hidden, output
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
        self.matvec = (Dense(w, bias, x=self.v_lanes, clock_period=clock_period) if reuse == 1
                       else DenseReuse(w, bias, x=self.v_lanes, reuse=reuse))
        self.units = hidden if reuse == 1 else group_size(hidden, reuse)
        self.groups = hidden // self.units
        self.out_lanes = {0: Lanes(steps * hidden, state.width, state.signed), 1: self.h_lanes,
                          2: self.c_lanes}[output]
        step = self.matvec.latency + self.groups + PIPELINE_STAGES + 1
        self.latency = 1 + steps * step
        self.interval = self.latency + 1
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    # -- the elementwise pipeline ------------------------------------------------------------

    def _sum_bounds(self, k: int) -> tuple[int, int]:
        """The bounds of gate sum ``k`` over every unit (the lanes all have the product's format)."""
        bounds = self.matvec.bounds[k * self.hidden:(k + 1) * self.hidden]
        return min(lo for lo, _ in bounds), max(hi for _, hi in bounds)

    def _magnitude(self, m: Module, g: Value, fmt: Fixed, name: str) -> tuple[Signal, Value]:
        """``|g|`` and the sign of a value of format ``fmt``."""
        lanes = fmt.lanes
        mag = Signal(shape_for(0, max(-lanes.min, lanes.max)), name=name)
        m.d.comb += mag.eq(Mux(g < 0, -g, g) if lanes.signed else g)
        return mag, (g < 0) if lanes.signed else Const(0, 1)

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
        mags, negs = [], []
        for k in range(4):
            for p, a in enumerate(acc[k]):
                g = gate.rq(m, a, self._sum_bounds(k), self.acc_frac)
                mag, neg = self._magnitude(m, g, gate, f"mag{k}_{p}")
                mags.append(mag)
                negs.append(neg)
        top = max(gate.lanes.max, -gate.lanes.min)
        n = self.units
        sig, th = table_reads(m, pipe, [(self.sigmoid, mags[:3 * n], 0, top, "sigmoid"),
                                        (self.tanh, mags[3 * n:], 0, top, "tanh")])
        negs = [pipe.reg(v, name=f"neg{q}") for q, v in enumerate(negs)]
        c_old = [pipe.reg(v, name=f"c_old{p}") for p, v in enumerate(c_old)]
        values = ([self._signed_table(self.sigmoid, r, neg, one) for r, neg in zip(sig, negs[:3 * n])]
                  + [self._signed_table(self.tanh, r, neg, None) for r, neg in zip(th, negs[3 * n:])])
        pipe.stage()
        regs = [pipe.reg(v, shape_for(*b), name=f"act{q}") for q, (v, b) in enumerate(values)]
        bounds = [b for _, b in values]
        c_old = [pipe.reg(v, name=f"c_old_{p}") for p, v in enumerate(c_old)]
        fc, fk = fs + cell.frac, fs + fu
        total = max(fc, fk)
        c_range = (cell.lanes.min, cell.lanes.max)
        new_c, mags, negs = [], [], []
        for p in range(n):
            i, o, f, k = (regs[q * n + p] for q in range(4))
            ib, fb, kb = bounds[p], bounds[2 * n + p], bounds[3 * n + p]
            s = (f * c_old[p] << (total - fc)) + (i * k << (total - fk))
            sbounds = _add(_shl(_mul(fb, c_range), total - fc), _shl(_mul(ib, kb), total - fk))
            c = cell.rq(m, s, sbounds, total)
            mag, neg = self._magnitude(m, c, cell, f"cmag{p}")
            new_c.append(c)
            mags.append(mag)
            negs.append(neg)
        (reads,) = table_reads(m, pipe, [(self.tanh_cell, mags, 0, max(cell.lanes.max, -cell.lanes.min), "tanh_cell")])
        outs = [pipe.reg(regs[n + p], name=f"o{p}") for p in range(n)]
        new_c = [pipe.reg(c, name=f"c_new{p}") for p, c in enumerate(new_c)]
        negs = [pipe.reg(v, name=f"cneg{p}") for p, v in enumerate(negs)]
        new_h = []
        for p in range(n):
            t, tb = self._signed_table(self.tanh_cell, reads[p], negs[p], None)
            new_h.append(state.rq(m, outs[p] * t, _mul(bounds[n + p], tb), fs + fv))
        pipe.stage()
        return ([pipe.reg(v, state.lanes.shape, name=f"h_out{p}") for p, v in enumerate(new_h)],
                [pipe.reg(v, cell.lanes.shape, name=f"c_out{p}") for p, v in enumerate(new_c)])

    def _gru(self, m: Module, pipe: Pipeline, acc: list[list[Value]], h_old: list[Value], c_old: list[Value]):
        fs, fu = self.fracs["s"], self.fracs["u"]
        gate, state = self.gate, self.state
        one = 1 << fs
        n = self.units
        mags, negs = [], []
        for k in range(2):
            for p, a in enumerate(acc[k]):
                g = gate.rq(m, a, self._sum_bounds(k), self.acc_frac)
                mag, neg = self._magnitude(m, g, gate, f"mag{k}_{p}")
                mags.append(mag)
                negs.append(neg)
        top = max(gate.lanes.max, -gate.lanes.min)
        (sig,) = table_reads(m, pipe, [(self.sigmoid, mags, 0, top, "sigmoid")])
        negs = [pipe.reg(v, name=f"neg{q}") for q, v in enumerate(negs)]
        nx = [pipe.reg(v, name=f"nx{p}") for p, v in enumerate(acc[2])]
        nh = [pipe.reg(v, name=f"nh{p}") for p, v in enumerate(acc[3])]
        h_old = [pipe.reg(v, name=f"h_old{p}") for p, v in enumerate(h_old)]
        values = [self._signed_table(self.sigmoid, r, neg, one) for r, neg in zip(sig, negs)]
        pipe.stage()
        regs = [pipe.reg(v, shape_for(*b), name=f"act{q}") for q, (v, b) in enumerate(values)]
        bounds = [b for _, b in values]
        nx = [pipe.reg(v, name=f"nx_{p}") for p, v in enumerate(nx)]
        nh = [pipe.reg(v, name=f"nh_{p}") for p, v in enumerate(nh)]
        h_old = [pipe.reg(v, name=f"h_old_{p}") for p, v in enumerate(h_old)]
        mags, negs = [], []
        for p in range(n):
            pre = (nx[p] << fs) + regs[n + p] * nh[p]
            pb = _add(_shl(self._sum_bounds(2), fs), _mul(bounds[n + p], self._sum_bounds(3)))
            g = gate.rq(m, pre, pb, self.acc_frac + fs)
            mag, neg = self._magnitude(m, g, gate, f"nmag{p}")
            mags.append(mag)
            negs.append(neg)
        (reads,) = table_reads(m, pipe, [(self.tanh, mags, 0, top, "tanh")])
        z = [pipe.reg(regs[p], name=f"z{p}") for p in range(n)]
        h_old = [pipe.reg(v, name=f"h_prev{p}") for p, v in enumerate(h_old)]
        negs = [pipe.reg(v, name=f"nneg{p}") for p, v in enumerate(negs)]
        fn, fh = fs + fu, fs + state.frac
        total = max(fn, fh)
        h_range = (state.lanes.min, state.lanes.max)
        new_h = []
        for p in range(n):
            t, tb = self._signed_table(self.tanh, reads[p], negs[p], None)
            zb = bounds[p]
            s = ((one - z[p]) * t << (total - fn)) + (z[p] * h_old[p] << (total - fh))
            sb = _add(_shl(_mul((one - zb[1], one - zb[0]), tb), total - fn), _shl(_mul(zb, h_range), total - fh))
            new_h.append(state.rq(m, s, sb, total))
        pipe.stage()
        return [pipe.reg(v, state.lanes.shape, name=f"h_out{p}") for p, v in enumerate(new_h)], []

    # -- the sequence ------------------------------------------------------------------------

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.matvec = mv = self.matvec
        T, I, H, P, G = self.steps, self.n_x, self.hidden, self.units, self.groups
        x, hl, sw = self.in_lanes, self.h_lanes, self.state.width
        cw = self.cell.width if self.cell is not None else 1

        xs = Signal(x.bits, name="xs", reset_less=True)  # the sequence
        h = Signal(H * sw, name="h")  # the state; rotated by a group as each group is issued
        c = Signal(H * cw, name="c")
        h_new = Signal(H * sw, name="h_new", reset_less=True)  # the next state, shifted in by groups
        c_new = Signal(H * cw, name="c_new", reset_less=True)
        ys = Signal(T * H * sw if self.output == 0 else 1, name="ys", reset_less=True)
        t = Signal(range(max(T, 2)), name="t")
        g = Signal(range(max(G, 2)), name="g")  # groups issued in this step
        done = Signal(range(G + 1), name="done")  # groups finished in this step

        # the matrix product's input: x_t and h, in one lane format
        x_t = Array(xs[k * I * x.width:(k + 1) * I * x.width] for k in range(T))[t] if T > 1 else xs
        x_lanes = Lanes(I, x.width, x.signed).split(x_t)
        m.d.comb += mv.i.payload.eq(self.v_lanes.join([*x_lanes, *hl.split(h)]))

        # the elementwise pipeline, fed group g of the held gate sums
        acc_lanes = mv.out_lanes
        sums = acc_lanes.split(mv.o.payload)
        acc = []
        for k in range(4):
            if G == 1:
                acc.append(sums[k * H:(k + 1) * H])
                continue
            words = Array(Cat(*sums[k * H + q * P:k * H + (q + 1) * P]) for q in range(G))[g]
            acc.append(Lanes(P, acc_lanes.width, acc_lanes.signed).split(words))
        issue = Signal(name="issue")
        pipe = Pipeline(m, issue, name="cell")
        h_old = Lanes(P, sw, self.state.signed).split(h[:P * sw])
        c_old = Lanes(P, cw, self.cell.signed).split(c[:P * cw]) if self.cell is not None else []
        new_h, new_c = (self._lstm if self.kind == "lstm" else self._gru)(m, pipe, acc, h_old, c_old)
        finished, _ = pipe.finish(Const(1, 1))
        assert pipe.latency == PIPELINE_STAGES

        next_h = Cat(h_new[P * sw:], *new_h) if G > 1 else Cat(*new_h)
        next_c = (Cat(c_new[P * cw:], *new_c) if G > 1 else Cat(*new_c)) if new_c else c_new
        last = Signal(name="last")  # this cycle finishes the step
        m.d.comb += last.eq(finished & (done == G - 1))
        with m.If(finished):
            m.d.sync += [h_new.eq(next_h), c_new.eq(next_c), done.eq(done + 1)]
            if self.output == 0:
                m.d.sync += ys.eq(Cat(ys[P * sw:], *new_h) if T * G > 1 else Cat(*new_h))

        m.d.comb += [self.o.payload.eq({0: ys, 1: h, 2: c}[self.output])]
        with m.FSM(name="seq"):
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    m.d.sync += [xs.eq(self.i.payload), t.eq(0),
                                 h.eq(hl.pack(self.h0)),
                                 c.eq(Lanes(H, cw, self.cell.signed).pack(self.c0) if self.cell is not None else 0)]
                    m.next = "ISSUE"
            with m.State("ISSUE"):
                m.d.comb += mv.i.valid.eq(1)
                m.d.sync += [g.eq(0), done.eq(0)]
                with m.If(mv.i.ready):
                    m.next = "WAIT"
            with m.State("WAIT"):
                with m.If(mv.o.valid):
                    m.next = "ELEM"
            with m.State("ELEM"):
                m.d.comb += issue.eq(1)
                m.d.sync += g.eq(g + 1)
                if G > 1:
                    m.d.sync += [h.eq(Cat(h[P * sw:], h[:P * sw])), c.eq(Cat(c[P * cw:], c[:P * cw]))]
                with m.If(g == G - 1):
                    m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(last):
                    m.d.comb += mv.o.ready.eq(1)  # the gate sums are used up
                    m.d.sync += [h.eq(next_h), c.eq(next_c), t.eq(t + 1)]
                    with m.If(t == T - 1):
                        m.next = "OUT"
                    with m.Else():
                        m.next = "ISSUE"
            with m.State("OUT"):
                m.d.comb += self.o.valid.eq(1)
                with m.If(self.o.ready):
                    m.next = "IDLE"
        return m
