"""Structured pruning and dead-unit elimination, checked with the float reference.

The pruned graph must compute what the original computes with the removed units' weights and bias
set to zero (for dead units: what the original computes, unchanged), on random inputs.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest

from fpgac.ir import Act, FloatType, Graph, Op, PoolKind, TensorType, verify
from fpgac.passes import DeadUnits, MagnitudePrune, Norm, PassManager, StructuredPrune
from fpgac.sim import run_float

F = FloatType()
RNG = np.random.default_rng(3)


def t(*shape: int) -> TensorType:
    return TensorType(F, shape)


def run(graph: Graph, passes) -> Graph:
    PassManager(passes, verify_each=True).run(graph)
    return graph


def zeroed(graph: Graph, layer: str, units: list[int]) -> Graph:
    """A copy of ``graph`` with ``units`` of ``layer`` zeroed: weight columns/filters and bias."""
    g = copy.deepcopy(graph)
    node = g.node(layer)
    axis = 1 if node.op is Op.DENSE else 0
    w = np.moveaxis(node.inputs[1].data.copy(), axis, 0)
    b = node.inputs[2].data.copy()
    w[units] = 0
    b[units] = 0
    node.inputs[1] = g.constant("w_zeroed", np.moveaxis(w, 0, axis))
    node.inputs[2] = g.constant("b_zeroed", b)
    return g


def assert_same_function(a: Graph, b: Graph, shape: tuple[int, ...]) -> None:
    x = RNG.uniform(-2, 2, (50, *shape))
    np.testing.assert_allclose(run_float(a, x)[0], run_float(b, x)[0], rtol=1e-12, atol=1e-12)


# -- Dense ----------------------------------------------------------------------------------------

W1 = np.array([[0.5, 0.1, -0.3, 0.02, 0.9],
               [-0.4, 0.05, 0.6, -0.01, 0.2],
               [0.3, -0.1, 0.2, 0.03, -0.7],
               [0.1, 0.0, -0.5, 0.04, 0.4]])
# L1 norms of the columns (units): 1.3, 0.25, 1.6, 0.10, 2.2 -> units 3, then 1, are the smallest


def dense_net(act: Act = Act.RELU, **attrs: float) -> Graph:
    """x[4] -> fc1 (5 units) -> act -> fc2 (3) -> y."""
    g = Graph("g")
    x = g.add_input("x", t(4))
    fc1 = g.add_node(Op.DENSE, [x, g.constant("w1", W1), g.constant("b1", [0.1, -0.2, 0.3, 0.4, -0.5])], [t(5)],
                     name="fc1")
    a = g.add_node(Op.ACTIVATION, [fc1.output], [t(5)], {"kind": act, **attrs}, name="act")
    fc2 = g.add_node(Op.DENSE, [a.output, g.constant("w2", RNG.standard_normal((5, 3))),
                                g.constant("b2", RNG.standard_normal(3))], [t(3)], name="fc2")
    g.outputs = [fc2.output]
    verify(g)
    return g


def test_dense_units_go_by_l1_norm_and_the_next_layer_loses_their_rows() -> None:
    g = dense_net()
    original = copy.deepcopy(g)
    run(g, [StructuredPrune(0.4)])  # round(0.4 * 5) = 2 units
    assert g.node("fc1").inputs[1].shape == (4, 3)
    np.testing.assert_array_equal(g.node("fc1").inputs[1].data, W1[:, [0, 2, 4]])
    np.testing.assert_array_equal(g.node("fc1").inputs[2].data, [0.1, 0.3, -0.5])
    np.testing.assert_array_equal(g.node("fc2").inputs[1].data, original.node("fc2").inputs[1].data[[0, 2, 4]])
    assert g.node("act").output.shape == (3,)
    assert g.node("fc2").inputs[1].shape == (3, 3)  # fc2 feeds the output: its units stay
    assert_same_function(g, zeroed(original, "fc1", [1, 3]), (4,))


def test_l2_norm_can_choose_differently() -> None:
    g = Graph("g")
    x = g.add_input("x", t(3))
    # unit 0: L1 0.9, L2 0.52; unit 1: L1 0.8, L2 0.8; unit 2: big
    w = np.array([[0.3, 0.8, 2.0], [0.3, 0.0, 2.0], [0.3, 0.0, 2.0]])
    fc1 = g.add_node(Op.DENSE, [x, g.constant("w1", w), g.constant("b1", np.zeros(3))], [t(3)], name="fc1")
    fc2 = g.add_node(Op.DENSE, [fc1.output, g.constant("w2", np.ones((3, 1)))], [t(1)], name="fc2")
    g.outputs = [fc2.output]
    l1, l2 = copy.deepcopy(g), copy.deepcopy(g)
    run(l1, [StructuredPrune(0.34, Norm.L1)])
    run(l2, [StructuredPrune(0.34, Norm.L2)])
    np.testing.assert_array_equal(l1.node("fc1").inputs[1].data, w[:, [0, 2]])
    np.testing.assert_array_equal(l2.node("fc1").inputs[1].data, w[:, [1, 2]])


@pytest.mark.parametrize("act, attrs", [(Act.SIGMOID, {}), (Act.TANH, {}), (Act.ELU, {"alpha": 1.0}),
                                        (Act.HARD_SIGMOID, {"alpha": 0.2, "beta": 0.5})])
def test_a_removed_unit_that_is_not_zero_after_the_activation_is_folded_into_the_next_bias(act: Act, attrs) -> None:
    g = dense_net(act, **attrs)
    original = copy.deepcopy(g)
    run(g, [StructuredPrune(0.4)])
    assert g.node("fc2").inputs[1].shape == (3, 3)
    assert_same_function(g, zeroed(original, "fc1", [1, 3]), (4,))


def test_leading_axes_dense() -> None:
    g = Graph("g")
    x = g.add_input("x", t(6, 4))  # a [T, F] sequence: Dense over the last axis
    fc1 = g.add_node(Op.DENSE, [x, g.constant("w1", W1), g.constant("b1", RNG.standard_normal(5))], [t(6, 5)],
                     name="fc1")
    a = g.add_node(Op.ACTIVATION, [fc1.output], [t(6, 5)], {"kind": Act.SIGMOID}, name="act")
    r = g.add_node(Op.RESHAPE, [a.output], [t(6, 5, 1)], {"shape": (6, 5, 1)}, name="r")
    r2 = g.add_node(Op.RESHAPE, [r.output], [t(6, 5)], {"shape": (6, 5)}, name="r2")
    fc2 = g.add_node(Op.DENSE, [r2.output, g.constant("w2", RNG.standard_normal((5, 2)))], [t(6, 2)], name="fc2")
    g.outputs = [fc2.output]
    original = copy.deepcopy(g)
    run(g, [StructuredPrune(0.4)])
    assert g.node("r").attrs["shape"] == (6, 3, 1) and g.node("fc2").input(2) is not None  # sigmoid(0) folded
    assert_same_function(g, zeroed(original, "fc1", [1, 3]), (6, 4))


# -- Conv -----------------------------------------------------------------------------------------


def conv_net(pads: int = 1, act: Act = Act.RELU, pool: PoolKind = PoolKind.MAX) -> Graph:
    """x[2,8,8] -> conv (4 ch) -> ScaleShift -> act -> pool 2x2 -> conv2 (3 ch) -> GlobalPool -> Flatten -> fc."""
    g = Graph("g")
    x = g.add_input("x", t(2, 8, 8))
    w = RNG.standard_normal((4, 2, 3, 3))
    w[1] *= 0.01  # channels 1 and 2 have the smallest filters
    w[2] *= 0.1
    conv_attrs = {"strides": (1, 1), "dilations": (1, 1), "pads": (pads,) * 4, "groups": 1}
    size = 8 + 2 * pads - 2
    c1 = g.add_node(Op.CONV, [x, g.constant("cw", w), g.constant("cb", RNG.standard_normal(4))], [t(4, size, size)],
                    conv_attrs, name="conv")
    scale = g.constant("s", RNG.uniform(0.5, 2, (4, 1, 1)))
    shift = g.constant("sh", -np.abs(RNG.standard_normal((4, 1, 1))))
    bn = g.add_node(Op.SCALE_SHIFT, [c1.output, scale, shift], [t(4, size, size)], name="bn")
    a = g.add_node(Op.ACTIVATION, [bn.output], [t(4, size, size)], {"kind": act}, name="act")
    half = size // 2
    p = g.add_node(Op.POOL, [a.output], [t(4, half, half)],
                   {"kind": pool, "kernel": (2, 2), "strides": (2, 2), "dilations": (1, 1), "pads": (0, 0, 0, 0),
                    "ceil_mode": False, "count_include_pad": False}, name="pool")
    c2 = g.add_node(Op.CONV, [p.output, g.constant("cw2", RNG.standard_normal((3, 4, 3, 3))),
                              g.constant("cb2", RNG.standard_normal(3))],
                    [t(3, half + 2 * pads - 2, half + 2 * pads - 2)], conv_attrs, name="conv2")
    gp = g.add_node(Op.GLOBAL_POOL, [c2.output], [t(3, 1, 1)], {"kind": PoolKind.AVG}, name="gap")
    f = g.add_node(Op.RESHAPE, [gp.output], [t(3)], {"shape": (3,)}, name="flatten")
    fc = g.add_node(Op.DENSE, [f.output, g.constant("fw", RNG.standard_normal((3, 2)))], [t(2)], name="fc")
    g.outputs = [fc.output]
    verify(g)
    return g


def test_conv_channels_go_and_the_next_conv_loses_input_channels() -> None:
    g = conv_net()
    original = copy.deepcopy(g)
    run(g, [StructuredPrune(0.5, layers=frozenset({"conv"}))])
    assert g.node("conv").inputs[1].shape == (2, 2, 3, 3)
    assert g.node("bn").inputs[1].shape == (2, 1, 1)
    assert g.node("pool").output.shape == (2, 4, 4)
    assert g.node("conv2").inputs[1].shape == (3, 2, 3, 3)
    # a removed channel is relu(0 * s + shift) = 0 (shift < 0): conv2's zero padding is no problem
    assert_same_function(g, zeroed(original, "conv", [1, 2]), (2, 8, 8))


def test_conv_flatten_dense_removes_blocks_of_rows() -> None:
    g = Graph("g")
    x = g.add_input("x", t(1, 4, 4))
    attrs = {"strides": (1, 1), "dilations": (1, 1), "pads": (0, 0, 0, 0), "groups": 1}
    w = RNG.standard_normal((3, 1, 3, 3))
    w[0] *= 0.01
    c = g.add_node(Op.CONV, [x, g.constant("cw", w), g.constant("cb", RNG.standard_normal(3))], [t(3, 2, 2)], attrs,
                   name="conv")
    a = g.add_node(Op.ACTIVATION, [c.output], [t(3, 2, 2)], {"kind": Act.TANH}, name="act")
    f = g.add_node(Op.RESHAPE, [a.output], [t(12)], {"shape": (12,)}, name="flatten")
    fw = RNG.standard_normal((12, 2))
    fc = g.add_node(Op.DENSE, [f.output, g.constant("fw", fw), g.constant("fb", np.zeros(2))], [t(2)], name="fc")
    g.outputs = [fc.output]
    original = copy.deepcopy(g)
    run(g, [StructuredPrune(0.34)])
    assert g.node("flatten").attrs["shape"] == (8,)
    np.testing.assert_array_equal(g.node("fc").inputs[1].data, fw[4:])  # channel 0 was rows 0..3
    assert_same_function(g, zeroed(original, "conv", [0]), (1, 4, 4))


def test_padded_conv_reading_a_non_zero_constant_is_refused(caplog) -> None:
    g = conv_net(pads=1, act=Act.SIGMOID)  # sigmoid(shift) != 0 would be padded with zeros by conv2
    before = str(g)
    with caplog.at_level(logging.INFO):
        assert not StructuredPrune(0.5, layers=frozenset({"conv"})).run(g)
    assert "layer 'conv' (Conv): units not removed: 'conv2' (Conv) pads with zeros around a removed channel's " \
           "non-zero constant" in caplog.text
    assert str(g) == before


def test_unpadded_conv_folds_a_non_zero_constant_into_its_bias() -> None:
    g = conv_net(pads=0, act=Act.SIGMOID, pool=PoolKind.AVG)
    original = copy.deepcopy(g)
    run(g, [StructuredPrune(0.5, layers=frozenset({"conv"}))])
    assert g.node("conv2").inputs[1].shape == (3, 2, 3, 3)
    assert_same_function(g, zeroed(original, "conv", [1, 2]), (2, 8, 8))


# -- refusals ------------------------------------------------------------------------------------


def test_units_reaching_an_add_a_softmax_or_a_graph_output_stay(caplog) -> None:
    g = dense_net()
    extra = g.add_node(Op.ADD, [g.node("act").output, g.constant("one", np.ones(5))], [t(5)], name="add")
    g.outputs.append(extra.output)
    before = str(g)
    with caplog.at_level(logging.INFO):
        assert not StructuredPrune(0.4).run(g)
    assert "layer 'fc1' (Dense): units not removed: 'add' (Add) reads it" in caplog.text
    assert "layer 'fc2' (Dense): units not removed: 'fc2' is a graph output" in caplog.text
    assert str(g) == before


def test_grouped_convolutions_are_refused(caplog) -> None:
    g = Graph("g")
    x = g.add_input("x", t(4, 5))
    attrs = {"strides": (1,), "dilations": (1,), "pads": (0, 0), "groups": 2}
    c = g.add_node(Op.CONV, [x, g.constant("w", RNG.standard_normal((4, 2, 3))), g.constant("b", np.zeros(4))],
                   [t(4, 3)], attrs, name="gconv")
    f = g.add_node(Op.RESHAPE, [c.output], [t(12)], {"shape": (12,)}, name="flatten")
    fc = g.add_node(Op.DENSE, [f.output, g.constant("fw", RNG.standard_normal((12, 2)))], [t(2)], name="fc")
    g.outputs = [fc.output]
    with caplog.at_level(logging.INFO):
        assert not StructuredPrune(0.5).run(g)
    assert "a grouped convolution's channels cannot be removed one by one" in caplog.text


# -- dead units -----------------------------------------------------------------------------------


def test_dead_units_go_and_the_function_is_unchanged() -> None:
    g = Graph("g")
    x = g.add_input("x", t(3))
    w1 = RNG.standard_normal((3, 5))
    w1[:, 1] = 0  # unit 1: no incoming weights, bias -0.5: relu gives 0
    w1[:, 3] = 0  # unit 3: no incoming weights, bias 0.7: relu gives 0.7, folded into fc2's bias
    b1 = np.array([0.1, -0.5, 0.2, 0.7, 0.3])
    w2 = RNG.standard_normal((5, 2))
    w2[4] = 0  # unit 4: no outgoing weights
    fc1 = g.add_node(Op.DENSE, [x, g.constant("w1", w1), g.constant("b1", b1)], [t(5)], name="fc1")
    a = g.add_node(Op.ACTIVATION, [fc1.output], [t(5)], {"kind": Act.RELU}, name="relu")
    fc2 = g.add_node(Op.DENSE, [a.output, g.constant("w2", w2), g.constant("b2", [0.5, -0.5])], [t(2)], name="fc2")
    g.outputs = [fc2.output]
    original = copy.deepcopy(g)
    assert DeadUnits().run(g)
    verify(g)
    np.testing.assert_array_equal(g.node("fc1").inputs[1].data, w1[:, [0, 2]])
    np.testing.assert_array_equal(g.node("fc2").inputs[1].data, w2[[0, 2]])
    np.testing.assert_allclose(g.node("fc2").inputs[2].data, np.array([0.5, -0.5]) + 0.7 * w2[3])
    assert_same_function(g, original, (3,))
    assert not DeadUnits().run(g)


def test_dead_units_cascade_and_follow_magnitude_pruning() -> None:
    g = dense_net()
    w2 = g.node("fc2").inputs[1].data.copy()
    w2[2] = 0  # unit 2 of fc1 feeds nothing
    g.node("fc2").inputs[1] = g.constant("w2z", w2)
    original = copy.deepcopy(g)
    run(g, [DeadUnits()])
    assert g.node("fc1").inputs[1].shape == (4, 4)
    assert_same_function(g, original, (4,))
    # after heavy magnitude pruning, dead units go without changing the pruned function
    g = dense_net()
    run(g, [MagnitudePrune(sparsity=0.75)])
    pruned = copy.deepcopy(g)
    run(g, [DeadUnits()])
    assert g.node("fc1").inputs[1].shape[1] < 5
    assert_same_function(g, pruned, (4,))
    assert g.node("fc1").inputs[1].type.sparsity is not None  # the mask follows the kept columns
