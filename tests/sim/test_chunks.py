"""Large batches run in parts (bounded memory): the parts must join to the one-pass result exactly.

The one-pass result is the interpreter's own ``evaluate_*`` (which never splits), so a split that
dropped, repeated or reordered a row, or lost the batch-axis layout of an output, would differ:
the fixed-point run bit for bit, the float run but for the last bit of a sum.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from fpgac import api
from fpgac.backends import common
from fpgac.passes import calibrate
from fpgac.ir.semantics import interpret as reference

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name", ["cnn2d", "lstm"])
def test_split_runs_equal_one_pass(monkeypatch, name: str) -> None:
    compiled = api.compile(EXAMPLES / f"{name}.onnx", bits=8, input_range=(-1.0, 1.0))
    x = np.random.default_rng(5).uniform(-1, 1, size=(23, *compiled.graph.inputs[0].type.shape))
    per_sample = reference.CHUNK_ELEMENTS // reference.chunk_rows(compiled.graph)
    monkeypatch.setattr(reference, "CHUNK_ELEMENTS", 4 * per_sample)  # parts of 4 rows: 6 parts
    assert reference.chunk_rows(compiled.graph) == 4
    for graph, fixed in ((compiled.graph, True), (compiled.float_graph, False)):
        run = reference.run_fixed(graph, x, mantissas=True) if fixed else reference.run_float(graph, x)
        whole = (reference.evaluate_fixed if fixed else reference.evaluate_float)(graph, [x])
        for value, array in zip(graph.outputs, run):
            want = np.moveaxis(whole[value.name], 0, graph.output_batch_axes.get(value.name, 0))
            if fixed:  # integers: exact
                np.testing.assert_array_equal(array, want)
            else:  # BLAS may sum a smaller batch in another order: the last bit of a float can move
                np.testing.assert_allclose(array, want.astype(array.dtype), rtol=1e-6)


def test_calibration_in_parts_gives_the_same_ranges(monkeypatch) -> None:
    x = {"x": np.random.default_rng(6).uniform(-2, 2, size=(50, 16))}
    one = api.load(EXAMPLES / "mlp.onnx")
    calibrate.Calibrate(x).run(one)
    monkeypatch.setattr(calibrate, "chunk_rows", lambda graph: 7)
    parts = api.load(EXAMPLES / "mlp.onnx")
    calibrate.Calibrate(x).run(parts)
    got = [v.range for v in parts.values() if not v.is_const]
    want = [v.range for v in one.values() if not v.is_const]
    np.testing.assert_allclose(got, want, rtol=1e-12)  # float sums of another batch size: the last bit


def test_huge_inputs_get_fewer_samples_and_vectors(monkeypatch, caplog) -> None:
    compiled = api.compile(EXAMPLES / "mlp.onnx", bits=8, input_range=(-1.0, 1.0))
    monkeypatch.setattr(calibrate, "CHUNK_ELEMENTS", 16 * 100)  # mlp has 16 inputs: 100 samples
    assert len(calibrate.sample_input_range(compiled.graph, -1, 1)["x"]) == 100
    monkeypatch.setattr(common, "MAX_VECTOR_ELEMENTS", 50 * (16 + 5))  # 16 inputs and 5 outputs a vector
    with caplog.at_level(logging.WARNING):
        vectors = common.make_vectors(compiled.graph, n=1000)
    assert len(vectors.golden[0]) == 50
    assert "1000 test vectors of 21 input and output elements each are too many to store; writing 50" in caplog.text
