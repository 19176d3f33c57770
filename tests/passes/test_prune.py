"""Magnitude pruning (per layer, global, threshold), the prune spec, and the quantizer keeping zeros.

Expected weights are worked out by hand from the small matrices below.
"""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest

from fpgac import api
from fpgac.errors import UsageError
from fpgac.ir import Act, FixedType, FloatType, Graph, Op, TensorType, parse_type, verify
from fpgac.passes import (
    Binarize,
    ClipWeights,
    DeadUnits,
    MagnitudePrune,
    Norm,
    PassManager,
    Scope,
    StructuredPrune,
    parse_prune,
    prune_passes,
)
from fpgac.passes.calibrate import Calibrate
from fpgac.passes.quantize import QuantConfig, Quantize
from fpgac.sim import run_fixed, run_float

F = FloatType()
W1 = np.array([[0.5, -0.1, 0.3],
               [0.05, -0.8, 0.2]])  # fc1: [in 2, out 3]
W2 = np.array([[1.0, -0.02],
               [0.04, 0.015],
               [-0.6, 0.03]])  # fc2: [in 3, out 2]


def mlp() -> Graph:
    """x[2] -> fc1 -> relu -> fc2 -> y."""
    graph = Graph("g")
    x = graph.add_input("x", TensorType(F, (2,)))
    fc1 = graph.add_node(Op.DENSE, [x, graph.constant("w1", W1), graph.constant("b1", [0.1, 0.0, -0.1])],
                         [TensorType(F, (3,))], name="fc1")
    relu = graph.add_node(Op.ACTIVATION, [fc1.output], [TensorType(F, (3,))], {"kind": Act.RELU}, name="relu")
    fc2 = graph.add_node(Op.DENSE, [relu.output, graph.constant("w2", W2), graph.constant("b2", [0.2, -0.2])],
                         [TensorType(F, (2,))], name="fc2")
    graph.outputs = [fc2.output]
    verify(graph)
    return graph


def run(graph: Graph, passes) -> Graph:
    PassManager(passes, verify_each=True).run(graph)
    return graph


def weight(graph: Graph, layer: str) -> np.ndarray:
    return graph.node(layer).inputs[1].data


def mask(graph: Graph, layer: str) -> np.ndarray | None:
    sparsity = graph.node(layer).inputs[1].type.sparsity
    return None if sparsity is None else sparsity.zero


# -- magnitude pruning ----------------------------------------------------------------------------


def test_per_layer_fraction_zeros_the_smallest_of_each_layer() -> None:
    g = run(mlp(), [MagnitudePrune(sparsity=0.5)])
    # fc1: |w| sorted 0.05, 0.1, 0.2 | 0.3, 0.5, 0.8 -> the first three go
    np.testing.assert_array_equal(weight(g, "fc1"), [[0.5, 0, 0.3], [0, -0.8, 0]])
    # fc2: 0.015, 0.02, 0.03 | 0.04, 0.6, 1.0
    np.testing.assert_array_equal(weight(g, "fc2"), [[1.0, 0], [0.04, 0], [-0.6, 0]])
    np.testing.assert_array_equal(mask(g, "fc1"), [[False, True, False], [True, False, True]])
    assert g.node("fc1").inputs[1].type.sparsity.nnz == 3
    assert str(g.node("fc1").inputs[1].type) == "float32[2,3]{nnz=3}"
    assert g.node("fc1").inputs[2].type.sparsity is None  # biases are kept


def test_global_fraction_takes_one_cut_over_all_layers() -> None:
    g = run(mlp(), [MagnitudePrune(sparsity=0.5, scope=Scope.GLOBAL)])
    # all 12 |w|: 0.015 0.02 0.03 0.04 0.05 0.1 | 0.2 0.3 0.5 0.6 0.8 1.0: fc1 loses 2, fc2 loses 4
    np.testing.assert_array_equal(weight(g, "fc1"), [[0.5, 0, 0.3], [0, -0.8, 0.2]])
    np.testing.assert_array_equal(weight(g, "fc2"), [[1.0, 0], [0, 0], [-0.6, 0]])


def test_threshold_zeros_magnitudes_strictly_below_it() -> None:
    g = run(mlp(), [MagnitudePrune(threshold=0.1)])
    np.testing.assert_array_equal(weight(g, "fc1"), [[0.5, -0.1, 0.3], [0, -0.8, 0.2]])  # 0.1 stays
    np.testing.assert_array_equal(weight(g, "fc2"), [[1.0, 0], [0, 0], [-0.6, 0]])


def test_existing_zeros_count_toward_the_fraction_and_are_recorded() -> None:
    g = mlp()
    w = W1.copy()
    w[0, 0] = 0.0  # the 0.5
    g.node("fc1").inputs[1] = g.constant("w1z", w)
    run(g, [MagnitudePrune(sparsity=0.5, layers=frozenset({"fc1"}))])
    # zeros: the existing 0, then 0.05 and 0.1 make three of six
    np.testing.assert_array_equal(weight(g, "fc1"), [[0, 0, 0.3], [0, -0.8, 0.2]])
    np.testing.assert_array_equal(mask(g, "fc1"), [[True, True, False], [True, False, False]])
    assert mask(g, "fc2") is None  # not selected


def test_zero_fraction_records_exact_zeros_and_says_whether_it_changed() -> None:
    g = mlp()
    assert not MagnitudePrune(sparsity=0.0).run(g)  # no zeros anywhere: nothing to record
    assert MagnitudePrune(sparsity=0.5).run(g)
    assert not MagnitudePrune(sparsity=0.5).run(g)  # already there


def test_layer_selection_and_exclusion() -> None:
    g = run(mlp(), [MagnitudePrune(sparsity=0.5, exclude=frozenset({"fc1"}))])
    np.testing.assert_array_equal(weight(g, "fc1"), W1)
    assert mask(g, "fc2").sum() == 3


def test_fixed_point_weights_are_left_alone(caplog) -> None:
    g = mlp()
    t = FixedType(8, 1)
    node = g.node("fc1")
    node.inputs[1] = g.constant("wq", np.array([[64, -13, 38], [6, -102, 26]]), t)
    with caplog.at_level("INFO"):
        run(g, [MagnitudePrune(sparsity=0.5)])
    assert "layer 'fc1' (Dense): weights are already fixed point; left as the model has them" in caplog.text
    np.testing.assert_array_equal(node.inputs[1].data, [[64, -13, 38], [6, -102, 26]])


@pytest.mark.parametrize("bad, message", [
    (dict(sparsity=1.0), r"a target sparsity must be a fraction in \[0, 1\), not 1\.0"),
    (dict(sparsity=-0.1), r"a target sparsity must be a fraction in \[0, 1\), not -0\.1"),
    (dict(), "magnitude pruning takes either a target sparsity or a threshold"),
    (dict(sparsity=0.5, threshold=0.1), "magnitude pruning takes either a target sparsity or a threshold"),
])
def test_magnitude_options_are_checked(bad, message) -> None:
    with pytest.raises(UsageError, match=f"^{message}$"):
        MagnitudePrune(**bad)


# -- the quantizer never brings a pruned weight back -----------------------------------------------


@pytest.mark.parametrize("precision", [None, "fixed<2,1>", "fixed<4,-2,TRN,WRAP>", "ufixed<3,0,RND_INF,SAT>",
                                       "fixed<6,0,RND_CONV,SAT_SYM>", "fixed<5,3,RND_ZERO,SAT_ZERO>"])
@pytest.mark.parametrize("bits", [2, 4, 8, 16])
def test_quantized_pruned_weights_stay_zero(precision: str | None, bits: int) -> None:
    g = run(mlp(), [MagnitudePrune(sparsity=0.5)])
    zero = {name: mask(g, name) for name in ("fc1", "fc2")}
    x = np.random.default_rng(0).uniform(-1, 1, (64, 2))
    Calibrate({"x": x}).run(g)
    t = parse_type(precision) if precision else None
    PassManager([Quantize(QuantConfig(bits=bits, precision=t))], verify_each=True).run(g)
    for name, z in zero.items():
        w = g.node(name).inputs[1]
        assert isinstance(w.type.dtype, FixedType)
        assert w.type.sparsity is not None and np.array_equal(w.type.sparsity.zero, z)
        assert np.all(w.data[z] == 0)
    run_fixed(g, x)  # and the golden model runs it


# -- the spec --------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, passes", [
    ("magnitude:0.8", [MagnitudePrune(sparsity=0.8)]),
    ("magnitude:layer:80%", [MagnitudePrune(sparsity=0.8)]),
    ("Magnitude:Global:0.5", [MagnitudePrune(sparsity=0.5, scope=Scope.GLOBAL)]),
    ("threshold:1e-2", [MagnitudePrune(threshold=0.01)]),
    ("structured:0.25", [StructuredPrune(0.25, Norm.L1)]),
    ("structured:l2:0.5", [StructuredPrune(0.5, Norm.L2)]),
    ("dead", [DeadUnits()]),
    ("clip:0.5", [ClipWeights(limit=0.5)]),
    ("clip:std:3", [ClipWeights(std=3.0)]),
    ("clip:global:std:2.5", [ClipWeights(std=2.5, scope=Scope.GLOBAL)]),
    ("binary", [Binarize()]),
    ("binary:channel", [Binarize(per_channel=True)]),
    ("ternary", [Binarize(ternary=True)]),
    ("ternary:0.5", [Binarize(ternary=True, threshold=0.5)]),
    ("ternary:channel:0.6", [Binarize(ternary=True, threshold=0.6, per_channel=True)]),
    (" magnitude:0.5 , clip:1 ", [MagnitudePrune(sparsity=0.5), ClipWeights(limit=1.0)]),
    (["magnitude:0.5", "ternary"], [MagnitudePrune(sparsity=0.5), Binarize(ternary=True)]),
    ("none", []),
])
def test_spec_parses_to_passes(spec, passes) -> None:
    assert parse_prune(spec) == passes


def test_pipeline_overrides_layers_and_ends_with_dead_units_after_structured() -> None:
    passes = prune_passes("magnitude:0.8,structured:0.25", {"fc1": "magnitude:0.5", "fc2": "none"})
    only = frozenset({"fc1"})
    assert passes == [
        MagnitudePrune(sparsity=0.8, exclude=frozenset({"fc1", "fc2"})),
        StructuredPrune(0.25, exclude=frozenset({"fc1", "fc2"})),
        MagnitudePrune(sparsity=0.5, layers=only),
        DeadUnits(),
    ]
    assert prune_passes(None) == []
    assert prune_passes("structured:0.5,dead") == [StructuredPrune(0.5), DeadUnits()]


@pytest.mark.parametrize("spec, message", [
    ("magnitude:1.5", "prune spec 'magnitude:1.5': the fraction must be in [0, 1) (0.8 or 80%), not 1.5"),
    ("magnitude:abc", "prune spec 'magnitude:abc': 'abc' is not a number (expected a fraction such as 0.8 or 80%)"),
    ("magnitude", "prune spec 'magnitude': expected magnitude:F, magnitude:layer:F or magnitude:global:F "
                  "with F a fraction such as 0.8"),
    ("magnitude:all:0.5", "prune spec 'magnitude:all:0.5': scope 'all' is not 'layer' or 'global'"),
    ("prune:0.5", "prune spec 'prune:0.5': unknown kind 'prune' (expected magnitude, threshold, structured, dead, "
                  "clip, binary, ternary, refit, distill or none)"),
    ("structured:l3:0.5", "prune spec 'structured:l3:0.5': norm 'l3' is not 'l1' or 'l2'"),
    ("threshold:-1", "prune spec 'threshold:-1': the threshold must be non-negative, not -1"),
    ("clip:0", "prune spec 'clip:0': the limit T must be positive, not 0"),
    ("clip:mean:2", "prune spec 'clip:mean:2': expected clip:T, clip:std:K or clip:global:std:K "
                    "(T, K positive numbers)"),
    ("binary:layer", "prune spec 'binary:layer': expected binary or binary:channel"),
    ("ternary:-1", "prune spec 'ternary:-1': D must be non-negative, not -1"),
    ("dead:1", "prune spec 'dead:1': expected 'dead' with no arguments"),
    ("magnitude:0.5,,clip:1", "prune spec 'magnitude:0.5,,clip:1' has an empty step (steps are separated by single "
                              "commas)"),
])
def test_bad_specs_say_what_was_expected(spec: str, message: str) -> None:
    with pytest.raises(UsageError, match=f"^{re.escape(message)}$"):
        parse_prune(spec)


# -- through the API -------------------------------------------------------------------------------


def test_compile_prunes_before_calibration() -> None:
    g = mlp()
    x = np.random.default_rng(1).uniform(-1, 1, (32, 2))
    compiled = api.compile(g, calibration=x, prune="magnitude:0.5")
    assert mask(g, "fc1") is None  # the caller's graph is not touched
    np.testing.assert_array_equal(weight(compiled.float_graph, "fc1"), [[0.5, 0, 0.3], [0, -0.8, 0]])
    pruned = run(copy.deepcopy(g), [MagnitudePrune(sparsity=0.5)])
    np.testing.assert_array_equal(compiled.predict(x, float=True), run_float(pruned, x)[0])
    # calibration saw the pruned network: its fc1 range is the pruned one's
    lo, hi = run_float(pruned, x)[0].min(), run_float(pruned, x)[0].max()
    assert compiled.float_graph.outputs[0].range == (lo, hi)
    assert compiled.graph.node("fc1").inputs[1].type.sparsity.nnz == 3


def test_config_prune_entries_override_per_layer() -> None:
    g = mlp()
    x = np.random.default_rng(1).uniform(-1, 1, (32, 2))
    config = {"Model": {"Prune": "magnitude:0.5"}, "LayerName": {"fc2": {"Prune": "none", "Bits": 8}}}
    compiled = api.compile(g, calibration=x, precision=config)
    assert mask(compiled.float_graph, "fc1").sum() == 3
    np.testing.assert_array_equal(weight(compiled.float_graph, "fc2"), W2)
    # --prune replaces the Model's spec; the layer entries still apply
    compiled = api.compile(g, calibration=x, precision=config, prune="threshold:0.1")
    np.testing.assert_array_equal(weight(compiled.float_graph, "fc1"), [[0.5, -0.1, 0.3], [0, -0.8, 0.2]])
    np.testing.assert_array_equal(weight(compiled.float_graph, "fc2"), W2)


def test_config_prune_on_a_layer_without_weights_is_refused() -> None:
    with pytest.raises(UsageError, match=r"^precision config: LayerName 'relu': Prune applies to Dense and Conv "
                                         r"layers; this model's are: fc1, fc2$"):
        api.prune(mlp(), None, precision={"LayerName": {"relu": {"Prune": "magnitude:0.5"}}})
