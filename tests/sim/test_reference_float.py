"""The float interpreter against onnxruntime, op by op.

Each test builds a one-node IR graph by hand and the matching ONNX model (batched shapes, the
weights in ONNX's own layout) and runs both on the same random batch. onnxruntime is the
independent reference: the interpreter shares no code with it, so agreement means both read the
op the same way.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from fpgac.errors import ShapeError
from fpgac.ir import Act, FixedType, FloatType, Graph, Op, PoolKind, TensorType, infer_shapes, verify
from fpgac.sim import evaluate_float, run_float
from fpgac.ir.semantics import SEMANTICS

N = 3
RTOL, ATOL = 1e-4, 1e-5
INDEX = FixedType(8, 8, signed=False)


class In(NamedTuple):
    """A graph input of the one-node IR graph (anything else in the input list is a constant)."""

    name: str
    shape: tuple[int, ...]


def ir_graph(op: Op, inputs: list[In | np.ndarray | None], attrs: dict[str, Any] | None = None,
             num_outputs: int = 1, dtype: Any = None) -> Graph:
    """A verified graph of one node; output shapes come from the op's shape rule."""
    graph = Graph("t")
    values = []
    for item in inputs:
        if item is None:
            values.append(None)
        elif isinstance(item, In):
            values.append(graph.add_input(item.name, TensorType(FloatType(), item.shape)))
        else:
            values.append(graph.constant("c", item))
    node = graph.add_node(op, values, [TensorType(FloatType(), ())] * num_outputs, attrs)
    for value, shape in zip(node.outputs, infer_shapes(node)):
        value.type = TensorType(dtype or FloatType(), shape)
    graph.outputs = list(node.outputs)
    verify(graph)
    return graph


def onnx_run(nodes: list[Any], feeds: dict[str, np.ndarray], inits: dict[str, np.ndarray] | None = None,
             outputs: list[str] | None = None, opset: int = 17) -> list[np.ndarray]:
    """Run a small ONNX model (float32 feeds; float initializers as float32, int ones as int64)."""
    inits = inits or {}
    outputs = outputs or [nodes[-1].output[0]]
    graph = helper.make_graph(
        nodes,
        "reference",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in feeds.items()],
        [helper.make_empty_tensor_value_info(name) for name in outputs],
        initializer=[
            numpy_helper.from_array(np.asarray(v, np.float32 if np.asarray(v).dtype.kind == "f" else np.int64), k)
            for k, v in inits.items()
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(outputs, {k: v.astype(np.float32) for k, v in feeds.items()})


def assert_close(ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL)


def batch(shape: tuple[int, ...], scale: float = 1.0, seed: int = 1234) -> np.ndarray:
    """A float32-exact random batch, so that both sides see exactly the same numbers."""
    data = np.random.default_rng(seed).normal(size=(N, *shape)) * scale
    return data.astype(np.float32).astype(np.float64)


def weights(*shape: int, seed: int = 7) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32).astype(np.float64) * 0.5


# -- Dense, Conv, Pool --------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(5,), (2, 5)])
@pytest.mark.parametrize("bias", [True, False])
def test_dense(shape: tuple[int, ...], bias: bool) -> None:
    w, b = weights(5, 3), weights(3, seed=8)
    graph = ir_graph(Op.DENSE, [In("x", shape), w, b if bias else None])
    x = batch(shape)
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"])]
    if bias:
        nodes.append(helper.make_node("Add", ["m", "b"], ["y"]))
    assert_close(run_float(graph, x), onnx_run(nodes, {"x": x}, {"w": w, "b": b}))


CONV_CASES = [
    # in_shape, out_channels, kernel, strides, dilations, pads, groups, bias
    ((3, 10), 4, (3,), (1,), (1,), (1, 1), 1, True),
    ((4, 13), 6, (3,), (2,), (2,), (0, 2), 2, False),
    ((4, 9), 4, (5,), (1,), (1,), (2, 1), 4, True),  # depthwise
    ((3, 8, 7), 5, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1, True),
    ((2, 9, 8), 4, (3, 2), (2, 3), (1, 1), (0, 1, 2, 0), 1, True),
    ((6, 10, 9), 4, (3, 3), (1, 2), (2, 1), (1, 0, 2, 1), 2, False),
    ((3, 7, 7), 6, (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 3, True),  # depthwise, multiplier 2
    ((4, 5, 6), 3, (1, 1), (1, 1), (1, 1), (0, 0, 0, 0), 1, True),  # pointwise
]


@pytest.mark.parametrize("in_shape, m, kernel, strides, dilations, pads, groups, bias", CONV_CASES)
def test_conv(in_shape, m, kernel, strides, dilations, pads, groups, bias) -> None:
    w, b = weights(m, in_shape[0] // groups, *kernel), weights(m, seed=8)
    attrs = {"strides": strides, "dilations": dilations, "pads": pads, "groups": groups}
    graph = ir_graph(Op.CONV, [In("x", in_shape), w, b if bias else None], attrs)
    x = batch(in_shape)
    node = helper.make_node("Conv", ["x", "w", "b"] if bias else ["x", "w"], ["y"], kernel_shape=kernel,
                            strides=strides, dilations=dilations, pads=pads, group=groups)
    assert_close(run_float(graph, x), onnx_run([node], {"x": x}, {"w": w, "b": b}))


POOL_CASES = [
    # kind, in_shape, kernel, strides, dilations, pads, ceil_mode, count_include_pad
    (PoolKind.MAX, (3, 8, 8), (2, 2), (2, 2), (1, 1), (0, 0, 0, 0), False, False),
    (PoolKind.MAX, (2, 8, 7), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), True, False),
    (PoolKind.MAX, (2, 9, 8), (2, 3), (1, 2), (2, 1), (1, 0, 0, 2), False, False),
    (PoolKind.MAX, (2, 4), (2,), (2,), (1,), (0, 1), True, False),  # ceil window in end padding dropped
    (PoolKind.MAX, (3, 10), (3,), (2,), (1,), (0, 0), True, False),
    (PoolKind.AVG, (2, 6, 7), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), False, False),
    (PoolKind.AVG, (2, 6, 7), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), False, True),
    (PoolKind.AVG, (2, 6, 6), (3, 3), (2, 2), (1, 1), (1, 1, 1, 1), True, True),
    (PoolKind.AVG, (2, 6, 6), (3, 3), (2, 2), (1, 1), (1, 0, 0, 1), True, False),
    (PoolKind.AVG, (2, 7, 8), (2, 3), (2, 2), (1, 1), (0, 1, 1, 0), True, True),
    (PoolKind.AVG, (3, 11), (3,), (1,), (2,), (2, 1), False, True),
    (PoolKind.AVG, (3, 11), (3,), (1,), (2,), (2, 1), False, False),
    (PoolKind.AVG, (2, 9, 8), (2, 2), (2, 3), (2, 2), (1, 1, 0, 1), True, True),
]


@pytest.mark.parametrize("kind, in_shape, kernel, strides, dilations, pads, ceil_mode, count_include_pad", POOL_CASES)
def test_pool(kind, in_shape, kernel, strides, dilations, pads, ceil_mode, count_include_pad) -> None:
    attrs = {"kind": kind, "kernel": kernel, "strides": strides, "dilations": dilations, "pads": pads,
             "ceil_mode": ceil_mode, "count_include_pad": count_include_pad}
    graph = ir_graph(Op.POOL, [In("x", in_shape)], attrs)
    x = batch(in_shape)
    onnx_attrs: dict[str, Any] = {"kernel_shape": kernel, "strides": strides, "dilations": dilations,
                                  "pads": pads, "ceil_mode": int(ceil_mode)}
    if kind is PoolKind.AVG:
        onnx_attrs["count_include_pad"] = int(count_include_pad)
    node = helper.make_node("MaxPool" if kind is PoolKind.MAX else "AveragePool", ["x"], ["y"], **onnx_attrs)
    assert_close(run_float(graph, x), onnx_run([node], {"x": x}, opset=19))


@pytest.mark.parametrize("kind", list(PoolKind))
@pytest.mark.parametrize("shape", [(3, 7), (3, 4, 5)])
def test_global_pool(kind: PoolKind, shape: tuple[int, ...]) -> None:
    graph = ir_graph(Op.GLOBAL_POOL, [In("x", shape)], {"kind": kind})
    x = batch(shape)
    node = helper.make_node("GlobalMaxPool" if kind is PoolKind.MAX else "GlobalAveragePool", ["x"], ["y"])
    assert_close(run_float(graph, x), onnx_run([node], {"x": x}))


# -- elementwise --------------------------------------------------------------------------------

ACT_CASES = [
    # kind, IR attrs, ONNX op, ONNX attrs, ONNX extra inputs (name -> initializer; None: absent)
    (Act.RELU, {}, "Relu", {}, {}),
    (Act.LEAKY_RELU, {"alpha": 0.1}, "LeakyRelu", {"alpha": 0.1}, {}),
    (Act.SIGMOID, {}, "Sigmoid", {}, {}),
    (Act.HARD_SIGMOID, {"alpha": 0.2, "beta": 0.4}, "HardSigmoid", {"alpha": 0.2, "beta": 0.4}, {}),
    (Act.TANH, {}, "Tanh", {}, {}),
    (Act.CLIP, {"min": -0.5, "max": 0.75}, "Clip", {}, {"lo": np.float32(-0.5), "hi": np.float32(0.75)}),
    (Act.CLIP, {"min": -np.inf, "max": 0.25}, "Clip", {}, {"lo": None, "hi": np.float32(0.25)}),
    (Act.CLIP, {"min": 0.0, "max": np.inf}, "Clip", {}, {"lo": np.float32(0.0)}),
    (Act.ELU, {"alpha": 0.75}, "Elu", {"alpha": 0.75}, {}),
    (Act.SELU, {"alpha": 1.5, "gamma": 1.25}, "Selu", {"alpha": 1.5, "gamma": 1.25}, {}),
    (Act.SOFTPLUS, {}, "Softplus", {}, {}),
    (Act.SOFTSIGN, {}, "Softsign", {}, {}),
    (Act.ABS, {}, "Abs", {}, {}),
]


@pytest.mark.filterwarnings("error")  # no overflow in exp, even at |x| = 1e4
@pytest.mark.parametrize("kind, attrs, onnx_op, onnx_attrs, extra", ACT_CASES,
                         ids=[case[0].value for case in ACT_CASES])
def test_activation(kind: Act, attrs: dict, onnx_op: str, onnx_attrs: dict, extra: dict) -> None:
    shape = (4, 7)
    graph = ir_graph(Op.ACTIVATION, [In("x", shape)], {"kind": kind, **attrs})
    x = batch(shape, scale=3.0)
    x[:, 0, :6] = [-1e4, -800.0, -50.0, 50.0, 800.0, 1e4]
    x[:, 1, 0] = 0.0
    names = ["x"] + ["" if v is None else k for k, v in extra.items()]
    inits = {k: v for k, v in extra.items() if v is not None}
    node = helper.make_node(onnx_op, names, ["y"], **onnx_attrs)
    assert_close(run_float(graph, x), onnx_run([node], {"x": x}, inits))


@pytest.mark.parametrize("slope_shape", [(3, 1, 1), (5,), (3, 4, 5)])
def test_prelu(slope_shape: tuple[int, ...]) -> None:
    slope = weights(*slope_shape)
    graph = ir_graph(Op.ACTIVATION, [In("x", (3, 4, 5)), slope], {"kind": Act.PRELU})
    x = batch((3, 4, 5))
    node = helper.make_node("PRelu", ["x", "slope"], ["y"])
    assert_close(run_float(graph, x), onnx_run([node], {"x": x}, {"slope": slope}))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("log", [False, True])
def test_softmax(axis: int, log: bool) -> None:
    graph = ir_graph(Op.SOFTMAX, [In("x", (3, 4, 5))], {"axis": axis, "log": log})
    x = batch((3, 4, 5), scale=4.0)
    x[0, 0, 0, 0] = 1e4  # a huge logit must neither overflow nor give NaN
    node = helper.make_node("LogSoftmax" if log else "Softmax", ["x"], ["y"], axis=axis + 1)
    assert_close(run_float(graph, x), onnx_run([node], {"x": x}))


@pytest.mark.parametrize("scale_shape, shift_shape", [((3, 1, 1), (3, 1, 1)), ((5,), (4, 5))])
def test_scale_shift(scale_shape: tuple[int, ...], shift_shape: tuple[int, ...]) -> None:
    scale, shift = weights(*scale_shape), weights(*shift_shape, seed=9)
    graph = ir_graph(Op.SCALE_SHIFT, [In("x", (3, 4, 5)), scale, shift])
    x = batch((3, 4, 5))
    nodes = [helper.make_node("Mul", ["x", "s"], ["m"]), helper.make_node("Add", ["m", "t"], ["y"])]
    assert_close(run_float(graph, x), onnx_run(nodes, {"x": x}, {"s": scale, "t": shift}))


BINARY_OPS = {Op.ADD: "Add", Op.SUB: "Sub", Op.MUL: "Mul", Op.DIV: "Div", Op.MAX: "Max", Op.MIN: "Min"}
class Const(NamedTuple):
    """A constant operand of a binary op, of this per-sample shape."""

    shape: tuple[int, ...]


BINARY_SHAPES = [
    ((3, 4), (3, 4)),
    ((3, 4), (4,)),  # ranks differ: the batch axis must not align with a per-sample axis
    ((4,), Const((3, 1))),  # the constant has the higher rank
    (Const((1, 4)), (3, 4)),
]


@pytest.mark.parametrize("op", list(BINARY_OPS))
@pytest.mark.parametrize("a_spec, b_spec", BINARY_SHAPES)
def test_binary(op: Op, a_spec: Any, b_spec: Any) -> None:
    items: list[In | np.ndarray] = []
    args, feeds, inits = [], {}, {}
    for name, spec, seed in (("a", a_spec, 1), ("b", b_spec, 2)):
        data = weights(*spec.shape, seed=seed) if isinstance(spec, Const) else batch(spec, seed=seed)
        data += np.sign(data) * 0.5  # away from 0, so that Div is tame
        if isinstance(spec, Const):
            items.append(data)
            inits[name] = data
        else:
            items.append(In(name, spec))
            args.append(data)
            feeds[name] = data
    graph = ir_graph(op, items)
    rank = graph.outputs[0].type.rank
    # ONNX aligns the trailing axes of the *batched* shapes: give the inputs the full rank by hand
    feeds = {k: v.reshape(N, *(1,) * (rank + 1 - v.ndim), *v.shape[1:]) for k, v in feeds.items()}
    node = helper.make_node(BINARY_OPS[op], ["a", "b"], ["y"])
    assert_close(run_float(graph, args), onnx_run([node], feeds, inits))


# -- data movement ------------------------------------------------------------------------------


@pytest.mark.parametrize("shapes, axis, const", [(((2, 5), (3, 5)), 0, False), (((2, 3), (2, 4)), 1, True),
                                                  (((2, 3, 1), (2, 3, 2), (2, 3, 1)), 2, False)])
def test_concat(shapes: tuple, axis: int, const: bool) -> None:
    data = [batch(s, seed=i) for i, s in enumerate(shapes)]
    items: list[In | np.ndarray] = [In(f"x{i}", s) for i, s in enumerate(shapes)]
    if const:
        items[-1] = data[-1] = weights(*shapes[-1])
    graph = ir_graph(Op.CONCAT, items, {"axis": axis})
    feeds = {f"x{i}": d for i, d in enumerate(data) if isinstance(items[i], In)}
    inits = {} if not const else {"c": np.broadcast_to(data[-1], (N, *shapes[-1]))}
    names = [f"x{i}" for i in range(len(shapes) - const)] + ["c"] * const
    node = helper.make_node("Concat", names, ["y"], axis=axis + 1)
    assert_close(run_float(graph, list(feeds.values())), onnx_run([node], feeds, inits))


@pytest.mark.parametrize("shape, new_shape", [((3, 4), (12,)), ((2, 6), (2, 3, 2)), ((2, 3, 4), (4, 6))])
def test_reshape(shape: tuple[int, ...], new_shape: tuple[int, ...]) -> None:
    graph = ir_graph(Op.RESHAPE, [In("x", shape)], {"shape": new_shape})
    x = batch(shape)
    node = helper.make_node("Reshape", ["x", "s"], ["y"])
    assert_close(run_float(graph, x), onnx_run([node], {"x": x}, {"s": np.array([N, *new_shape])}))


@pytest.mark.parametrize("perm", [(2, 0, 1), (1, 0, 2), (0, 1, 2)])
def test_transpose(perm: tuple[int, ...]) -> None:
    graph = ir_graph(Op.TRANSPOSE, [In("x", (2, 3, 4))], {"perm": perm})
    x = batch((2, 3, 4))
    node = helper.make_node("Transpose", ["x"], ["y"], perm=[0, *(p + 1 for p in perm)])
    assert_close(run_float(graph, x), onnx_run([node], {"x": x}))


@pytest.mark.parametrize("shape, pads, value", [((3, 4), (1, 0, 2, 3), 0.5), ((5,), (0, 2), 0.0),
                                                 ((2, 3, 4), (0, 1, 1, 1, 0, 2), -1.0)])
def test_pad(shape: tuple[int, ...], pads: tuple[int, ...], value: float) -> None:
    graph = ir_graph(Op.PAD, [In("x", shape)], {"pads": pads, "value": value})
    x = batch(shape)
    r = len(shape)
    onnx_pads = np.array([0, *pads[:r], 0, *pads[r:]])
    node = helper.make_node("Pad", ["x", "p", "v"], ["y"], mode="constant")
    assert_close(run_float(graph, x), onnx_run([node], {"x": x}, {"p": onnx_pads, "v": np.float32(value)}))


@pytest.mark.parametrize("starts, ends, steps", [
    ((1, 0), (5, 7), (2, 3)),
    ((5, 6), (-1, 2), (-1, -2)),  # backwards to the beginning, and backwards stopping early
    ((0, 6), (6, -1), (4, -3)),
    ((3, 2), (4, 3), (1, 1)),
    ((4, 6), (0, 1), (-2, -1)),  # backwards, stopping before the beginning
])
def test_slice(starts: tuple[int, ...], ends: tuple[int, ...], steps: tuple[int, ...]) -> None:
    graph = Graph("t")
    x_value = graph.add_input("x", TensorType(FloatType(), (6, 7)))
    index = tuple(slice(s, e if e >= 0 else None, t) for s, e, t in zip(starts, ends, steps))
    shape = np.empty((6, 7))[index].shape  # worked out here, so that verify checks the shape rule
    attrs = {"starts": starts, "ends": ends, "steps": steps}
    graph.outputs = [graph.add_node(Op.SLICE, [x_value], [TensorType(FloatType(), shape)], attrs).output]
    verify(graph)
    x = batch((6, 7))
    onnx_ends = [e if e >= 0 else np.iinfo(np.int64).min for e in ends]  # ONNX -1 means "the last"
    inits = {"s": np.array(starts), "e": np.array(onnx_ends), "a": np.array([1, 2]), "t": np.array(steps)}
    node = helper.make_node("Slice", ["x", "s", "e", "a", "t"], ["y"])
    assert_close(run_float(graph, x), onnx_run([node], {"x": x}, inits))


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("select_last_index", [False, True])
def test_argmax(axis: int, keepdims: bool, select_last_index: bool) -> None:
    attrs = {"axis": axis, "keepdims": keepdims, "select_last_index": select_last_index}
    graph = ir_graph(Op.ARGMAX, [In("x", (4, 5))], attrs, dtype=INDEX)
    x = np.random.default_rng(5).integers(0, 3, size=(N, 4, 5)).astype(np.float64)  # many ties
    node = helper.make_node("ArgMax", ["x"], ["y"], axis=axis + 1, keepdims=int(keepdims),
                            select_last_index=int(select_last_index))
    (ours,), (theirs,) = run_float(graph, x), onnx_run([node], {"x": x})
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours, theirs)


def test_argmax_index_stays_int64_through_reshape() -> None:
    graph = ir_graph(Op.ARGMAX, [In("x", (4, 5))], {"axis": 1, "keepdims": True, "select_last_index": False},
                     dtype=INDEX)
    node = graph.add_node(Op.RESHAPE, [graph.outputs[0]], [TensorType(INDEX, (4,))], {"shape": (4,)})
    graph.outputs = [node.output]
    verify(graph)
    x = batch((4, 5))
    (ours,) = run_float(graph, x)
    assert ours.dtype == np.int64
    np.testing.assert_array_equal(ours, np.argmax(x, axis=2))


def test_quant_with_fixed_output_rounds_in_float() -> None:
    """A model's own Quant (QONNX) is part of the float network: fixed<8,3> truncates to 1/32."""
    graph = Graph("t")
    x_value = graph.add_input("x", TensorType(FloatType(), (6,)))
    graph.outputs = [graph.add_node(Op.QUANT, [x_value], [TensorType(FixedType(8, 3), (6,))]).output]
    verify(graph)
    x = batch((6,))
    assert np.abs(x).max() < 4  # inside fixed<8,3>, so only the rounding (TRN: floor) acts
    (ours,) = run_float(graph, x)
    np.testing.assert_array_equal(ours, (np.floor(x * 32) / 32).astype(np.float32))


def test_quant_with_float_output_is_identity() -> None:
    graph = Graph("t")
    x_value = graph.add_input("x", TensorType(FloatType(), (6,)))
    graph.outputs = [graph.add_node(Op.QUANT, [x_value], [TensorType(FloatType(), (6,))]).output]
    verify(graph)
    x = batch((6,))
    (ours,) = run_float(graph, x)
    np.testing.assert_array_equal(ours, x.astype(np.float32))


# -- recurrent ----------------------------------------------------------------------------------

T, F, H = 5, 3, 4


def rnn_case(gates: int, bias: bool, initial: bool, states: int) -> tuple[list, dict[str, np.ndarray], list[str]]:
    """IR inputs, ONNX initializers and ONNX input names of an LSTM (4 gates) or GRU (3)."""
    w, r, b = weights(gates * H, F), weights(gates * H, H, seed=8), weights(2 * gates * H, seed=9)
    init_states = [weights(H, seed=10 + i) for i in range(states)]
    ir_inputs: list = [In("x", (T, F)), w, r, b if bias else None]
    ir_inputs += init_states if initial else [None] * states
    inits = {"W": w[None], "R": r[None], "B": b[None]}
    names = ["x", "W", "R", "B" if bias else "", ""]
    if initial:
        for i, state in enumerate(init_states):
            inits[f"s{i}"] = np.broadcast_to(state, (1, N, H))  # [directions, batch, hidden]
            names.append(f"s{i}")
    return ir_inputs, inits, names


def onnx_rnn(op: str, names: list[str], inits: dict[str, np.ndarray], x: np.ndarray, outputs: list[str],
             **attrs: Any) -> list[np.ndarray]:
    """An ONNX LSTM/GRU in layout 0 (onnxruntime has no batch-first recurrence), batch put first."""
    node = helper.make_node(op, names, outputs, hidden_size=H, **attrs)
    y, *states = onnx_run([node], {"x": x.transpose(1, 0, 2)}, inits, outputs, opset=14)
    return [y[:, 0].transpose(1, 0, 2)] + [state[0] for state in states]  # Y is [T, dir, N, H]


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("bias, initial", [(False, False), (True, False), (False, True), (True, True)])
def test_lstm(bias: bool, initial: bool) -> None:
    ir_inputs, inits, names = rnn_case(4, bias, initial, states=2)
    graph = ir_graph(Op.LSTM, ir_inputs, {"hidden_size": H}, num_outputs=3)
    x = batch((T, F), scale=2.0)
    assert_close(run_float(graph, x), onnx_rnn("LSTM", names, inits, x, ["Y", "Y_h", "Y_c"]))


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("linear_before_reset", [0, 1])
@pytest.mark.parametrize("bias, initial", [(False, False), (True, False), (False, True), (True, True)])
def test_gru(linear_before_reset: int, bias: bool, initial: bool) -> None:
    ir_inputs, inits, names = rnn_case(3, bias, initial, states=1)
    attrs = {"hidden_size": H, "linear_before_reset": linear_before_reset}
    graph = ir_graph(Op.GRU, ir_inputs, attrs, num_outputs=2)
    x = batch((T, F), scale=2.0)
    theirs = onnx_rnn("GRU", names, inits, x, ["Y", "Y_h"], linear_before_reset=linear_before_reset)
    assert_close(run_float(graph, x), theirs)


def test_lstm_with_only_the_required_inputs() -> None:
    graph = Graph("t")
    x_value = graph.add_input("x", TensorType(FloatType(), (T, F)))
    w, r = weights(4 * H, F), weights(4 * H, H, seed=8)
    types = [TensorType(FloatType(), (T, H)), TensorType(FloatType(), (H,)), TensorType(FloatType(), (H,))]
    node = graph.add_node(Op.LSTM, [x_value, graph.constant("w", w), graph.constant("r", r)], types,
                          {"hidden_size": H})
    graph.outputs = list(node.outputs)
    x = batch((T, F))
    assert_close(run_float(graph, x), onnx_rnn("LSTM", ["x", "W", "R"], {"W": w[None], "R": r[None]}, x,
                                                ["Y", "Y_h", "Y_c"]))
    verify(graph)


# -- the driver: inputs, outputs, the op table --------------------------------------------------


def test_every_op_has_a_float_interpretation() -> None:
    assert set(SEMANTICS) == set(Op) and all(callable(s.float) for s in SEMANTICS.values())


def two_input_graph() -> Graph:
    """Inputs a[16] and b[2], handed straight back as outputs."""
    graph = Graph("t")
    graph.outputs = [graph.add_input("a", TensorType(FloatType(), (16,))),
                     graph.add_input("b", TensorType(FloatType(), (2,)))]
    return graph


A, B = np.zeros((N, 16)), np.zeros((N, 2))


@pytest.mark.parametrize("inputs, message", [
    ({"a": np.zeros((N, 15)), "b": B}, r"input 'a' has shape \(3, 15\), expected \(N, 16\)"),
    ([A, np.zeros((N, 2, 1))], r"input 'b' has shape \(3, 2, 1\), expected \(N, 2\)"),
    ({"a": np.zeros(16), "b": B}, r"input 'a' has shape \(16,\), expected \(N, 16\)"),
    ({"a": A}, r"input 'b' is missing \(expected shape \(N, 2\)\)"),
    ({"a": A, "b": B, "c": B}, r"unknown input 'c'; the graph's inputs are 'a', 'b'"),
    ([A], r"expected 2 input\(s\) \('a', 'b'\), got 1"),
    (A, r"expected 2 input\(s\) \('a', 'b'\), got a single array"),
    ({"a": A, "b": np.zeros((4, 2))}, r"input 'b' has batch size 4, but input 'a' has 3"),
    ({"a": np.full((N, 16), "x"), "b": B}, r"input 'a' is not numeric \(dtype <U1\)"),
    ({"a": A, "b": np.array([[None, None]] * N)}, r"input 'b' is not numeric \(dtype object\)"),
    ({"a": A, "b": [[0.0, 1.0], [2.0]]}, r"input 'b' is not numeric \(a ragged nested sequence\)"),
])
def test_input_errors(inputs: Any, message: str) -> None:
    with pytest.raises(ShapeError, match=rf"^{message}$"):
        run_float(two_input_graph(), inputs)


def test_inputs_by_name_position_or_alone() -> None:
    graph = two_input_graph()
    a, b = batch((16,)), batch((2,))
    for outputs in (run_float(graph, {"b": b, "a": a}), run_float(graph, (a, b))):
        np.testing.assert_array_equal(outputs[0], a.astype(np.float32))
        np.testing.assert_array_equal(outputs[1], b.astype(np.float32))
    single = ir_graph(Op.ACTIVATION, [In("x", ())], {"kind": Act.ABS})
    np.testing.assert_array_equal(run_float(single, np.array([-1, 2, -3]))[0], np.array([1, 2, 3], np.float32))
    with pytest.raises(ShapeError, match=r"^input 'x' has shape \(3, 1\), expected \(N,\)$"):
        run_float(single, np.zeros((3, 1)))


@pytest.mark.parametrize("bits", [16, 32, 64])
def test_float_outputs_come_in_their_declared_width(bits: int) -> None:
    graph = Graph("t")
    x_value = graph.add_input("x", TensorType(FloatType(bits), (3,)))
    node = graph.add_node(Op.ACTIVATION, [x_value], [TensorType(FloatType(bits), (3,))], {"kind": Act.ABS})
    graph.outputs = [node.output]
    verify(graph)
    x = np.array([[1e200, -1.0, 0.5]] * N) if bits == 64 else np.array([[3.0, -1.0, 0.5]] * N)
    (y,) = run_float(graph, x)
    assert y.dtype == np.dtype(f"float{bits}")
    np.testing.assert_array_equal(y, np.abs(x).astype(y.dtype))


def test_output_batch_axes_moves_the_batch_axis() -> None:
    graph = ir_graph(Op.ACTIVATION, [In("x", (4, 2))], {"kind": Act.RELU})
    graph.output_batch_axes[graph.outputs[0].name] = 1  # like ONNX LSTM's Y: [T, batch, ...]
    x = batch((4, 2))
    (y,) = run_float(graph, x)
    assert y.shape == (4, N, 2)
    np.testing.assert_array_equal(y, np.moveaxis(np.maximum(x, 0), 0, 1).astype(np.float32))


def test_constant_output_and_constant_only_node_get_the_batch() -> None:
    graph = Graph("t")
    x = graph.add_input("x", TensorType(FloatType(), (2,)))
    c = graph.constant("c", np.array([1.0, -2.0]))
    neg = graph.add_node(Op.ACTIVATION, [c], [TensorType(FloatType(), (2,))], {"kind": Act.ABS}).output
    graph.outputs = [x, c, neg]
    verify(graph)
    _, c_out, neg_out = run_float(graph, np.zeros((N, 2)))
    np.testing.assert_array_equal(c_out, np.tile([1.0, -2.0], (N, 1)).astype(np.float32))
    np.testing.assert_array_equal(neg_out, np.tile([1.0, 2.0], (N, 1)).astype(np.float32))
    assert evaluate_float(graph, np.zeros((N, 2)))[neg.name].shape == (N, 2)


def test_evaluate_float_gives_every_value_batched_in_float64() -> None:
    graph = ir_graph(Op.DENSE, [In("x", (5,)), weights(5, 3), None])
    dense = graph.outputs[0]
    relu = graph.add_node(Op.ACTIVATION, [dense], [TensorType(FloatType(), (3,))], {"kind": Act.RELU}).output
    graph.outputs = [relu]
    verify(graph)
    x = batch((5,))
    values = evaluate_float(graph, x)
    assert set(values) == {"x", dense.name, relu.name}  # constants are not values to calibrate
    assert all(v.dtype == np.float64 and v.shape[0] == N for v in values.values())
    np.testing.assert_allclose(values[dense.name], x @ graph.nodes[0].inputs[1].data)
    np.testing.assert_array_equal(values[relu.name], np.maximum(values[dense.name], 0))
