"""The PyTorch-exported conformance models that ship with the onnx package.

Every model under ``pytorch-converted/`` and ``pytorch-operator/`` either loads and matches its
shipped outputs to 1e-4, or is listed in ``OUT_OF_SCOPE`` (``tests/conformance_models.py``) with the reason, and then must fail with
the clean ``UnsupportedError`` naming the node. A model that is neither fails the suite.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conformance_models import MODELS, OUT_OF_SCOPE, data_sets

import fpgac.api as api
from fpgac.errors import UnsupportedError


def test_every_listed_model_exists() -> None:
    names = {m.name for m in MODELS}
    assert set(OUT_OF_SCOPE) <= names, sorted(set(OUT_OF_SCOPE) - names)


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.name)
def test_conformance(model: Path) -> None:
    path = model / "model.onnx"
    if model.name in OUT_OF_SCOPE:
        with pytest.raises(UnsupportedError, match=r"^.*model\.onnx: (node '[^']+' \([A-Za-z]+\): |input '[^']+' ).+$"):
            api.load(path)
        return
    graph = api.load(path)
    for inputs, expected in data_sets(model):
        outputs = api.run(graph, inputs)
        assert len(outputs) == len(expected)
        for got, want in zip(outputs, expected):
            assert got.shape == want.shape
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_conformance_count() -> None:
    """Print the figure the closing note quotes; at least the 75 known to pass must load."""
    in_scope = [m for m in MODELS if m.name not in OUT_OF_SCOPE]
    print(f"\nconformance: {len(in_scope)} of {len(MODELS)} models in scope, {len(OUT_OF_SCOPE)} out of scope")
    assert len(in_scope) >= 75
