"""Components that move lanes or reduce sets of them: for layers flattened into one wide word.

When a whole tensor travels as one payload word (a fully parallel design), a Reshape, Transpose,
Slice or Pad is only wiring (:class:`Select`), and a max pool is a maximum over a fixed set of
lanes per output (:class:`MaxWindows`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from amaranth.hdl import Const, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fpgac.hdl.arith import stages_for, tree_depth, tree_reduce
from fpgac.hdl.lanes import Component, Lanes

__all__ = ["Groups", "MaxWindows", "Select"]


class Select(Component):
    """Output lane ``k`` is input lane ``indices[k]``, or the constant ``fill`` where the index is -1.

    Wires only: no register, latency 0, ``valid`` and ``ready`` pass straight through. Ports
    ``i`` (``x``) and ``o`` (``len(indices)`` lanes of ``x``'s format).
    """

    latency = 0

    def __init__(self, x: Lanes, indices: Sequence[int], *, fill: int = 0) -> None:
        self.indices = [int(i) for i in indices]
        if not self.indices:
            raise ValueError("Select needs at least one output lane")
        bad = [i for i in self.indices if not -1 <= i < x.count]
        if bad:
            raise ValueError(f"Select indices {bad[:4]} are outside the {x.count} input lanes (-1: fill)")
        if -1 in self.indices and not x.min <= fill <= x.max:
            raise ValueError(f"Select fill {fill} does not fit {x}")
        self.fill = int(fill)
        self.in_lanes = x
        self.out_lanes = x.with_count(len(self.indices))
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lanes = self.in_lanes.split(self.i.payload)
        fill = Const(self.fill, self.in_lanes.shape)
        m.d.comb += [
            self.o.payload.eq(self.out_lanes.join([fill if i < 0 else lanes[i] for i in self.indices])),
            self.o.valid.eq(self.i.valid),
            self.i.ready.eq(self.o.ready),
        ]
        return m


class MaxWindows(Component):
    """Output lane ``k`` is the maximum of the input lanes ``windows[k]`` (a max pool, flattened).

    One comparator tree per window, registers every ``levels_per_stage`` levels. Ports ``i``
    (``x``), ``o`` (``len(windows)`` lanes of ``x``'s format). Latency
    ``stages_for(depth of the largest window)``, interval 1.
    """

    def __init__(self, x: Lanes, windows: Sequence[Sequence[int]], *, levels_per_stage: int = 2) -> None:
        self.windows = [[int(i) for i in w] for w in windows]
        if not self.windows or any(not w for w in self.windows):
            raise ValueError("MaxWindows needs at least one window, and every window at least one lane")
        if any(not 0 <= i < x.count for w in self.windows for i in w):
            raise ValueError(f"MaxWindows lanes must lie in 0..{x.count - 1}")
        self.in_lanes = x
        self.out_lanes = x.with_count(len(self.windows))
        self.levels_per_stage = levels_per_stage
        self.latency = stages_for(max(tree_depth(len(w)) for w in self.windows), levels_per_stage)
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x = self.in_lanes
        lanes = x.split(self.i.payload)
        pipe = self.pipeline(m, self.i.valid)

        def combine(a: Value, b: Value) -> Value:
            larger = Signal(x.shape)
            m.d.comb += larger.eq(Mux(b > a, b, a))
            return larger

        roots, _ = tree_reduce(pipe, [[lanes[i] for i in w] for w in self.windows], combine,
                               lambda v: pipe.reg(v, x.shape), self.levels_per_stage)
        m.d.comb += self.o.payload.eq(self.out_lanes.join(roots))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), self.i.ready.eq(i_ready)]
        return m


class Groups(Component):
    """One component per group of input lanes, side by side, in lockstep (a softmax or argmax
    along one axis of a larger tensor: a group per position).

    ``make(lanes)`` builds the component for a group of ``lanes`` (``x``'s format, the group's
    size); every group must be the same size, so every part is the same circuit and they stall and
    move together (one ``valid``/``ready`` pair). Output: a part with as many output lanes as input
    lanes puts its lane ``j`` where the group's lane ``j`` came from (softmax); a part with one
    output lane puts it at the group's index (argmax). Ports ``i`` (``x``), ``o``; latency and
    interval those of a part.
    """

    def __init__(self, x: Lanes, groups: Sequence[Sequence[int]], make: Callable[[Lanes], wiring.Component]) -> None:
        self.groups = [[int(i) for i in g] for g in groups]
        sizes = {len(g) for g in self.groups}
        if not self.groups or len(sizes) != 1 or 0 in sizes:
            raise ValueError(f"Groups needs groups of one non-zero size, not sizes {sorted(sizes)}")
        if sorted(i for g in self.groups for i in g) != list(range(x.count)):
            raise ValueError(f"Groups must cover each of the {x.count} input lanes once")
        self.in_lanes = x
        self.parts = [make(x.with_count(len(g))) for g in self.groups]
        out = self.parts[0].out_lanes
        self.per_lane = out.count == len(self.groups[0])
        if not self.per_lane and out.count != 1:
            raise ValueError(f"a Groups part gives {out.count} lanes: one per input lane, or one")
        self.out_lanes = out.with_count(x.count if self.per_lane else len(self.groups))
        self.latency = getattr(self.parts[0], "latency", 0)
        self.interval = getattr(self.parts[0], "interval", 1)
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lanes = self.in_lanes.split(self.i.payload)
        out: list[Value | None] = [None] * self.out_lanes.count
        for k, (group, part) in enumerate(zip(self.groups, self.parts)):
            m.submodules[f"group{k}"] = part
            m.d.comb += [part.i.payload.eq(part.in_lanes.join([lanes[i] for i in group])),
                         part.i.valid.eq(self.i.valid), part.o.ready.eq(self.o.ready)]
            results = part.out_lanes.split(part.o.payload)
            for j, value in enumerate(results):
                out[group[j] if self.per_lane else k] = value
        first = self.parts[0]
        m.d.comb += [self.o.payload.eq(self.out_lanes.join(out)), self.o.valid.eq(first.o.valid),
                     self.i.ready.eq(first.i.ready)]
        return m
