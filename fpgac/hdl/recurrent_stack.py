"""Recurrent layers one after the other on a whole-sequence word (:class:`RecurrentStack`), and
its timing (:func:`stack_timing`)."""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out, connect, flipped

from fpgac.hdl.lanes import Component
from fpgac.hdl.recurrent import Recurrent
from fpgac.hdl.streams import Collect, Serialize

__all__ = ["RecurrentStack", "stack_timing"]


def stack_timing(periods: Sequence[int], every_step: Sequence[bool], steps: int, collect: bool) -> tuple[int, int]:
    """``(latency, interval)`` of a :class:`RecurrentStack`: when each layer starts each step, by
    the handshake rules (a step starts when its input word is there, the layer has finished the
    step before, and the word it will write has been taken by the next layer); the input word
    arrives at cycle 0, its first step's word one cycle later (the :class:`Serialize`)."""
    n = len(periods)
    start = [[0] * steps for _ in range(n)]
    for t in range(steps):
        for k in range(n):
            at = start[k][t - 1] + periods[k] if t else 0
            at = max(at, (start[0][t - 1] + 1 if t else 1) if k == 0 else start[k - 1][t] + periods[k - 1])
            if t and k + 1 < n and every_step[k]:  # its last word must have been taken
                at = max(at, start[k + 1][t - 1])
            start[k][t] = at
    end = start[-1][-1] + periods[-1] + int(collect)
    return end, max(steps * p for p in periods)


class RecurrentStack(Component):
    """Recurrent layers one after the other on a whole-sequence word: a :class:`Serialize` makes
    the word ``steps`` words (a step each), each layer passes its ``Y`` a step at a time to the
    next (no register of a whole sequence between layers), and a :class:`Collect` makes the
    last layer's ``Y`` one word again (its ``h``/``c`` is one word already).

    Ports ``i`` (``steps * n_x`` lanes, step-major), ``o``. :attr:`latency` by
    :func:`stack_timing`; :attr:`interval` the slowest layer's cycles per sequence.
    """

    def __init__(self, layers: Sequence[Recurrent]) -> None:
        self.layers = list(layers)
        first, final = self.layers[0], self.layers[-1]
        for a, b in zip(self.layers, self.layers[1:]):
            if a.output != 0 or a.out_lanes != b.in_lanes or a.steps != b.steps:
                raise ValueError("a layer of a RecurrentStack must pass its whole sequence Y to the next")
        x = first.in_lanes
        self.serialize = Serialize(x.with_count(first.steps * x.count), first.steps, channels_first=False)
        self.collect = (Collect(final.out_lanes, final.steps, channels_first=False) if final.output == 0 else None)
        self.in_lanes = self.serialize.in_lanes
        self.out_lanes = self.collect.out_lanes if self.collect is not None else final.out_lanes
        self.latency, self.interval = stack_timing([layer.period for layer in self.layers],
                                                   [layer.output == 0 for layer in self.layers], first.steps,
                                                   self.collect is not None)
        super().__init__({"i": In(stream.Signature(self.in_lanes.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.serialize = self.serialize
        parts = [self.serialize, *self.layers] + ([self.collect] if self.collect is not None else [])
        for k, layer in enumerate(self.layers):
            m.submodules[f"layer{k}"] = layer
        if self.collect is not None:
            m.submodules.collect = self.collect
        for a, b in zip(parts, parts[1:]):
            connect(m, a.o, b.i)
        connect(m, flipped(self.i), self.serialize.i)
        connect(m, parts[-1].o, flipped(self.o))
        return m
