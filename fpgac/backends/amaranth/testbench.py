"""The cocotb testbench shipped with every amaranth design (copied to ``OUT/tb/test_design.py``).

It reads ``config.json`` (clock and reset names; per input and output stream its data, valid
and ready port names, lane width, lane count, beats per vector, and its file; the design's
latency and interval, which bound how long a run may take) from the folder in
``FPGAC_TB_DIR`` (default: its own folder), each input's ``(n, beats, lanes)`` mantissas from its
file, and runs three phases on the design's valid/ready streams:

1. latency: vector 0 alone, outputs always ready: cycles from its first input beat accepted (on
   any input) to its last output beat accepted (on every output);
2. full rate: every vector back to back, inputs always valid, outputs always ready: the interval
   between consecutive vectors' last output beats, and outputs ``outputs_full_rate_<k>.npy``;
3. back-pressure: every vector again, each input's valid and each output's ready at random on its
   own (seeded by ``FPGAC_SEED``), holding valid and data until accepted as streams require:
   outputs ``outputs_stalled_<k>.npy``.

``results.json`` gets the measurements. When an output's ``expected`` file is there, the test
fails on any output that differs from it (so the testbench is a check on its own, without fpgac).
Lane ``k`` of a word holds bits ``[k*width, (k+1)*width)``, two's complement when signed.
"""

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

HERE = Path(os.environ.get("FPGAC_TB_DIR", Path(__file__).resolve().parent))


def pack(values, width):
    word = 0
    for k, v in enumerate(values):
        word |= (int(v) & ((1 << width) - 1)) << (k * width)
    return word


def unpack(word, lanes, width, signed):
    mask = (1 << width) - 1
    out = []
    for k in range(lanes):
        v = (word >> (k * width)) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out.append(v)
    return out


class Harness:
    def __init__(self, dut, cfg):
        self.clk = getattr(dut, cfg["clk"])
        self.rst = getattr(dut, cfg["rst"])
        self.inputs = [(getattr(dut, p["data"]), getattr(dut, p["valid"]), getattr(dut, p["ready"]), p)
                       for p in cfg["inputs"]]
        self.outputs = [(getattr(dut, p["data"]), getattr(dut, p["valid"]), getattr(dut, p["ready"]), p)
                        for p in cfg["outputs"]]
        self.cfg = cfg
        self.cycle = 0

    def _transfers(self, sent, holding, got, done_beats, outputs, first_in, last_out, finished, n, progress):
        """Record this cycle's transfers (at ReadOnly); returns how many vectors are complete."""
        for j, (_, _, ready, p) in enumerate(self.inputs):
            if holding[j] and int(ready.value) == 1:
                v = sent[j] // p["beats"]
                if first_in[v] is None:
                    first_in[v] = self.cycle
                sent[j] += 1
                holding[j] = False
        for k, (data, valid, ready, p) in enumerate(self.outputs):
            if int(valid.value) == 1 and int(ready.value) == 1:
                v, b = divmod(got[k], p["beats"])
                outputs[k][v, b] = unpack(data.value.to_unsigned(), p["lanes"], p["width"], p["signed"])
                got[k] += 1
                done_beats[k][v] += 1
                last_out[v] = max(last_out[v], self.cycle)
        while finished < n and all(d[finished] == p["beats"] for d, (_, _, _, p) in zip(done_beats, self.outputs)):
            finished += 1
            if progress is not None:
                progress(finished)
        return finished

    def _now(self):
        """The clock cycle the simulation is in (10 ns a cycle, counted from the end of reset)."""
        return int(round((get_sim_time(unit="ns") - self.t0) / 10))

    def _idle(self, sent, holding, words):
        """Nothing moves next cycle unless a ready or valid rises: every input has sent its words
        (and its valid is low) or holds one its ready refuses, and no output is valid."""
        for j, (_, valid, ready, _) in enumerate(self.inputs):
            if sent[j] < len(words[j]) and not (holding[j] and int(ready.value) == 0):
                return False
            if sent[j] == len(words[j]) and int(valid.value) == 1:  # its valid drops next cycle first
                return False
        return all(int(valid.value) == 0 for _, valid, _, _ in self.outputs)

    async def reset(self):
        for data, valid, _, _ in self.inputs:
            valid.value = 0
            data.value = 0
        for _, _, ready, _ in self.outputs:
            ready.value = 0
        self.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.clk)
        self.rst.value = 0
        await RisingEdge(self.clk)
        self.t0 = get_sim_time(unit="ns")
        self.cycle = 0

    async def run(self, inputs, p_valid=1.0, p_ready=1.0, rng=None, progress=None):
        """Stream ``inputs`` (per input port, (n, beats, lanes)) through; return the outputs (per
        output port, (n, beats, lanes)) and per-vector cycle marks."""
        n = len(inputs[0])
        words = [[pack(x[v, b], p["width"]) for v in range(n) for b in range(p["beats"])]
                 for x, (_, _, _, p) in zip(inputs, self.inputs)]
        outputs = [np.zeros((n, p["beats"], p["lanes"]), dtype=np.int64) for _, _, _, p in self.outputs]
        first_in, last_out = [None] * n, [0] * n
        sent, holding = [0] * len(self.inputs), [False] * len(self.inputs)
        got = [0] * len(self.outputs)
        done_beats = [[0] * n for _ in self.outputs]  # output beats of each vector accepted so far
        total = sum(n * p["beats"] for _, _, _, p in self.outputs)
        beats_in = sum(len(w) for w in words)
        per = 50 + 2 * self.cfg.get("interval_cycles", 1)  # a generous bound on the cycles per beat
        limit = (self.cycle + 1000 + 2 * self.cfg.get("latency_cycles", 0)
                 + per * (beats_in + total) * (1 + int(p_valid < 1 or p_ready < 1)))
        finished = 0
        while sum(got) < total:
            if self.cycle > limit:
                raise AssertionError(f"timeout: {sum(got)} of {total} output beats after {self.cycle} cycles")
            for j, (data, valid, _, _) in enumerate(self.inputs):
                if sent[j] < len(words[j]):
                    if not holding[j]:
                        holding[j] = rng is None or rng.random() < p_valid
                        if holding[j]:
                            data.value = words[j][sent[j]]
                    valid.value = int(holding[j])
                else:
                    valid.value = 0
            for _, _, ready, _ in self.outputs:
                ready.value = int(rng is None or rng.random() < p_ready)
            await ReadOnly()
            finished = self._transfers(sent, holding, got, done_beats, outputs, first_in, last_out, finished, n,
                                       progress)
            while sum(got) < total and self._idle(sent, holding, words):
                # nothing moves until a ready or a valid rises: sleep until one does, then take that
                # cycle's transfers with the drives as they are (a design that takes thousands of
                # cycles per vector would otherwise cost a Python round per cycle)
                edges = [RisingEdge(ready) for j, (_, _, ready, _) in enumerate(self.inputs) if holding[j]]
                edges += [RisingEdge(valid) for _, valid, _, _ in self.outputs]
                await First(*edges, ClockCycles(self.clk, max(1, limit + 1 - self.cycle)))
                await ReadOnly()
                self.cycle = self._now()
                if self.cycle > limit:
                    break
                finished = self._transfers(sent, holding, got, done_beats, outputs, first_in, last_out, finished, n,
                                           progress)
            await RisingEdge(self.clk)
            self.cycle = self._now()
        for _, valid, _, _ in self.inputs:
            valid.value = 0
        return outputs, first_in, last_out


@cocotb.test()
async def vectors(dut):
    cfg = json.loads((HERE / "config.json").read_text())
    inputs = [np.load(HERE / p["file"]) for p in cfg["inputs"]]
    n = min(int(os.environ.get("FPGAC_VECTORS", len(inputs[0]))), len(inputs[0]))
    inputs = [x[:n] for x in inputs]
    results_dir = Path(os.environ.get("FPGAC_RESULTS_DIR", HERE))
    progress_file = results_dir / "progress.txt"

    def progress(done):
        if done % 50 == 0 or done == n:
            progress_file.write_text(f"{done} {n}\n")

    h = Harness(dut, cfg)
    Clock(h.clk, 10, unit="ns").start()
    await h.reset()

    _, first_in, last_out = await h.run([x[:1] for x in inputs])
    latency = last_out[0] - first_in[0]
    full, _, last_out = await h.run(inputs)
    interval = (last_out[-1] - last_out[0]) / (n - 1) if n > 1 else None
    rng = random.Random(int(os.environ.get("FPGAC_SEED", "1")))
    stalled, _, _ = await h.run(inputs, cfg.get("p_valid", 0.7), cfg.get("p_ready", 0.7), rng, progress)

    for k in range(len(cfg["outputs"])):
        np.save(results_dir / f"outputs_full_rate_{k}.npy", full[k])
        np.save(results_dir / f"outputs_stalled_{k}.npy", stalled[k])
    (results_dir / "results.json").write_text(json.dumps(
        {"vectors": n, "latency_cycles": latency, "interval_cycles": interval, "cycles": h.cycle}))
    for k, p in enumerate(cfg["outputs"]):
        if not p.get("expected") or not (HERE / p["expected"]).exists():
            continue
        expected = np.load(HERE / p["expected"])[:n]
        for name, got in (("full rate", full[k]), ("back-pressure", stalled[k])):
            bad = np.flatnonzero((got != expected).reshape(n, -1).any(axis=1))
            assert len(bad) == 0, (f"output {p['data']}, {name}: {len(bad)} of {n} vectors differ from "
                                   f"{p['expected']} (first: {bad[0]})")
