"""Components that carry, split and pace streams: Fork, StreamBuffer, Queue, Chain, Metered, and
the pixel-stream reshapers Collect and Serialize. (Those that compute on lanes: Binary, Concat
and Argmax, in :mod:`fpgac.hdl.combine`.)
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Array, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from fpgac.hdl.lanes import Component, Lanes

__all__ = ["Chain", "Collect", "Fork", "Metered", "Queue", "Serialize", "StreamBuffer"]


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
