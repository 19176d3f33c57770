"""FuseBias: an Add/Sub of a per-channel constant after Dense/Conv becomes the layer's bias.

Expected outputs are computed with plain numpy from the original arrays; the fused graph's output
from the fused layer's own constants.
"""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.ir import Act, FixedType, FloatType, Graph, Op, TensorType, verify
from fpgac.passes import FuseBias

F = FloatType()
RNG = np.random.default_rng(11)


def f32(*shape: int) -> TensorType:
    return TensorType(F, shape)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Stride-1, unpadded 2D convolution of one sample ``x[C,H,W]`` with ``w[M,C,kh,kw]``."""
    kh, kw = w.shape[2:]
    ho, wo = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.empty((w.shape[0], ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, i, j] = np.einsum("mckl,ckl->m", w, x[:, i:i + kh, j:j + kw])
    return out + b[:, None, None]


def dense_then(op: Op, const: np.ndarray, const_first: bool = False, bias: bool = True, in_shape=(4,), m=3):
    """x -> Dense fc -> op(fc, c) (or op(c, fc)) named ``add``; returns graph, w, b."""
    graph = Graph("g")
    x = graph.add_input("x", f32(*in_shape))
    w, b = rand(in_shape[-1], m), rand(m)
    fc_shape = in_shape[:-1] + (m,)
    inputs = [x, graph.constant("w", w)] + ([graph.constant("b", b)] if bias else [])
    fc = graph.add_node(Op.DENSE, inputs, [f32(*fc_shape)], name="fc")
    c = graph.constant("c", const)
    out_shape = np.broadcast_shapes(fc_shape, np.shape(const))
    args = [c, fc.output] if const_first else [fc.output, c]
    graph.outputs = [graph.add_node(op, args, [f32(*out_shape)], name="add").output]
    verify(graph)
    return graph, w, (b if bias else np.zeros(m))


def run_dense(graph: Graph, x: np.ndarray) -> np.ndarray:
    (fc,) = graph.nodes
    assert fc.op is Op.DENSE
    return x @ fc.inputs[1].data + fc.inputs[2].data


def _fuses(graph: Graph) -> None:
    out = graph.outputs[0]
    assert FuseBias().run(graph) is True
    verify(graph)
    assert [n.name for n in graph.nodes] == ["fc"]
    assert graph.outputs[0] is out and out.name == "add" and out.producer is graph.node("fc")
    assert FuseBias().run(graph) is False


@pytest.mark.parametrize("bias", [True, False])
def test_dense_add(bias):
    c = rand(3)
    graph, w, b = dense_then(Op.ADD, c, bias=bias)
    x = rand(5, 4)
    expected = x @ w + b + c
    _fuses(graph)
    np.testing.assert_allclose(run_dense(graph, x), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(graph.node("fc").inputs[2].data, b + c, rtol=1e-12)


def test_dense_sub():
    c = rand(3)
    graph, w, b = dense_then(Op.SUB, c)
    x = rand(5, 4)
    expected = x @ w + b - c
    _fuses(graph)
    np.testing.assert_allclose(run_dense(graph, x), expected, rtol=1e-12, atol=1e-12)


def test_const_first_add():
    c = rand(3)
    graph, w, b = dense_then(Op.ADD, c, const_first=True)
    x = rand(5, 4)
    expected = c + (x @ w + b)
    _fuses(graph)
    np.testing.assert_allclose(run_dense(graph, x), expected, rtol=1e-12, atol=1e-12)


def test_const_first_sub_is_not_a_bias():
    # c - (xW + b) negates the layer: not a bias
    graph, *_ = dense_then(Op.SUB, rand(3), const_first=True)
    _refuses(graph)


def test_scalar_and_leading_axes():
    graph, w, b = dense_then(Op.ADD, np.array(0.25))
    x = rand(2, 4)
    _fuses(graph)
    np.testing.assert_allclose(run_dense(graph, x), x @ w + b + 0.25, rtol=1e-12, atol=1e-12)
    # Dense over [T=5, F=4] with a constant [1, 3]: the same for every step
    c = rand(1, 3)
    graph, w, b = dense_then(Op.ADD, c, in_shape=(5, 4))
    x = rand(2, 5, 4)
    _fuses(graph)
    np.testing.assert_allclose(run_dense(graph, x), x @ w + b + c, rtol=1e-12, atol=1e-12)


def conv_then(op: Op, const: np.ndarray):
    graph = Graph("g")
    x = graph.add_input("x", f32(2, 5, 6))
    w, b = rand(4, 2, 3, 3), rand(4)
    attrs = {"strides": (1, 1), "pads": (0, 0, 0, 0), "dilations": (1, 1), "groups": 1}
    conv = graph.add_node(Op.CONV, [x, graph.constant("w", w), graph.constant("b", b)], [f32(4, 3, 4)], attrs,
                          name="fc")
    out_shape = np.broadcast_shapes((4, 3, 4), np.shape(const))
    graph.outputs = [graph.add_node(op, [conv.output, graph.constant("c", const)], [f32(*out_shape)],
                                    name="add").output]
    verify(graph)
    return graph, w, b


@pytest.mark.parametrize("op", [Op.ADD, Op.SUB])
def test_conv_add(op):
    c = rand(4, 1, 1)
    graph, w, b = conv_then(op, c)
    x = rand(2, 5, 6)
    sign = 1.0 if op is Op.ADD else -1.0
    expected = conv2d(x, w, b) + sign * c
    _fuses(graph)
    conv = graph.node("fc")
    np.testing.assert_allclose(conv2d(x, conv.inputs[1].data, conv.inputs[2].data), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv.inputs[2].data, b + sign * c[:, 0, 0], rtol=1e-12)


def _refuses(graph: Graph) -> None:
    before = str(graph)
    assert FuseBias().run(graph) is False
    assert str(graph) == before
    verify(graph)


def test_refuses_const_broadcasting_to_a_larger_shape():
    # Dense out [3] + c [2, 3] -> [2, 3]: the layer cannot produce that
    graph, *_ = dense_then(Op.ADD, rand(2, 3))
    _refuses(graph)


def test_refuses_const_varying_along_spatial_axes():
    graph, *_ = conv_then(Op.ADD, rand(4, 3, 4))
    _refuses(graph)
    graph, *_ = conv_then(Op.ADD, rand(1, 1, 4))
    _refuses(graph)
    # [4] aligns with the last (width) axis, which here also has 4 elements: not per channel
    graph, *_ = conv_then(Op.ADD, rand(4))
    _refuses(graph)


def test_refuses_dense_const_varying_along_time():
    graph, *_ = dense_then(Op.ADD, rand(5, 1), in_shape=(5, 4))
    _refuses(graph)


def test_refuses_when_layer_output_is_shared_or_a_graph_output():
    graph, *_ = dense_then(Op.ADD, rand(3))
    graph.outputs.append(graph.node("fc").output)
    _refuses(graph)
    graph, *_ = dense_then(Op.ADD, rand(3))
    relu = graph.add_node(Op.ACTIVATION, [graph.node("fc").output], [f32(3)], {"kind": Act.RELU}, name="relu")
    graph.outputs.append(relu.output)
    _refuses(graph)


def test_refuses_two_tensors_and_non_layers():
    graph = Graph("g")
    x = graph.add_input("x", f32(3))
    y = graph.add_input("y", f32(3))
    relu = graph.add_node(Op.ACTIVATION, [x], [f32(3)], {"kind": Act.RELU}, name="relu")
    a = graph.add_node(Op.ADD, [x, y], [f32(3)], name="a")
    b = graph.add_node(Op.ADD, [relu.output, graph.constant("c", rand(3))], [f32(3)], name="b")
    c = graph.add_node(Op.ADD, [y, graph.constant("c", rand(3))], [f32(3)], name="c")
    graph.outputs = [a.output, b.output, c.output]
    _refuses(graph)


def test_mul_is_left_alone():
    graph, *_ = dense_then(Op.MUL, rand(3))
    _refuses(graph)


def test_refuses_a_layer_with_fixed_point_weights():
    """A quantized (QONNX) weight keeps its Add: a float bias beside mantissas would be wrong."""
    graph = Graph("g")
    x = graph.add_input("x", f32(4))
    mantissas = RNG.integers(-8, 8, size=(4, 3))
    fc = graph.add_node(Op.DENSE, [x, graph.constant("w", mantissas, FixedType(4, 1, True))], [f32(3)], name="fc")
    graph.outputs = [graph.add_node(Op.ADD, [fc.output, graph.constant("c", rand(3))], [f32(3)], name="add").output]
    _refuses(graph)
    assert np.array_equal(graph.node("fc").inputs[1].data, mantissas)


def test_fixed_point_constant_is_read_as_values():
    c = np.array([3, -5, 12])  # mantissas of fixed<6,4>: 0.75, -1.25, 3.0
    graph = Graph("g")
    x = graph.add_input("x", f32(4))
    w, b = rand(4, 3), rand(3)
    fc = graph.add_node(Op.DENSE, [x, graph.constant("w", w), graph.constant("b", b)], [f32(3)], name="fc")
    graph.outputs = [graph.add_node(Op.ADD, [fc.output, graph.constant("c", c, FixedType(6, 4, True))], [f32(3)],
                                    name="add").output]
    _fuses(graph)
    np.testing.assert_allclose(graph.node("fc").inputs[2].data, b + np.array([0.75, -1.25, 3.0]), rtol=1e-12)
