"""Every bundled example, through the frontend and the float reference, against onnxruntime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import fpgac.api as api
from fpgac.frontend import QONNX_DOMAINS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _is_qonnx(path: Path) -> bool:
    """QONNX models hold quantizer ops onnxruntime lacks; tests/frontend/test_qonnx.py checks them."""
    return any(o.domain in QONNX_DOMAINS for o in onnx.load(path, load_external_data=False).opset_import)


MODELS = sorted(p.stem for p in EXAMPLES.glob("*.onnx") if not _is_qonnx(p))


def _onnxruntime(path: Path, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    fixed = session.get_inputs()[0].shape[0] == 1  # batch fixed at 1: run sample by sample
    if fixed:
        runs = [session.run(None, {name: x[i: i + 1]}) for i in range(len(x))]
        return [np.concatenate([r[k] for r in runs]) for k in range(len(runs[0]))]
    return session.run(None, {name: x})


def test_all_examples_present() -> None:
    assert set(MODELS) >= {"mlp", "cnn2d", "cnn1d", "lstm", "gru", "digits"}


@pytest.mark.parametrize("name", MODELS)
def test_example_matches_onnxruntime(name: str) -> None:
    path = EXAMPLES / f"{name}.onnx"
    graph = api.load(path)
    (value,) = graph.inputs
    rng = np.random.default_rng(1234)
    x = rng.uniform(-2.0, 2.0, size=(1000, *value.shape)).astype(np.float32)
    got = api.run(graph, x)
    want = _onnxruntime(path, x)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)


def test_digits_accuracy_equals_onnxruntime() -> None:
    data = np.load(EXAMPLES / "digits_test.npz")
    graph = api.load(EXAMPLES / "digits.onnx")
    (probs,) = api.run(graph, data["x"])
    (reference,) = _onnxruntime(EXAMPLES / "digits.onnx", data["x"])
    ours, theirs = (probs.argmax(1) == data["y"]).mean(), (reference.argmax(1) == data["y"]).mean()
    print(f"\ndigits float accuracy: fpgac {ours:.4f}, onnxruntime {theirs:.4f}")
    assert ours == theirs
    assert ours > 0.9
