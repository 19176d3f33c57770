"""What a newcomer meets in the first hour (issue 14): each check failed before its fix.

A fake backend stands in for the xilinx target where the point is the command line (see
``conftest.FakeBackend``); the distances are recomputed here with onnxruntime and numpy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from cli_helpers import error as _error
from cli_helpers import run as _run
from onnx import TensorProto, helper

from fpgac.backends.common import Port, Vectors, compare
from fpgac.ir import FixedType

ort = pytest.importorskip("onnxruntime")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DIGITS, DIGITS_DATA, MLP = EXAMPLES / "digits.onnx", EXAMPLES / "digits_test.npz", EXAMPLES / "mlp.onnx"


@pytest.fixture()
def fake(fake_backend):
    return fake_backend("xilinx")


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def _percent(text: str, label: str) -> float:
    return float(re.search(rf"{label}\s+argmax agreement ([\d.]+)%", text).group(1))


def test_pruning_reports_the_distance_to_the_unpruned_network(tmp_path, capsys, fake) -> None:
    """--prune: compile and verify print the distance to the pruned and to the unpruned float
    network, each named; the unpruned figure equals onnxruntime's model against the golden outputs."""
    out = tmp_path / "prj"
    code, stdout, _ = _run(capsys, "compile", DIGITS, "-o", out, "--bits", "8", "--calibration", DIGITS_DATA,
                           "--prune", "magnitude:0.8")
    assert code == 0
    assert "vs pruned float" in stdout and "vs unpruned float" in stdout
    vectors = np.load(out / "vectors.npz")
    session = ort.InferenceSession(str(DIGITS), providers=["CPUExecutionProvider"])
    unpruned = session.run(None, {session.get_inputs()[0].name: vectors["in0"].astype(np.float32)})[-1]
    golden = vectors["golden0"] * 2.0 ** -8  # ufixed<8,0>: the probabilities
    expected = 100 * np.mean(golden.argmax(axis=1) == unpruned.argmax(axis=1))
    assert _percent(stdout, "vs unpruned float") == pytest.approx(expected, abs=0.005)
    # against labels too (the calibration file holds them): the real cost of pruning shows
    labels = np.load(DIGITS_DATA)["y"]
    accuracy = re.search(r"vs labels\s+accuracy golden model ([\d.]+)%, pruned float ([\d.]+)%, "
                         r"unpruned float ([\d.]+)% on the 450 rows of ", stdout)
    rows = session.run(None, {session.get_inputs()[0].name: np.load(DIGITS_DATA)["x"].astype(np.float32)})[-1]
    assert float(accuracy.group(3)) == pytest.approx(100 * np.mean(rows.argmax(axis=1) == labels), abs=0.005)
    assert float(accuracy.group(1)) < float(accuracy.group(3)) - 20  # 80% of the weights gone, no refit
    code, stdout, _ = _run(capsys, "verify", out)
    assert code == 0
    assert _percent(stdout, "vs unpruned float") == pytest.approx(expected, abs=0.005)
    assert re.search(r"^vs pruned float\s+argmax agreement", stdout, re.M)


def test_an_unpruned_design_names_one_float_reference(tmp_path, capsys, fake) -> None:
    code, stdout, _ = _run(capsys, "compile", MLP, "-o", tmp_path / "prj", "--bits", "8", "--vectors", "50")
    assert code == 0 and "vs float" in stdout and "vs unpruned" not in stdout and "pruned float" not in stdout


def test_the_manifest_records_how_the_design_was_made(tmp_path, capsys, fake) -> None:
    out = tmp_path / "prj"
    argv = ["compile", DIGITS, "-o", out, "--bits", "8", "--calibration", DIGITS_DATA,
            "--prune", "magnitude:global:0.5", "--io", "stream", "--clock-period", "4"]
    assert _run(capsys, *argv)[0] == 0
    manifest = json.loads((out / "fpgac.json").read_text())
    given, resolved = manifest["options"]["given"], manifest["options"]["resolved"]
    assert given == {"calibration": str(DIGITS_DATA), "bits": 8, "prune": ["magnitude:global:0.5"], "io": "stream",
                     "clock_period": 4.0, "vectors": 1000}
    assert resolved["bits"] == 8 and resolved["precision"] == "auto" and resolved["table_size"] == 1024
    assert resolved["prune"] == {"model": "magnitude:global:0.5", "layers": {}}
    assert resolved["accuracy_budget"] is None and resolved["calibration"]["rows"] == 450
    # the fake backend resolves nothing itself: these are what the command line passed on
    assert (resolved["io"], resolved["clock_period"]) == ("stream", 4.0)
    provenance = manifest["provenance"]
    assert provenance["model"]["sha256"] == _sha256(DIGITS)
    assert provenance["calibration"]["sha256"] == _sha256(DIGITS_DATA)
    assert provenance["command"] == ["fpgac", *map(str, argv)]
    assert provenance["fpgac"] == manifest["fpgac"]
    import amaranth
    import numpy

    tools = provenance["tools"]
    assert tools["numpy"] == numpy.__version__ and tools["onnx"] == onnx.__version__
    assert tools["amaranth"] == amaranth.__version__ and tools["python"].count(".") == 2
    assert {"cocotb", "verilator", "g++", "gcc", "hls4ml"} <= set(tools)


def test_a_real_targets_options_are_recorded_resolved(tmp_path) -> None:
    from fpgac import api

    out = api.compile(MLP, bits=8, input_range=(-1, 1)).write(tmp_path / "prj", "xilinx", vectors=5, reuse=2)
    resolved = json.loads((out / "fpgac.json").read_text())["options"]["resolved"]
    assert {k: resolved[k] for k in ("io", "part", "clock_period", "reuse")} == {
        "io": "parallel", "part": "xcvu13p-flga2577-2-e", "clock_period": 5.0, "reuse": 2}


def test_verify_saves_its_report(tmp_path, capsys, fake) -> None:
    out = tmp_path / "prj"
    assert _run(capsys, "compile", MLP, "-o", out, "--bits", "8", "--vectors", "30")[0] == 0
    code, stdout, _ = _run(capsys, "verify", out)
    assert code == 0 and f"saved {out / 'verify.json'}" in stdout
    saved = json.loads((out / "verify.json").read_text())
    assert (saved["result"], saved["target"], saved["vectors"], saved["mismatching_bits"]) == ("pass", "xilinx", 30, 0)
    assert saved["measurements"] == {"latency_cycles": 3}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", saved["date"]) and saved["wall_seconds"] >= 0
    assert saved["float"]["reference"] == "float" and saved["unpruned_float"] is None
    fake.flip = True
    assert _run(capsys, "verify", out)[0] == 1
    saved = json.loads((out / "verify.json").read_text())
    assert (saved["result"], saved["mismatching_bits"], saved["first_mismatch"]) == ("fail", 1, 0)


def test_zero_vectors_fail() -> None:
    port = Port("y", (2,), FixedType(8, 4))
    empty = np.zeros((0, 2), dtype=np.int64)
    vectors = Vectors([np.zeros((0, 2))], [empty], [empty], [np.zeros((0, 2))])
    report = compare("cpu", [port], vectors, [empty])
    assert report.mismatched_bits == 0 and not report.ok
    assert report.lines()[-1] == "result            FAIL: no vector was run"


def test_the_largest_error_inside_the_calibrated_range_is_reported_apart(tmp_path, capsys, fake) -> None:
    """The input-type extremes saturate; inside the calibrated range the error is the network's
    real one. Recomputed here from the stored vectors and onnxruntime."""
    out = tmp_path / "prj"
    assert _run(capsys, "compile", DIGITS, "-o", out, "--bits", "8", "--calibration", DIGITS_DATA)[0] == 0
    code, stdout, _ = _run(capsys, "verify", out)
    saved = json.loads((out / "verify.json").read_text())["float"]
    v = np.load(out / "vectors.npz")
    x = np.load(DIGITS_DATA)["x"]
    inside = ((v["in0"] >= x.min() - 2.0 ** -8) & (v["in0"] <= x.max() + 2.0 ** -8)).all(axis=1)
    session = ort.InferenceSession(str(DIGITS), providers=["CPUExecutionProvider"])
    ref = session.run(None, {session.get_inputs()[0].name: v["in0"].astype(np.float32)})[-1]
    error = np.abs(v["golden0"] * 2.0 ** -8 - ref).max(axis=1)
    assert saved["in_range_vectors"] == int(inside.sum()) >= 450
    # onnxruntime computes in float32, fpgac's float reference in float64
    assert saved["in_range_max_error"] == pytest.approx(error[inside].max(), rel=1e-4)
    assert saved["max_error"] == pytest.approx(error.max(), rel=1e-4) and saved["max_error"] >= saved["in_range_max_error"]
    assert f"on the {int(inside.sum())} inside the calibrated input range" in stdout


def test_an_accuracy_budget_that_cannot_be_met_says_the_best_it_reached(tmp_path, capsys) -> None:
    message = _error(capsys, "compile", DIGITS, "-o", tmp_path / "prj", "--bits", "8", "--calibration", DIGITS_DATA,
                     "--accuracy-budget", "0.01")
    assert re.fullmatch(
        r"--accuracy-budget 0.01 cannot be met at --bits 8: the best, 8 bits everywhere, agrees with the float "
        r"argmax on [\d.]+% of the 450 calibration samples \(\d+ differ\), which on so few samples proves only "
        r"[\d.]+% \(its lower bound at 97.7% confidence\), not the 99.00% the budget asks for: give more calibration "
        r"data \(about [\d,]+ samples at this agreement\), more --bits or a larger budget", message)
    assert not (tmp_path / "prj").exists()


def test_a_met_accuracy_budget_prints_the_widths_it_chose(tmp_path, capsys, fake) -> None:
    code, stdout, _ = _run(capsys, "compile", DIGITS, "-o", tmp_path / "prj", "--bits", "8",
                           "--calibration", DIGITS_DATA, "--accuracy-budget", "0.05")
    assert code == 0
    assert re.search(r"accuracy budget 0.05: [\d.]+% argmax agreement with float on the 450 calibration samples", stdout)
    assert re.search(r"layer\s+weight bits\s+result bits", stdout) or "every layer at" in stdout
    manifest = json.loads((tmp_path / "prj" / "fpgac.json").read_text())
    budget = manifest["options"]["resolved"]["accuracy_budget"]
    assert budget["budget"] == 0.05 and budget["calibration_samples"] == 450
    for layer, widths in budget["layers"].items():
        shown = re.search(rf"^\s+{layer}\s+(\d+)\s+(\d+)$", stdout, re.M)
        assert shown and int(shown.group(1)) == widths.get("weight_bits", budget["uniform_bits"])


@pytest.mark.parametrize("argv, message", [
    (["--part", "xc vu9p"], "part must be a Xilinx part name"),
    (["--part", "virtex"], "part must be a Xilinx part name"),
    (["--target", "amaranth", "--reuse", "0"], "--reuse must be at least 1"),
    (["--precision", "fixed<4>"], "fixed<4>"),
    (["--table-size", "1"], "table size must be from 2 to 65536"),
    (["--bits", "1"], "bit widths must be integers from 2 to 32"),
    (["--accuracy-budget", "1.5"], "--accuracy-budget must be at least 0 and below 1"),
    (["--calibration", "missing.npz"], "--calibration missing.npz: no such file"),
])
def test_options_are_checked_before_any_work(tmp_path, capsys, monkeypatch, argv, message) -> None:
    from fpgac.passes.calibrate import Calibrate

    def calibrate(*args, **kwargs):
        raise AssertionError("calibration ran before the options were checked")

    monkeypatch.setattr(Calibrate, "run", calibrate)
    assert message in _error(capsys, "compile", MLP, "-o", tmp_path / "prj", *argv)


def test_verify_refuses_a_simulator_for_a_design_without_one(tmp_path, capsys, fake) -> None:
    out = tmp_path / "prj"
    assert _run(capsys, "compile", MLP, "-o", out, "--vectors", "5")[0] == 0
    assert _error(capsys, "verify", out, "--simulator", "icarus") == \
        f"--simulator applies to amaranth designs; {out} is a xilinx design"
    assert not (out / "verify.json").exists()


def test_a_calibration_file_of_the_wrong_shape_is_named(tmp_path, capsys) -> None:
    bad = tmp_path / "cal.npy"
    np.save(bad, np.zeros((10, 8, 8)))
    assert _error(capsys, "compile", DIGITS, "-o", tmp_path / "prj", "--calibration", bad) == (
        f"{bad}: input 'x' has shape (10, 8, 8), expected (N, 64): a batch of N samples of the model's "
        "per-sample shape [64]")


def _gemm_with_batch(path: Path, batch: int) -> None:
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 2], rng.normal(size=6).astype(np.float32).tolist())
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"])], "batch4",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 2])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def test_a_model_exported_with_a_fixed_batch_says_so_once(tmp_path, capsys, caplog) -> None:
    model = tmp_path / "batch4.onnx"
    _gemm_with_batch(model, 4)
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(1).uniform(-1, 1, (7, 3)))
    with caplog.at_level(logging.WARNING):
        code, _, _ = _run(capsys, "run", model, "-i", x, "-o", tmp_path / "y.npy", "--float")
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if "fixed batch" in r.getMessage()]
    assert warnings == [f"{model}: input 'x' was exported with a fixed batch of 4; fpgac builds hardware for "
                        "one sample and runs a batch of any size one sample at a time (export with batch 1 or a "
                        "dynamic batch to silence this)"]
    assert np.load(tmp_path / "y.npy").shape == (7, 2)


def test_verify_builds_outside_out_unless_asked_to_keep_the_build(tmp_path, capsys) -> None:
    out = tmp_path / "c"
    assert _run(capsys, "compile", MLP, "-t", "cpu", "-o", out, "--bits", "8", "--vectors", "20")[0] == 0
    assert _run(capsys, "verify", out)[0] == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == []
    assert _run(capsys, "verify", out, "--keep-build")[0] == 0
    assert (out / "build" / "tb").is_file()  # the testbench executable, kept for debugging


@pytest.mark.requires("libpython", "iverilog")
def test_amaranth_compile_and_verify_show_progress_and_reuse_the_build(tmp_path, capsys) -> None:
    """-v shows each long step; the simulator executable is built once, kept in fpgac's cache
    (not in OUT), and reused by the next verify of the same Verilog."""
    out = tmp_path / "q"
    code, _, err = _run(capsys, "-v", "compile", EXAMPLES / "qmlp.onnx", "-t", "amaranth", "-o", out,
                        "--input-range=-1,1", "--vectors", "40")
    assert code == 0 and "fpgac: elaborating the Amaranth design and converting it to Verilog: done in" in err
    code, stdout, err = _run(capsys, "-v", "verify", out, "--simulator", "icarus")
    assert code == 0 and "fpgac: building qmlp with icarus" in err
    assert re.search(r"^build cache\s+stored in ", stdout, re.M)
    code, stdout, err = _run(capsys, "-v", "verify", out, "--simulator", "icarus")
    assert code == 0 and re.search(r"^build cache\s+reused ", stdout, re.M) and "building" not in err
    assert not (out / "build").exists()
