"""Accuracy versus sparsity: the digits classifier and the MLP example, pruned then quantized.

Digits: calibration (and ``refit``'s least squares) on the even rows of the test split, accuracy on
the odd rows, which neither saw. MLP: argmax agreement with the unpruned float model on 10,000
uniform inputs in [-1, 1] (calibration on 1,000 others). Run with ``-s`` to see the tables that
the README quotes.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from fpgac import api
from fpgac.search import argmax_agreement

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SPECS = [f"magnitude:{s}" for s in (0.5, 0.7, 0.8, 0.9)] + [f"magnitude:global:{s}" for s in (0.5, 0.7, 0.8, 0.9)] \
    + ["structured:0.25", "structured:0.5"]


@cache
def _digits() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = np.load(EXAMPLES / "digits_test.npz")
    x, y = data["x"].astype(np.float64), data["y"]
    return x[::2], x[1::2], y[1::2]


@cache
def _digits_accuracy(spec: str | None, bits: int | None) -> float:
    """Held-out accuracy of the pruned network: in float (``bits=None``) or the golden model."""
    cal, x, y = _digits()
    compiled = api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=bits or 16, prune=spec)
    return float(np.mean(compiled.predict(x, float=bits is None).argmax(axis=1) == y))


@cache
def _mlp_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cal = np.random.default_rng(0).uniform(-1, 1, (1000, 16))
    x = np.random.default_rng(1).uniform(-1, 1, (10_000, 16))
    (reference,) = api.run(api.load(EXAMPLES / "mlp.onnx"), x)
    return cal, x, reference


@cache
def _mlp_agreement(spec: str | None, bits: int | None) -> float:
    cal, x, reference = _mlp_data()
    compiled = api.compile(EXAMPLES / "mlp.onnx", calibration=cal, bits=bits or 16, prune=spec)
    return argmax_agreement(reference, compiled.predict(x, float=bits is None))


def _table(title: str, measure) -> dict[tuple[str, bool, int | None], float]:
    results = {}
    lines = [f"\n{title}", f"{'spec':24s} {'float':>7s} {'8 bits':>7s} {'+refit':>7s} {'8 bits':>7s}"]
    for spec in [None] + SPECS:
        row = []
        for refit in ([False] if spec is None else [False, True]):
            full = None if spec is None else spec + (",refit" if refit else "")
            for bits in (None, 8):
                results[spec, refit, bits] = measure(full, bits)
                row.append(f"{results[spec, refit, bits]:7.2%}")
        lines.append(f"{spec or 'unpruned':24s} " + " ".join(row))
    print("\n".join(lines))
    return results


def test_digits_accuracy_versus_sparsity() -> None:
    table = _table("digits: held-out accuracy (225 images)", _digits_accuracy)
    float_accuracy = table[None, False, None]
    # the documented point: 80% of the weights gone (one global cut), refit, 8 bits: within 2
    # points of the unpruned float network
    assert float_accuracy - table["magnitude:global:0.8", True, 8] <= 0.02
    # 50% per layer without refit costs a few points; refit wins them back
    assert float_accuracy - table["magnitude:0.5", False, 8] <= 0.05
    assert float_accuracy - table["magnitude:0.5", True, 8] <= 0.01
    # structured pruning of half of the hidden neurons (32 -> 16), refit: within 2 points
    assert float_accuracy - table["structured:0.5", True, 8] <= 0.02
    for spec in SPECS:
        assert table[spec, True, None] >= table[spec, False, None], spec


def test_mlp_agreement_versus_sparsity() -> None:
    table = _table("mlp: argmax agreement with the unpruned float model (10,000 uniform inputs)", _mlp_agreement)
    # random He-initialized weights hold no redundancy to remove: pruning costs agreement quickly,
    # refit recovers part of it; 8-bit quantization adds almost nothing on top of pruning
    for spec in SPECS:
        assert table[spec, True, None] > table[spec, False, None], spec
        for refit in (False, True):
            assert abs(table[spec, refit, 8] - table[spec, refit, None]) <= 0.01, (spec, refit)


@pytest.mark.parametrize("spec", ["magnitude:0.8", "magnitude:global:0.8", "structured:0.5"])
def test_the_pruned_digits_graph_has_the_asked_sparsity(spec: str) -> None:
    cal, _, _ = _digits()
    compiled = api.compile(EXAMPLES / "digits.onnx", calibration=cal, bits=8, prune=spec)
    weights = [n.inputs[1] for n in compiled.graph.nodes if n.op.value == "Dense"]
    if spec == "structured:0.5":  # 64-32-10 became 64-16-10
        assert [w.type.shape for w in weights] == [(64, 16), (16, 10)]
        return
    # 20% of 64x32 and of 32x10 weights stay (410 + 64), or 20% of all 2,368 of them
    assert sum(w.type.sparsity.nnz for w in weights) == 474
    for w in weights:  # quantization may round more weights to zero, never a pruned one back
        assert np.all(w.data[w.type.sparsity.zero] == 0)
