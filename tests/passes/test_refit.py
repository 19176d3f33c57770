"""Refit: least squares on calibration data gives pruned layers back what their zeros took."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from fpgac import api
from fpgac.errors import UsageError
from fpgac.ir import Act, FloatType, Graph, Op, TensorType, verify
from fpgac.passes import MagnitudePrune, PassManager, Refit, StructuredPrune, parse_prune
from fpgac.sim import run_float

F = FloatType()


def t(*shape: int) -> TensorType:
    return TensorType(F, shape)


def dense(w: np.ndarray, b: np.ndarray) -> Graph:
    g = Graph("g")
    x = g.add_input("x", t(w.shape[0]))
    fc = g.add_node(Op.DENSE, [x, g.constant("w", w), g.constant("b", b)], [t(w.shape[1])], name="fc")
    g.outputs = [fc.output]
    return g


def test_a_pruned_weight_moves_to_a_correlated_input_and_to_the_bias() -> None:
    # x1 = 2 * x0 and x2 = 1 on the calibration data: the pruned 0.1 * x1 is 0.2 * x0, the
    # pruned 0.05 * x2 is 0.05 of bias
    x0 = np.random.default_rng(0).uniform(-1, 1, 100)
    x = np.stack([x0, 2 * x0, np.ones(100)], axis=1)
    g = dense(np.array([[1.0], [0.1], [0.05]]), np.array([0.3]))
    reference = copy.deepcopy(g)
    PassManager([MagnitudePrune(sparsity=0.6), Refit(reference, {"x": x}, damping=1e-12)], verify_each=True).run(g)
    np.testing.assert_allclose(g.node("fc").inputs[1].data, [[1.2], [0.0], [0.0]], atol=1e-9)
    np.testing.assert_allclose(g.node("fc").inputs[2].data, [0.35], atol=1e-9)
    assert g.node("fc").inputs[1].type.sparsity.nnz == 1  # the zeros stay zeros
    np.testing.assert_allclose(run_float(g, x)[0], run_float(reference, x)[0], atol=1e-9)


def test_nothing_pruned_nothing_refit() -> None:
    g = dense(np.array([[1.0], [0.1]]), np.array([0.3]))
    assert not Refit(copy.deepcopy(g), {"x": np.ones((4, 2))}).run(g)


def net() -> Graph:
    """x[1,6,6] -> conv (4 ch, pad 1) -> relu -> conv2 (3 ch) -> flatten -> fc1 (8) -> relu -> fc2 (3)."""
    rng = np.random.default_rng(1)
    g = Graph("g")
    x = g.add_input("x", t(1, 6, 6))
    attrs = {"strides": (1, 1), "dilations": (1, 1), "pads": (1, 1, 1, 1), "groups": 1}
    c1 = g.add_node(Op.CONV, [x, g.constant("c1w", rng.standard_normal((4, 1, 3, 3))), g.constant("c1b", np.zeros(4))],
                    [t(4, 6, 6)], attrs, name="conv1")
    r1 = g.add_node(Op.ACTIVATION, [c1.output], [t(4, 6, 6)], {"kind": Act.RELU}, name="r1")
    c2 = g.add_node(Op.CONV, [r1.output, g.constant("c2w", rng.standard_normal((3, 4, 3, 3))),
                              g.constant("c2b", np.zeros(3))], [t(3, 2, 2)],
                    {"strides": (2, 2), "dilations": (1, 1), "pads": (0, 0, 0, 0), "groups": 1}, name="conv2")
    f = g.add_node(Op.RESHAPE, [c2.output], [t(12)], {"shape": (12,)}, name="flatten")
    fc1 = g.add_node(Op.DENSE, [f.output, g.constant("w1", rng.standard_normal((12, 8)))], [t(8)], name="fc1")
    r2 = g.add_node(Op.ACTIVATION, [fc1.output], [t(8)], {"kind": Act.RELU}, name="r2")
    fc2 = g.add_node(Op.DENSE, [r2.output, g.constant("w2", rng.standard_normal((8, 3)))], [t(3)], name="fc2")
    g.outputs = [fc2.output]
    verify(g)
    return g


@pytest.mark.parametrize("prune", [MagnitudePrune(sparsity=0.6), StructuredPrune(0.5)])
def test_refit_brings_the_outputs_closer_on_held_out_inputs(prune) -> None:
    rng = np.random.default_rng(2)
    cal, held_out = rng.uniform(-1, 1, (400, 1, 6, 6)), rng.uniform(-1, 1, (200, 1, 6, 6))
    g = net()
    reference = copy.deepcopy(g)
    PassManager([prune], verify_each=True).run(g)
    pruned = copy.deepcopy(g)
    PassManager([Refit(reference, {"x": cal})], verify_each=True).run(g)
    (want,) = run_float(reference, held_out)
    error = lambda graph: np.abs(run_float(graph, held_out)[0] - want).mean()  # noqa: E731
    assert error(g) < 0.7 * error(pruned)
    for name in ("conv1", "conv2", "fc1", "fc2"):
        before, after = pruned.node(name).inputs[1], g.node(name).inputs[1]
        assert before.shape == after.shape
        np.testing.assert_array_equal(after.data == 0, before.data == 0)  # same sparsity pattern


def test_refit_through_the_api_and_its_place_in_a_spec() -> None:
    g = net()
    cal = np.random.default_rng(3).uniform(-1, 1, (100, 1, 6, 6))
    compiled = api.compile(g, calibration=cal, prune="magnitude:0.5,refit:0.1")
    pruned = api.prune(copy.deepcopy(g), "magnitude:0.5")
    w_pruned, w_refit = pruned.node("fc2").inputs[1].data, compiled.float_graph.node("fc2").inputs[1].data
    np.testing.assert_array_equal(w_pruned == 0, w_refit == 0)
    assert not np.allclose(w_pruned, w_refit)
    with pytest.raises(UsageError, match=r"^prune spec 'ternary,refit': put refit before binary/ternary "
                                         r"\(refitting would lose their levels\)$"):
        api.prune(g, "ternary,refit")
    with pytest.raises(UsageError, match=r"^prune spec 'refit': refit needs calibration inputs"):
        parse_prune("refit")
