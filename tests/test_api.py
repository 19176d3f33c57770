"""The Python API as README shows it: load, compile, predict, write, verify, and the checks on
what it is given. Expected values come from onnxruntime (float) and hand-worked cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import fpgac.api as api
from fpgac.errors import ShapeError, UsageError
from fpgac.ir import Op

ort = pytest.importorskip("onnxruntime")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MLP = EXAMPLES / "mlp.onnx"


@pytest.fixture(scope="module")
def compiled():
    return api.compile(MLP, calibration=np.random.default_rng(1).uniform(-1, 1, (300, 16)), bits=12)


def test_load_gives_the_canonical_float_graph() -> None:
    graph = api.load(MLP)
    assert [n.op for n in graph.nodes].count(Op.DENSE) == 4
    x = np.random.default_rng(2).uniform(-1, 1, (20, 16))
    (want,) = ort.InferenceSession(str(MLP), providers=["CPUExecutionProvider"]).run(None, {"x": x.astype(np.float32)})
    np.testing.assert_allclose(api.run(graph, x)[0], want, rtol=1e-4, atol=1e-6)


def test_predict_float_and_golden(compiled) -> None:
    x = np.random.default_rng(3).uniform(-1, 1, (50, 16))
    (want,) = ort.InferenceSession(str(MLP), providers=["CPUExecutionProvider"]).run(None, {"x": x.astype(np.float32)})
    np.testing.assert_allclose(compiled.predict(x, float=True), want, rtol=1e-4, atol=1e-6)
    golden = compiled.predict(x)
    assert np.abs(golden - want).max() < 0.05  # 12 bits: close to float, not equal
    mantissas = compiled.predict(x, mantissas=True)
    t = compiled.graph.outputs[0].type.dtype
    np.testing.assert_array_equal(mantissas * t.lsb, golden)  # the values are the mantissas' exactly


def test_compile_records_what_it_was_given(compiled) -> None:
    assert compiled.options["given"]["bits"] == 12
    assert compiled.options["resolved"]["precision"] == "auto"
    assert compiled.options["resolved"]["calibration"]["rows"] == 300
    assert compiled.unpruned_graph is None  # nothing pruned


def test_write_and_verify_round_trip(compiled, tmp_path) -> None:
    out = compiled.write(tmp_path / "c", "cpu", vectors=30)
    report = api.verify(out)
    assert report.ok and report.vectors == 30
    assert json.loads((out / "verify.json").read_text())["mismatching_bits"] == 0
    graph, manifest = api.load_design(out, manifest=True)
    assert manifest["target"] == "cpu" and str(graph) == str(compiled.graph)


def test_inputs_are_checked() -> None:
    graph = api.load(MLP)
    with pytest.raises(ShapeError, match=r"^calibration data: input 'x' has shape \(5, 15\), expected \(N, 16\): a "
                                         r"batch of N samples of the model's per-sample shape \[16\]$"):
        api.check_inputs({"x": np.zeros((5, 15))}, graph, "calibration data")
    with pytest.raises(ShapeError, match="^data.npz: no array for input 'x'$"):
        api.check_inputs({}, graph, "data.npz")


def test_read_input_forms(tmp_path) -> None:
    graph = api.load(MLP)
    x = np.random.default_rng(5).uniform(-1, 1, (4, 16))
    np.save(tmp_path / "a.npy", x)
    np.savez(tmp_path / "b.npz", x=x, y=np.arange(4))
    np.savez(tmp_path / "c.npz", only=x)
    for name in ("a.npy", "b.npz", "c.npz"):
        np.testing.assert_array_equal(api.read_input(tmp_path / name, graph)["x"], x)
    np.testing.assert_array_equal(api.read_labels(tmp_path / "b.npz"), np.arange(4))
    assert api.read_labels(tmp_path / "c.npz") is None
    np.savez(tmp_path / "d.npz", a=x, b=x)
    with pytest.raises(UsageError, match=rf"^{tmp_path / 'd.npz'}: holds arrays a, b; name the one to use 'x'$"):
        api.read_input(tmp_path / "d.npz", graph)


def test_compile_refuses_a_budget_with_one_fixed_type() -> None:
    with pytest.raises(UsageError, match="^--accuracy-budget chooses widths itself: it cannot be combined with one "
                                         "fixed --precision type$"):
        api.compile(MLP, precision="fixed<16,6>", accuracy_budget=0.01, input_range=(-1, 1))
