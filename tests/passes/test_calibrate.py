"""Calibrate and sample_input_range: every value's range is the min and max of the float network
on the calibration batch, computed here with plain numpy."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.errors import UsageError
from fpgac.ir import Act, FloatType, Graph, Op, TensorType
from fpgac.ir.semantics import interpret
from fpgac.passes.calibrate import DEFAULT_SAMPLES, Calibrate, sample_input_range

F = FloatType()
W = np.array([[1.0, -2.0], [0.5, 3.0], [-1.0, 0.0]])
B = np.array([0.25, -0.5])


def _graph() -> Graph:
    g = Graph("cal")
    x = g.add_input("x", TensorType(F, (3,)))
    fc = g.add_node(Op.DENSE, [x, g.constant("w", W), g.constant("b", B)], [TensorType(F, (2,))], name="fc")
    g.outputs = [g.add_node(Op.ACTIVATION, [fc.output], [TensorType(F, (2,))], {"kind": Act.RELU}, name="r").output]
    return g


def test_ranges_are_the_min_and_max_numpy_computes() -> None:
    x = np.random.default_rng(3).uniform(-2, 2, size=(40, 3))
    g = _graph()
    assert Calibrate({"x": x}).run(g) is False  # types and structure untouched
    h = x @ W + B
    assert g.inputs[0].range == (x.min(), x.max())
    assert g.node("fc").output.range == pytest.approx((h.min(), h.max()))
    assert g.node("r").output.range == pytest.approx((max(h.min(), 0.0), h.max()))


def test_a_batch_run_in_parts_gives_the_same_ranges(monkeypatch) -> None:
    x = np.random.default_rng(4).uniform(-2, 2, size=(50, 3))
    whole = _graph()
    Calibrate({"x": x}).run(whole)
    monkeypatch.setattr(interpret, "CHUNK_ELEMENTS", 7 * 8)  # 8 elements a sample: parts of 7 rows
    parts = _graph()
    Calibrate({"x": x}).run(parts)
    for a, b in zip(whole.values(), parts.values()):
        assert a.range == b.range


def test_bad_batches_are_refused() -> None:
    with pytest.raises(UsageError, match="^calibration input 'x' holds NaN or infinite values$"):
        Calibrate({"x": np.array([[0.0, np.nan, 1.0]])}).run(_graph())
    with pytest.raises(UsageError, match="^the calibration batch is empty$"):
        Calibrate({"x": np.zeros((0, 3))}).run(_graph())


def test_samples_of_an_input_range() -> None:
    g = _graph()
    samples = sample_input_range(g, -0.5, 2.0)
    x = samples["x"]
    assert x.shape == (DEFAULT_SAMPLES, 3) and x.min() >= -0.5 and x.max() <= 2.0
    np.testing.assert_array_equal(x, sample_input_range(g, -0.5, 2.0)["x"])  # a fixed seed
    for lo, hi in ((1.0, 1.0), (2.0, -2.0), (0.0, np.inf)):
        with pytest.raises(UsageError, match=rf"^input range {lo},{hi} must be two finite numbers LO,HI with LO < HI$"):
            sample_input_range(g, lo, hi)
