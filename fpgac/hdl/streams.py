"""Components that join, split and reduce streams: Binary (Add/Sub/Mul/Max/Min), Concat, Argmax,
Fork, StreamBuffer, Chain, Metered, and the pixel-stream reshapers Collect and Serialize.

Joining several input streams: a word moves only when every input offers one; each input's
``ready`` is the component's ready and the other inputs' ``valid`` (allowed: ready may depend on
valid, valid never depends on ready).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from amaranth.hdl import Array, Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from fpgac.hdl.arith import stages_for, tree_depth, tree_reduce
from fpgac.hdl.lanes import Component, Lanes

__all__ = [
    "Argmax",
    "Binary",
    "BinaryOp",
    "Chain",
    "Collect",
    "Concat",
    "Fork",
    "Metered",
    "Serialize",
    "StreamBuffer",
    "join_valid",
]


def join_valid(m: Module, ports: Sequence[stream.Interface], ready: Value) -> Value:
    """Join input streams: returns the joined valid; drives each port's ready."""
    valid = Const(1, 1)
    for p in ports:
        valid = valid & p.valid
    for p in ports:
        others = Const(1, 1)
        for q in ports:
            if q is not p:
                others = others & q.valid
        m.d.comb += p.ready.eq(ready & others)
    return valid


class BinaryOp(enum.Enum):
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    MAX = "max"
    MIN = "min"

    @classmethod
    def cast(cls, op: object) -> BinaryOp:
        """A member from itself, a same-named member of another enum (the IR's ``Op``), or its name."""
        name = op if isinstance(op, str) else getattr(op, "name", None)
        try:
            return cls[str(name).upper()]
        except KeyError:
            raise ValueError(f"BinaryOp must be one of {', '.join(cls.__members__)}, not {op!r}") from None


def _apply(op: BinaryOp, a: Value, b: Value) -> Value:
    return {
        BinaryOp.ADD: lambda: a + b,
        BinaryOp.SUB: lambda: a - b,
        BinaryOp.MUL: lambda: a * b,
        BinaryOp.MAX: lambda: Mux(a >= b, a, b),
        BinaryOp.MIN: lambda: Mux(a <= b, a, b),
    }[op]()


def _bounds(op: BinaryOp, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (alo, ahi), (blo, bhi) = a, b
    if op is BinaryOp.ADD:
        return alo + blo, ahi + bhi
    if op is BinaryOp.SUB:
        return alo - bhi, ahi - blo
    if op is BinaryOp.MUL:
        c = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
        return min(c), max(c)
    if op is BinaryOp.MAX:
        return max(alo, blo), max(ahi, bhi)
    return min(alo, blo), min(ahi, bhi)


class Binary(Component):
    """Lane-wise ``a op b`` of two streams with the same lane count: the IR's Add/Sub/Mul/Max/Min.

    Parameters
    ----------
    a, b : Lanes
        The two input formats (same ``count``).
    op : BinaryOp (or ``"add"``, or the IR's ``Op.ADD``)
    a_shift, b_shift : int
        Left shifts that bring both operands to the output's fractional bits (Add/Sub/Max/Min
        align their inputs; Mul needs none).
    out_width, out_signed : optional
        Output lane format; by default the narrowest that holds the exact result.

    Ports ``a``, ``b`` (inputs, joined), ``o``. Latency 1, interval 1.
    """

    latency = 1

    def __init__(self, a: Lanes, b: Lanes, *, op: object, a_shift: int = 0, b_shift: int = 0,
                 out_width: int | None = None, out_signed: bool | None = None) -> None:
        if a.count != b.count:
            raise ValueError(f"Binary inputs need the same lane count, not {a} and {b}")
        if a_shift < 0 or b_shift < 0:
            raise ValueError(f"Binary shifts must be >= 0, not {a_shift} and {b_shift}")
        self.op = BinaryOp.cast(op)
        self.a_lanes, self.b_lanes = a, b
        self.in_lanes = a
        self.a_shift, self.b_shift = a_shift, b_shift
        lo, hi = _bounds(self.op, (a.min << a_shift, a.max << a_shift), (b.min << b_shift, b.max << b_shift))
        self.out_lanes = Lanes.output(a.count, lo, hi, out_width, out_signed, what="Binary")
        super().__init__({"a": In(stream.Signature(a.bits)), "b": In(stream.Signature(b.bits)),
                          "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        xs = [v << self.a_shift for v in self.a_lanes.split(self.a.payload)]
        ys = [v << self.b_shift for v in self.b_lanes.split(self.b.payload)]
        joined, ready = Signal(name="joined_valid"), Signal(name="ready")
        m.d.comb += joined.eq(join_valid(m, [self.a, self.b], ready))
        pipe = self.pipeline(m, joined)
        pipe.stage()
        zs = [_apply(self.op, x, y) for x, y in zip(xs, ys)]
        m.d.comb += self.o.payload.eq(pipe.reg(self.out_lanes.join(zs), name="y"))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), ready.eq(i_ready)]
        return m


class Concat(Component):
    """Concatenate the lanes of several streams: input 0's lanes first (lowest lanes of ``o``).

    Parameters
    ----------
    inputs : sequence of Lanes
        The input formats.
    shifts : sequence of int, optional
        Left shifts aligning each input to the output's fractional bits (default all 0).
    out_width, out_signed : optional
        Output lane format (one for all lanes); by default the narrowest holding every input.

    Ports ``i0``, ``i1``, ... (joined; also listed in :attr:`inputs`), ``o``. Latency 1, interval 1.
    Concatenation along the channel axis of a pixel stream is this too (one pixel a word).
    """

    latency = 1

    def __init__(self, inputs: Sequence[Lanes], *, shifts: Sequence[int] | None = None,
                 out_width: int | None = None, out_signed: bool | None = None) -> None:
        inputs = list(inputs)
        if not inputs:
            raise ValueError("Concat needs at least one input")
        shifts = [0] * len(inputs) if shifts is None else [int(s) for s in shifts]
        if len(shifts) != len(inputs) or any(s < 0 for s in shifts):
            raise ValueError(f"Concat needs one shift >= 0 per input, not {shifts}")
        self.in_lanes_list = inputs
        self.shifts = shifts
        lo = min(x.min << s for x, s in zip(inputs, shifts))
        hi = max(x.max << s for x, s in zip(inputs, shifts))
        self.out_lanes = Lanes.output(sum(x.count for x in inputs), lo, hi, out_width, out_signed, what="Concat")
        members = {f"i{k}": In(stream.Signature(x.bits)) for k, x in enumerate(inputs)}
        members["o"] = Out(stream.Signature(self.out_lanes.bits))
        super().__init__(members)

    @property
    def inputs(self) -> list[stream.Interface]:
        return [getattr(self, f"i{k}") for k in range(len(self.in_lanes_list))]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        ports = self.inputs
        values = [v << s for p, x, s in zip(ports, self.in_lanes_list, self.shifts) for v in x.split(p.payload)]
        joined, ready = Signal(name="joined_valid"), Signal(name="ready")
        m.d.comb += joined.eq(join_valid(m, ports, ready))
        pipe = self.pipeline(m, joined)
        pipe.stage()
        m.d.comb += self.o.payload.eq(pipe.reg(self.out_lanes.join(values), name="y"))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), ready.eq(i_ready)]
        return m


class Argmax(Component):
    """The index of the largest lane: ties go to the first index, or the last with ``select_last``.

    A pairwise comparator tree (neighbours first, so a left operand always has the lower
    indices: "first" keeps it unless the right is strictly greater, "last" takes the right
    unless the left is strictly greater). Registers every ``levels_per_stage`` levels.

    Ports ``i`` (``x``), ``o``: one unsigned lane of ``max(1, bits(count - 1))`` bits, the IR's
    ArgMax type. Latency ``max(1, ceil(depth / levels_per_stage))``, interval 1.
    """

    def __init__(self, x: Lanes, *, select_last: bool = False, levels_per_stage: int = 2) -> None:
        self.in_lanes = x
        self.select_last = bool(select_last)
        self.levels_per_stage = levels_per_stage
        self.out_lanes = Lanes(1, max(1, (x.count - 1).bit_length()), False)
        self.latency = stages_for(tree_depth(x.count), levels_per_stage)
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x = self.in_lanes
        ishape = self.out_lanes.shape
        leaves = [(v, Const(k, ishape)) for k, v in enumerate(x.split(self.i.payload))]
        count = [0]

        def combine(a: tuple[Value, Value], b: tuple[Value, Value]) -> tuple[Value, Value]:
            take_b = Signal(name=f"take{count[0]}")
            count[0] += 1
            m.d.comb += take_b.eq(b[0] >= a[0] if self.select_last else b[0] > a[0])
            return Mux(take_b, b[0], a[0]), Mux(take_b, b[1], a[1])

        pipe = self.pipeline(m, self.i.valid)

        def register(n: tuple[Value, Value]) -> tuple[Value, Value]:
            return pipe.reg(n[0], x.shape), pipe.reg(n[1], ishape)

        (root,), _ = tree_reduce(pipe, [leaves], combine, register, self.levels_per_stage)
        m.d.comb += self.o.payload.eq(root[1])
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), self.i.ready.eq(i_ready)]
        return m


class StreamBuffer(Component):
    """A two-entry skid buffer: registers ``valid``, ``payload`` *and* ``ready``, at full throughput.

    Put one between components to cut the combinational ready chain of long pipelines. Ports
    ``i``, ``o`` (``bits`` wide); latency 1, interval 1.
    """

    latency = 1

    def __init__(self, bits: int) -> None:
        self.bits = bits
        super().__init__({"i": In(stream.Signature(bits)), "o": Out(stream.Signature(bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        o_valid, skid_valid = Signal(name="o_valid"), Signal(name="skid_valid")
        o_data, skid = Signal(self.bits, name="o_data"), Signal(self.bits, name="skid")
        take = self.i.valid & ~skid_valid
        m.d.comb += [self.i.ready.eq(~skid_valid), self.o.valid.eq(o_valid), self.o.payload.eq(o_data)]
        with m.If(~o_valid | self.o.ready):
            with m.If(skid_valid):
                m.d.sync += [o_data.eq(skid), o_valid.eq(1), skid_valid.eq(0)]
            with m.Elif(take):
                m.d.sync += [o_data.eq(self.i.payload), o_valid.eq(1)]
            with m.Else():
                m.d.sync += o_valid.eq(0)
        with m.Elif(take):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m


class Queue(Component):
    """A first-in first-out queue of ``depth`` words of ``bits``: ports ``i``, ``o`` (latency 1)."""

    def __init__(self, bits: int, depth: int) -> None:
        self.bits, self.depth = bits, max(2, int(depth))
        self.latency = 1
        super().__init__({"i": In(stream.Signature(bits)), "o": Out(stream.Signature(bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.fifo = fifo = SyncFIFO(width=self.bits, depth=self.depth)
        wiring.connect(m, wiring.flipped(self.i), fifo.w_stream)
        wiring.connect(m, fifo.r_stream, wiring.flipped(self.o))
        return m


class Collect(Component):
    """Gather ``count`` words of a stream into one word: a pixel stream into a whole tensor.

    Input word ``p`` (0-based, in stream order) carries lanes ``c = 0 .. x.count - 1``; the output
    has ``count * x.count`` lanes, input lane ``c`` of word ``p`` at output lane
    ``c * count + p`` with ``channels_first`` (the IR's ``[C, H, W]`` flatten order for a
    row-major pixel stream) or ``p * x.count + c`` without.

    Ports ``i``, ``o``. The output word is ready one cycle after the last input word arrives;
    the next tensor's words are accepted while it waits (into the collecting register, which
    is separate from the output register): interval ``count``.
    """

    def __init__(self, x: Lanes, count: int, *, channels_first: bool = True) -> None:
        if count < 1:
            raise ValueError(f"Collect count must be >= 1, not {count}")
        self.in_lanes, self.count, self.channels_first = x, count, channels_first
        self.out_lanes = x.with_count(x.count * count)
        self.latency = 1
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x, n = self.in_lanes, self.count
        words = [Signal(x.bits, name=f"w{p}") for p in range(n - 1)]  # all but the last word
        k = Signal(range(max(n, 2)), name="k")
        o_valid, o_reg = Signal(name="o_valid"), Signal(self.out_lanes.bits, name="o_reg")
        last = k == n - 1
        out_free = ~o_valid | self.o.ready
        m.d.comb += [self.i.ready.eq(~last | out_free), self.o.valid.eq(o_valid), self.o.payload.eq(o_reg)]
        # the last word goes straight into the output register with the held ones
        lanes = [x.split(w) for w in words] + [x.split(self.i.payload)]
        if self.channels_first:
            order = [lanes[p][c] for c in range(x.count) for p in range(n)]
        else:
            order = [lanes[p][c] for p in range(n) for c in range(x.count)]
        fire = self.i.valid & self.i.ready
        with m.If(fire):
            with m.If(last):
                m.d.sync += [o_reg.eq(self.out_lanes.join(order)), k.eq(0)]
            with m.Else():
                m.d.sync += k.eq(k + 1)
                with m.Switch(k):
                    for p in range(n - 1):
                        with m.Case(p):
                            m.d.sync += words[p].eq(self.i.payload)
        with m.If(fire & last):
            m.d.sync += o_valid.eq(1)
        with m.Elif(self.o.ready):
            m.d.sync += o_valid.eq(0)
        return m


class Serialize(Component):
    """Split one word of ``count * lanes`` lanes into ``count`` words of ``lanes``: the inverse of Collect.

    Output word ``p`` lane ``c`` is input lane ``c * count + p`` with ``channels_first`` (a
    ``[C, H, W]`` tensor into a row-major pixel stream), else ``p * lanes + c``.

    Ports ``i``, ``o``. The input word is held and the next one accepted with the last output
    word: interval ``count``, latency 1.
    """

    def __init__(self, x: Lanes, count: int, *, channels_first: bool = True) -> None:
        if count < 1 or x.count % count:
            raise ValueError(f"Serialize: {x.count} lanes do not split into {count} words")
        self.in_lanes, self.count, self.channels_first = x, count, channels_first
        self.out_lanes = x.with_count(x.count // count)
        self.latency = 1
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x, n, c_out = self.in_lanes, self.count, self.out_lanes.count
        held = Signal(x.bits, name="held")
        full = Signal(name="full")
        k = Signal(range(max(n, 2)), name="k")
        lanes = x.split(held)
        if self.channels_first:
            words = [self.out_lanes.join([lanes[c * n + p] for c in range(c_out)]) for p in range(n)]
        else:
            words = [self.out_lanes.join([lanes[p * c_out + c] for c in range(c_out)]) for p in range(n)]
        last = k == n - 1
        fire_o = full & self.o.ready
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload.eq(Array(words)[k]),
            self.i.ready.eq(~full | (fire_o & last)),
        ]
        with m.If(fire_o):
            m.d.sync += k.eq(Mux(last, 0, k + 1))
            with m.If(last):
                m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload), full.eq(1)]
        return m


class Fork(Component):
    """One stream to ``n`` consumers (a value used twice: a residual branch, two graph outputs).

    Each output takes the word in its own time; the input is released once every output has
    taken it. Ports ``i``, ``o0`` .. ``o{n-1}`` (also :attr:`outputs`), all ``bits`` wide.
    No register: latency 0 (outputs are valid with the input).
    """

    latency = 0

    def __init__(self, bits: int, n: int) -> None:
        if n < 1:
            raise ValueError(f"Fork needs at least one output, not {n}")
        self.bits, self.n = bits, n
        members = {"i": In(stream.Signature(bits))}
        members.update({f"o{k}": Out(stream.Signature(bits)) for k in range(n)})
        super().__init__(members)

    @property
    def outputs(self) -> list[stream.Interface]:
        return [getattr(self, f"o{k}") for k in range(self.n)]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        done = [Signal(name=f"done{k}") for k in range(self.n)]  # output k took the current word
        ready = Const(1, 1)
        for o, d in zip(self.outputs, done):
            m.d.comb += [o.valid.eq(self.i.valid & ~d), o.payload.eq(self.i.payload)]
            ready = ready & (d | o.ready)
        m.d.comb += self.i.ready.eq(ready)
        for o, d in zip(self.outputs, done):
            with m.If(self.i.valid & self.i.ready):
                m.d.sync += d.eq(0)
            with m.Elif(o.valid & o.ready):
                m.d.sync += d.eq(1)
        return m


class Chain(Component):
    """Components back to back, each one's ``o`` into the next one's ``i``; ports ``i`` and ``o``.

    The payload widths must agree (``wiring.connect`` checks). :attr:`latency` is the sum of the
    parts' latencies; :attr:`parts` lists them.
    """

    def __init__(self, parts: Sequence[wiring.Component]) -> None:
        self.parts = list(parts)
        if not self.parts:
            raise ValueError("a Chain needs at least one component")
        for a, b in zip(self.parts, self.parts[1:]):
            if len(a.o.payload) != len(b.i.payload):
                raise ValueError(f"cannot chain {type(a).__name__} ({len(a.o.payload)}-bit output) into "
                                 f"{type(b).__name__} ({len(b.i.payload)}-bit input)")
        if not hasattr(self, "in_lanes"):
            self.in_lanes = getattr(self.parts[0], "in_lanes", None)
            self.out_lanes = getattr(self.parts[-1], "out_lanes", None)
        if not hasattr(self, "latency"):
            self.latency = sum(getattr(p, "latency", 0) for p in self.parts)
        super().__init__({"i": In(stream.Signature(len(self.parts[0].i.payload))),
                          "o": Out(stream.Signature(len(self.parts[-1].o.payload)))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for k, p in enumerate(self.parts):
            m.submodules[f"part{k}"] = p
        wiring.connect(m, wiring.flipped(self.i), self.parts[0].i)
        for a, b in zip(self.parts, self.parts[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, self.parts[-1].o, wiring.flipped(self.o))
        return m


class Metered(Component):
    """Components that never stall, fed only as fast as a queue at the end can take their results.

    The parts (one word a cycle each, :attr:`latency` cycles in all) run with their ``ready``
    tied high: their pipelines are built without load enables (``free_running``), and no
    ``ready`` path runs through them.
    Instead, a counter at the entrance counts the vectors inside (in the parts and in the output
    queue) and accepts a new one only while that count is below the queue's depth,
    ``latency + 1``, so a stalled consumer never makes a result be lost. The queue (a
    :class:`~amaranth.lib.fifo.SyncFIFO`) is bypassed while it is empty and the consumer ready,
    so it adds no cycle: latency is the parts' own, interval 1 at full rate. Ports ``i``, ``o``.
    """

    def __init__(self, parts: Sequence[wiring.Component]) -> None:
        self.chain = Chain(parts)
        self.parts = self.chain.parts
        for part in self.parts:
            _free_run(part)
        self.in_lanes, self.out_lanes = self.chain.in_lanes, self.chain.out_lanes
        self.latency = self.chain.latency
        self.interval = 1
        self.depth = self.latency + 1
        super().__init__({"i": In(stream.Signature(len(self.chain.i.payload))),
                          "o": Out(stream.Signature(len(self.chain.o.payload)))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.chain = chain = self.chain
        m.submodules.queue = queue = SyncFIFO(width=len(self.o.payload), depth=self.depth)
        inside = Signal(range(self.depth + 1), name="inside")
        take = self.i.valid & self.i.ready
        give = self.o.valid & self.o.ready
        m.d.comb += [
            self.i.ready.eq(inside != self.depth),
            chain.i.payload.eq(self.i.payload),
            chain.i.valid.eq(take),
            chain.o.ready.eq(1),
            # the queue's head first; a result straight through while the queue is empty
            self.o.valid.eq(queue.r_rdy | chain.o.valid),
            self.o.payload.eq(Mux(queue.r_rdy, queue.r_data, chain.o.payload)),
            queue.r_en.eq(self.o.ready),
            queue.w_data.eq(chain.o.payload),
            queue.w_en.eq(chain.o.valid & (queue.r_rdy | ~self.o.ready)),
        ]
        m.d.sync += inside.eq(inside + take - give)
        return m


def _free_run(part: wiring.Component) -> None:
    """Mark a component, and those it is made of, as never stalled (see :class:`Metered`)."""
    part.free_running = True
    for inner in getattr(part, "parts", ()):
        _free_run(inner)
