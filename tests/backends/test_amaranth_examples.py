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


@pytest.mark.requires("libpython", "verilator")
def test_dsp_products_in_a_fully_parallel_design(tmp_path, capsys) -> None:
    """--dsp on a fully parallel design: always puts every weight that is not a power of two on a
    multiplier (bit-exact on Verilator); auto none while the estimate fits the device, and on a
    device too small for it as many as the device has DSP blocks, less the Softmax's (two a lane
    and one: 2 x 5 + 1 for the MLP's)."""
    from fpgac import devices

    def facts(argv, name="qmlp"):
        out = tmp_path / "-".join([name, *argv]).replace("--", "")
        assert main(["compile", f"examples/{name}.onnx", "--target", "amaranth", "--bits", "8", *argv,
                     "-o", str(out)]) == 0, capsys.readouterr().err
        return out, read_manifest(out)["design"]

    out, always = facts(["--dsp", "always"])
    stages = api.load_design(out)  # the quantized graph; its weights by hand below
    want = sum(1 for s in lower(stages) if hasattr(s, "matrix") and s.matrix is not None
               for v in map(abs, map(int, np.asarray(s.matrix).flat)) if v & (v - 1))  # not 0, not 2^k
    assert always["dsp"] == "always" and always["dsp_products"] == want > 0
    assert len(re.findall(r"^  assign \S+\s+= .+ \* .+;$", (out / always["verilog"]).read_text(), re.M)) == want
    report = api.verify(out)
    assert report.mismatched_bits == 0 and report.vectors == 1000, report.lines()
    assert facts([])[1]["dsp_products"] == 0  # auto: the estimate fits the LFE5U-85F
    assert facts(["--dsp", "never"])[1]["dsp_products"] == 0
    small = devices.device("LFE5U-12F")
    got = facts(["--device", "LFE5U-12F"], name="mlp")[1]
    assert got["dsp"] == "auto" and got["dsp_products"] == small.dsps - (2 * 5 + 1)
