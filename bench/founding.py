"""The two networks fpgac was founded on, written as PyTorch's exporter writes them (random
weights, PyTorch's initializations; torch is not installed here, so the graphs are built with
``onnx.helper`` in the exporter's layout, as ``examples/make_examples.py`` does):

- ``cnn``: x [N, 3, 24, 24] -> Conv 32 (3x3, pad 1) -> ReLU -> MaxPool 2 -> Conv 64 (3x3, pad 1)
  -> ReLU -> MaxPool 2 -> Flatten -> Gemm 128 -> ReLU -> Gemm 10 (about 320k weights);
- ``lstm``: x [N, 28, 28] batch-first -> LSTM(28 -> 128) -> LSTM(128 -> 128) -> last hidden
  state -> Gemm 10 (the two-layer nn.LSTM, ``num_layers=2``, exported as two LSTM nodes).

    python bench/founding.py OUT_DIR      # writes OUT_DIR/cnn.onnx and OUT_DIR/lstm.onnx
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from make_examples import _bias, _conv_attrs, _gemm, _glorot, _he, _init, _model, _rnn_uniform  # noqa: E402


def lstm(hidden: int = 128, inputs: int = 28, steps: int = 28, classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    H = hidden
    inits = [_init("lstm.W0", _rnn_uniform(rng, (1, 4 * H, inputs), H)),
             _init("lstm.R0", _rnn_uniform(rng, (1, 4 * H, H), H)),
             _init("lstm.B0", _rnn_uniform(rng, (1, 8 * H), H)),
             _init("lstm.W1", _rnn_uniform(rng, (1, 4 * H, H), H)),
             _init("lstm.R1", _rnn_uniform(rng, (1, 4 * H, H), H)),
             _init("lstm.B1", _rnn_uniform(rng, (1, 8 * H), H)),
             _init("axes1", np.array([1], dtype=np.int64)),
             _init("axes0", np.array([0], dtype=np.int64)),
             _init("fc.weight", _glorot(rng, (classes, H), H, classes)),
             _init("fc.bias", _bias(rng, classes))]
    nodes = [helper.make_node("Transpose", ["x"], ["/lstm/Transpose_output_0"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["/lstm/Transpose_output_0", "lstm.W0", "lstm.R0", "lstm.B0"],
                              ["/lstm/LSTM_output_0", "/lstm/LSTM_output_1", "/lstm/LSTM_output_2"],
                              name="/lstm/LSTM", hidden_size=H),
             helper.make_node("Squeeze", ["/lstm/LSTM_output_0", "axes1"], ["/lstm/Squeeze_output_0"]),
             helper.make_node("LSTM", ["/lstm/Squeeze_output_0", "lstm.W1", "lstm.R1", "lstm.B1"],
                              ["/lstm/LSTM_1_output_0", "/lstm/LSTM_1_output_1", "/lstm/LSTM_1_output_2"],
                              name="/lstm/LSTM_1", hidden_size=H),
             helper.make_node("Squeeze", ["/lstm/LSTM_1_output_1", "axes0"], ["/Squeeze_output_0"]),
             _gemm("/fc/Gemm", "/Squeeze_output_0", "fc.weight", "fc.bias", "y")]
    graph = helper.make_graph(nodes, "founding_lstm",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", steps, inputs])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])], initializer=inits)
    return _model(graph, 14)


def cnn(classes: int = 10, seed: int = 0) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    inits = [_init("conv1.weight", _he(rng, (32, 3, 3, 3), 27)), _init("conv1.bias", _bias(rng, 32)),
             _init("conv2.weight", _he(rng, (64, 32, 3, 3), 288)), _init("conv2.bias", _bias(rng, 64)),
             _init("fc1.weight", _glorot(rng, (128, 64 * 6 * 6), 64 * 36, 128)), _init("fc1.bias", _bias(rng, 128)),
             _init("fc2.weight", _glorot(rng, (classes, 128), 128, classes)), _init("fc2.bias", _bias(rng, classes))]
    pool = dict(kernel_shape=[2, 2], strides=[2, 2])
    nodes = [helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["c1"], name="/conv1/Conv", **_conv_attrs([3, 3], 1)),
             helper.make_node("Relu", ["c1"], ["r1"], name="/relu1/Relu"),
             helper.make_node("MaxPool", ["r1"], ["p1"], name="/pool1/MaxPool", **pool),
             helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], name="/conv2/Conv", **_conv_attrs([3, 3], 1)),
             helper.make_node("Relu", ["c2"], ["r2"], name="/relu2/Relu"),
             helper.make_node("MaxPool", ["r2"], ["p2"], name="/pool2/MaxPool", **pool),
             helper.make_node("Flatten", ["p2"], ["f"], name="/Flatten", axis=1),
             _gemm("/fc1/Gemm", "f", "fc1.weight", "fc1.bias", "h"),
             helper.make_node("Relu", ["h"], ["rh"], name="/relu3/Relu"),
             _gemm("/fc2/Gemm", "rh", "fc2.weight", "fc2.bias", "y")]
    graph = helper.make_graph(nodes, "founding_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 24, 24])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", classes])], initializer=inits)
    return _model(graph, 17)


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    for name, model in (("cnn", cnn()), ("lstm", lstm())):
        onnx.save(model, out / f"{name}.onnx")
        print(out / f"{name}.onnx")
