"""FoldBatchNorm: a per-channel ScaleShift after Dense/Conv is folded into the layer's weights.

Expected outputs are computed with plain numpy from the original arrays, and the folded graph's
output from the folded layer's own constants, so neither side uses the pass's helpers.
"""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.ir import Act, FixedType, FloatType, Graph, Op, TensorType, verify
from fpgac.passes import FoldBatchNorm, PassManager

F = FloatType()
RNG = np.random.default_rng(7)


def f32(*shape: int) -> TensorType:
    return TensorType(F, shape)


def rand(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape)


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int) -> np.ndarray:
    """Stride-1 zero-padded 2D convolution of one sample ``x[C,H,W]`` with ``w[M,C,kh,kw]``."""
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    kh, kw = w.shape[2:]
    ho, wo = xp.shape[1] - kh + 1, xp.shape[2] - kw + 1
    out = np.empty((w.shape[0], ho, wo))
    for i in range(ho):
        for j in range(wo):
            out[:, i, j] = np.einsum("mckl,ckl->m", w, xp[:, i:i + kh, j:j + kw])
    return out + b[:, None, None]


def dense_bn(in_shape=(4,), m=3, bias=True, scale=None, shift=None, then_relu=False):
    """x -> Dense fc -> ScaleShift bn [-> relu]; returns the graph and its arrays."""
    graph = Graph("g")
    x = graph.add_input("x", f32(*in_shape))
    w, b = rand(in_shape[-1], m), rand(m)
    s = rand(m) if scale is None else scale
    t = rand(m) if shift is None else shift
    out_shape = in_shape[:-1] + (m,)
    inputs = [x, graph.constant("w", w)] + ([graph.constant("b", b)] if bias else [])
    fc = graph.add_node(Op.DENSE, inputs, [f32(*out_shape)], name="fc")
    bn = graph.add_node(
        Op.SCALE_SHIFT, [fc.output, graph.constant("s", s), graph.constant("t", t)], [f32(*out_shape)], name="bn"
    )
    graph.outputs = [bn.output]
    if then_relu:
        relu = graph.add_node(Op.ACTIVATION, [bn.output], [f32(*out_shape)], {"kind": Act.RELU}, name="relu")
        graph.outputs = [relu.output]
    verify(graph)
    return graph, w, (b if bias else np.zeros(m)), s, t


def run_dense(graph: Graph, x: np.ndarray) -> np.ndarray:
    """Output of the graph's single Dense node, from its own constants."""
    (fc,) = [n for n in graph.nodes if n.op is Op.DENSE]
    bias = fc.inputs[2].data if fc.input(2) is not None else 0.0
    return x @ fc.inputs[1].data + bias


def test_dense_scale_shift_folds():
    graph, w, b, s, t = dense_bn()
    out = graph.outputs[0]
    graph.output_batch_axes = {"bn": 0}
    x = rand(10, 4)  # a batch: Dense acts on the last axis
    expected = (x @ w + b) * s + t

    assert FoldBatchNorm().run(graph) is True
    verify(graph)
    assert [n.name for n in graph.nodes] == ["fc"]
    assert graph.outputs[0] is out and out.name == "bn"
    assert out.producer is graph.node("fc") and graph.node("fc").outputs == [out]
    assert graph.output_batch_axes == {"bn": 0}
    np.testing.assert_allclose(run_dense(graph, x), expected, rtol=1e-12, atol=1e-12)
    # by hand: W' = W * s per column, b' = b * s + t
    np.testing.assert_allclose(graph.node("fc").inputs[1].data, w * s[None, :], rtol=1e-12)
    np.testing.assert_allclose(graph.node("fc").inputs[2].data, b * s + t, rtol=1e-12)
    assert FoldBatchNorm().run(graph) is False


def test_dense_without_bias_gets_one():
    graph, w, _, s, t = dense_bn(bias=False)
    x = rand(6, 4)
    expected = (x @ w) * s + t
    assert FoldBatchNorm().run(graph) is True
    verify(graph)
    fc = graph.node("fc")
    assert len(graph.nodes) == 1 and len(fc.inputs) == 3
    np.testing.assert_allclose(fc.inputs[2].data, t, rtol=1e-12)
    np.testing.assert_allclose(run_dense(graph, x), expected, rtol=1e-12, atol=1e-12)


def test_fold_before_another_layer_keeps_the_value():
    graph, w, b, s, t = dense_bn(then_relu=True)
    bn_out = graph.node("bn").output
    x = rand(6, 4)
    assert FoldBatchNorm().run(graph) is True
    verify(graph)
    assert [n.name for n in graph.nodes] == ["fc", "relu"]
    assert graph.node("relu").inputs == [bn_out] and bn_out.producer is graph.node("fc")
    np.testing.assert_allclose(run_dense(graph, x), (x @ w + b) * s + t, rtol=1e-12, atol=1e-12)


def test_dense_with_leading_axes():
    # x [T=5, F=4] -> [5, 3]; scale as [1, 3] (broadcasts along T), shift as [3]
    s = rand(3)
    graph, w, b, _, t = dense_bn(in_shape=(5, 4), scale=s.reshape(1, 3))
    x = rand(2, 5, 4)
    expected = (x @ w + b) * s + t
    assert FoldBatchNorm().run(graph) is True
    verify(graph)
    assert len(graph.nodes) == 1
    np.testing.assert_allclose(run_dense(graph, x), expected, rtol=1e-12, atol=1e-12)


def test_scalar_scale_and_shift():
    graph, w, b, _, _ = dense_bn(scale=np.array(2.0), shift=np.array(-1.0))
    x = rand(3, 4)
    assert FoldBatchNorm().run(graph) is True
    verify(graph)
    np.testing.assert_allclose(run_dense(graph, x), (x @ w + b) * 2.0 - 1.0, rtol=1e-12, atol=1e-12)


def conv_bn(scale_shape=(4, 1, 1), scale=None, bias=True):
    graph = Graph("g")
    x = graph.add_input("x", f32(3, 6, 5))
    w, b = rand(4, 3, 3, 3), rand(4)
    s = rand(*scale_shape) if scale is None else scale
    t = rand(4, 1, 1)
    attrs = {"strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1), "groups": 1}
    inputs = [x, graph.constant("w", w)] + ([graph.constant("b", b)] if bias else [])
    conv = graph.add_node(Op.CONV, inputs, [f32(4, 6, 5)], attrs, name="conv")
    bn = graph.add_node(
        Op.SCALE_SHIFT, [conv.output, graph.constant("s", s), graph.constant("t", t)], [f32(4, 6, 5)], name="bn"
    )
    graph.outputs = [bn.output]
    verify(graph)
    return graph, w, (b if bias else np.zeros(4)), s, t


@pytest.mark.parametrize("bias", [True, False])
def test_conv_scale_shift_folds(bias):
    graph, w, b, s, t = conv_bn(bias=bias)
    out = graph.outputs[0]
    x = rand(3, 6, 5)
    expected = conv2d(x, w, b, 1) * s + t

    assert FoldBatchNorm().run(graph) is True
    verify(graph)
    assert [n.name for n in graph.nodes] == ["conv"]
    assert graph.outputs[0] is out and out.name == "bn" and out.producer is graph.node("conv")
    conv = graph.node("conv")
    np.testing.assert_allclose(conv2d(x, conv.inputs[1].data, conv.inputs[2].data, 1), expected, rtol=1e-10, atol=1e-10)


def test_conv_1d_with_groups():
    graph = Graph("g")
    x = graph.add_input("x", f32(4, 7))
    w, s, t = rand(6, 2, 3), rand(6, 1), rand(6, 1)
    conv = graph.add_node(Op.CONV, [x, graph.constant("w", w)], [f32(6, 5)],
                          {"strides": (1,), "pads": (0, 0), "dilations": (1,), "groups": 2}, name="conv")
    graph.outputs = [graph.add_node(Op.SCALE_SHIFT, [conv.output, graph.constant("s", s), graph.constant("t", t)],
                                    [f32(6, 5)], name="bn").output]
    assert FoldBatchNorm().run(graph) is True
    verify(graph)
    conv = graph.node("conv")
    # by hand: output channel m scales its own filter w[m] and gets bias t[m]
    np.testing.assert_allclose(conv.inputs[1].data, w * s[:, :, None], rtol=1e-12)
    np.testing.assert_allclose(conv.inputs[2].data, t[:, 0], rtol=1e-12)


def _refuses(graph: Graph) -> None:
    before = str(graph)
    assert FoldBatchNorm().run(graph) is False
    assert str(graph) == before
    verify(graph)


def test_refuses_when_dense_output_has_two_consumers():
    graph, *_ = dense_bn()
    fc = graph.node("fc")
    other = graph.add_node(Op.ACTIVATION, [fc.output], [f32(3)], {"kind": Act.TANH}, name="other")
    graph.outputs.append(other.output)
    _refuses(graph)


def test_refuses_when_dense_output_is_a_graph_output():
    graph, *_ = dense_bn()
    graph.outputs.append(graph.node("fc").output)
    _refuses(graph)


def test_refuses_scale_varying_along_a_non_channel_axis():
    # Dense [5,4] -> [5,3]: a scale [5,1] varies along T, not along the 3 channels
    graph, *_ = dense_bn(in_shape=(5, 4), scale=rand(5, 1))
    _refuses(graph)
    graph, *_ = dense_bn(in_shape=(5, 4), scale=rand(5, 3))
    _refuses(graph)


def test_refuses_conv_scale_varying_spatially():
    graph, *_ = conv_bn(scale_shape=(4, 6, 5))
    _refuses(graph)
    graph, *_ = conv_bn(scale_shape=(1, 1, 5))
    _refuses(graph)


def test_accepts_conv_scale_constant_along_spatial_axes():
    graph, w, b, _, t = conv_bn(scale=np.broadcast_to(np.arange(1.0, 5.0)[:, None, None], (4, 6, 5)))
    x = rand(3, 6, 5)
    expected = conv2d(x, w, b, 1) * np.arange(1.0, 5.0)[:, None, None] + t
    assert FoldBatchNorm().run(graph) is True
    verify(graph)
    conv = graph.node("conv")
    np.testing.assert_allclose(conv2d(x, conv.inputs[1].data, conv.inputs[2].data, 1), expected, rtol=1e-10, atol=1e-10)


def test_refuses_without_a_layer_before():
    graph = Graph("g")
    x = graph.add_input("x", f32(3))
    relu = graph.add_node(Op.ACTIVATION, [x], [f32(3)], {"kind": Act.RELU}, name="relu")
    a = graph.add_node(Op.SCALE_SHIFT, [relu.output, graph.constant("s", rand(3)), graph.constant("t", rand(3))],
                       [f32(3)], name="a")
    b = graph.add_node(Op.SCALE_SHIFT, [x, graph.constant("s", rand(3)), graph.constant("t", rand(3))],
                       [f32(3)], name="b")
    graph.outputs = [a.output, b.output]
    _refuses(graph)


def test_two_folds_in_one_run_through_the_manager():
    graph, w1, b1, s1, t1 = dense_bn()
    fc = graph.node("fc")
    bn = graph.node("bn")
    w2, b2, s2, t2 = rand(3, 2), rand(2), rand(2), rand(2)
    fc2 = graph.add_node(
        Op.DENSE, [bn.output, graph.constant("w2", w2), graph.constant("b2", b2)], [f32(2)], name="fc2"
    )
    bn2 = graph.add_node(Op.SCALE_SHIFT, [fc2.output, graph.constant("s2", s2), graph.constant("t2", t2)],
                         [f32(2)], name="bn2")
    graph.outputs = [bn2.output]
    x = rand(5, 4)
    expected = (((x @ w1 + b1) * s1 + t1) @ w2 + b2) * s2 + t2
    assert PassManager([FoldBatchNorm()], verify_each=True).run(graph) is True
    assert [n.name for n in graph.nodes] == ["fc", "fc2"]
    h = x @ fc.inputs[1].data + fc.inputs[2].data
    np.testing.assert_allclose(h @ fc2.inputs[1].data + fc2.inputs[2].data, expected, rtol=1e-10, atol=1e-10)


def test_shared_weight_is_not_modified():
    graph = Graph("g")
    x = graph.add_input("x", f32(4))
    w = graph.constant("w", rand(4, 3))
    w_before = w.data.copy()
    fc1 = graph.add_node(Op.DENSE, [x, w], [f32(3)], name="fc1")
    fc2 = graph.add_node(Op.DENSE, [x, w], [f32(3)], name="fc2")
    bn = graph.add_node(Op.SCALE_SHIFT, [fc1.output, graph.constant("s", rand(3)), graph.constant("t", rand(3))],
                        [f32(3)], name="bn")
    graph.outputs = [bn.output, fc2.output]
    assert FoldBatchNorm().run(graph) is True
    verify(graph)
    assert fc2.inputs[1] is w
    np.testing.assert_array_equal(w.data, w_before)
    assert graph.node("fc1").inputs[1] is not w


def test_refuses_a_layer_with_fixed_point_weights():
    """Quantized weights (a QONNX model's) stay on their grid: the ScaleShift is left in place."""
    graph = Graph("g")
    x = graph.add_input("x", f32(4))
    mantissas = RNG.integers(-8, 8, size=(4, 3))
    w = graph.constant("w", mantissas, FixedType(4, 1, True))  # values mantissas / 8
    fc = graph.add_node(Op.DENSE, [x, w], [f32(3)], name="fc")
    s, t = rand(3), rand(3)
    bn = graph.add_node(Op.SCALE_SHIFT, [fc.output, graph.constant("s", s), graph.constant("t", t)], [f32(3)],
                        name="bn")
    graph.outputs = [bn.output]
    _refuses(graph)
    assert np.array_equal(graph.node("fc").inputs[1].data, mantissas)


def test_fixed_point_scale_is_read_as_values():
    """A fixed-point scale and shift fold by their values (mantissa * 2**-frac), not their mantissas."""
    graph = Graph("g")
    x = graph.add_input("x", f32(4))
    w, b = rand(4, 3), rand(3)
    fc = graph.add_node(Op.DENSE, [x, graph.constant("w", w), graph.constant("b", b)], [f32(3)], name="fc")
    s = graph.constant("s", np.array([3, -5, 12]), FixedType(6, 4, True))  # 0.75, -1.25, 3.0
    t = graph.constant("t", np.array([1, 2, -4]), FixedType(4, 2, True))  # 0.25, 0.5, -1.0
    graph.outputs = [graph.add_node(Op.SCALE_SHIFT, [fc.output, s, t], [f32(3)], name="bn").output]
    x_ = rand(5, 4)
    assert FoldBatchNorm().run(graph) is True
    verify(graph)
    expected = (x_ @ w + b) * np.array([0.75, -1.25, 3.0]) + np.array([0.25, 0.5, -1.0])
    np.testing.assert_allclose(run_dense(graph, x_), expected, rtol=1e-12, atol=1e-12)
