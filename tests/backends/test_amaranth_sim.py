"""The cocotb testbench and simulator set-up, on tiny hand-written streams (no compiler involved).

An incrementer whose expected outputs are worked out by numpy checks that words go in and out
packed as documented, that latency and interval are measured, and, with a design that is right
only at full rate, that the back-pressure phase catches what a full-rate run cannot.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fpgac.backends.amaranth import testbench
from fpgac.backends.amaranth.simulate import run_testbench

LANES, WIDTH, BEATS = 3, 6, 2


class Increment(wiring.Component):
    """Adds 1 to each lane, one register stage; ``hold_payload=False`` forgets to hold under stalls."""

    def __init__(self, hold_payload: bool = True) -> None:
        self.hold_payload = hold_payload
        bits = LANES * WIDTH
        super().__init__({"i": In(stream.Signature(bits)), "o": Out(stream.Signature(bits))})

    def elaborate(self, platform):
        m = Module()
        moving = self.o.ready | ~self.o.valid
        m.d.comb += self.i.ready.eq(moving)
        lanes = [self.i.payload[k * WIDTH:(k + 1) * WIDTH] + 1 for k in range(LANES)]
        update = [self.o.payload[k * WIDTH:(k + 1) * WIDTH].eq(lanes[k]) for k in range(LANES)]
        with m.If(moving):
            m.d.sync += self.o.valid.eq(self.i.valid)
        if self.hold_payload:
            with m.If(moving):
                m.d.sync += update
        else:
            m.d.sync += update
        return m


def _design(tmp: Path, hold_payload: bool) -> tuple[Path, Path, np.ndarray]:
    tb = tmp / "tb"
    tb.mkdir(parents=True)
    shutil.copy(testbench.__file__, tb / "test_design.py")
    source = tmp / "top.v"
    source.write_text(verilog.convert(Increment(hold_payload), name="top"))
    x = np.random.default_rng(3).integers(-32, 32, (120, BEATS, LANES))
    np.save(tb / "inputs.npy", x)
    config = dict(clk="clk", rst="rst",
                  inputs=[dict(data="i__payload", valid="i__valid", ready="i__ready", width=WIDTH, lanes=LANES,
                               signed=True, beats=BEATS, file="inputs.npy")],
                  outputs=[dict(data="o__payload", valid="o__valid", ready="o__ready", width=WIDTH, lanes=LANES,
                                signed=True, beats=BEATS)])
    (tb / "config.json").write_text(json.dumps(config))
    expected = (x + 1 + 32) % 64 - 32  # 6-bit two's complement wrap, worked by hand
    return tb, source, expected


@pytest.mark.parametrize("simulator", [pytest.param("verilator", marks=pytest.mark.requires("libpython", "verilator")),
                                       pytest.param("icarus", marks=pytest.mark.requires("libpython", "iverilog"))])
def test_streams_through_with_back_pressure(tmp_path, simulator) -> None:
    tb, source, expected = _design(tmp_path, hold_payload=True)
    seen = []
    outputs, results = run_testbench(tb, [source], "top", tmp_path / "build", simulator=simulator,
                                     progress=lambda done, total: seen.append((done, total)))
    assert np.array_equal(outputs["full_rate"][0], expected)
    assert np.array_equal(outputs["stalled"][0], expected)
    # one register: the last output beat leaves one cycle after the last input beat went in
    assert results["latency_cycles"] == BEATS
    assert results["interval_cycles"] == BEATS
    assert results["vectors"] == 120


@pytest.mark.requires("libpython", "verilator")
def test_back_pressure_catches_a_payload_that_is_not_held(tmp_path) -> None:
    tb, source, expected = _design(tmp_path, hold_payload=False)
    outputs, _ = run_testbench(tb, [source], "top", tmp_path / "build", vectors=60)
    assert np.array_equal(outputs["full_rate"][0], expected[:60])
    assert not np.array_equal(outputs["stalled"][0], expected[:60])
