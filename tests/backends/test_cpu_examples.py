"""Every example through the CPU target: compile -> write -> gcc -> 1,000 vectors, 0 mismatching bits.

The vectors start with the extremes of the input types (fpgac.backends.common.make_vectors). The
builds use ``-std=c99 -O2 -Wall -Wextra -Werror -pedantic``, so a warning fails the test too.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fpgac import api

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODELS = ["mlp", "cnn2d", "cnn1d", "lstm", "gru", "digits", "qmlp"]


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("name", MODELS)
def test_example_bit_exact(name: str, bits: int, tmp_path: Path) -> None:
    compiled = api.compile(EXAMPLES / f"{name}.onnx", bits=bits, input_range=(-1, 1))
    out = compiled.write(tmp_path / "out", "cpu", vectors=1000)
    report = api.verify(out)
    assert report.vectors == 1000
    assert report.mismatched_bits == 0, "\n".join(report.lines())


def _arrays(source: str) -> dict[str, int]:
    """Name -> element count of every ``static const`` array in a model.c."""
    return {m.group(2): int(m.group(3)) for m in re.finditer(r"static const (\w+) (\w+)\[(\d+)\]", source)}


def test_pruned_model_stores_only_non_zeros(tmp_path: Path) -> None:
    compiled = api.compile(EXAMPLES / "mlp.onnx", bits=8, input_range=(-1, 1), prune="magnitude:0.8")
    weights = {n.name: n.inputs[1] for n in compiled.graph.nodes if n.inputs[1:] and n.inputs[1] is not None
               and n.inputs[1].is_const}
    assert all(w.type.sparsity is not None for w in weights.values())
    out = compiled.write(tmp_path / "out", "cpu", vectors=1000)
    arrays = _arrays((out / "model.c").read_text())
    for layer, w in weights.items():
        nnz = int(np.count_nonzero(w.data))
        assert nnz <= 0.2 * w.data.size + 1
        assert arrays[f"{layer}_w"] == nnz  # the weights: non-zeros only
        assert arrays[f"{layer}_w_col"] == nnz and arrays[f"{layer}_w_row"] == w.data.shape[1] + 1
    report = api.verify(out)
    assert report.mismatched_bits == 0, "\n".join(report.lines())
    readme = (out / "README.md").read_text()
    total = sum(int(np.count_nonzero(w.data)) for w in weights.values())  # int8 weights: one byte each
    assert f"| weights (non-zeros only where sparse) | {total:,} |" in readme


@pytest.mark.parametrize("name", ["cnn2d", "cnn1d"])  # with and without padding, cnn1d grouped
def test_pruned_conv_stores_only_non_zero_taps(name: str, tmp_path: Path) -> None:
    compiled = api.compile(EXAMPLES / f"{name}.onnx", bits=8, input_range=(-1, 1), prune="magnitude:0.6")
    out = compiled.write(tmp_path / "out", "cpu", vectors=300)
    arrays = _arrays((out / "model.c").read_text())
    for node in compiled.graph.nodes:
        if node.op.value == "Conv":
            assert arrays[f"{node.name}_w"] == np.count_nonzero(node.inputs[1].data) < node.inputs[1].data.size
    assert api.verify(out).mismatched_bits == 0


@pytest.mark.requires("m32")
@pytest.mark.parametrize("name, bits", [("cnn2d", 16), ("lstm", 16), ("mlp", 24)])
def test_32_bit_build(name: str, bits: int, tmp_path: Path) -> None:
    """-m32: 32-bit long and pointers; the 64-bit accumulators (16 and 24 bits) still exact."""
    compiled = api.compile(EXAMPLES / f"{name}.onnx", bits=bits, input_range=(-1, 1))
    out = compiled.write(tmp_path / "out", "cpu", vectors=300)
    assert "int64_t" in (out / "model.c").read_text().split("---- constants")[1]
    report = api.verify(out, cflags="-m32")
    assert report.mismatched_bits == 0, "\n".join(report.lines())
