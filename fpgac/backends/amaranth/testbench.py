"""The cocotb testbench shipped with every amaranth design (copied to ``OUT/tb/test_design.py``).

It reads ``config.json`` (port names, lane widths) and ``inputs.npy`` (``(n, beats, lanes)``
input mantissas) from the folder in ``FPGAC_TB_DIR`` (default: its own folder), and runs three
phases on the design's valid/ready streams:

1. latency: vector 0 alone, output always ready: cycles from its first input beat accepted to
   its last output beat accepted;
2. full rate: every vector back to back, input always valid, output always ready: the interval
   between consecutive vectors' last output beats, and outputs ``outputs_full_rate.npy``;
3. back-pressure: every vector again, input valid and output ready each at random (seeded by
   ``FPGAC_SEED``), holding valid and data until accepted as streams require: outputs
   ``outputs_stalled.npy``.

``results.json`` gets the measurements. When ``expected.npy`` is there, the test fails on any
output that differs from it (so the testbench is a check on its own, without fpgac).
Lane ``k`` of a word holds bits ``[k*width, (k+1)*width)``, two's complement when signed.
"""

import json
import os
import random
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge

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
        p = cfg["ports"]
        self.clk = getattr(dut, p["clk"])
        self.rst = getattr(dut, p["rst"])
        self.i_data, self.i_valid, self.i_ready = (getattr(dut, p[k]) for k in ("i_data", "i_valid", "i_ready"))
        self.o_data, self.o_valid, self.o_ready = (getattr(dut, p[k]) for k in ("o_data", "o_valid", "o_ready"))
        self.cfg = cfg
        self.cycle = 0

    async def reset(self):
        self.i_valid.value = 0
        self.o_ready.value = 0
        self.i_data.value = 0
        self.rst.value = 1
        for _ in range(3):
            await RisingEdge(self.clk)
        self.rst.value = 0
        await RisingEdge(self.clk)

    async def run(self, inputs, p_valid=1.0, p_ready=1.0, rng=None, progress=None):
        """Stream ``inputs`` (n, beats, lanes) through; return outputs and per-vector cycle marks."""
        cfg = self.cfg
        n, beats = inputs.shape[:2]
        out_beats, out_lanes = cfg["out_beats"], cfg["out_lanes"]
        words = [pack(inputs[v, b], cfg["in_width"]) for v in range(n) for b in range(beats)]
        outputs = np.zeros((n, out_beats, out_lanes), dtype=np.int64)
        first_in, last_out = [None] * n, [None] * n
        sent = got = 0
        holding = False
        limit = self.cycle + 1000 + 50 * (len(words) + n * out_beats) * (1 + int(p_valid < 1 or p_ready < 1))
        while got < n * out_beats:
            if self.cycle > limit:
                raise AssertionError(f"timeout: {got} of {n * out_beats} output beats after {self.cycle} cycles")
            if sent < len(words):
                if not holding:
                    holding = rng is None or rng.random() < p_valid
                    if holding:
                        self.i_data.value = words[sent]
                self.i_valid.value = int(holding)
            else:
                self.i_valid.value = 0
            self.o_ready.value = int(rng is None or rng.random() < p_ready)
            await ReadOnly()
            if holding and int(self.i_ready.value) == 1:
                if sent % beats == 0:
                    first_in[sent // beats] = self.cycle
                sent += 1
                holding = False
            if int(self.o_valid.value) == 1 and int(self.o_ready.value) == 1:
                v, b = divmod(got, out_beats)
                outputs[v, b] = unpack(self.o_data.value.to_unsigned(), out_lanes, cfg["out_width"], cfg["out_signed"])
                if b == out_beats - 1:
                    last_out[v] = self.cycle
                    if progress is not None:
                        progress(v + 1)
                got += 1
            await RisingEdge(self.clk)
            self.cycle += 1
        self.i_valid.value = 0
        return outputs, first_in, last_out


@cocotb.test()
async def vectors(dut):
    cfg = json.loads((HERE / "config.json").read_text())
    inputs = np.load(HERE / "inputs.npy")
    n = min(int(os.environ.get("FPGAC_VECTORS", len(inputs))), len(inputs))
    inputs = inputs[:n]
    results_dir = Path(os.environ.get("FPGAC_RESULTS_DIR", HERE))
    progress_file = results_dir / "progress.txt"

    def progress(done):
        if done % 50 == 0 or done == n:
            progress_file.write_text(f"{done} {n}\n")

    h = Harness(dut, cfg)
    Clock(h.clk, 10, unit="ns").start()
    await h.reset()

    _, first_in, last_out = await h.run(inputs[:1])
    latency = last_out[0] - first_in[0]
    full, _, last_out = await h.run(inputs)
    interval = (last_out[-1] - last_out[0]) / (n - 1) if n > 1 else None
    rng = random.Random(int(os.environ.get("FPGAC_SEED", "1")))
    stalled, _, _ = await h.run(inputs, cfg.get("p_valid", 0.7), cfg.get("p_ready", 0.7), rng, progress)

    np.save(results_dir / "outputs_full_rate.npy", full)
    np.save(results_dir / "outputs_stalled.npy", stalled)
    (results_dir / "results.json").write_text(json.dumps(
        {"vectors": n, "latency_cycles": latency, "interval_cycles": interval, "cycles": h.cycle}))
    expected_path = HERE / "expected.npy"
    if expected_path.exists():
        expected = np.load(expected_path)[:n]
        for name, got in (("full rate", full), ("back-pressure", stalled)):
            bad = np.flatnonzero((got != expected).reshape(n, -1).any(axis=1))
            assert len(bad) == 0, f"{name}: {len(bad)} of {n} vectors differ from expected.npy (first: {bad[0]})"
