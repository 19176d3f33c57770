"""The amaranth target end to end: every chain example compiled, simulated on Verilator with the
design's own cocotb testbench, bit-exact against the golden model on 1,000 vectors (input-type
extremes first), at full rate and under random back-pressure.

Verilator builds of fully parallel layers take tens of seconds each, so each example is built
once; the other checks (Icarus, AXI names, a corrupted golden value) share one Icarus build of the
small QONNX MLP.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from fpgac import api
from fpgac.backends.amaranth.build import components
from fpgac.backends.amaranth.lower import lower
from fpgac.backends.common import read_manifest
from fpgac.cli import main
from fpgac.hdl import Dense

EXAMPLES = ["mlp", "cnn2d", "cnn1d", "digits", "qmlp", "mlp-pruned"]


def _compile(name: str, **options):
    if name.endswith("-pruned"):
        name, options = name.removesuffix("-pruned"), {**options, "prune": "magnitude:0.8"}
    calibration = "examples/digits_test.npz" if name == "digits" else None
    return api.compile(f"examples/{name}.onnx", bits=8, calibration=calibration, input_range=(-1, 1), **options)


@pytest.mark.requires("libpython", "verilator")
@pytest.mark.parametrize("name", EXAMPLES)
def test_example_is_bit_exact_on_verilator(name, tmp_path) -> None:
    out = _compile(name).write(tmp_path / name, "amaranth", vectors=1000)
    report = api.verify(out)
    assert report.vectors == 1000
    assert report.mismatched_bits == 0, report.lines()
    assert report.extra["runs"].startswith("every vector twice: at full rate (0 wrong)")
    assert report.extra["latency_cycles"] == report.extra["declared_latency_cycles"]


@pytest.mark.requires("libpython", "iverilog")
def test_icarus_axi_names_and_a_corrupted_golden_value(tmp_path) -> None:
    out = _compile("qmlp").write(tmp_path / "axi", "amaranth", vectors=200, axi=True)
    verilog = (out / f"{read_manifest(out)['design']['verilog']}").read_text()
    assert "s_axis_tdata" in verilog and "m_axis_tready" in verilog and "i__payload" not in verilog.split(");")[0]
    # the README's synthesis command names this design and needs no command to keep its adders:
    # each is a wire with the keep attribute
    top = read_manifest(out)["design"]["toplevel"]
    assert f"read_verilog {read_manifest(out)['design']['verilog']}; synth_ecp5 -top {top}" in (out / "README.md").read_text()
    assert re.search(r"\(\* keep = 32'd1 \*\)\s+wire (\[\d+:0\] )?sum\d+;", verilog)
    report = api.verify(out, simulator="icarus")
    assert report.ok and report.extra["simulator"] == "icarus"
    # corrupt one golden bit the design is compared with (the build is reused): verify must see it
    arrays = dict(np.load(out / "vectors.npz"))
    arrays["golden0"][5, 0] ^= 1
    np.savez(out / "vectors.npz", **arrays)
    report = api.verify(out, simulator="icarus")
    assert report.mismatched_bits == 1 and report.first_mismatch == 5


def test_pruning_removes_adders() -> None:
    dense = lower(_compile("mlp").graph)
    pruned = lower(_compile("mlp-pruned").graph)

    def adders(stages):
        parts = components(stages)
        for p in parts:  # counted, never elaborated: no "created but never used" warning
            p._MustUse__silence = True
        return sum(p.adders for p in parts if isinstance(p, Dense))

    assert adders(pruned) < 0.4 * adders(dense)


def test_a_recurrent_layer_it_does_not_build_is_refused_by_name(tmp_path, capsys) -> None:
    """A GRU with linear_before_reset=0 (PyTorch never exports one): one line, exit 2, nothing written."""
    import onnx

    model = onnx.load("examples/gru.onnx")
    node = next(n for n in model.graph.node if n.op_type == "GRU")
    next(a for a in node.attribute if a.name == "linear_before_reset").i = 0
    onnx.save(model, tmp_path / "gru0.onnx")
    code = main(["compile", str(tmp_path / "gru0.onnx"), "-t", "amaranth", "-o", str(tmp_path / "gru"), "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "(GRU): linear_before_reset=0" in err[0], err
    assert not (tmp_path / "gru").exists()


@pytest.mark.requires("libpython", "iverilog")
def test_a_wiring_only_model_gets_a_clocked_design(tmp_path, monkeypatch) -> None:
    """PyTorch's ConstantPad2d conformance model is pure wiring (a Select); the design still needs
    a register (and so a clock) for its stream handshake: one StreamBuffer, latency 1. The output
    is named by a relative path, as on a command line (cocotb once failed to import the test then)."""
    from conformance_models import DATA

    model = DATA / "pytorch-converted" / "test_ConstantPad2d" / "model.onnx"
    compiled = api.compile(model, bits=8, input_range=(-4, 4))
    monkeypatch.chdir(tmp_path)
    compiled.write("pad", "amaranth", vectors=100)
    report = api.verify("pad", simulator="icarus")
    assert report.vectors == 100 and report.mismatched_bits == 0, report.lines()
    assert report.extra["latency_cycles"] == 1
