"""The CPU target beyond the examples: every op it supports, built as small ONNX models and
checked bit for bit against the golden model (with the input-type extremes among the vectors)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fpgac import api
from fpgac.ir import Op


def _init(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name=name)


def _ints(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name=name)


def _model(nodes, inputs: dict[str, list], outputs: list[str], inits, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "ops",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["N", *s]) for n, s in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.INT64 if n.startswith("argmax") else TensorProto.FLOAT, None)
         for n in outputs],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def pools() -> onnx.ModelProto:
    """Pooling with pads, ceil_mode and both count_include_pad rules; a dilated grouped Conv; global max."""
    n, rng = helper.make_node, np.random.default_rng(1)
    nodes = [
        n("MaxPool", ["x"], ["max_ceil"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
        n("AveragePool", ["x"], ["avg_pad"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 2],
          count_include_pad=1, ceil_mode=1),
        n("AveragePool", ["x"], ["avg_edge"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        n("GlobalMaxPool", ["x"], ["gmax"]),
        n("Conv", ["x", "w", "b"], ["conv"], kernel_shape=[3, 3], strides=[1, 2], pads=[2, 1, 2, 0],
          dilations=[2, 1], group=2),
        n("Conv", ["x1d", "w1d"], ["conv1d"], kernel_shape=[3], strides=[2], pads=[1, 1]),
        n("MaxPool", ["x1d"], ["max1d"], kernel_shape=[3], strides=[2], dilations=[2], pads=[1, 0]),
    ]
    inits = [_init("w", rng.normal(0, 0.4, (4, 1, 3, 3))), _init("b", rng.normal(0, 0.1, 4)),
             _init("w1d", rng.normal(0, 0.4, (3, 2, 3)))]
    return _model(nodes, {"x": [2, 7, 7], "x1d": [2, 9]},
                  ["max_ceil", "avg_pad", "avg_edge", "gmax", "conv", "conv1d", "max1d"], inits, opset=12)


def elementwise() -> onnx.ModelProto:
    """Two inputs; broadcasting arithmetic, data movement, activations, softmax over an inner axis."""
    n, rng = helper.make_node, np.random.default_rng(2)
    nodes = [
        n("Sub", ["x", "v"], ["sub"]),
        n("Mul", ["x", "v"], ["mul"]),
        n("Add", ["x", "k"], ["add"]),
        n("Max", ["x", "v"], ["max"]),
        n("Min", ["v", "x"], ["min"]),
        n("Abs", ["x"], ["abs"]),
        n("Clip", ["x", "lo", "hi"], ["clip"]),
        n("LeakyRelu", ["x"], ["leaky"], alpha=0.1),
        n("PRelu", ["x", "slope"], ["prelu"]),
        n("Concat", ["sub", "mul"], ["concat"], axis=2),
        n("Transpose", ["x"], ["transpose"], perm=[0, 2, 1]),
        n("Slice", ["x", "starts", "ends", "axes", "steps"], ["slice"]),
        n("Pad", ["x", "pads", "pad_value"], ["pad"], mode="constant"),
        n("ArgMax", ["x"], ["argmax"], axis=2, keepdims=0),
        n("ArgMax", ["x"], ["argmax_last"], axis=1, keepdims=1, select_last_index=1),
        n("LogSoftmax", ["x"], ["logsoftmax"], axis=1),
        n("Softmax", ["x"], ["softmax"], axis=1),
        n("Tanh", ["x"], ["tanh"]),
        n("Sigmoid", ["v"], ["sigmoid"]),
        n("BatchNormalization", ["x", "bn_s", "bn_b", "bn_m", "bn_v"], ["bn"]),
    ]
    inits = [
        _init("k", rng.normal(0, 1, (3, 1))), _init("lo", -0.5), _init("hi", 0.7),
        _init("slope", [[0.25], [-0.5], [0.125]]),
        _ints("starts", [2, 3]), _ints("ends", [0, -100]), _ints("axes", [1, 2]), _ints("steps", [-1, -2]),
        _ints("pads", [0, 1, 0, 0, 0, 2]), _init("pad_value", 0.25),
        _init("bn_s", [1.5, 0.5, -1.0]), _init("bn_b", [0.1, -0.2, 0.3]), _init("bn_m", [0.0, 0.1, -0.1]),
        _init("bn_v", [1.0, 2.0, 0.5]),
    ]
    outputs = ["sub", "mul", "max", "min", "abs", "clip", "leaky", "prelu", "concat", "transpose", "slice", "pad",
               "argmax", "argmax_last", "logsoftmax", "softmax", "tanh", "sigmoid", "add", "bn"]
    return _model(nodes, {"x": [3, 4], "v": [1, 4]}, outputs, inits, opset=13)


def _rnn_weights(rng: np.random.Generator, gates: int, hidden: int, features: int) -> list[np.ndarray]:
    k = 1 / np.sqrt(hidden)
    return [rng.uniform(-k, k, (1, gates * hidden, features)), rng.uniform(-k, k, (1, gates * hidden, hidden)),
            rng.uniform(-k, k, (1, 2 * gates * hidden))]


def recurrent() -> onnx.ModelProto:
    """An LSTM with initial states and all three outputs; a GRU without linear_before_reset."""
    n, rng = helper.make_node, np.random.default_rng(3)
    H, F = 5, 3
    lw, lr, lb = _rnn_weights(rng, 4, H, F)
    gw, gr, gb = _rnn_weights(rng, 3, H, F)
    gw[0, :4] = 0.0  # a few zero rows and weights
    nodes = [
        n("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
        n("LSTM", ["xt", "lw", "lr", "lb", "", "h0", "c0"], ["ly", "lh", "lc"], hidden_size=H),
        n("GRU", ["xt", "gw", "gr", "gb", "", "h0"], ["gy", "gh"], hidden_size=H, linear_before_reset=0),
    ]
    inits = [_init("lw", lw), _init("lr", lr), _init("lb", lb), _init("gw", gw), _init("gr", gr), _init("gb", gb),
             _init("h0", rng.uniform(-0.5, 0.5, (1, 1, H))), _init("c0", rng.uniform(-0.5, 0.5, (1, 1, H)))]
    return _model(nodes, {"x": [4, F]}, ["ly", "lh", "lc", "gy", "gh"], inits, opset=14)


MODELS = {"pools": pools, "elementwise": elementwise, "recurrent": recurrent}


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_ops_bit_exact(name: str, bits: int, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.onnx"
    onnx.save(MODELS[name](), path)
    compiled = api.compile(path, bits=bits, input_range=(-2, 2))
    compiled.write(tmp_path / "out", "cpu", vectors=300)
    report = api.verify(tmp_path / "out")
    assert report.mismatched_bits == 0, "\n".join(report.lines())


def test_the_op_models_cover_every_supported_op(tmp_path: Path) -> None:
    from fpgac.backends.cpu.layers import EMITTERS

    seen = set()
    for name, build in MODELS.items():
        onnx.save(build(), tmp_path / f"{name}.onnx")
        seen |= {node.op for node in api.compile(tmp_path / f"{name}.onnx", bits=8, input_range=(-2, 2)).graph.nodes}
    # Dense and Lookup-free GlobalPool avg are the examples' (test_cpu_examples)
    assert set(EMITTERS) - seen <= {Op.DENSE}, sorted(op.value for op in set(EMITTERS) - seen)


ONNX_DATA = Path(onnx.__file__).parent / "backend" / "test" / "data"
#: onnx's PyTorch-exported conformance models with the convolution and pooling variants (strides,
#: dilations, padding, groups, depthwise) and the layouts (PixelShuffle, permutes) worth a build
CONFORMANCE = [
    "test_AvgPool1d_stride", "test_AvgPool2d_stride", "test_BatchNorm2d_eval", "test_ConstantPad2d",
    "test_Conv1d_dilated", "test_Conv1d_groups", "test_Conv1d_pad2size1", "test_Conv1d_stride",
    "test_Conv2d_depthwise_padded", "test_Conv2d_depthwise_strided", "test_Conv2d_depthwise_with_multiplier",
    "test_Conv2d_dilated", "test_Conv2d_groups", "test_Conv2d_no_bias", "test_Conv2d_padding", "test_Conv2d_strided",
    "test_GLU_dim", "test_MaxPool1d_stride", "test_MaxPool2d", "test_PReLU_2d_multiparam", "test_PixelShuffle",
    "test_operator_maxpool", "test_operator_permute2",
]


@pytest.mark.parametrize("name", CONFORMANCE)
def test_conformance_model_bit_exact(name: str, tmp_path: Path) -> None:
    model = next(ONNX_DATA.glob(f"pytorch-*/{name}/model.onnx"), None)
    if model is None:
        pytest.skip(f"the onnx package here does not ship {name}")
    compiled = api.compile(model, bits=8, input_range=(-2, 2))
    compiled.write(tmp_path / "out", "cpu", vectors=200)
    report = api.verify(tmp_path / "out")
    assert report.mismatched_bits == 0, "\n".join(report.lines())
