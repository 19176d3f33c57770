"""Every example through calibration, quantization and the golden model.

Agreement is the fraction of argmaxes (last axis of the first output) on which the golden model
equals the float model, on inputs the calibration never saw. Run with ``-s`` to see the table.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from fpgac import api
from fpgac.cli import main
from fpgac.search import argmax_agreement

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODELS = ["mlp", "cnn2d", "cnn1d", "lstm", "gru", "digits"]
BITS = [16, 12, 10, 8, 6]


@lru_cache(maxsize=None)
def _inputs(name: str, n: int, seed: int) -> np.ndarray:
    """Uniform [-1, 1] (digits: pixel intensities in [0, 1]), shaped like the model's input."""
    if name == "digits":
        return np.random.default_rng(seed).uniform(0, 1, (n, 64))
    graph = api.load(EXAMPLES / f"{name}.onnx")
    return np.random.default_rng(seed).uniform(-1, 1, (n, *graph.inputs[0].type.shape))


@lru_cache(maxsize=None)
def _float(name: str, n: int, seed: int) -> np.ndarray:
    (y,) = api.run(api.load(EXAMPLES / f"{name}.onnx"), _inputs(name, n, seed))
    return y


def _agreement(name: str, bits: int, n: int = 10_000) -> float:
    compiled = api.compile(EXAMPLES / f"{name}.onnx", calibration=_inputs(name, 1000, 0), bits=bits)
    return argmax_agreement(_float(name, n, 1), compiled.predict(_inputs(name, n, 1)))


@pytest.mark.parametrize("name", MODELS)
def test_argmax_agreement_by_width(name: str) -> None:
    """Printed at every width; at 16 bits the golden model keeps >= 99.9% of 10,000 argmaxes."""
    table = {bits: _agreement(name, bits) for bits in BITS}
    print(f"\n{name:7s} " + "  ".join(f"{b:2d} bits {a:7.2%}" for b, a in table.items()))
    assert table[16] >= 0.999


def test_digits_accuracy_at_8_bits_within_one_point_of_float() -> None:
    data = np.load(EXAMPLES / "digits_test.npz")
    x, y = data["x"].astype(np.float64), data["y"]
    compiled = api.compile(EXAMPLES / "digits.onnx", calibration=x, bits=8)
    fixed = np.mean(compiled.predict(x).argmax(axis=1) == y)
    float_ = np.mean(compiled.predict(x, float=True).argmax(axis=1) == y)
    print(f"\ndigits accuracy: float {float_:.2%}, 8-bit golden {fixed:.2%}")
    assert float_ - fixed <= 0.01


def test_accuracy_budget_beats_uniform_width_on_unseen_inputs() -> None:
    """--accuracy-budget 0.01 on the MLP: >= 99% agreement on held-out inputs, fewer bits than uniform."""
    compiled = api.compile(EXAMPLES / "mlp.onnx", calibration=_inputs("mlp", 1000, 0), accuracy_budget=0.01)
    search = compiled.search
    held_out = argmax_agreement(_float("mlp", 10_000, 1), compiled.predict(_inputs("mlp", 10_000, 1)))
    # the uniform baseline, measured the same way, really meets the budget
    uniform = api.compile(EXAMPLES / "mlp.onnx", calibration=_inputs("mlp", 1000, 0), bits=search.uniform_bits)
    print(f"\nbudget 0.01: per-layer {compiled.total_bits:,} bits, held-out agreement {held_out:.2%}; "
          f"uniform {search.uniform_bits} bits {uniform.total_bits:,} bits")
    assert held_out >= 0.99
    assert compiled.total_bits == search.total_bits < search.uniform_total_bits == uniform.total_bits


@pytest.mark.parametrize("name", MODELS + ["qmlp"])
def test_fpgac_run_writes_the_golden_output(name: str, tmp_path: Path, capsys) -> None:
    model = EXAMPLES / f"{name}.onnx"
    if not model.exists():
        pytest.skip(f"{model.name} is not in this checkout")
    x = _inputs(name, 16, 3) if name != "qmlp" else _inputs("mlp", 16, 3)[:, : api.load(model).inputs[0].type.shape[0]]
    np.save(tmp_path / "x.npy", x)
    code = main(["run", str(model), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"), "-q",
                 "--calibration", str(tmp_path / "x.npy")])
    assert code == 0, capsys.readouterr().err
    want = api.compile(model, calibration=x).predict(x)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want if not isinstance(want, list) else want[0])
