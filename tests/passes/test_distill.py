"""The distill pruning step (issue 20): the training graph equals the float reference, pruned
weights stay exactly zero, a seed gives the same weights every time, distillation beats refit on
the bundled digits classifier at 90% sparsity on held-out rows (labels, never trained on), a
distilled design verifies bit-exact, and bad specs or too few rows are one clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpgac import api
from fpgac.errors import UsageError
from fpgac.ir import Op
from fpgac.sim import run_float

pytest.importorskip("jax")
pytest.importorskip("optax")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> tuple[Path, np.ndarray, np.ndarray]:
    with np.load(EXAMPLES / "digits_test.npz") as d:
        x, y = d["x"], d["y"]
    path = tmp_path_factory.mktemp("distill") / "train.npz"
    np.savez(path, x=x[:300], y=y[:300])  # calibration and training rows; 300.. are held out
    return path, x[300:], y[300:]


def _weights(compiled) -> dict[str, np.ndarray]:
    return {n.name: np.asarray(n.inputs[1].data, dtype=np.float64) for n in compiled.float_graph.nodes
            if n.op is Op.DENSE}


@pytest.mark.parametrize("name", ["mlp", "digits", "cnn1d", "cnn2d", "lstm", "gru"])
def test_the_training_graph_is_the_float_reference(name: str) -> None:
    from fpgac.passes.jax_graph import forward, parameters

    graph = api.load(EXAMPLES / f"{name}.onnx")
    rng = np.random.default_rng(1)
    x = [rng.uniform(-1, 1, size=(8, *v.type.shape)).astype(np.float32) for v in graph.inputs]
    got = forward(graph)(parameters(graph), x)
    for a, b in zip(got, run_float(graph, x)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=1e-4, atol=1e-5)


def test_pruned_weights_stay_zero_and_a_seed_repeats(digits) -> None:
    cal, _, _ = digits
    pruned = _weights(api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=8, prune="magnitude:global:0.8"))
    first = _weights(api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=8,
                                 prune="magnitude:global:0.8,distill:epochs=5:mix=1"))
    again = _weights(api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=8,
                                 prune="magnitude:global:0.8,distill:epochs=5:mix=1"))
    other = _weights(api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=8,
                                 prune="magnitude:global:0.8,distill:epochs=5:mix=1:seed=7"))
    for name, w in pruned.items():
        assert np.all(first[name][w == 0] == 0), name  # a pruned weight never comes back
        assert np.any(first[name][w != 0] != w[w != 0]), name  # the survivors were trained
        np.testing.assert_array_equal(first[name], again[name])
    assert any(np.any(first[n] != other[n]) for n in first)


def test_distill_beats_refit_on_held_out_labels(digits) -> None:
    cal, x, y = digits

    def accuracy(spec: str) -> float:
        compiled = api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=8, prune=spec)
        return float(np.mean(compiled.predict(x).argmax(axis=1) == y))

    refit = accuracy("magnitude:global:0.9,refit")
    distill = accuracy("magnitude:global:0.9,distill:epochs=150:patience=15:mix=1")
    assert distill > refit + 0.03, (distill, refit)


@pytest.mark.parametrize("target", [
    "cpu",
    pytest.param("xilinx", marks=pytest.mark.requires("g++")),
    pytest.param("amaranth", marks=pytest.mark.requires("verilator")),
])
def test_a_distilled_design_is_bit_exact(digits, tmp_path: Path, target: str) -> None:
    cal, _, _ = digits
    compiled = api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=8,
                           prune="magnitude:global:0.8,distill:epochs=10:mix=1")
    report = api.verify(compiled.write(tmp_path / "c", target, vectors=100))
    assert report.ok and report.mismatched_bits == 0 and report.vectors == 100


def test_bad_specs_and_too_few_rows(digits, tmp_path: Path) -> None:
    cal, _, _ = digits
    with pytest.raises(UsageError, match=r"unknown distill option 'speed'"):
        api.compile(EXAMPLES / "digits.onnx", calibration=cal, prune="magnitude:0.5,distill:speed=3")
    with pytest.raises(UsageError, match=r"epochs='x' is not a number"):
        api.compile(EXAMPLES / "digits.onnx", calibration=cal, prune="magnitude:0.5,distill:epochs=x")
    with pytest.raises(UsageError, match=r"put distill before binary/ternary"):
        api.compile(EXAMPLES / "digits.onnx", calibration=cal, prune="binary,distill")
    with pytest.raises(UsageError, match=r"^distill trains on calibration data: give --calibration X.npz"):
        api.compile(EXAMPLES / "digits.onnx", input_range=(0, 1), prune="magnitude:0.5,distill")
    with pytest.raises(UsageError, match=r"^distill trains on calibration data"):
        api.compile(EXAMPLES / "digits.onnx", input_range=(0, 1), distill=True)
    wrong = tmp_path / "wrong.npz"
    with np.load(cal) as d:
        np.savez(wrong, x=d["x"], y=d["y"][:-1])
    for options in (dict(distill=True), dict(prune="magnitude:0.5,distill")):
        with pytest.raises(UsageError, match=r"^distill: 299 labels y for 300 calibration rows$"):
            api.compile(EXAMPLES / "digits.onnx", calibration=wrong, **options)
    with pytest.raises(UsageError, match=r"^prune spec 'distill:mix=x': mix='x' is not a number$"):
        api.compile(EXAMPLES / "digits.onnx", calibration=cal, distill="mix=x")
    few = tmp_path / "few.npz"
    with np.load(cal) as d:
        np.savez(few, x=d["x"][:20])
    with pytest.raises(UsageError, match=r"^distill needs at least 50 calibration rows to train on, got 20$"):
        api.compile(EXAMPLES / "digits.onnx", calibration=few, prune="magnitude:0.5,distill")


def test_quantization_aware_distillation_at_4_bits(digits, tmp_path: Path, capsys) -> None:
    """--distill without pruning: the 4-bit design, trained through its own types, classifies the
    held-out rows better than the same 4-bit design without it; the summary says before/after."""
    from fpgac.cli import main

    cal, x, y = digits
    plain = api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=4)
    trained = api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=4, distill="epochs=150:patience=15:mix=1")
    accuracy = lambda c: float(np.mean(c.predict(x).argmax(axis=1) == y))  # noqa: E731
    assert accuracy(trained) > accuracy(plain), (accuracy(trained), accuracy(plain))
    assert trained.options["resolved"]["distill"]["record"]["quantization_aware"] is True
    assert main(["compile", str(EXAMPLES / "digits.onnx"), "--target", "cpu", "--bits", "4", "--calibration", str(cal),
                 "--distill", "epochs=5", "-o", str(tmp_path / "c"), "--vectors", "20"]) == 0
    out = capsys.readouterr().out
    assert "distilled          through the fixed-point types: on the 30 held-out calibration rows" in out
    assert main(["verify", str(tmp_path / "c"), "-q"]) == 0


def test_without_the_train_extra(digits, monkeypatch) -> None:
    import sys

    cal, _, _ = digits
    monkeypatch.setitem(sys.modules, "jax", None)  # as if JAX were not installed
    monkeypatch.delitem(sys.modules, "fpgac.passes.jax_graph", raising=False)
    with pytest.raises(UsageError, match=r"pip install 'fpgac\[train\]'"):
        api.compile(EXAMPLES / "digits.onnx", calibration=cal, prune="magnitude:0.5,distill")


def test_a_smaller_student_after_structured_pruning(digits) -> None:
    """structured:0.75 leaves 8 of the 32 hidden units: distilled from the teacher, the shrunken
    network classifies the held-out rows better than refit makes it."""
    cal, x, y = digits
    refit = api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=8, prune="structured:0.75,refit")
    distilled = api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=8,
                            prune="structured:0.75,distill:epochs=150:patience=15:mix=1")
    assert [n.inputs[1].type.shape for n in distilled.graph.nodes if n.op is Op.DENSE] == [(64, 8), (8, 10)]
    accuracy = lambda c: float(np.mean(c.predict(x).argmax(axis=1) == y))  # noqa: E731
    assert accuracy(distilled) > accuracy(refit) + 0.03, (accuracy(distilled), accuracy(refit))


def test_recurrent_layers_are_trained_too(tmp_path: Path) -> None:
    """--distill on the LSTM example: its W, R and B move with the Dense after it, the design is
    bit-exact on the cpu target."""
    graph = api.load(EXAMPLES / "lstm.onnx")
    (x,) = graph.inputs
    rng = np.random.default_rng(3)
    np.savez(tmp_path / "cal.npz", x=rng.uniform(-1, 1, size=(200, *x.type.shape)).astype(np.float32))
    before = {n.name: [np.asarray(v.data) for v in n.inputs[1:4] if v is not None]
              for n in graph.nodes if n.op is Op.LSTM}
    compiled = api.compile(EXAMPLES / "lstm.onnx", calibration=tmp_path / "cal.npz", bits=8,
                           distill="epochs=30:mix=1")
    after = {n.name: [np.asarray(v.data) for v in n.inputs[1:4] if v is not None]
             for n in compiled.float_graph.nodes if n.op is Op.LSTM}
    assert after.keys() == before.keys()
    for name in before:
        assert all(a.shape == b.shape and np.any(a != b) for a, b in zip(after[name], before[name])), name
    report = api.verify(compiled.write(tmp_path / "c", "cpu", vectors=50))
    assert report.ok
