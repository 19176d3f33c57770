"""A matrix-vector product folded onto ``pe x simd`` multipliers, weights in block RAM.

:class:`FoldedMatrix` computes ``y = x @ W + b`` for a constant ``W`` of ``[K, M]`` the way a
matrix-vector unit of a streaming accelerator does: ``pe`` processing elements each take
``simd`` inputs a cycle and multiply them by ``simd`` weights read from a ROM (one ROM word per
cycle holds the ``pe * simd`` weights), so a vector takes ``(M / pe) * (K / simd)`` cycles:
``M / pe`` *passes* (output groups) of ``K / simd`` steps. The input vector arrives as ``beats``
words of ``beat`` lanes (a convolution's receptive field is one beat; the pixels of a feature map
feeding a dense layer are ``H * W`` beats of ``C`` lanes); with more than one pass the beats are
kept in a memory and read again.

Each PE's ``simd`` products are summed by a pipelined tree and accumulated; at the end of a pass
the PE's sum plus the bias is requantized (optionally) into the output lanes of that group. The
output word (all ``M`` lanes) leaves after the last pass.
"""

from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Elaboratable, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fpgac.hdl.arith import stages_for, tree_depth, tree_reduce
from fpgac.hdl.dense import _int_bias, _int_matrix, dense_bounds
from fpgac.hdl.lanes import Component, Lanes, Pipeline, shape_for
from fpgac.hdl.requant import Requantize

__all__ = ["BANK_WORDS", "PES_PER_COPY", "Copy", "FoldedMatrix", "banked", "divisors", "fold_for", "lut_product"]


#: above this many chunks a word, the chunk a step is read from a shift register, not a multiplexer
#: (measured with synth_ecp5: 32 chunks of 72 bits 0.7 LUT4 a bit by multiplexer, 64 of 8 bits 1.5, 128
#: of 8 bits 2.3; a shift register 1)
SHIFT_CHUNKS = 32

#: a block RAM's depth at 9 bits a word or wider (an ECP5 DP16KD: 2,048 x 9; wider words take blocks
#: side by side). A deeper memory is built as banks of this many words, each read into a register
#: before the multiplexer that picks one: behind one memory, synthesis cascades the blocks' slow
#: outputs through that multiplexer in the same cycle (a folded layer's slowest path, measured)
BANK_WORDS = 2048


#: processing elements that read one copy of the input chunk's register: a register read by every
#: PE of a wide layer is a net across the device (on the routed founding CNN, 14 ns of conv2's
#: 21 ns critical path, measured), so each group of PEs gets its own copy
PES_PER_COPY = 8


class Copy(Elaboratable):
    """A register of ``value`` loaded when ``en``, as a module of its own: copies of one register
    in different modules are not merged by synthesis that keeps the hierarchy (``synth_ecp5
    -noflatten``, as ``fpgac report`` and the design README run it), so each can sit by its readers."""

    def __init__(self, value: Value, en: Value, name: str) -> None:
        self.value, self.en = Value.cast(value), en
        self.q = Signal(len(self.value), name=name, reset_less=True)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        with m.If(self.en):
            m.d.sync += self.q.eq(self.value)
        return m


def banked(m: Module, name: str, width: int, depth: int, read_addr: Value, read_en: Value, *,
           init: list[int] | None = None, write: tuple[Value, Value, Value] | None = None,
           bank_words: int = BANK_WORDS) -> tuple[list[Value], Value]:
    """A memory of ``depth`` words of ``width`` bits as banks of ``bank_words`` words (a power of
    two; one bank when it is not deeper): the banks' read data (a cycle after ``read_addr``, each
    bank read at the address's low bits) and the bank ``read_addr`` falls in (to be registered
    alongside the read, then to pick one). ``write``: ``(addr, data, en)`` of a write port."""
    if bank_words < 1 or bank_words & (bank_words - 1):
        raise ValueError(f"bank_words must be a power of two, not {bank_words}")
    count = -(-depth // bank_words)
    low = (bank_words - 1).bit_length()
    datas = []
    for k in range(count):
        size = min(bank_words, depth - k * bank_words)
        mem = Memory(shape=unsigned(width), depth=size,
                     init=[] if init is None else init[k * bank_words:k * bank_words + size])
        m.submodules[name if count == 1 else f"{name}{k}"] = mem
        if write is not None:
            addr, data, en = write
            wp = mem.write_port()
            hit = Const(1, 1) if count == 1 else Value.cast(addr)[low:] == k
            m.d.comb += [wp.addr.eq(addr[:low] if count > 1 else addr), wp.data.eq(data), wp.en.eq(en & hit)]
        rp = mem.read_port()
        m.d.comb += [rp.addr.eq(read_addr[:low] if count > 1 else read_addr), rp.en.eq(read_en)]
        datas.append(rp.data)
    return datas, (read_addr[low:] if count > 1 else Const(0, 1))


def divisors(n: int) -> list[int]:
    """The divisors of ``n``, ascending."""
    return [d for d in range(1, n + 1) if n % d == 0]


class FoldedMatrix(Component):
    """``y = x @ weights + bias`` on ``pe * simd`` multipliers, the input in ``beats`` words.

    Parameters
    ----------
    weights : integer array ``[K, M]``
    bias : integer array ``[M]``, optional (aligned to the products, as :class:`~fpgac.hdl.Dense`)
    x : Lanes
        The format of one input lane (``count`` is ignored: ``K`` lanes arrive in ``beats`` words).
    beat : int
        Lanes per input word; ``K`` must be a multiple. Input lane ``b * beat + l`` is lane ``l`` of word ``b``.
    simd : int
        Inputs each PE multiplies per cycle; must divide ``beat``.
    pe : int
        Processing elements (output lanes computed at once); must divide ``M``.
    requant : Requantize, optional
        Applied to each exact sum before it is stored (else the lanes hold the exact sums).
    levels_per_stage : int
        Adder levels of each PE's tree per register stage.
    dsps : int, optional
        How many of the ``pe * simd`` multipliers are written as ``*`` (which synthesis tools map to
        DSP blocks); the others are sums of shifted partial products (:func:`lut_product`), which
        they build in LUTs and carry chains. Default: all as ``*``.
    bank_words : int
        The weights' ROM and the held vectors, when deeper, are banks of this many words, read
        into registers before one is picked (:func:`banked`; a stage more). Default :data:`BANK_WORDS`.

    Ports ``i`` (words of ``beat`` lanes, ``beats`` per vector), ``o`` (one word of ``M`` lanes per
    vector). :attr:`interval` = ``passes * steps`` cycles per vector when the input keeps up;
    :attr:`latency` from the last input word's acceptance to the output with nothing stalled.
    The whole unit holds while its output waits; it never holds a vector it could finish.
    With several passes the vector waits in a memory of two vectors' ``simd``-lane chunks (each
    word's chunks are written one a cycle), so it is as narrow as the multipliers read it.
    """

    def __init__(self, weights: object, bias: object = None, *, x: Lanes, beat: int, simd: int, pe: int,
                 requant: Requantize | None = None, levels_per_stage: int = 2, dsps: int | None = None,
                 bank_words: int = BANK_WORDS) -> None:
        w = _int_matrix(weights, Lanes(np.asarray(weights).shape[0], x.width, x.signed), "FoldedMatrix")
        K, M = w.shape
        if beat < 1 or K % beat:
            raise ValueError(f"FoldedMatrix: {K} inputs do not split into words of {beat} lanes")
        if simd < 1 or beat % simd:
            raise ValueError(f"FoldedMatrix: simd {simd} does not divide the word's {beat} lanes")
        if pe < 1 or M % pe:
            raise ValueError(f"FoldedMatrix: pe {pe} does not divide the {M} outputs")
        self.weights, self.bias = w, _int_bias(bias, M, "FoldedMatrix")
        self.dsps = None if dsps is None else max(0, min(int(dsps), pe * simd))
        self.x, self.beat, self.simd, self.pe, self.requant = x, beat, simd, pe, requant
        self.levels_per_stage = levels_per_stage
        self.beats, self.passes, self.sub = K // beat, M // pe, beat // simd
        self.steps = self.beats * self.sub  # cycles per pass
        self.in_lanes = Lanes(beat, x.width, x.signed)
        self.bounds = dense_bounds(w, self.bias, Lanes(K, x.width, x.signed))
        if requant is None:
            lo, hi = min(b[0] for b in self.bounds), max(b[1] for b in self.bounds)
            self.out_lanes = Lanes.fitting(M, lo, hi)
        else:
            self.out_lanes = requant.lanes(M)
        self.multipliers = pe * simd
        self.interval = self.passes * self.steps
        depth = tree_depth(simd)
        # a memory deeper than a block: its banks registered, then one picked, a stage more
        self.bank_words = bank_words
        self.banked = self.passes * self.steps > bank_words or (self.passes > 1 and 2 * self.steps > bank_words)
        # sequencer -> 1 (ROM read) -> 2 (chunk, weights) [-> 2b (the banks' pick)] -> 3 (products)
        # -> the tree's stages -> accumulate -> the pass's sums -> output
        self.depth = 3 + self.banked + stages_for(depth, levels_per_stage) + 2
        # with several passes a word's chunks are written one a cycle before the last can be read
        self.latency = self.depth + (self.interval - 1) + (self.sub if self.passes > 1 and self.sub > 1 else 0)
        super().__init__({"i": In(stream.Signature(self.in_lanes.bits)),
                          "o": Out(stream.Signature(self.out_lanes.bits))})

    def _rom_words(self, wshape) -> list[int]:
        """ROM word ``g * steps + t`` (pass g, step t: word t // sub, chunk t % sub) holds the
        weights of PE p, input q at bits ``(p * simd + q) * width``."""
        w, P, S = self.weights, self.pe, self.simd
        mask = (1 << wshape.width) - 1
        words = []
        for g in range(self.passes):
            cols = w[:, g * P:(g + 1) * P]  # [K, P]
            for t in range(self.steps):
                block = cols[t * S:(t + 1) * S]  # [S, P]; input t * S + q (the beats in order)
                word = 0
                for p in range(P):
                    for q in range(S):
                        word |= (int(block[q, p]) & mask) << ((p * S + q) * wshape.width)
                words.append(word)
        return words

    def elaborate(self, platform: object) -> Module:
        m = Module()
        P, S, G, NB, SB = self.pe, self.simd, self.passes, self.beats, self.sub
        x = self.x
        chunk_bits = S * x.width
        # a word's chunks one after another: chosen by a multiplexer, or with many chunks (where
        # yosys's multiplexer costs over a LUT a bit) read as the low bits of a register shifted
        # down a chunk a step (a LUT a bit)
        shifted = SB > SHIFT_CHUNKS
        wmax = int(np.abs(self.weights).max()) if self.weights.size else 0
        wshape = shape_for(-wmax - 1, wmax)

        # -- the sequencer: pass g, word b, chunk s ---------------------------------------------------
        g = Signal(range(max(G, 2)), name="g")
        b = Signal(range(max(NB, 2)), name="b")
        s = Signal(range(max(SB, 2)), name="s")
        addr = Signal(range(max(G * self.steps, 2)), name="addr")
        step = Signal(name="step")  # the step (g, b, s) goes: its word is there (and, for a vector's
        # first step, its output has a place in the queue: nothing after the sequencer ever stalls)
        pipe = Pipeline(m, step, name="fold")
        pipe.stage()  # stage 1: the ROM word, the input word
        fire = step
        last_s, last_b, last_g = s == SB - 1, b == NB - 1, g == G - 1
        depth = self.depth
        queue = SyncFIFO(width=self.out_lanes.bits, depth=-(-(self.interval + depth) // self.interval) + 1)
        m.submodules.queue = queue
        inflight = Signal(range(queue.depth + 1), name="inflight")  # started, not yet taken from the queue
        starting = (g == 0) & (b == 0) & (s == 0)
        room = ~starting | (inflight < queue.depth)
        popped = queue.r_stream.valid & queue.r_stream.ready
        m.d.sync += inflight.eq(inflight + (fire & starting) - popped)
        with m.If(fire):
            m.d.sync += s.eq(Mux(last_s, 0, s + 1))
            with m.If(last_s):
                m.d.sync += b.eq(Mux(last_b, 0, b + 1))
                with m.If(last_b):
                    m.d.sync += g.eq(Mux(last_g, 0, g + 1))
            m.d.sync += addr.eq(Mux(last_s & last_b & last_g, 0, addr + 1))
        # the memories read every cycle: nothing after the sequencer stalls, so a word read for a
        # bubble is never used, and an enable would be a net to every block RAM of the layer (one
        # reaching across the device was the founding CNN's slowest path after routing, measured)
        wdatas, wbank = banked(m, "weights", P * S * wshape.width, G * self.steps, addr, Const(1, 1),
                               init=self._rom_words(wshape), bank_words=self.bank_words)
        if G == 1:  # each word is used in one step after another, as it arrives
            take = s == 0
            m.d.comb += [step.eq((~take | self.i.valid) & room), self.i.ready.eq(take & room)]
            current = Signal(self.in_lanes.bits, name="word", reset_less=True)
            with m.If(fire & take):
                m.d.sync += current.eq(self.i.payload)
            if shifted:  # shifted down a chunk at each later step: the step's chunk is the low bits
                with m.Elif(fire):
                    m.d.sync += current.eq(current >> chunk_bits)
        else:  # every pass reads the vector's chunks again: two vectors' chunks in a memory (a chunk
            # a word: the memory is as narrow as the multipliers read it, deep enough for block RAM),
            # one half written as its words arrive, a chunk a cycle, while the other (or the same,
            # as far as it has come) is read
            wsel, rsel = Signal(name="wsel"), Signal(name="rsel")
            wcount = Signal(range(self.steps + 1), name="wcount")  # chunks of the half being written
            full = Signal(2, name="full")  # a half holds a whole vector not yet released
            can_write = ~full.bit_select(wsel, 1)
            if SB == 1:
                source_valid, source = self.i.valid, self.i.payload
                m.d.comb += self.i.ready.eq(can_write)
            else:  # a word waits in a register while its chunks are written, one a cycle
                word_in = Signal(self.in_lanes.bits, name="word_in", reset_less=True)
                loaded = Signal(name="loaded")
                c = Signal(range(SB), name="c")
                parts = [word_in[k * chunk_bits:(k + 1) * chunk_bits] for k in range(SB)]
                source_valid, source = loaded, parts[0] if shifted else Array(parts)[c]
                leaving = loaded & can_write & (c == SB - 1)
                m.d.comb += self.i.ready.eq(~loaded | leaving)
                with m.If(loaded & can_write):
                    m.d.sync += c.eq(Mux(c == SB - 1, 0, c + 1))
                with m.If(self.i.valid & self.i.ready):
                    m.d.sync += [word_in.eq(self.i.payload), loaded.eq(1)]
                with m.Else():
                    if shifted:
                        with m.If(loaded & can_write):
                            m.d.sync += word_in.eq(word_in >> chunk_bits)
                    with m.If(leaving):
                        m.d.sync += loaded.eq(0)
            written = source_valid & can_write
            haddr, waddr = Signal(range(2 * self.steps), name="haddr"), Signal(range(2 * self.steps), name="waddr")
            m.d.comb += waddr.eq(Mux(wsel, self.steps + wcount, wcount))
            with m.If(written):
                m.d.sync += wcount.eq(Mux(wcount == self.steps - 1, 0, wcount + 1))
                with m.If(wcount == self.steps - 1):
                    m.d.sync += [wsel.eq(~wsel), full.bit_select(wsel, 1).eq(1)]
            t = Signal(range(self.steps), name="t")  # the step within the pass: b * SB + s
            with m.If(fire):
                m.d.sync += t.eq(Mux(last_s & last_b, 0, t + 1))
            there = full.bit_select(rsel, 1) | ((wsel == rsel) & (wcount > t))
            m.d.comb += [step.eq(there & room), haddr.eq(Mux(rsel, self.steps + t, t))]
            hdatas, hbank = banked(m, "held", chunk_bits, 2 * self.steps, haddr, Const(1, 1),
                                   write=(waddr, source, written), bank_words=self.bank_words)
            with m.If(fire & last_s & last_b & last_g):  # the vector's last step: release its half
                m.d.sync += [rsel.eq(~rsel), full.bit_select(rsel, 1).eq(0)]
            current = hdatas[0]
        s1 = pipe.reg(s, name="s1")
        first1 = pipe.reg((b == 0) & (s == 0), name="first1")
        end1 = pipe.reg(last_b & last_s, name="end1")
        g1 = pipe.reg(g, name="g1")
        final1 = pipe.reg(last_g & last_b & last_s, name="final1")
        if self.banked:
            wbank1 = pipe.reg(wbank, name="wbank1")
            hbank1 = pipe.reg(hbank, name="hbank1") if G > 1 else None

        # -- the chunk of the word this step multiplies ------------------------------------------------------------------
        chunk = Signal(chunk_bits, name="chunk")  # named: an expression sliced per lane would be copied into every use
        if G == 1:
            word1 = Signal(self.in_lanes.bits, name="word1")
            m.d.comb += word1.eq(current)
            chunks = [word1[k * chunk_bits:(k + 1) * chunk_bits] for k in range(SB)]
            m.d.comb += chunk.eq(Array(chunks)[s1] if SB > 1 and not shifted else chunks[0])
        else:  # the memory gave this step's chunk
            m.d.comb += chunk.eq(current)
        pipe.stage()  # stage 2: the chunk and the weights registered (the ROM's and the mux's delay end here)
        if self.banked:  # every bank's word registered; the next stage picks one
            wbanks = [pipe.reg(d, name=f"weights_b{k}") for k, d in enumerate(wdatas)]
            wbank2 = pipe.reg(wbank1, name="wbank2")
            if G > 1:
                hbanks = [pipe.reg(d, name=f"chunk_b{k}") for k, d in enumerate(hdatas)]
                hbank2 = pipe.reg(hbank1, name="hbank2")
            else:
                chunk2 = pipe.reg(chunk, name="chunk_b")
            first1, end1, g1, final1 = (pipe.reg(v) for v in (first1, end1, g1, final1))
            pipe.stage()  # stage 2b: the banks' pick
            weights = Array(wbanks)[wbank2] if len(wbanks) > 1 else wbanks[0]
            chunk = (Array(hbanks)[hbank2] if len(hbanks) > 1 else hbanks[0]) if G > 1 else chunk2
        else:
            weights = wdatas[0]
        copies = -(-P // PES_PER_COPY)  # the chunk's register, a copy per group of PEs
        if copies == 1:
            chunk_rs = [pipe.reg(chunk, name="chunk_r")]
        else:
            chunk_rs, source = [], Signal(chunk_bits, name="chunk_source")  # named: the copies read one net
            m.d.comb += source.eq(chunk)
            for k in range(copies):
                m.submodules[f"chunk_copy{k}"] = copy = Copy(source, pipe.en, name=f"chunk_r{k}")
                chunk_rs.append(copy.q)
        xss = [Lanes(S, x.width, x.signed).split(r) for r in chunk_rs]
        ws = Lanes(P * S, wshape.width, True).split(pipe.reg(weights, name="weights_r"))
        first1, end1, g1, final1 = (pipe.reg(v) for v in (first1, end1, g1, final1))
        a, c = -wmax - 1, wmax
        plo, phi = min(a * x.min, a * x.max, c * x.min, c * x.max), max(a * x.min, a * x.max, c * x.min, c * x.max)
        pipe.stage()  # stage 3: the products
        dsps = P * S if self.dsps is None else self.dsps
        products = [[pipe.reg(ws[p * S + q] * xss[p // PES_PER_COPY][q] if p * S + q < dsps
                              else lut_product(m, ws[p * S + q], xss[p // PES_PER_COPY][q]),
                              shape_for(plo, phi), name=f"prod{p}_{q}") for q in range(S)]
                    for p in range(P)]
        carry = [pipe.reg(v) for v in (first1, end1, g1, final1)]

        # -- the trees --------------------------------------------------------------------------------
        def add(u, v):
            lo, hi = u[1] + v[1], u[2] + v[2]
            sig = Signal(shape_for(lo, hi), name="sum")
            m.d.comb += sig.eq(u[0] + v[0])
            return (sig, lo, hi)

        def register(t):
            return (pipe.reg(t[0], name="sum_r"), t[1], t[2])

        leaves = [[(r, plo, phi) for r in row] for row in products]
        roots, (first, end, gsel, final) = tree_reduce(pipe, leaves, add, register, self.levels_per_stage,
                                                        carry=carry)
        summed = pipe.valid  # the tree's last stage: its sums go into the accumulators

        # -- accumulate; at a pass's end the sums are registered, then requantized into their lanes ---
        out = self.out_lanes
        totals, ranges = [], []
        for p, (root, lo, hi) in enumerate(roots):
            biases = [int(self.bias[gg * P + p]) for gg in range(G)]
            bshape = shape_for(min(biases + [0]), max(biases + [0]))
            bias = Array(Const(v, bshape) for v in biases)[gsel] if G > 1 else Const(biases[0], bshape)
            cols = [self.bounds[gg * P + p] for gg in range(G)]
            alo, ahi = min(v[0] for v in cols), max(v[1] for v in cols)
            plo_all = min(alo, lo, min(biases + [0]) + lo)
            phi_all = max(ahi, hi, max(biases + [0]) + hi)
            acc = Signal(shape_for(plo_all, phi_all), name=f"acc{p}", reset_less=True)
            total = Signal(shape_for(plo_all, phi_all), name=f"total{p}")
            m.d.comb += total.eq(Mux(first, bias, acc) + root)
            with m.If(summed):
                m.d.sync += acc.eq(total)
            totals.append(total)
            ranges.append((alo, ahi))
        pipe.stage()  # the pass's sums, registered
        results = [pipe.reg(t, name=f"result{p}") for p, t in enumerate(totals)]
        end, gsel, final = (pipe.reg(v) for v in (end, gsel, final))
        valid = pipe.valid
        done = valid & end & final  # the last pass's sums go into the queue now
        groups: list[list[Signal]] = [[Signal(out.shape, name=f"y{gg}_{p}", reset_less=True) for p in range(P)]
                                      for gg in range(G - 1)]
        finals = []
        for p, (r, (alo, ahi)) in enumerate(zip(results, ranges)):
            y = self.requant.expr(m, r, alo, ahi) if self.requant is not None else r
            with m.If(valid & end):
                for gg in range(G - 1):
                    with m.If(gsel == gg):
                        m.d.sync += groups[gg][p].eq(y)
            finals.append(y)
        m.d.comb += [queue.w_stream.payload.eq(out.join([v for grp in groups for v in grp] + finals)),
                     queue.w_stream.valid.eq(done)]
        wiring.connect(m, queue.r_stream, wiring.flipped(self.o))
        pipe.finish(Const(1))
        return m


def lut_product(m: Module, a: Value, b: Value) -> Value:
    """``a * b`` as a sum of shifted partial products, one per bit of one operand (the unsigned
    one if there is one, else the narrower; a signed one's sign bit negated): no ``*`` for a
    synthesis tool to put on a DSP block. Each row and each sum is as wide as its range needs, and
    the low bits of the lower-shifted term of a sum pass by the adder (about 136 LUT4-eq for 8 x 8
    bits with ``synth_ecp5``, measured, against 158 with every row full width)."""
    a, b = Value.cast(a), Value.cast(b)
    if (a.shape().signed, len(a)) > (b.shape().signed, len(b)):
        a, b = b, a
    signed_a = a.shape().signed
    b_lo = -(1 << (len(b) - 1)) if b.shape().signed else 0
    b_hi = (1 << (len(b) - 1)) - 1 if b.shape().signed else (1 << len(b)) - 1
    terms = []  # (signal, shift, lo, hi, negated): the term adds -+(signal << shift), a value in [lo, hi]
    for j in range(len(a)):
        negated = signed_a and j == len(a) - 1  # subtracted where it is summed (the adder subtracts)
        row = Signal(shape_for(min(0, b_lo), max(0, b_hi)), name=f"pp{j}")
        m.d.comb += row.eq(Mux(a[j], b, 0))
        lo, hi = (min(0, -b_hi), max(0, -b_lo)) if negated else (min(0, b_lo), max(0, b_hi))
        terms.append((row, j, lo << j, hi << j, negated))
    while len(terms) > 1:
        nxt = []
        for k in range(0, len(terms) - 1, 2):
            # the higher-shifted term first; only the sign row is negated, and no row is shifted more
            (u, su, ulo, uhi, neg), (v, sv, vlo, vhi, _) = sorted(terms[k:k + 2], key=lambda term: -term[1])
            d = su - sv  # v's low d bits pass by: the adder sums the rest
            lo, hi = ulo + vlo, uhi + vhi
            high = Signal(shape_for(lo >> su, hi >> su), name="pps", attrs={"keep": 1})  # its own carry chain
            m.d.comb += high.eq((v >> d) - u if neg else u + (v >> d))
            total = Signal(shape_for(lo >> sv, hi >> sv), name="ppt")
            m.d.comb += total.eq(Cat(v[:d], high) if d else high)
            nxt.append((total, sv, lo, hi, False))
        terms = nxt + ([terms[-1]] if len(terms) % 2 else [])
    if terms[0][4]:  # a one-bit signed operand: its only row is negated
        row, shift, lo, hi, _ = terms[0]
        neg = Signal(shape_for(lo >> shift, hi >> shift), name="ppn")
        m.d.comb += neg.eq(-row)
        terms = [(neg, shift, lo, hi, False)]
    value, shift = terms[0][:2]
    return value << shift


def fold_for(k: int, m_out: int, beat: int, budget: int) -> tuple[int, int]:
    """The ``(simd, pe)`` with the fewest multipliers whose ``passes * steps`` is at most
    ``budget`` cycles (``simd`` a divisor of ``beat``, ``pe`` of ``m_out``); the fastest if none is."""
    best = None
    for simd in divisors(beat):
        for pe in divisors(m_out):
            cycles = (m_out // pe) * (k // simd)
            key = (cycles > budget, simd * pe if cycles <= budget else cycles, cycles)
            if best is None or key < best[0]:
                best = (key, simd, pe)
    return best[1], best[2]

