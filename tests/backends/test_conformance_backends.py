"""The PyTorch-exported conformance models (written outside this project) through the backends.

Every in-scope model of ``tests/conformance_models.py`` is quantized (8 bits, the input
range from its shipped inputs) and compiled for the cpu and the xilinx target; the C kernel and
the HLS C-simulation must equal the golden model on every bit of 100 vectors (the input-type
extremes first). Three models with tensors of 50,000 to a million elements are marked ``slow``
(a nightly run: ``pytest -m slow``), and one whose shipped input holds 9e223 (uninitialized memory in the
exporter) cannot be given a fixed-point range; both lists say so by name.

For the amaranth target, whose Verilator builds take too long for all of them here, each model it
builds is lowered to its lane-level stages, which must equal the golden model bit for bit (the
``fpgac.hdl`` components are tested against those stages' semantics in ``tests/hdl``); the rest
must be refused with the one-line unsupported error. ``AMARANTH_REFUSED`` names them.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from conformance_models import MODELS, OUT_OF_SCOPE, data_sets

from fpgac import api
from fpgac.backends.common import load_vectors
from fpgac.backends.amaranth.lower import execute, lower
from fpgac.backends.amaranth.stream import lower_stream
from fpgac.errors import UnsupportedError, UsageError

LARGE = {"test_MaxPool1d_stride_padding_dilation", "test_MaxPool2d_stride_padding_dilation", "test_operator_conv"}
NO_RANGE = {"test_operator_addconstant"}
IN_SCOPE = [m for m in MODELS if m.name not in OUT_OF_SCOPE and m.name not in LARGE]
VECTORS = 100
#: not lowered by the amaranth target (none today: the five with several inputs or outputs are
#: built since stream ports per graph value, and run on Verilator in test_amaranth_ports)
AMARANTH_REFUSED: set[str] = set()
#: the in-scope models with several inputs or outputs
SEVERAL_PORTS = {"test_operator_basic", "test_operator_concat2", "test_operator_max", "test_operator_min",
                 "test_operator_symbolic_override_nested"}


@functools.cache  # one compile per model and worker, shared by the three targets' tests
def _compile(model):
    inputs = [x for x, _ in data_sets(model)]
    largest = max(float(np.abs(a).max()) for x in inputs for a in x)
    return api.compile(model / "model.onnx", bits=8, input_range=(-max(largest, 1.0), max(largest, 1.0)))


def test_lists_name_real_models() -> None:
    names = {m.name for m in MODELS}
    assert LARGE <= names and NO_RANGE <= names and AMARANTH_REFUSED <= names and SEVERAL_PORTS <= names
    assert len(IN_SCOPE) >= 70


@pytest.mark.parametrize("target", ["cpu", pytest.param("xilinx", marks=pytest.mark.requires("g++"))])
@pytest.mark.parametrize("model", IN_SCOPE + [pytest.param(m, marks=pytest.mark.slow) for m in MODELS if m.name in LARGE],
                         ids=lambda p: p.name)
def test_conformance_model_bit_exact(tmp_path, model, target: str) -> None:
    if model.name in NO_RANGE:
        with pytest.raises(UsageError, match=r"^layer '2_1' \(Add\) needs 746 bits to hold every value exactly \(at most "
                                             r"62\); use fewer bits \(--bits\) or narrower overrides$"):
            _compile(model)
        return
    out = tmp_path / "design"
    _compile(model).write(out, target, vectors=VECTORS)
    report = api.verify(out)
    # a model with huge tensors gets fewer vectors (the cap on stored elements, with a warning)
    assert report.vectors == (VECTORS if model.name not in LARGE else load_vectors(out / "vectors.npz").n) > 0
    assert report.mismatched_bits == 0, "\n".join(report.lines())


@pytest.mark.parametrize("model", [m for m in IN_SCOPE if m.name not in NO_RANGE], ids=lambda p: p.name)
def test_conformance_model_amaranth_stages(model) -> None:
    compiled = _compile(model)
    if model.name in AMARANTH_REFUSED:
        with pytest.raises(UnsupportedError, match=r"^(node '[^']+'|the amaranth target|output ')"):
            lower(compiled.graph)
        return
    _assert_stages_equal_golden(lower(compiled.graph), compiled, VECTORS)


def _assert_stages_equal_golden(stages, compiled, n: int) -> None:
    """The stages, run in numpy on ``n`` test vectors, give the golden model's every output bit."""
    vectors = compiled.vectors(n)
    n = vectors.n  # a model of huge tensors gets fewer
    got = execute(stages, [x.reshape(n, -1) for x in vectors.input_mantissas])
    assert len(got) == len(vectors.golden)
    for mine, golden in zip(got, vectors.golden):
        np.testing.assert_array_equal(mine, golden.reshape(n, -1))


#: not built by the amaranth target's --io stream (each refused by name: several inputs or outputs,
#: a branch, an op it does not build on a feature map, or no layer at all); the fully parallel
#: mode builds every one of them
STREAM_REFUSED = {"test_ConstantPad2d", "test_GLU", "test_GLU_dim", "test_PixelShuffle", "test_ZeroPad2d",
                  "test_log_softmax_dim3", "test_operator_basic", "test_operator_concat2", "test_operator_flatten",
                  "test_operator_max", "test_operator_min", "test_operator_permute2",
                  "test_operator_symbolic_override_nested", "test_softmax_functional_dim3"}


@pytest.mark.parametrize("model", [m for m in IN_SCOPE if m.name not in NO_RANGE]
                         + [pytest.param(m, marks=pytest.mark.slow) for m in MODELS if m.name in LARGE],
                         ids=lambda p: p.name)
def test_conformance_model_stream_stages(model) -> None:
    """--io stream: the stages on a pixel stream equal the golden model, or the model is refused by
    name (the three LARGE ones, which the fully parallel mode refuses for size, are built here)."""
    compiled = _compile(model)
    if model.name in STREAM_REFUSED:
        with pytest.raises(UnsupportedError, match=r"^(node '[^']+'|--io stream)"):
            lower_stream(compiled.graph)
        return
    _assert_stages_equal_golden(lower_stream(compiled.graph), compiled, 20 if model.name in LARGE else VECTORS)
