"""The IR on disk (``graph.json`` + ``graph.npz``): every example, quantized, comes back the same.

"The same" is checked two ways that do not share code with the serializer: the printed IR text,
and the golden model's mantissas on random inputs, bit for bit.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from fpgac import api
from fpgac.errors import UsageError
from fpgac.ir import load_graph, save_graph, verify
from fpgac.ir.serialize import GRAPH_JSON
from fpgac.sim import run_fixed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASES = [("mlp", None), ("mlp", "magnitude:0.8"), ("cnn2d", "structured:0.25"), ("cnn1d", None), ("lstm", None),
         ("gru", None), ("digits", "ternary"), ("qmlp", None)]


@pytest.mark.parametrize("name, prune", CASES)
def test_round_trip(tmp_path: Path, name: str, prune: str | None) -> None:
    graph = api.compile(EXAMPLES / f"{name}.onnx", bits=8, input_range=(-1.0, 1.0), prune=prune).graph
    save_graph(graph, tmp_path)
    back = load_graph(tmp_path)
    verify(back)
    assert str(back) == str(graph)
    x = np.random.default_rng(4).uniform(-1.5, 1.5, size=(64, *graph.inputs[0].type.shape))
    for got, want in zip(run_fixed(back, x, mantissas=True), run_fixed(graph, x, mantissas=True), strict=True):
        np.testing.assert_array_equal(got, want)
    sparse = [(v.name, v.type.sparsity) for v in graph.values() if v.type.sparsity is not None]
    back_sparse = {v.name: v.type.sparsity for v in back.values() if v.type.sparsity is not None}
    assert len(back_sparse) == len(sparse)
    for value_name, mask in sparse:
        np.testing.assert_array_equal(back_sparse[value_name].zero, mask.zero)


def test_another_format_is_refused(tmp_path: Path) -> None:
    save_graph(api.compile(EXAMPLES / "qmlp.onnx", bits=8).graph, tmp_path)
    data = json.loads((tmp_path / GRAPH_JSON).read_text())
    data["format"] = "fpgac-ir-0"
    (tmp_path / GRAPH_JSON).write_text(json.dumps(data))
    with pytest.raises(UsageError, match=rf"^{re.escape(str(tmp_path / GRAPH_JSON))}: not a graph of format fpgac-ir-1 "
                                         r"\(written by another fpgac\?\)$"):
        load_graph(tmp_path)
    with pytest.raises(UsageError, match=rf"^{re.escape(str(tmp_path / 'missing'))}: no graph.json"):
        load_graph(tmp_path / "missing")
