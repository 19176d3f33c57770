"""Build the small example models in this folder.

    python examples/make_examples.py [OUT_DIR]      # OUT_DIR defaults to this folder

Every model is written with ``onnx.helper`` in the form real exporters emit (PyTorch's
for the networks, a scikit-learn/TensorFlow-style MatMul+Add for ``digits.onnx``, Brevitas's
QONNX export for ``qmlp.onnx``), checked with ``onnx.checker.check_model(full_check=True)`` and run
once in onnxruntime (the QONNX model in ``onnx.reference`` with the QONNX ``Quant`` op written
here from its spec, as onnxruntime has no QONNX ops).

The script is deterministic: fixed seeds, a pinned IR version and producer, deterministic
protobuf serialization, and fixed zip timestamps in the ``.npz``, so rerunning it gives
byte-identical files (``tests/test_examples.py`` checks this).

Files written:

    mlp.onnx          16-64-32-32-5 jet-tagging MLP, Gemm(transB=1)+Relu, symbolic batch "N"
    mlp_input.npy     32 random inputs [32, 16] in [-1, 1]
    cnn2d.onnx        Conv/BatchNorm/Relu/MaxPool/AveragePool/Flatten/Gemm, batch fixed at 1
    cnn1d.onnx        Conv1d (one grouped), MaxPool1d, GlobalAveragePool, symbolic batch
    lstm.onnx         batch_first nn.LSTM as the PyTorch exporter writes it (zeros from Shape)
    gru.onnx          batch_first nn.GRU, linear_before_reset=1, Reshape by an initializer
    digits.onnx       sklearn MLPClassifier trained on load_digits, as MatMul + Add
    digits_test.npz   its test split: x float32 [n, 64] in [0, 1], y int64 labels
    qmlp.onnx         16-32-5 quantized MLP in QONNX form (Brevitas export): Quant'ed input,
                      4-bit weights with per-channel power-of-two scales, 16-bit biases, 8-bit
                      unsigned activations after the Relu
"""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent

PRODUCER = "fpgac-examples"
PRODUCER_VERSION = "1"
# Pinned so that the bytes do not depend on the installed onnx package's defaults.
IR_VERSION = {13: 7, 14: 7, 17: 8}

ONNX_FILES = ("mlp.onnx", "cnn2d.onnx", "cnn1d.onnx", "lstm.onnx", "gru.onnx", "digits.onnx")
QONNX_FILES = ("qmlp.onnx",)  # custom QONNX ops: run with run_reference, not onnxruntime
DATA_FILES = ("mlp_input.npy", "digits_test.npz")

QONNX_DOMAIN = "qonnx.custom_op.general"


# ----------------------------------------------------------------------------- helpers

def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _init(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.ascontiguousarray(array), name=name)


def _he(rng, shape, fan_in):
    """He-normal: for layers followed by a Relu."""
    return _f32(rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape))


def _glorot(rng, shape, fan_in, fan_out):
    """Glorot-uniform: for the last (logit) layer."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return _f32(rng.uniform(-limit, limit, size=shape))


def _bias(rng, n, scale=0.05):
    return _f32(rng.uniform(-scale, scale, size=n))


def _bn_params(rng, prefix, c):
    """Non-trivial BatchNorm running statistics and affine parameters."""
    return [
        _init(f"{prefix}.weight", _f32(rng.uniform(0.7, 1.3, size=c))),
        _init(f"{prefix}.bias", _f32(rng.normal(0.0, 0.1, size=c))),
        _init(f"{prefix}.running_mean", _f32(rng.normal(0.0, 0.2, size=c))),
        _init(f"{prefix}.running_var", _f32(rng.uniform(0.5, 2.0, size=c))),
    ]


def _gemm(name, x, w, b, y):
    # PyTorch's nn.Linear: Gemm with alpha, beta and transB=1 written out.
    return helper.make_node("Gemm", [x, w, b], [y], name=name, alpha=1.0, beta=1.0, transB=1)


def _const_node(name, output, array):
    # The PyTorch exporter writes small shape constants as Constant nodes.
    return helper.make_node("Constant", [], [output], name=name,
                            value=numpy_helper.from_array(np.asarray(array), name=""))


def _model(graph: onnx.GraphProto, opset: int) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        ir_version=IR_VERSION[opset],
        producer_name=PRODUCER,
        producer_version=PRODUCER_VERSION,
    )
    return model


# ----------------------------------------------------------------------------- models

def build_mlp() -> onnx.ModelProto:
    """16-64-32-32-5, Gemm(transB=1)+Relu x3, Gemm, Softmax; symbolic batch N. Opset 17."""
    rng = np.random.default_rng(1)
    sizes = [16, 64, 32, 32, 5]
    nodes, inits = [], []
    x = "x"
    for i in range(4):
        fi, fo = sizes[i], sizes[i + 1]
        last = i == 3
        w = _glorot(rng, (fo, fi), fi, fo) if last else _he(rng, (fo, fi), fi)
        inits += [_init(f"fc{i + 1}.weight", w), _init(f"fc{i + 1}.bias", _bias(rng, fo))]
        g = f"/fc{i + 1}/Gemm_output_0"
        nodes.append(_gemm(f"/fc{i + 1}/Gemm", x, f"fc{i + 1}.weight", f"fc{i + 1}.bias", g))
        if last:
            x = g
        else:
            r = f"/relu{i + 1}/Relu_output_0"
            nodes.append(helper.make_node("Relu", [g], [r], name=f"/relu{i + 1}/Relu"))
            x = r
    nodes.append(helper.make_node("Softmax", [x], ["y"], name="/softmax/Softmax", axis=-1))
    graph = helper.make_graph(
        nodes, "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        initializer=inits,
    )
    return _model(graph, 17)


def _conv_attrs(k, pad, group=1):
    nd = len(k)
    return dict(dilations=[1] * nd, group=group, kernel_shape=list(k),
                pads=[pad] * (2 * nd), strides=[1] * nd)


def build_cnn2d() -> onnx.ModelProto:
    """[1,1,8,8] (batch fixed at 1) Conv-BN-Relu-MaxPool-Conv-BN-Relu-AvgPool-Flatten-Gemm-Softmax.

    Opset 13 (BatchNormalization-9: epsilon and momentum, no training_mode)."""
    rng = np.random.default_rng(2)
    inits = [
        _init("conv1.weight", _he(rng, (4, 1, 3, 3), 1 * 9)),
        _init("conv1.bias", _bias(rng, 4)),
        *_bn_params(rng, "bn1", 4),
        _init("conv2.weight", _he(rng, (8, 4, 3, 3), 4 * 9)),
        _init("conv2.bias", _bias(rng, 8)),
        *_bn_params(rng, "bn2", 8),
        _init("fc.weight", _glorot(rng, (10, 32), 32, 10)),
        _init("fc.bias", _bias(rng, 10)),
    ]
    bn = lambda p: [f"{p}.weight", f"{p}.bias", f"{p}.running_mean", f"{p}.running_var"]  # noqa: E731
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["/conv1/Conv_output_0"],
                         name="/conv1/Conv", **_conv_attrs((3, 3), 1)),
        helper.make_node("BatchNormalization", ["/conv1/Conv_output_0", *bn("bn1")],
                         ["/bn1/BatchNormalization_output_0"], name="/bn1/BatchNormalization",
                         epsilon=1e-5, momentum=0.9),
        helper.make_node("Relu", ["/bn1/BatchNormalization_output_0"], ["/relu1/Relu_output_0"],
                         name="/relu1/Relu"),
        helper.make_node("MaxPool", ["/relu1/Relu_output_0"], ["/pool1/MaxPool_output_0"],
                         name="/pool1/MaxPool", ceil_mode=0, dilations=[1, 1],
                         kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2]),
        helper.make_node("Conv", ["/pool1/MaxPool_output_0", "conv2.weight", "conv2.bias"],
                         ["/conv2/Conv_output_0"], name="/conv2/Conv", **_conv_attrs((3, 3), 1)),
        helper.make_node("BatchNormalization", ["/conv2/Conv_output_0", *bn("bn2")],
                         ["/bn2/BatchNormalization_output_0"], name="/bn2/BatchNormalization",
                         epsilon=1e-5, momentum=0.9),
        helper.make_node("Relu", ["/bn2/BatchNormalization_output_0"], ["/relu2/Relu_output_0"],
                         name="/relu2/Relu"),
        helper.make_node("AveragePool", ["/relu2/Relu_output_0"], ["/pool2/AveragePool_output_0"],
                         name="/pool2/AveragePool", ceil_mode=0, count_include_pad=1,
                         kernel_shape=[2, 2], pads=[0, 0, 0, 0], strides=[2, 2]),
        helper.make_node("Flatten", ["/pool2/AveragePool_output_0"], ["/Flatten_output_0"],
                         name="/Flatten", axis=1),
        _gemm("/fc/Gemm", "/Flatten_output_0", "fc.weight", "fc.bias", "/fc/Gemm_output_0"),
        helper.make_node("Softmax", ["/fc/Gemm_output_0"], ["y"], name="/Softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "cnn2d",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])],
        initializer=inits,
    )
    return _model(graph, 13)


def build_cnn1d() -> onnx.ModelProto:
    """[N,2,32] Conv1d k5 (6ch, pad 2)-Relu-MaxPool 2-Conv1d k3 (8ch, groups 2)-Relu-
    GlobalAveragePool-Flatten-Gemm 4-Softmax. Opset 17."""
    rng = np.random.default_rng(3)
    inits = [
        _init("conv1.weight", _he(rng, (6, 2, 5), 2 * 5)),
        _init("conv1.bias", _bias(rng, 6)),
        _init("conv2.weight", _he(rng, (8, 3, 3), 3 * 3)),  # groups=2: 6/2 = 3 input ch each
        _init("conv2.bias", _bias(rng, 8)),
        _init("fc.weight", _glorot(rng, (4, 8), 8, 4)),
        _init("fc.bias", _bias(rng, 4)),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv1.weight", "conv1.bias"], ["/conv1/Conv_output_0"],
                         name="/conv1/Conv", **_conv_attrs((5,), 2)),
        helper.make_node("Relu", ["/conv1/Conv_output_0"], ["/relu1/Relu_output_0"],
                         name="/relu1/Relu"),
        helper.make_node("MaxPool", ["/relu1/Relu_output_0"], ["/pool1/MaxPool_output_0"],
                         name="/pool1/MaxPool", ceil_mode=0, dilations=[1],
                         kernel_shape=[2], pads=[0, 0], strides=[2]),
        helper.make_node("Conv", ["/pool1/MaxPool_output_0", "conv2.weight", "conv2.bias"],
                         ["/conv2/Conv_output_0"], name="/conv2/Conv",
                         **_conv_attrs((3,), 0, group=2)),
        helper.make_node("Relu", ["/conv2/Conv_output_0"], ["/relu2/Relu_output_0"],
                         name="/relu2/Relu"),
        helper.make_node("GlobalAveragePool", ["/relu2/Relu_output_0"],
                         ["/pool2/GlobalAveragePool_output_0"], name="/pool2/GlobalAveragePool"),
        helper.make_node("Flatten", ["/pool2/GlobalAveragePool_output_0"], ["/Flatten_output_0"],
                         name="/Flatten", axis=1),
        _gemm("/fc/Gemm", "/Flatten_output_0", "fc.weight", "fc.bias", "/fc/Gemm_output_0"),
        helper.make_node("Softmax", ["/fc/Gemm_output_0"], ["y"], name="/Softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "cnn1d",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
        initializer=inits,
    )
    return _model(graph, 17)


def _zeros_state_nodes(prefix: str, hidden: int) -> list[onnx.NodeProto]:
    """Shape(x) -> Gather(0) -> Unsqueeze([0]) -> Concat([1], batch, [hidden]) -> ConstantOfShape(0.0).

    The zero initial state of a batch_first nn.LSTM / nn.GRU as the PyTorch exporter writes it."""
    p = f"/{prefix}"
    return [
        helper.make_node("Shape", ["x"], [f"{p}/Shape_output_0"], name=f"{p}/Shape"),
        _const_node(f"{p}/Constant", f"{p}/Constant_output_0", np.array(0, dtype=np.int64)),
        helper.make_node("Gather", [f"{p}/Shape_output_0", f"{p}/Constant_output_0"],
                         [f"{p}/Gather_output_0"], name=f"{p}/Gather", axis=0),
        _const_node(f"{p}/Constant_1", f"{p}/Constant_1_output_0", np.array([0], dtype=np.int64)),
        helper.make_node("Unsqueeze", [f"{p}/Gather_output_0", f"{p}/Constant_1_output_0"],
                         [f"{p}/Unsqueeze_output_0"], name=f"{p}/Unsqueeze"),
        _const_node(f"{p}/Constant_2", f"{p}/Constant_2_output_0", np.array([1], dtype=np.int64)),
        _const_node(f"{p}/Constant_3", f"{p}/Constant_3_output_0",
                    np.array([hidden], dtype=np.int64)),
        helper.make_node("Concat", [f"{p}/Constant_2_output_0", f"{p}/Unsqueeze_output_0",
                                    f"{p}/Constant_3_output_0"],
                         [f"{p}/Concat_output_0"], name=f"{p}/Concat", axis=0),
        helper.make_node("ConstantOfShape", [f"{p}/Concat_output_0"],
                         [f"{p}/ConstantOfShape_output_0"], name=f"{p}/ConstantOfShape",
                         value=numpy_helper.from_array(np.zeros(1, dtype=np.float32), name="")),
    ]


def _rnn_uniform(rng, shape, hidden):
    # PyTorch's nn.LSTM / nn.GRU initialization: U(-1/sqrt(H), 1/sqrt(H)).
    k = 1.0 / np.sqrt(hidden)
    return _f32(rng.uniform(-k, k, size=shape))


def build_lstm() -> onnx.ModelProto:
    """batch_first nn.LSTM(6, 16) classifier on [N,10,6], last hidden state -> Gemm 3 -> Softmax.

    Opset 14: LSTM-14 with the layout attribute, Squeeze/Unsqueeze axes as inputs."""
    rng = np.random.default_rng(4)
    H, F, T = 16, 6, 10
    inits = [
        _init("lstm.W", _rnn_uniform(rng, (1, 4 * H, F), H)),
        _init("lstm.R", _rnn_uniform(rng, (1, 4 * H, H), H)),
        _init("lstm.B", _rnn_uniform(rng, (1, 8 * H), H)),
        _init("fc.weight", _glorot(rng, (3, H), H, 3)),
        _init("fc.bias", _bias(rng, 3)),
    ]
    h0 = "/lstm/ConstantOfShape_output_0"
    nodes = [
        helper.make_node("Transpose", ["x"], ["/lstm/Transpose_output_0"], name="/lstm/Transpose",
                         perm=[1, 0, 2]),
        *_zeros_state_nodes("lstm", H),
        # initial_h and initial_c share the one zeros tensor.
        helper.make_node("LSTM", ["/lstm/Transpose_output_0", "lstm.W", "lstm.R", "lstm.B", "",
                                  h0, h0],
                         ["/lstm/LSTM_output_0", "/lstm/LSTM_output_1", "/lstm/LSTM_output_2"],
                         name="/lstm/LSTM", direction="forward", hidden_size=H, layout=0),
        _const_node("/Constant", "/Constant_output_0", np.array([0], dtype=np.int64)),
        helper.make_node("Squeeze", ["/lstm/LSTM_output_1", "/Constant_output_0"],
                         ["/Squeeze_output_0"], name="/Squeeze"),
        _gemm("/fc/Gemm", "/Squeeze_output_0", "fc.weight", "fc.bias", "/fc/Gemm_output_0"),
        helper.make_node("Softmax", ["/fc/Gemm_output_0"], ["y"], name="/Softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "lstm",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
        initializer=inits,
    )
    return _model(graph, 14)


def build_gru() -> onnx.ModelProto:
    """batch_first nn.GRU(4, 12) on [N,8,4], Y_h -> Reshape([-1,12]) -> Gemm 2 -> Sigmoid.

    Opset 14, linear_before_reset=1 (PyTorch's GRU); the Reshape target is an initializer."""
    rng = np.random.default_rng(5)
    H, F, T = 12, 4, 8
    inits = [
        _init("gru.W", _rnn_uniform(rng, (1, 3 * H, F), H)),
        _init("gru.R", _rnn_uniform(rng, (1, 3 * H, H), H)),
        _init("gru.B", _rnn_uniform(rng, (1, 6 * H), H)),
        _init("reshape.shape", np.array([-1, H], dtype=np.int64)),
        _init("fc.weight", _glorot(rng, (2, H), H, 2)),
        _init("fc.bias", _bias(rng, 2)),
    ]
    nodes = [
        helper.make_node("Transpose", ["x"], ["/gru/Transpose_output_0"], name="/gru/Transpose",
                         perm=[1, 0, 2]),
        *_zeros_state_nodes("gru", H),
        helper.make_node("GRU", ["/gru/Transpose_output_0", "gru.W", "gru.R", "gru.B", "",
                                 "/gru/ConstantOfShape_output_0"],
                         ["/gru/GRU_output_0", "/gru/GRU_output_1"], name="/gru/GRU",
                         direction="forward", hidden_size=H, layout=0, linear_before_reset=1),
        helper.make_node("Reshape", ["/gru/GRU_output_1", "reshape.shape"], ["/Reshape_output_0"],
                         name="/Reshape"),
        _gemm("/fc/Gemm", "/Reshape_output_0", "fc.weight", "fc.bias", "/fc/Gemm_output_0"),
        helper.make_node("Sigmoid", ["/fc/Gemm_output_0"], ["y"], name="/Sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "gru",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", T, F])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=inits,
    )
    return _model(graph, 14)


def _qonnx_quant(prefix, x, y, scale, bits, signed, narrow, rounding="ROUND"):
    """A Brevitas export_handler Quant: its scale, zero point and bit width as initializers."""
    names = [f"{prefix}/export_handler/Constant{sfx}_output_0" for sfx in ("", "_1", "_2")]
    # 0-d for per-tensor values (np.ascontiguousarray would make them 1-d)
    inits = [numpy_helper.from_array(np.array(v, dtype=np.float32), name=n)
             for n, v in zip(names, (scale, 0.0, bits))]
    node = helper.make_node("Quant", [x, *names], [y], name=f"{prefix}/export_handler/Quant",
                            domain=QONNX_DOMAIN, narrow=int(narrow), rounding_mode=rounding, signed=int(signed))
    return node, inits


def _pow2_scales(w, max_int):
    """Per-output-channel power-of-two scales that fit each row of ``w`` in ``max_int`` steps."""
    return _f32(np.exp2(np.ceil(np.log2(np.abs(w).max(axis=1) / max_int))))[:, None]


def build_qmlp() -> onnx.ModelProto:
    """16-32-5 QONNX MLP as Brevitas's QONNX export writes QuantIdentity, QuantLinear, QuantReLU.

    Input: 8-bit signed, scale 2**-4. Weights: 4-bit signed narrow, per-output-channel
    power-of-two scales. Biases: 16-bit, scale input scale x weight scale (Int16Bias). Hidden
    activation: 8-bit unsigned after the Relu, scale 2**-4. Output: the last Gemm, in float.
    Opset 13 with the qonnx.custom_op.general domain."""
    rng = np.random.default_rng(9)
    sizes = [16, 32, 5]
    nodes, inits = [], []
    node, more = _qonnx_quant("/input_quant", "x", "/input_quant/export_handler/Quant_output_0",
                              np.float32(2.0**-4), np.float32(8), signed=True, narrow=False)
    nodes.append(node)
    inits += more
    x, x_scale = node.output[0], 2.0**-4
    for i in range(2):
        fi, fo = sizes[i], sizes[i + 1]
        fc = f"/fc{i + 1}"
        w = _he(rng, (fo, fi), fi) if i == 0 else _glorot(rng, (fo, fi), fi, fo)
        w_scale = _pow2_scales(w, 7)
        inits += [_init(f"fc{i + 1}.weight", w), _init(f"fc{i + 1}.bias", _bias(rng, fo, 0.2))]
        wq, more = _qonnx_quant(f"{fc}/weight_quant", f"fc{i + 1}.weight",
                                f"{fc}/weight_quant/export_handler/Quant_output_0", w_scale, np.float32(4),
                                signed=True, narrow=True)
        bq, more_b = _qonnx_quant(f"{fc}/bias_quant", f"fc{i + 1}.bias",
                                  f"{fc}/bias_quant/export_handler/Quant_output_0",
                                  _f32(x_scale * w_scale[:, 0]), np.float32(16), signed=True, narrow=False)
        inits += more + more_b
        g = "y" if i == 1 else f"{fc}/Gemm_output_0"
        nodes += [wq, bq, _gemm(f"{fc}/Gemm", x, wq.output[0], bq.output[0], g)]
        if i == 0:
            nodes.append(helper.make_node("Relu", [g], ["/relu1/Relu_output_0"], name="/relu1/Relu"))
            aq, more = _qonnx_quant("/relu1/act_quant", "/relu1/Relu_output_0",
                                    "/relu1/act_quant/export_handler/Quant_output_0", np.float32(2.0**-4),
                                    np.float32(8), signed=False, narrow=False)
            nodes.append(aq)
            inits += more
            x, x_scale = aq.output[0], 2.0**-4
    graph = helper.make_graph(
        nodes, "qmlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(QONNX_DOMAIN, 1)],
        ir_version=IR_VERSION[13],
        producer_name=PRODUCER,
        producer_version=PRODUCER_VERSION,
    )
    return model


def train_digits():
    """Train the scikit-learn MLPClassifier; return (classifier, x_test f32, y_test i64)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    data = load_digits()
    x = data.data / 16.0
    y = data.target
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=0, stratify=y)
    # Adam stops by its own tolerance after about 400 epochs; max_iter only bounds it.
    clf = MLPClassifier(hidden_layer_sizes=(32,), activation="relu", random_state=0, max_iter=1000)
    clf.fit(x_train, y_train)
    return clf, _f32(x_test), np.ascontiguousarray(y_test, dtype=np.int64)


def build_digits(clf) -> onnx.ModelProto:
    """The trained classifier as MatMul + Add + Relu + MatMul + Add + Softmax. Opset 17."""
    (w1, w2), (b1, b2) = clf.coefs_, clf.intercepts_
    inits = [
        _init("coefficient", _f32(w1)),      # [64, 32], MatMul form: x @ W
        _init("intercepts", _f32(b1)),       # [32]
        _init("coefficient1", _f32(w2)),     # [32, 10]
        _init("intercepts1", _f32(b2)),      # [10]
    ]
    nodes = [
        helper.make_node("MatMul", ["x", "coefficient"], ["mul_result"], name="MatMul"),
        helper.make_node("Add", ["mul_result", "intercepts"], ["add_result"], name="Add"),
        helper.make_node("Relu", ["add_result"], ["next_activations"], name="Relu"),
        helper.make_node("MatMul", ["next_activations", "coefficient1"], ["mul_result1"],
                         name="MatMul1"),
        helper.make_node("Add", ["mul_result1", "intercepts1"], ["add_result1"], name="Add1"),
        helper.make_node("Softmax", ["add_result1"], ["probabilities"], name="Softmax", axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "digits",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 64])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
        initializer=inits,
    )
    return _model(graph, 17)


# ----------------------------------------------------------------------------- checks and I/O

def run_onnxruntime(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts,
                                providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def _qonnx_ops():
    """QONNX's Quant for ``onnx.reference``, from the spec (docs/qonnx-custom-ops/quant_op.md)."""
    from onnx.reference.op_run import OpRun

    rounders = {"ROUND": np.round, "FLOOR": np.floor, "CEIL": np.ceil}

    class Quant(OpRun):
        op_domain = QONNX_DOMAIN

        def _run(self, x, scale, zeropt, bitwidth, narrow=0, rounding_mode="ROUND", signed=1):
            bits = int(bitwidth)
            lo = -(2 ** (bits - 1)) + narrow if signed else 0
            hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1 - narrow
            q = rounders[rounding_mode.upper()](np.clip(x / scale + zeropt, lo, hi))
            return ((q - zeropt) * scale).astype(x.dtype),

    return [Quant]


def run_reference(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """A QONNX model in ``onnx.reference``, with its Quant nodes computed as the spec says."""
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(model, new_ops=_qonnx_ops()).run(None, inputs)


def example_input(model: onnx.ModelProto, batch: int = 3, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float inputs in [-1, 1] for every graph input, symbolic dims set to ``batch``."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in model.graph.input:
        dims = [d.dim_value if d.HasField("dim_value") else batch
                for d in inp.type.tensor_type.shape.dim]
        feeds[inp.name] = _f32(rng.uniform(-1.0, 1.0, size=dims))
    return feeds


def check(model: onnx.ModelProto, name: str) -> list[np.ndarray]:
    onnx.checker.check_model(model, full_check=True)
    run = run_reference if name in QONNX_FILES else run_onnxruntime
    outs = run(model, example_input(model))
    for o in outs:
        if not np.all(np.isfinite(o)):
            raise RuntimeError(f"{name}: onnxruntime gave non-finite outputs")
    return outs


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def save_model(model: onnx.ModelProto, path: Path) -> None:
    _write_bytes(path, model.SerializeToString(deterministic=True))


def save_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    _write_bytes(path, buf.getvalue())


def save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Like np.savez, but with a fixed timestamp in the zip so the bytes are reproducible."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            sub = io.BytesIO()
            np.lib.format.write_array(sub, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, sub.getvalue())
    _write_bytes(path, buf.getvalue())


def digits_accuracy(model: onnx.ModelProto, x: np.ndarray, y: np.ndarray) -> float:
    probs = run_onnxruntime(model, {"x": x})[0]
    return float(np.mean(np.argmax(probs, axis=1) == y))


def main(out_dir=None, verbose: bool = True) -> dict[str, Path]:
    """Build, check and write every example into ``out_dir`` (default: this folder)."""
    out = Path(out_dir) if out_dir is not None else HERE
    out.mkdir(parents=True, exist_ok=True)
    say = print if verbose else (lambda *a, **k: None)
    written: dict[str, Path] = {}

    models = {
        "mlp.onnx": build_mlp(),
        "cnn2d.onnx": build_cnn2d(),
        "cnn1d.onnx": build_cnn1d(),
        "lstm.onnx": build_lstm(),
        "gru.onnx": build_gru(),
    }
    clf, x_test, y_test = train_digits()
    models["digits.onnx"] = build_digits(clf)
    models["qmlp.onnx"] = build_qmlp()

    for fname, model in models.items():
        outs = check(model, fname)
        save_model(model, out / fname)
        written[fname] = out / fname
        y = outs[0]
        say(f"{fname:12s} {(out / fname).stat().st_size:7d} bytes  output {list(y.shape)}  "
            f"range [{y.min():.3f}, {y.max():.3f}]")

    rng = np.random.default_rng(7)
    mlp_input = _f32(rng.uniform(-1.0, 1.0, size=(32, 16)))
    run_onnxruntime(models["mlp.onnx"], {"x": mlp_input})
    save_npy(out / "mlp_input.npy", mlp_input)
    written["mlp_input.npy"] = out / "mlp_input.npy"

    save_npz(out / "digits_test.npz", x=x_test, y=y_test)
    written["digits_test.npz"] = out / "digits_test.npz"

    acc = digits_accuracy(models["digits.onnx"], x_test, y_test)
    sk_acc = float(clf.score(x_test.astype(np.float64), y_test))
    say(f"digits: onnxruntime float accuracy {acc:.4f} ({len(y_test)} test samples), "
        f"sklearn score {sk_acc:.4f}")
    if abs(acc - sk_acc) > 1.0 / len(y_test) + 1e-12:
        raise RuntimeError(f"digits: onnxruntime accuracy {acc} != sklearn score {sk_acc}")
    return written


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
