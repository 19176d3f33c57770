"""A dense layer time-multiplexed onto a few multiply-accumulate units (``--reuse R``), the
non-zero weights read from ROMs; the fully parallel form is :class:`fpgac.hdl.dense.Dense`."""

from __future__ import annotations

import math

from amaranth.hdl import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fpgac.hdl.arith import Term, TermBuilder
from fpgac.hdl.dense import _int_bias, _int_matrix, _out_lanes, dense_bounds
from fpgac.hdl.lanes import Component, Lanes, Pipeline, shape_for

__all__ = ["DenseReuse"]


class DenseReuse(Component):
    """A dense layer, time-multiplexed: ``ceil(nnz / reuse)`` multiply-accumulate units.

    Only non-zero weights are stored and iterated. The ``nnz`` non-zeros, ordered by output then
    input, are cut into ``units = ceil(nnz / reuse)`` consecutive chunks of at most
    ``steps = ceil(nnz / units) <= reuse`` entries; each unit has a ROM of its chunk's
    ``(input index, weight, slot, first, last)`` entries and, per step, multiplies the selected
    input lane by the weight and accumulates. When an output's last entry in the chunk is done,
    the unit's partial sum for it is kept in a slot register. An output split across neighbouring
    chunks is the sum of their slots; adding those and the bias makes the result.

    Parameters
    ----------
    weights, bias, x, out_width, out_signed
        As :class:`Dense`.
    reuse : int
        The reuse factor R: each multiplier is used up to R times per vector.

    Ports
    -----
    As :class:`Dense`: ``i`` (``n_in`` lanes of ``x``), ``o`` (``n_out`` lanes).

    Each multiply-accumulate is pipelined: the selected input lane and the weight are registered,
    then their product, then it is accumulated (a multiplexer over the inputs, a multiplier and an
    adder in one cycle were the founding LSTM's slowest path, measured with nextpnr).

    Timing: an input is accepted while the unit is idle or in its last step; a vector takes
    ``steps + 2`` cycles (its ``steps`` entries through the three stages), then one cycle to add
    the partials into the output register, so the initiation interval is ``steps + 2``
    (:attr:`interval`) when the output is not stalled and the latency from the accepting edge to
    ``o.valid`` is ``steps + 4`` cycles (:attr:`latency`). A stalled output holds the partials and
    the pipeline; the next vector waits in the input register.
    """

    def __init__(
        self,
        weights: object,
        bias: object = None,
        *,
        x: Lanes,
        reuse: int,
        out_width: int | None = None,
        out_signed: bool | None = None,
    ) -> None:
        if not isinstance(reuse, int) or reuse < 1:
            raise ValueError(f"DenseReuse reuse must be a positive integer, not {reuse!r}")
        self.weights = _int_matrix(weights, x, "DenseReuse")
        n_in, n_out = self.weights.shape
        self.bias = _int_bias(bias, n_out, "DenseReuse")
        self.in_lanes = x
        self.reuse = reuse
        self.bounds = dense_bounds(self.weights, self.bias, x)
        self.out_lanes = _out_lanes(self.bounds, out_width, out_signed, "DenseReuse")

        entries = [(j, i, int(self.weights[i, j])) for j in range(n_out) for i in range(n_in) if self.weights[i, j]]
        self.nnz = len(entries)
        self.units = math.ceil(self.nnz / reuse) if entries else 0
        self.steps = math.ceil(self.nnz / self.units) if entries else 1
        self.chunks = [entries[u * self.steps:(u + 1) * self.steps] for u in range(self.units)]
        self.interval = self.steps + 2 if entries else 1
        self.latency = self.steps + 4 if entries else 1
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def _product_bounds(self, w: int) -> tuple[int, int]:
        a, b = w * self.in_lanes.min, w * self.in_lanes.max
        return min(a, b), max(a, b)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x, out = self.in_lanes, self.out_lanes
        if not self.chunks:  # every weight is zero: the output is the bias
            pipe = Pipeline(m, self.i.valid)
            pipe.stage()
            m.d.comb += self.o.payload.eq(out.join([Const(b, shape_for(b, b)) for b in self.bias]))
            o_valid, i_ready = pipe.finish(self.o.ready)
            m.d.comb += [self.o.valid.eq(o_valid), self.i.ready.eq(i_ready)]
            return m

        steps = self.steps
        x_reg = Signal(x.bits, name="x_reg")
        x_lanes = Array(x.split(x_reg))
        busy = Signal(name="busy")
        pending = Signal(name="pending")  # the slots hold a finished vector not yet in the output
        cycles = steps + 2  # the entries, then two cycles for the last one's product and sum
        t = Signal(range(cycles), name="step")
        entry_valid = t < steps
        o_valid = Signal(name="o_valid")
        o_reg = Signal(out.bits, name="o_reg")

        load_out = Signal(name="load_out")
        step = Signal(name="do_step")
        m.d.comb += [
            load_out.eq(pending & (~o_valid | self.o.ready)),
            step.eq(busy & (~pending | load_out)),
            self.i.ready.eq(~busy | (step & (t == cycles - 1))),
            self.o.valid.eq(o_valid),
            self.o.payload.eq(o_reg),
        ]

        idx_bits = max(1, (x.count - 1).bit_length())
        pieces: dict[int, list[Term]] = {}  # output -> its slots' partial sums
        for u, chunk in enumerate(self.chunks):
            outputs = list(dict.fromkeys(j for j, _, _ in chunk))
            wmax = max(abs(w) for _, _, w in chunk)
            w_shape = signed(wmax.bit_length() + 1)
            slot_bits = max(1, (len(outputs) - 1).bit_length())
            fields = [("idx", idx_bits), ("w", w_shape.width), ("slot", slot_bits), ("first", 1), ("last", 1)]
            words = []
            for k in range(steps):
                if k < len(chunk):
                    j, i, w = chunk[k]
                    first = k == 0 or chunk[k - 1][0] != j
                    last = k == len(chunk) - 1 or chunk[k + 1][0] != j
                    vals = {"idx": i, "w": w, "slot": outputs.index(j), "first": first, "last": last}
                else:
                    vals = {"idx": 0, "w": 0, "slot": 0, "first": False, "last": False}
                word, pos = 0, 0
                for name, bits in fields:
                    word |= (int(vals[name]) & ((1 << bits) - 1)) << pos
                    pos += bits
                words.append(word)
            rom = Memory(shape=unsigned(sum(b for _, b in fields)), depth=steps, init=words)
            m.submodules[f"rom{u}"] = rom
            rp = rom.read_port(domain="comb")
            m.d.comb += rp.addr.eq(Mux(entry_valid, t, 0))
            entry, pos = {}, 0
            for name, bits in fields:
                entry[name] = rp.data[pos:pos + bits]
                pos += bits
            wv = entry["w"].as_signed()

            # exact bounds of every slot's partial sums (prefixes included) and the accumulator
            slot_bounds = []
            for j in outputs:
                prods = [self._product_bounds(w) for jj, _, w in chunk if jj == j]
                slot_bounds.append((sum(min(0, a) for a, _ in prods), sum(max(0, b) for _, b in prods)))
            acc_shape = shape_for(min(b[0] for b in slot_bounds), max(b[1] for b in slot_bounds))
            # stage 1: the input lane and the weight (0 past the entries); 2: the product; 3: the sum
            lane = Signal(x.shape, name=f"lane{u}", reset_less=True)
            weight = Signal(w_shape, name=f"w{u}", reset_less=True)
            first1, last1 = Signal(name=f"first{u}_1"), Signal(name=f"last{u}_1")
            slot1 = Signal(slot_bits, name=f"slot{u}_1", reset_less=True)
            prods = [self._product_bounds(w) for _, _, w in chunk]
            product = Signal(shape_for(min([0] + [a for a, _ in prods]), max([0] + [b for _, b in prods])),
                             name=f"product{u}", reset_less=True)
            first2, last2 = Signal(name=f"first{u}_2"), Signal(name=f"last{u}_2")
            slot2 = Signal(slot_bits, name=f"slot{u}_2", reset_less=True)
            acc = Signal(acc_shape, name=f"acc{u}")
            nxt = Signal(acc_shape, name=f"acc{u}_next")
            m.d.comb += nxt.eq(Mux(first2, 0, acc) + product)
            slots = [Signal(shape_for(*b), name=f"part{u}_{s}") for s, b in enumerate(slot_bounds)]
            with m.If(step):
                m.d.sync += [lane.eq(x_lanes[entry["idx"]]), weight.eq(Mux(entry_valid, wv, 0)),
                             first1.eq(entry["first"] & entry_valid), last1.eq(entry["last"] & entry_valid),
                             slot1.eq(entry["slot"]),
                             product.eq(lane * weight), first2.eq(first1), last2.eq(last1), slot2.eq(slot1),
                             acc.eq(nxt)]
                for s, reg in enumerate(slots):
                    with m.If(last2 & (slot2 == s)):
                        m.d.sync += reg.eq(nxt)
            for s, j in enumerate(outputs):
                pieces.setdefault(j, []).append(Term(slots[s], False, *slot_bounds[s]))

        tb = TermBuilder(m, "fin")
        values = []
        for j in range(out.count):
            terms = list(pieces.get(j, []))
            if self.bias[j]:
                b = self.bias[j]
                terms.append(Term(Const(b, shape_for(b, b)), False, b, b))
            if not terms:
                terms.append(Term(Const(0, 1), False, 0, 0))
            total = terms[0]
            for t2 in terms[1:]:
                total = tb.add(total, t2)
            values.append(total.value)

        with m.If(load_out):
            m.d.sync += pending.eq(0)
        with m.If(step):
            with m.If(t == cycles - 1):
                m.d.sync += [t.eq(0), busy.eq(0), pending.eq(1)]
            with m.Else():
                m.d.sync += t.eq(t + 1)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [x_reg.eq(self.i.payload), busy.eq(1), t.eq(0)]
        with m.If(load_out):
            m.d.sync += [o_reg.eq(out.join(values)), o_valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += o_valid.eq(0)
        return m
