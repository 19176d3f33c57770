"""Run a stream component in Amaranth's simulator under random back-pressure, and check the protocol.

The unit tests of every component (and of wired designs) go through :func:`run_streams`: it
drives each input stream with the given words, with random idle cycles and garbage on the
payload while ``valid`` is low, accepts each output stream with random ``ready``, and fails on
any protocol violation it can see: an output that drops ``valid`` or changes its payload while
stalled, more words than expected (checked over a drain period after the last one), or a
deadlock (no progress for ``max_cycles``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from amaranth.lib import wiring
from amaranth.sim import Simulator

__all__ = ["ProtocolError", "StreamRun", "run_streams", "run_vectors"]


class ProtocolError(AssertionError):
    """A component broke the valid/ready rules, produced too many words, or stopped."""


@dataclass
class StreamRun:
    """What came out: the words of each output stream, and the cycle of every transfer."""

    words: dict[str, list[int]] = field(default_factory=dict)
    in_cycles: dict[str, list[int]] = field(default_factory=dict)
    out_cycles: dict[str, list[int]] = field(default_factory=dict)
    cycles: int = 0


def run_streams(
    dut: wiring.Component,
    inputs: Mapping[str, Sequence[int]],
    outputs: Mapping[str, int],
    *,
    seed: int = 0,
    valid_prob: float = 0.7,
    ready_prob: float = 0.7,
    drain: int = 20,
    max_cycles: int | None = None,
) -> StreamRun:
    """Push ``inputs[port]`` into each input stream; collect ``outputs[port]`` words from each output.

    ``valid_prob``/``ready_prob`` are the chances that a producer offers a word / a consumer is
    ready in a given cycle (1.0 for full throughput, to measure latency and interval).
    """
    rng = random.Random(seed)
    run = StreamRun()
    total = sum(len(w) for w in inputs.values()) + sum(outputs.values())
    limit = max_cycles if max_cycles is not None else 2000 + 200 * total
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    def producer(name: str, words: Sequence[int]):
        port = getattr(dut, name)
        bits = len(port.payload)
        local = random.Random(rng.random())
        cycles: list[int] = []
        run.in_cycles[name] = cycles

        async def bench(ctx):
            cycle = 0
            for word in words:
                while local.random() >= valid_prob:
                    ctx.set(port.valid, 0)
                    ctx.set(port.payload, local.getrandbits(bits))
                    await ctx.tick()
                    cycle += 1
                ctx.set(port.payload, int(word))
                ctx.set(port.valid, 1)
                while True:
                    _, _, ready = await ctx.tick().sample(port.ready)
                    cycle += 1
                    if ready:
                        break
                    if cycle > limit:
                        raise ProtocolError(f"input {name!r}: not accepted after {limit} cycles (deadlock?)")
                cycles.append(cycle - 1)
            ctx.set(port.valid, 0)

        return bench

    def consumer(name: str, count: int):
        port = getattr(dut, name)
        local = random.Random(rng.random())
        got: list[int] = []
        cycles: list[int] = []
        run.words[name] = got
        run.out_cycles[name] = cycles

        async def bench(ctx):
            cycle = 0
            held = None  # the payload a stalled valid must keep
            left = drain
            while len(got) < count or left > 0:
                done = len(got) >= count
                ready = 1 if done else int(local.random() < ready_prob)
                ctx.set(port.ready, ready)
                _, _, valid, payload = await ctx.tick().sample(port.valid, port.payload)
                if held is not None and (not valid or payload != held):
                    raise ProtocolError(
                        f"output {name!r} at cycle {cycle}: a stalled word was "
                        + ("withdrawn" if not valid else f"changed from {held:#x} to {payload:#x}")
                    )
                held = None
                if valid and ready:
                    if done:
                        raise ProtocolError(f"output {name!r}: more than the {count} expected words")
                    got.append(int(payload))
                    cycles.append(cycle)
                elif valid:
                    held = int(payload)
                if done:
                    left -= 1
                cycle += 1
                if cycle > limit:
                    raise ProtocolError(f"output {name!r}: {len(got)} of {count} words after {limit} cycles")
            run.cycles = max(run.cycles, cycle)

        return bench

    for name, words in inputs.items():
        sim.add_testbench(producer(name, list(words)))
    for name, count in outputs.items():
        sim.add_testbench(consumer(name, count))
    sim.run()
    return run


def run_vectors(dut: wiring.Component, rows: object, count: int | None = None, **options: object
                ) -> tuple[np.ndarray, StreamRun]:
    """Feed the rows of an integer array through ``dut.i``, one word each, and unpack ``dut.o``.

    Words are packed with ``dut.in_lanes`` and unpacked with ``dut.out_lanes``; ``count`` is the
    number of output words (default: one per row). ``options`` go to :func:`run_streams`.
    Returns the output lanes as an int64 array ``[count, out_lanes.count]`` and the run.
    """
    rows = np.asarray(rows)
    words = [dut.in_lanes.pack(r) for r in rows.reshape(len(rows), -1)]
    n = len(rows) if count is None else count
    run = run_streams(dut, {"i": words}, {"o": n}, **options)
    out = np.array([dut.out_lanes.unpack(w) for w in run.words["o"]], dtype=np.int64)
    return out.reshape(n, dut.out_lanes.count), run
