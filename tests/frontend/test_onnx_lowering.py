"""Each ONNX lowering on a small hand-built model: the IR it gives and its numbers vs onnxruntime."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import fpgac.api as api
from fpgac.errors import UnsupportedError, UsageError
from fpgac.frontend import load_onnx
from fpgac.ir import Act, Op, PoolKind

RNG = np.random.default_rng(7)


def _model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "t",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(a, dtype=np.float32 if np.asarray(a).dtype.kind == "f" else np.int64), n)
         for n, a in inits],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _check(tmp_path: Path, model: onnx.ModelProto, batch: int = 3, outputs=None, reference: str = "onnxruntime"):
    """Save, load with fpgac, compare every output with onnxruntime (or ``onnx.reference`` where
    onnxruntime lacks the op variant); return the canonical graph."""
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    graph = api.load(path, outputs=outputs)
    feeds = {}
    for value_info in model.graph.input:
        dims = [d.dim_value or batch for d in value_info.type.tensor_type.shape.dim]
        feeds[value_info.name] = RNG.uniform(-2, 2, size=dims).astype(np.float32)
    if reference == "onnxruntime":
        want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(outputs, feeds)
    else:
        want = ReferenceEvaluator(model).run(outputs, feeds)
    got = api.run(graph, [feeds[v.name] for v in model.graph.input])
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5)
    return graph


def _ops(graph) -> list[Op]:
    return [n.op for n in graph.nodes]


def test_gemm_trans_alpha_beta(tmp_path: Path) -> None:
    w, c = RNG.normal(size=(4, 6)), RNG.normal(size=(1, 4))
    node = helper.make_node("Gemm", ["x", "w", "c"], ["y"], transB=1, alpha=0.5, beta=2.0)
    graph = _check(tmp_path, _model([node], [("x", ["N", 6])], [("y", ["N", 4])], [("w", w), ("c", c)]))
    assert _ops(graph) == [Op.DENSE]


def test_matmul_add_becomes_one_dense_with_bias(tmp_path: Path) -> None:
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])]
    inits = [("w", RNG.normal(size=(5, 3))), ("b", RNG.normal(size=(3,)))]
    graph = _check(tmp_path, _model(nodes, [("x", ["N", 5])], [("y", ["N", 3])], inits))
    assert _ops(graph) == [Op.DENSE] and graph.nodes[0].input(2) is not None
    assert graph.outputs[0].name == "y"


def test_matmul_on_sequence_applies_to_last_axis(tmp_path: Path) -> None:
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    graph = _check(tmp_path, _model([node], [("x", ["N", 4, 5])], [("y", ["N", 4, 3])], [("w", RNG.normal(size=(5, 3)))]))
    assert graph.outputs[0].shape == (4, 3)


def test_conv_batchnorm_relu_folds(tmp_path: Path) -> None:
    c = 3
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["c", "s", "t", "m", "v"], ["n"], epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["y"]),
    ]
    inits = [("w", RNG.normal(size=(c, 2, 3, 3))), ("b", RNG.normal(size=c)), ("s", RNG.uniform(0.5, 2, c)),
             ("t", RNG.normal(size=c)), ("m", RNG.normal(size=c)), ("v", RNG.uniform(0.5, 2, c))]
    graph = _check(tmp_path, _model(nodes, [("x", ["N", 2, 5, 5])], [("y", ["N", c, 5, 5])], inits))
    assert _ops(graph) == [Op.CONV, Op.ACTIVATION]


def test_batchnorm_alone_is_a_scale_shift(tmp_path: Path) -> None:
    node = helper.make_node("BatchNormalization", ["x", "s", "t", "m", "v"], ["y"])
    inits = [(n, RNG.uniform(0.5, 2, 4)) for n in "stmv"]
    graph = _check(tmp_path, _model([node], [("x", ["N", 4, 3])], [("y", ["N", 4, 3])], inits))
    assert _ops(graph) == [Op.SCALE_SHIFT]


@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER", "VALID"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_auto_pad(tmp_path: Path, auto_pad: str, stride: int) -> None:
    node = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto_pad, strides=[stride, stride], kernel_shape=[2, 3])
    model = _model([node], [("x", [2, 2, 7, 6])], [("y", None)], [("w", RNG.normal(size=(4, 2, 2, 3)))])
    _check(tmp_path, model, batch=2)


def test_conv1d_dilated_grouped(tmp_path: Path) -> None:
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=2, dilations=[2], pads=[1, 2], strides=[2])
    inits = [("w", RNG.normal(size=(6, 2, 3))), ("b", RNG.normal(size=6))]
    _check(tmp_path, _model([node], [("x", ["N", 4, 11])], [("y", None)], inits))


@pytest.mark.parametrize("ceil_mode,include", [(0, 0), (1, 0), (1, 1), (0, 1)])
def test_average_pool_padding_rules(tmp_path: Path, ceil_mode: int, include: int) -> None:
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                            ceil_mode=ceil_mode, count_include_pad=include)
    graph = _check(tmp_path, _model([node], [("x", ["N", 2, 6, 6])], [("y", None)]))
    assert graph.nodes[0].attrs["kind"] is PoolKind.AVG


def test_global_max_pool_flatten(tmp_path: Path) -> None:
    nodes = [helper.make_node("GlobalMaxPool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["y"])]
    graph = _check(tmp_path, _model(nodes, [("x", ["N", 3, 4, 4])], [("y", ["N", 3])]))
    assert _ops(graph) == [Op.GLOBAL_POOL, Op.RESHAPE]


@pytest.mark.parametrize(
    "op,attrs,kind",
    [
        ("LeakyRelu", {"alpha": 0.2}, Act.LEAKY_RELU),
        ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, Act.HARD_SIGMOID),
        ("Elu", {"alpha": 0.7}, Act.ELU),
        ("Selu", {}, Act.SELU),
        ("Softplus", {}, Act.SOFTPLUS),
        ("Softsign", {}, Act.SOFTSIGN),
        ("Tanh", {}, Act.TANH),
        ("Sigmoid", {}, Act.SIGMOID),
        ("Abs", {}, Act.ABS),
        ("HardSwish", {}, Act.HARD_SWISH),
    ],
)
def test_activations(tmp_path: Path, op: str, attrs: dict, kind: Act) -> None:
    graph = _check(tmp_path, _model([helper.make_node(op, ["x"], ["y"], **attrs)], [("x", ["N", 7])], [("y", ["N", 7])]))
    assert graph.nodes[0].attrs["kind"] is kind


def test_relu6_from_clip_inputs(tmp_path: Path) -> None:
    node = helper.make_node("Clip", ["x", "lo", "hi"], ["y"])
    graph = _check(tmp_path, _model([node], [("x", ["N", 5])], [("y", ["N", 5])], [("lo", np.array(0.0)), ("hi", np.array(6.0))]))
    assert graph.nodes[0].attrs == {"kind": Act.CLIP, "min": 0.0, "max": 6.0}


def test_clip_opset6_attributes_and_max_only(tmp_path: Path) -> None:
    node = helper.make_node("Clip", ["x"], ["y"], min=-1.0, max=0.5)
    _check(tmp_path, _model([node], [("x", ["N", 5])], [("y", ["N", 5])], opset=6))
    node = helper.make_node("Clip", ["x", "", "hi"], ["y"])
    graph = _check(tmp_path, _model([node], [("x", ["N", 5])], [("y", ["N", 5])], [("hi", np.array(1.0))]))
    assert graph.nodes[0].attrs["min"] == -np.inf


def test_prelu_per_channel(tmp_path: Path) -> None:
    node = helper.make_node("PRelu", ["x", "s"], ["y"])
    _check(tmp_path, _model([node], [("x", ["N", 3, 4])], [("y", ["N", 3, 4])], [("s", RNG.uniform(0, 1, (3, 1)))]))


def test_softmax_opset11_axis1_coerces_to_2d(tmp_path: Path) -> None:
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    graph = _check(tmp_path, _model([node], [("x", ["N", 3, 4])], [("y", ["N", 3, 4])], opset=11))
    assert _ops(graph) == [Op.RESHAPE, Op.SOFTMAX, Op.RESHAPE]


def test_log_softmax_middle_axis_opset13(tmp_path: Path) -> None:
    node = helper.make_node("LogSoftmax", ["x"], ["y"], axis=1)
    graph = _check(tmp_path, _model([node], [("x", ["N", 3, 4])], [("y", ["N", 3, 4])], opset=13))
    assert graph.nodes[0].attrs == {"axis": 0, "log": True}


def test_arithmetic_with_constants_and_tensors(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Div", ["x", "two"], ["a"]),
        helper.make_node("Sub", ["one", "a"], ["b"]),
        helper.make_node("Mul", ["b", "x"], ["c"]),
        helper.make_node("Max", ["c", "x", "z"], ["d"]),
        helper.make_node("Min", ["d", "one"], ["e"]),
        helper.make_node("Sum", ["e", "x", "a"], ["f"]),
        helper.make_node("Neg", ["f"], ["g"]),
        helper.make_node("Div", ["g", "x"], ["y"]),
    ]
    inits = [("two", np.array([2.0, 4.0, 8.0])), ("one", np.array(1.0)), ("z", np.zeros((1, 3)))]
    graph = _check(tmp_path, _model(nodes, [("x", ["N", 3])], [("y", ["N", 3])], inits))
    assert graph.nodes[0].op is Op.MUL  # division by a constant is a multiplication


def test_concat_transpose_squeeze_unsqueeze(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Unsqueeze", ["x", "ax"], ["u"]),
        helper.make_node("Concat", ["u", "u"], ["c"], axis=1),
        helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 1]),
        helper.make_node("Squeeze", ["t"], ["y"]),
    ]
    _check(tmp_path, _model(nodes, [("x", ["N", 4])], [("y", None)], [("ax", np.array([1]))], opset=13))


def test_pad_constant_with_axes_opset18(tmp_path: Path) -> None:
    node = helper.make_node("Pad", ["x", "p", "v", "axes"], ["y"])
    inits = [("p", np.array([1, 2])), ("v", np.array(0.5)), ("axes", np.array([-1]))]
    graph = _check(tmp_path, _model([node], [("x", ["N", 2, 3])], [("y", None)], inits, opset=18))
    assert graph.nodes[0].attrs["pads"] == (0, 1, 0, 2)


def test_split_slice_gather(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Split", ["x", "sp"], ["a", "b"], axis=1),
        helper.make_node("Slice", ["b", "st", "en", "ax", "step"], ["s"]),
        helper.make_node("Gather", ["s", "i"], ["g"], axis=1),
        helper.make_node("Add", ["g", "a0"], ["y"]),
        helper.make_node("Gather", ["a", "i"], ["a0"], axis=1),
    ]
    nodes = nodes[:3] + [nodes[4], nodes[3]]
    inits = [("sp", np.array([2, 5])), ("st", np.array([-1])), ("en", np.array([-100])), ("ax", np.array([1])),
             ("step", np.array([-2])), ("i", np.array(-1))]
    _check(tmp_path, _model(nodes, [("x", ["N", 7, 3])], [("y", None)], inits, opset=13))


def test_argmax_and_probabilities_both_kept(tmp_path: Path) -> None:
    nodes = [
        helper.make_node("Gemm", ["x", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"]),
        helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
    ]
    model = _model(nodes, [("x", ["N", 4])], [("probabilities", ["N", 3])], [("w", RNG.normal(size=(4, 3)))])
    model.graph.output.append(helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]))
    graph = _check(tmp_path, model)
    assert [v.name for v in graph.outputs] == ["probabilities", "label"]
    only = _check(tmp_path, model, outputs=["label"])
    assert [v.name for v in only.outputs] == ["label"]


def test_output_the_hardware_cannot_compute_is_dropped(tmp_path: Path, caplog) -> None:
    nodes = [helper.make_node("Relu", ["x"], ["y"]), helper.make_node("Exp", ["x"], ["e"])]
    model = _model(nodes, [("x", ["N", 3])], [("y", ["N", 3]), ("e", ["N", 3])])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    with caplog.at_level(logging.WARNING):
        graph = load_onnx(path)
    assert [v.name for v in graph.outputs] == ["y"]
    assert "dropping output 'e'" in caplog.text
    with pytest.raises(UnsupportedError, match=r"^.*m\.onnx: node 'e' \(Exp\): op Exp is not supported .*, Unsqueeze$"):
        load_onnx(path, outputs=["e"])
    with pytest.raises(UsageError, match=r"^.*m\.onnx: no output named 'z'; the model's outputs are y, e$"):
        load_onnx(path, outputs=["z"])


def _rnn_model(op: str, layout: int, t: int, f: int, h: int, **attrs) -> tuple[onnx.ModelProto, list]:
    gates = 4 if op == "LSTM" else 3
    scale = 1 / np.sqrt(h)
    inits = [("W", RNG.uniform(-scale, scale, (1, gates * h, f))), ("R", RNG.uniform(-scale, scale, (1, gates * h, h))),
             ("B", RNG.uniform(-scale, scale, (1, 2 * gates * h)))]
    outs = ["Y", "Y_h"] + (["Y_c"] if op == "LSTM" else [])
    # the batch comes first at the input; layout 0 wants [T, N, F], so exporters transpose first
    nodes = [] if layout else [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2])]
    nodes.append(helper.make_node(op, ["x" if layout else "xt", "W", "R", "B"], outs, hidden_size=h, layout=layout, **attrs))
    return _model(nodes, [("x", ["N", t, f])], [(o, None) for o in outs], inits, opset=14), outs


@pytest.mark.parametrize("layout", [0, 1])
def test_lstm_all_outputs_both_layouts(tmp_path: Path, layout: int) -> None:
    model, _ = _rnn_model("LSTM", layout, t=5, f=3, h=4)
    # onnxruntime refuses layout=1 ("Batchwise recurrent operations are not supported")
    graph = _check(tmp_path, model, reference="onnx" if layout else "onnxruntime")
    assert graph.output_batch_axes == ({} if layout else {"Y": 2, "Y_h": 1, "Y_c": 1})


@pytest.mark.parametrize("linear_before_reset", [0, 1])
def test_gru(tmp_path: Path, linear_before_reset: int) -> None:
    model, _ = _rnn_model("GRU", 0, t=4, f=3, h=5, linear_before_reset=linear_before_reset)
    _check(tmp_path, model)


def test_bidirectional_rnn_is_refused(tmp_path: Path) -> None:
    model, _ = _rnn_model("GRU", 0, t=4, f=3, h=5, direction="reverse")
    onnx.save(model, tmp_path / "m.onnx")
    with pytest.raises(UnsupportedError, match=r"^.*node 'Y' \(GRU\): GRU direction 'reverse': fpgac compiles forward RNNs$"):
        load_onnx(tmp_path / "m.onnx")


def test_external_data_beside_the_model(tmp_path: Path) -> None:
    w = RNG.normal(size=(64, 32)).astype(np.float32)
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"])], [("x", ["N", 64])], [("y", ["N", 32])], [("w", w)])
    onnx.save(model, tmp_path / "m.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
              location="m.onnx.data", size_threshold=0)
    assert (tmp_path / "m.onnx.data").is_file()
    graph = api.load(tmp_path / "m.onnx")
    np.testing.assert_array_equal(graph.nodes[0].inputs[1].data, w.astype(np.float64))


def test_batch_fixed_at_one_runs_any_batch(tmp_path: Path) -> None:
    nodes = [helper.make_node("Reshape", ["x", "s"], ["r"]), helper.make_node("Relu", ["r"], ["y"])]
    model = _model(nodes, [("x", [1, 2, 3])], [("y", [1, 6])], [("s", np.array([1, 6]))])
    onnx.save(model, tmp_path / "m.onnx")
    graph = api.load(tmp_path / "m.onnx")
    x = RNG.normal(size=(5, 2, 3))
    np.testing.assert_allclose(api.run(graph, x)[0], np.maximum(x.reshape(5, 6), 0), rtol=1e-6)


def test_sklearn_style_label_branch_is_dropped_probabilities_kept(tmp_path: Path, caplog) -> None:
    """skl2onnx writes the label through ai.onnx.ml ops; the probabilities are what hardware computes."""
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1),
        helper.make_node("ArgMax", ["probabilities"], ["index"], axis=1),
        helper.make_node("ArrayFeatureExtractor", ["classes", "index"], ["label"], domain="ai.onnx.ml", name="afe"),
    ]
    graph = helper.make_graph(
        nodes, "sk",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, None),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(RNG.normal(size=(4, 3)).astype(np.float32), "w"),
         numpy_helper.from_array(np.array([3, 5, 7], dtype=np.int64), "classes")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    onnx.save(model, tmp_path / "sk.onnx")
    with caplog.at_level(logging.WARNING):
        loaded = api.load(tmp_path / "sk.onnx")
    assert [v.name for v in loaded.outputs] == ["probabilities"]
    assert "dropping output 'label'" in caplog.text
    with pytest.raises(UnsupportedError, match=r"^.*sk\.onnx: node 'afe' \(ArrayFeatureExtractor\): op "
                                               r"ArrayFeatureExtractor of domain 'ai\.onnx\.ml' is not one fpgac compiles$"):
        api.load(tmp_path / "sk.onnx", outputs=["label"])


def test_tensorflow_style_nhwc_with_transposes(tmp_path: Path) -> None:
    """tf2onnx keeps the NHWC input and wraps each convolution in transposes."""
    nodes = [
        helper.make_node("Transpose", ["x"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "k", "kb"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Transpose", ["r"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Reshape", ["nhwc", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["m"]),
        helper.make_node("Add", ["m", "b"], ["y"]),
    ]
    inits = [("k", RNG.normal(size=(2, 1, 3, 3))), ("kb", RNG.normal(size=2)), ("shape", np.array([-1, 72])),
             ("w", RNG.normal(size=(72, 4))), ("b", RNG.normal(size=4))]
    graph = _check(tmp_path, _model(nodes, [("x", ["N", 8, 8, 1])], [("y", ["N", 4])], inits))
    assert _ops(graph) == [Op.TRANSPOSE, Op.CONV, Op.ACTIVATION, Op.TRANSPOSE, Op.RESHAPE, Op.DENSE]


def test_hard_swish_through_every_backend_without_a_backend_entry(tmp_path: Path) -> None:
    """CONTRIBUTING.md's worked example: HardSwish was added with a frontend entry and a function in
    its semantics module only; quantization makes it a table, and every backend renders tables."""
    w = RNG.normal(size=(6, 5))
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("HardSwish", ["h"], ["y"])]
    model = _model(nodes, [("x", ["N", 6])], [("y", ["N", 5])], [("w", w)], opset=14)
    path = tmp_path / "hs.onnx"
    onnx.save(model, path)
    x = RNG.uniform(-2, 2, size=(500, 6))
    compiled = api.compile(path, calibration=x, bits=16)
    assert [n.op for n in compiled.graph.nodes if n.op in (Op.LOOKUP, Op.ACTIVATION)] == [Op.LOOKUP]
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.astype(np.float32)})[0]
    np.testing.assert_allclose(compiled.predict(x), want, atol=2e-3)  # the table's error at 16 bits
    for target in ("cpu", "xilinx", "amaranth"):
        out = compiled.write(tmp_path / target, target, vectors=20)
        if target != "amaranth":  # the amaranth build is covered by the stages check below
            assert api.verify(out).mismatched_bits == 0
    from fpgac.backends.amaranth.lower import execute, lower

    vectors = compiled.vectors(50)
    np.testing.assert_array_equal(execute(lower(compiled.graph), vectors.input_mantissas[0]), vectors.golden[0])
