"""The gate sums of :class:`~fpgac.hdl.Recurrent`: ``[x_t, h] @ weights + bias`` each step, by
adder trees (a :class:`~fpgac.hdl.Dense`, fully parallel) or by a folded multiply-accumulate array
whose weights stream from ROMs (see the :mod:`fpgac.hdl.recurrent` docstring for the folding).

Both forms take the step's input and state in the cycle ``start`` is high and hand the sums to the
elementwise pipeline by ``issue``; ``used`` releases them at the end of the step.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value

from fpgac.hdl.fold import PES_PER_COPY, Copy, banked
from fpgac.hdl.lanes import Lanes, shape_for

__all__ = ["GateSums", "bounds_add", "bounds_mul", "bounds_shl"]


def bounds_mul(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    """The range of a product of values in ranges ``a`` and ``b``."""
    corners = [x * y for x in a for y in b]
    return min(corners), max(corners)


def bounds_add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]


def bounds_shl(a: tuple[int, int], k: int) -> tuple[int, int]:
    return a[0] << k, a[1] << k


class GateSums:
    """The two forms of the gate sums, for :class:`~fpgac.hdl.Recurrent` (a mixin: it reads the
    recurrent unit's ``hidden``, ``units``, ``groups``, ``simd``, ``chunks``, ``lanes``,
    ``weights``, ``bias``, ``partial``, ``v_lanes`` and ``matvec``)."""

    @property
    def fold_extra_stages(self) -> int:
        """Register stages of the folded form between the ROMs' read and the products: the words'
        own, and with ROMs deeper than ``bank_words`` (banks, see :func:`~fpgac.hdl.fold.banked`)
        the bank's pick."""
        return 1 + (self.hidden // self.units * self.chunks > self.bank_words)

    def _parallel(self, m: Module, v: list[Value], issue: Signal) -> tuple[list[list[Value]], Signal, Signal]:
        """The sums by the :class:`Dense`: ``start`` hands it ``v``; all units issue at once when its
        output comes; ``used`` releases that output at the end of the step."""
        m.submodules.matvec = mv = self.matvec
        start, used, waiting = Signal(name="start"), Signal(name="sums_used"), Signal(name="waiting")
        H = self.hidden
        m.d.comb += [mv.i.payload.eq(self.v_lanes.join(v)), mv.i.valid.eq(start), mv.o.ready.eq(used)]
        with m.If(start):
            m.d.sync += waiting.eq(1)
        with m.Elif(waiting & mv.o.valid):
            m.d.sync += waiting.eq(0)
        m.d.comb += issue.eq(waiting & mv.o.valid)
        sums = mv.out_lanes.split(mv.o.payload)
        return [sums[k * H:(k + 1) * H] for k in range(4)], start, used

    def _folded(self, m: Module, v: list[Value], issue: Signal) -> tuple[list[list[Value]], Signal, Signal]:
        """The sums by the multiply-accumulate array: ``start`` takes ``v`` (this step's input and
        state, valid in that cycle) and runs the passes; a pass's sums are held in ``sums`` and
        issued the cycle after its last accumulation."""
        H, P, G, S, K, C = self.hidden, self.units, self.groups, self.simd, len(v), self.chunks
        start, used = Signal(name="start"), Signal(name="sums_used")
        w = self.weights
        wmax = int(np.abs(w).max()) if w.size else 0
        wshape = shape_for(-wmax - 1, wmax)
        # PE e = k * P + p computes column k * H + g * P + p in pass g; its ROM word at g * C + c holds
        # the weights of inputs c * S .. c * S + S - 1 (zeros past the last input)
        mask = (1 << wshape.width) - 1
        roms = []
        addr = Signal(range(max(G * C, 2)), name="addr")  # g * C + c, counted (no product in the path)
        for k in range(4):
            words = []
            for g in range(G):
                for c in range(C):
                    word = 0
                    for p in range(P):
                        for q in range(S):
                            i = c * S + q
                            value = int(w[i, k * H + g * P + p]) if i < K else 0
                            word |= (value & mask) << ((p * S + q) * wshape.width)
                    words.append(word)
            roms.append(banked(m, f"weights{k}", P * S * wshape.width, G * C, addr, Const(1, 1), init=words,
                               bank_words=self.bank_words))
        banks = len(roms[0][0])

        # stage 0: the address; stage 1: the ROMs' words (each bank's) and the inputs; 1b: the words
        # registered (a block RAM's output is slow); [1c: the bank picked;] the last of these also
        # copies the inputs, a copy per PES_PER_COPY multipliers (each by its readers); 2: the products;
        # 3: accumulate (the bias first), and at a pass's end, its sums
        running, g, c = Signal(name="running"), Signal(range(max(G, 2)), name="g"), Signal(range(max(C, 2)), name="c")
        with m.If(start):
            m.d.sync += [running.eq(1), g.eq(0), c.eq(0)]
        with m.Elif(running):
            with m.If(c == C - 1):
                m.d.sync += [c.eq(0), g.eq(g + 1)]
                with m.If(g == G - 1):
                    m.d.sync += running.eq(0)
            with m.Else():
                m.d.sync += c.eq(c + 1)
        with m.If(start):
            m.d.sync += addr.eq(0)
        with m.Elif(running):
            m.d.sync += addr.eq(addr + 1)
        # the input's chunks: loaded at ``start`` and rotated a chunk a cycle, so chunk ``c`` is
        # always the low lanes (no C-to-1 multiplexer), and every pass finds them back in order
        lanes = self.v_lanes
        W = lanes.width
        held = Signal(C * S * W, name="v_chunks", reset_less=True)
        with m.If(start):
            m.d.sync += held.eq(Cat(*v, Const(0, (C * S - K) * W)))
        with m.Elif(running & (C > 1)):
            m.d.sync += held.eq(Cat(held[S * W:], held[:S * W]))
        chunk = held[:S * W]
        v1 = Signal(S * lanes.width, name="v_sel", reset_less=True)
        valid1, first1, last1 = Signal(name="valid1"), Signal(name="first1"), Signal(name="last1")
        g1 = Signal.like(g, name="g1")
        m.d.sync += [v1.eq(chunk), valid1.eq(running), first1.eq(c == 0), last1.eq(c == C - 1), g1.eq(g)]
        bank = Signal(range(max(banks, 2)), name="bank1")
        m.d.sync += bank.eq(roms[0][1])
        words = [datas for datas, _ in roms]
        for stage in ("b", "c")[:self.fold_extra_stages]:  # the words' own stage, then the bank's pick
            later = []
            for k, datas in enumerate(words):
                picked = datas if stage == "b" else [Array(datas)[bank] if banks > 1 else datas[0]]
                regs = [Signal(len(d), name=f"w{k}_{stage}{j}", reset_less=True) for j, d in enumerate(picked)]
                m.d.sync += [r.eq(d) for r, d in zip(regs, picked)]
                later.append(regs)
            words = later
            flags = [valid1, first1, last1, g1, bank]
            regs = [Signal.like(f, name=f"{f.name}{stage}") for f in flags]
            m.d.sync += [r.eq(f) for r, f in zip(regs, flags)]
            valid1, first1, last1, g1, bank = regs
            if stage == ("b", "c")[self.fold_extra_stages - 1]:  # the last: a copy of the inputs per PES_PER_COPY PEs
                copies = [Copy(v1, Const(1, 1), name=f"v_{stage}{j}") for j in range(-(-4 * P // PES_PER_COPY))]
                for j, copy in enumerate(copies):
                    m.submodules[f"v_copy{j}"] = copy
                inputs = [Lanes(S, lanes.width, lanes.signed).split(copy.q) for copy in copies]
            else:
                later_v = Signal.like(v1, name=f"v_{stage}")
                m.d.sync += later_v.eq(v1)
                v1 = later_v
        pbounds = bounds_mul((-wmax - 1, wmax), (lanes.min, lanes.max))
        prod_shape = shape_for(pbounds[0] * S, pbounds[1] * S)
        products = []
        for k, datas in enumerate(words):
            ws = Lanes(P * S, wshape.width, True).split(datas[0])
            for p in range(P):
                xs1 = inputs[(k * P + p) // PES_PER_COPY]
                term = sum(ws[p * S + q] * xs1[q] for q in range(S))
                r = Signal(prod_shape, name=f"prod{k}_{p}", reset_less=True)
                m.d.sync += r.eq(term)
                products.append(r)
        valid2, first2, last2, g2 = Signal(name="valid2"), Signal(name="first2"), Signal(name="last2"), Signal.like(g1)
        m.d.sync += [valid2.eq(valid1), first2.eq(first1), last2.eq(last1), g2.eq(g1)]
        acc_shape = shape_for(*self.partial)
        sums, accs = [], []
        ready = Signal(name="sums_ready")
        for e, r in enumerate(products):
            k, p = divmod(e, P)
            biases = [int(self.bias[k * H + g_ * P + p]) for g_ in range(G)]
            bias = Array(Const(b, shape_for(min(biases + [0]), max(biases + [0]))) for b in biases)[g2] if G > 1 \
                else Const(biases[0], shape_for(min(biases[0], 0), max(biases[0], 0)))
            a = Signal(acc_shape, name=f"acc{k}_{p}", reset_less=True)
            nxt = Mux(first2, bias, a) + r
            out = Signal(shape_for(*self._sum_bounds(k)), name=f"sum{k}_{p}", reset_less=True)
            with m.If(valid2):
                m.d.sync += a.eq(nxt)
                with m.If(last2):
                    m.d.sync += out.eq(nxt)
            accs.append(a)
            sums.append(out)
        m.d.sync += ready.eq(valid2 & last2)
        gates = [sums[k * P:(k + 1) * P] for k in range(4)]
        E = self.lanes
        if E == P:
            m.d.comb += issue.eq(ready)
            return gates, start, used
        # a pass's sums held and handed on E units a cycle (the hold rotates), done by the next pass's
        count = Signal(range(P // E + 1), name="to_issue")
        widths = [len(g[0]) for g in gates]  # each sum's own width
        holds = [Signal(P * w, name=f"hold{k}", reset_less=True) for k, w in enumerate(widths)]
        with m.If(ready):
            m.d.sync += [hold.eq(Cat(*g)) for hold, g in zip(holds, gates)]
            m.d.sync += count.eq(P // E)
        with m.Elif(count != 0):
            m.d.sync += [hold.eq(Cat(hold[E * w:], hold[:E * w])) for hold, w in zip(holds, widths)]
            m.d.sync += count.eq(count - 1)
        m.d.comb += issue.eq(count != 0)
        return [Lanes(E, w, g[0].shape().signed).split(hold[:E * w]) for hold, w, g in zip(holds, widths, gates)], \
            start, used
