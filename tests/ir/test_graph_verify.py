"""The graph's helpers, the ops' shape rules and ``verify``.

Output shapes are worked by hand in comments from the formulas in ``fpgac.ir.ops``' docstring
(and, for ``ceil_mode``, PyTorch's ``pooling_output_shape``), so a wrong rule fails here rather
than agreeing with itself.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from fpgac.ir import (
    Act,
    FixedType,
    FloatType,
    Graph,
    Op,
    PoolKind,
    Sparsity,
    TensorType,
    Value,
    VerifyError,
    infer_shapes,
    verify,
)

F = FloatType()


def f32(*shape: int) -> TensorType:
    return TensorType(F, shape)


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape)


def one_node(op: Op, inputs: list, attrs: dict | None, out_shapes: list[tuple[int, ...]], dtype=F) -> Graph:
    """A graph of one node named ``n``: tuple items are graph inputs, arrays constants, None absent."""
    graph = Graph("g")
    values = []
    for i, item in enumerate(inputs):
        if item is None:
            values.append(None)
        elif isinstance(item, tuple):
            values.append(graph.add_input(f"x{i}", f32(*item)))
        else:
            values.append(graph.constant(f"c{i}", item))
    node = graph.add_node(op, values, [TensorType(dtype, s) for s in out_shapes], attrs, name="n")
    graph.outputs = list(node.outputs)
    return graph


def conv_attrs(strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), groups=1) -> dict:
    return dict(strides=strides, pads=pads, dilations=dilations, groups=groups)


def pool_attrs(kernel, strides, pads, ceil_mode=False, dilations=None, kind=PoolKind.MAX) -> dict:
    return dict(
        kind=kind,
        kernel=kernel,
        strides=strides,
        pads=pads,
        dilations=dilations or (1,) * len(kernel),
        ceil_mode=ceil_mode,
        count_include_pad=False,
    )


def mlp() -> Graph:
    """x[4] -> Dense fc (w[4,3], b[3]) -> relu act."""
    graph = Graph("mlp")
    x = graph.add_input("x", f32(4))
    w, b = graph.constant("w", rand(4, 3)), graph.constant("b", rand(3))
    fc = graph.add_node(Op.DENSE, [x, w, b], [f32(3)], name="fc")
    act = graph.add_node(Op.ACTIVATION, [fc.output], [f32(3)], {"kind": Act.RELU}, name="act")
    graph.outputs = [act.output]
    return graph


def verify_fails(graph: Graph, message: str) -> None:
    with pytest.raises(VerifyError, match="^" + re.escape(message) + "$"):
        verify(graph)


# -- well-formed graphs verify -------------------------------------------------------------------

GOOD = {
    "dense": (Op.DENSE, [(4,), rand(4, 3), rand(3)], None, [(3,)]),
    "dense_no_bias": (Op.DENSE, [(4,), rand(4, 3)], None, [(3,)]),
    "dense_absent_bias": (Op.DENSE, [(4,), rand(4, 3), None], None, [(3,)]),
    "dense_leading_axes": (Op.DENSE, [(5, 2, 4), rand(4, 3)], None, [(5, 2, 3)]),
    # [3,7,5], 3x3, stride 2, pads 1: H (7+1+1-1*(3-1)-1)//2+1 = 6//2+1 = 4; W (5+2-2-1)//2+1 = 2+1 = 3
    "conv2d": (Op.CONV, [(3, 7, 5), rand(4, 3, 3, 3), rand(4)], conv_attrs((2, 2), (1, 1, 1, 1)), [(4, 4, 3)]),
    # same with dilation 2 on H: (7+2-2*2-1)//2+1 = 4//2+1 = 3
    "conv2d_dilated": (Op.CONV, [(3, 7, 5), rand(4, 3, 3, 3)], conv_attrs((2, 2), (1, 1, 1, 1), (2, 1)), [(4, 3, 3)]),
    # asymmetric pads (top 0, left 1, bottom 2, right 0), stride 1: H 7+0+2-3+1 = 7; W 5+1+0-3+1 = 4
    "conv2d_asym_pads": (Op.CONV, [(3, 7, 5), rand(2, 3, 3, 3)], conv_attrs(pads=(0, 1, 2, 0)), [(2, 7, 4)]),
    # 1D, groups 2: C 4 -> weight [6, 4/2, 3]; L (10-3)//1+1 = 8
    "conv1d_groups": (Op.CONV, [(4, 10), rand(6, 2, 3)], conv_attrs((1,), (0, 0), (1,), 2), [(6, 8)]),
    # depthwise: groups = C = M
    "conv_depthwise": (Op.CONV, [(3, 5, 5), rand(3, 1, 3, 3)], conv_attrs(pads=(1, 1, 1, 1), groups=3), [(3, 5, 5)]),
    # 2x2 stride 2 on [2,6,5]: H (6-2)//2+1 = 3; W (5-2)//2+1 = 2
    "pool_max": (Op.POOL, [(2, 6, 5)], pool_attrs((2, 2), (2, 2), (0, 0, 0, 0)), [(2, 3, 2)]),
    # ceil_mode: W (5-2)/2 = 1.5 -> 2, +1 = 3; last window starts at 4 < 5, kept
    "pool_ceil": (Op.POOL, [(2, 6, 5)], pool_attrs((2, 2), (2, 2), (0, 0, 0, 0), True), [(2, 3, 3)]),
    "pool_avg_1d": (Op.POOL, [(2, 9)], pool_attrs((3,), (3,), (0, 0), kind=PoolKind.AVG), [(2, 3)]),
    "global_pool": (Op.GLOBAL_POOL, [(3, 4, 5)], {"kind": PoolKind.AVG}, [(3, 1, 1)]),
    "global_pool_1d": (Op.GLOBAL_POOL, [(3, 4)], {"kind": PoolKind.MAX}, [(3, 1)]),
    "relu": (Op.ACTIVATION, [(2, 3)], {"kind": Act.RELU}, [(2, 3)]),
    "leaky": (Op.ACTIVATION, [(2, 3)], {"kind": Act.LEAKY_RELU, "alpha": 0.1}, [(2, 3)]),
    "clip": (Op.ACTIVATION, [(2, 3)], {"kind": Act.CLIP, "min": 0.0, "max": float("inf")}, [(2, 3)]),
    "prelu": (Op.ACTIVATION, [(4, 2, 3), rand(4, 1, 1)], {"kind": Act.PRELU}, [(4, 2, 3)]),
    "softmax": (Op.SOFTMAX, [(2, 3)], {"axis": 1, "log": False}, [(2, 3)]),
    "scale_shift": (Op.SCALE_SHIFT, [(4, 2, 3), rand(4, 1, 1), rand(4, 1, 1)], None, [(4, 2, 3)]),
    # trailing axes aligned: [2,1,3] with [4,1] -> [2,4,3]
    "add_broadcast": (Op.ADD, [(2, 1, 3), (4, 1)], None, [(2, 4, 3)]),
    "mul_const": (Op.MUL, [(2, 3), rand(3)], None, [(2, 3)]),
    "sub_const_first": (Op.SUB, [rand(3), (2, 3)], None, [(2, 3)]),
    "max": (Op.MAX, [(3,), (3,)], None, [(3,)]),
    "concat": (Op.CONCAT, [(2, 3), (4, 3), (1, 3)], {"axis": 0}, [(7, 3)]),
    "concat_one": (Op.CONCAT, [(2, 3)], {"axis": 1}, [(2, 3)]),
    "reshape": (Op.RESHAPE, [(2, 3, 4)], {"shape": (4, 6)}, [(4, 6)]),
    "transpose": (Op.TRANSPOSE, [(2, 3, 4)], {"perm": (2, 0, 1)}, [(4, 2, 3)]),
    "pad": (Op.PAD, [(2, 3)], {"pads": (0, 1, 2, 3), "value": 0.0}, [(4, 7)]),
    # range(1, 5, 2) = 1, 3
    "slice": (Op.SLICE, [(5, 4)], {"starts": (1, 0), "ends": (5, 4), "steps": (2, 1)}, [(2, 4)]),
    # backwards past 0: range(4, -1, -2) = 4, 2, 0; range(3, 0, -1) = 3, 2, 1
    "slice_negative": (Op.SLICE, [(5, 4)], {"starts": (4, 3), "ends": (-1, 0), "steps": (-2, -1)}, [(3, 3)]),
    "quant": (Op.QUANT, [(3,)], None, [(3,)]),
}


@pytest.mark.parametrize("case", GOOD, ids=str)
def test_verify_accepts(case):
    op, inputs, attrs, out_shapes = GOOD[case]
    graph = one_node(op, inputs, attrs, out_shapes)
    verify(graph)
    assert infer_shapes(graph.node("n")) == out_shapes


@pytest.mark.parametrize("case", GOOD, ids=str)
def test_verify_rejects_an_output_shape_one_too_big(case):
    op, inputs, attrs, out_shapes = GOOD[case]
    wrong = (out_shapes[0][0] + 1,) + out_shapes[0][1:]
    graph = one_node(op, inputs, attrs, [wrong])
    verify_fails(graph, f"node 'n' ({op.value}): output 'n' has shape {wrong}, rule says {out_shapes[0]}")


@pytest.mark.parametrize(("keepdims", "shape"), [(False, (3, 5)), (True, (3, 1, 5))])
def test_argmax(keepdims, shape):
    attrs = {"axis": 1, "keepdims": keepdims, "select_last_index": False}
    # indices 0..3 along axis 1 fit uint<2> (the bits of size - 1)
    verify(one_node(Op.ARGMAX, [(3, 4, 5)], attrs, [shape], dtype=FixedType(2, 2, signed=False)))


def test_lstm_and_gru():
    # T=5, F=3, H=2: LSTM W [4H, F], R [4H, H], B [8H], h0/c0 [H] -> Y [T, H], h [H], c [H]
    graph = one_node(
        Op.LSTM,
        [(5, 3), rand(8, 3), rand(8, 2), rand(16), np.zeros(2), np.zeros(2)],
        {"hidden_size": 2},
        [(5, 2), (2,), (2,)],
    )
    verify(graph)
    verify(one_node(Op.LSTM, [(5, 3), rand(8, 3), rand(8, 2)], {"hidden_size": 2}, [(5, 2), (2,), (2,)]))
    verify(
        one_node(Op.LSTM, [(5, 3), rand(8, 3), rand(8, 2), None, None, np.zeros(2)], {"hidden_size": 2},
                 [(5, 2), (2,), (2,)])
    )
    # GRU: W [3H, F], R [3H, H], B [6H]
    verify(
        one_node(Op.GRU, [(5, 3), rand(6, 3), rand(6, 2), rand(12)], {"hidden_size": 2, "linear_before_reset": True},
                 [(5, 2), (2,)])
    )


def test_lstm_rejects_a_wrong_hidden_state():
    graph = one_node(
        Op.LSTM, [(5, 3), rand(8, 3), rand(8, 2), None, np.zeros(3)], {"hidden_size": 2}, [(5, 2), (2,), (2,)]
    )
    verify_fails(graph, "node 'n' (LSTM): LSTM initial state (3,), want (2,)")


def test_lstm_rejects_wrong_output_count():
    graph = one_node(Op.LSTM, [(5, 3), rand(8, 3), rand(8, 2)], {"hidden_size": 2}, [(5, 2)])
    verify_fails(graph, "node 'n' (LSTM): 1 outputs, want 3")


def test_multi_output_names():
    graph = one_node(Op.LSTM, [(5, 3), rand(8, 3), rand(8, 2)], {"hidden_size": 2}, [(5, 2), (2,), (2,)])
    assert [v.name for v in graph.node("n").outputs] == ["n", "n_out1", "n_out2"]
    assert all(v.producer is graph.node("n") for v in graph.node("n").outputs)


# -- hand-worked shape rules ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "pads", "ceil", "expected"),
    [
        # (5-2)/2 = 1.5: floor -> 1+1 = 2, ceil -> 2+1 = 3 (last window [4, 5] starts inside)
        (5, 2, 2, (0, 0), False, 2),
        (5, 2, 2, (0, 0), True, 3),
        # (4+0+1-2)/2 = 1.5 -> ceil 2, +1 = 3; but window 3 would start at (3-1)*2 = 4 >= 4+0, in the end
        # padding, so it is dropped (PyTorch: if (out-1)*stride >= in+pad_l: --out) -> 2
        (4, 2, 2, (0, 1), True, 2),
        (4, 2, 2, (0, 1), False, 2),
        # same with the pad at the beginning: (4+1-2)/2 = 1.5 -> 3; (3-1)*2 = 4 >= 4+1? no -> 3
        (4, 2, 2, (1, 0), True, 3),
        # (6+1+1-3)/2 = 2.5 -> ceil 3, +1 = 4; (4-1)*2 = 6 >= 6+1? no -> 4
        (6, 3, 2, (1, 1), True, 4),
        (6, 3, 2, (1, 1), False, 3),
        # exact fit: (6-2)/2 = 2 -> 3 either way
        (6, 2, 2, (0, 0), True, 3),
        # (7-3)/3 = 1.33 -> ceil 2, +1 = 3; (3-1)*3 = 6 >= 7? no -> 3
        (7, 3, 3, (0, 0), True, 3),
    ],
)
def test_pool_output_size(size, kernel, stride, pads, ceil, expected):
    graph = one_node(Op.POOL, [(2, size)], pool_attrs((kernel,), (stride,), pads, ceil), [(2, expected)])
    assert infer_shapes(graph.node("n")) == [(2, expected)]
    verify(graph)


def test_conv_output_size_by_hand():
    # input [3,7,5], kernel 3x3, stride 2, pads 1 all round, dilation 1:
    #   H: (7 + 1 + 1 - 1*(3-1) - 1) // 2 + 1 = 6 // 2 + 1 = 4
    #   W: (5 + 1 + 1 - 1*(3-1) - 1) // 2 + 1 = 4 // 2 + 1 = 3
    graph = one_node(Op.CONV, [(3, 7, 5), rand(8, 3, 3, 3)], conv_attrs((2, 2), (1, 1, 1, 1)), [(8, 4, 3)])
    assert infer_shapes(graph.node("n")) == [(8, 4, 3)]
    # stride (3, 1), dilation (1, 2), no pads:
    #   H: (7 - 2 - 1) // 3 + 1 = 4 // 3 + 1 = 2;  W: (5 - 2*2 - 1) // 1 + 1 = 1
    graph = one_node(Op.CONV, [(3, 7, 5), rand(8, 3, 3, 3)], conv_attrs((3, 1), (0, 0, 0, 0), (1, 2)), [(8, 2, 1)])
    assert infer_shapes(graph.node("n")) == [(8, 2, 1)]


@pytest.mark.parametrize(
    ("starts", "ends", "steps", "expected"),
    [
        ((0,), (7,), (1,), 7),
        ((1,), (7,), (3,), 2),  # 1, 4
        ((6,), (-1,), (-1,), 7),  # 6..0: the whole axis reversed
        ((6,), (-1,), (-3,), 3),  # 6, 3, 0
        ((5,), (1,), (-2,), 2),  # 5, 3
        ((3,), (3,), (1,), 0),
    ],
)
def test_slice_output_size(starts, ends, steps, expected):
    graph = one_node(Op.SLICE, [(7,)], {"starts": starts, "ends": ends, "steps": steps}, [(expected,)])
    assert infer_shapes(graph.node("n")) == [(expected,)]
    verify(graph)


# -- breakage: each named after the node ---------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "inputs", "attrs", "out_shapes", "message"),
    [
        (Op.DENSE, [(5,), rand(4, 3)], None, [(3,)], "node 'n' (Dense): Dense input (5,) does not fit weight (4, 3)"),
        (Op.DENSE, [(4,), rand(4, 3), rand(4)], None, [(3,)],
         "node 'n' (Dense): Dense bias (4,) does not fit weight (4, 3)"),
        (Op.CONV, [(3, 5, 5), rand(4, 3, 3, 3)], {"strides": (1, 1), "pads": (0,) * 4, "dilations": (1, 1)},
         [(4, 3, 3)],
         "node 'n' (Conv): missing attribute(s) groups"),
        (Op.CONV, [(3, 5, 5), rand(4, 2, 3, 3)], conv_attrs(), [(4, 3, 3)],
         "node 'n' (Conv): Conv groups 1: (3, 5, 5) vs (4, 2, 3, 3)"),
        (Op.CONV, [(3, 5, 5), rand(4, 3, 3, 3)], conv_attrs(strides=(1,)), [(4, 3, 3)],
         "node 'n' (Conv): strides/dilations/pads lengths"),
        (Op.CONV, [(3, 5, 5), rand(4, 3, 3, 3)], conv_attrs(strides=(0, 1)), [(4, 3, 3)],
         "node 'n' (Conv): strides and dilations must be >= 1"),
        (Op.CONV, [(3, 2, 5), rand(4, 3, 3, 3)], conv_attrs(), [(4, 0, 3)],
         "node 'n' (Conv): window 3 (dilation 1) larger than padded input 2"),
        (Op.CONV, [(3, 5, 5, 5), rand(4, 3, 3, 3, 3)], conv_attrs(), [(4, 3, 3, 3)],
         "node 'n' (Conv): Conv wants [C, *spatial] with 1 or 2 spatial axes, got (3, 5, 5, 5)"),
        (Op.POOL, [(2, 6)], {"kind": PoolKind.MAX, "kernel": (2,), "strides": (2,), "pads": (0, 0), "dilations": (1,),
                             "count_include_pad": False}, [(2, 3)], "node 'n' (Pool): missing attribute(s) ceil_mode"),
        (Op.ACTIVATION, [(3,)], {"kind": Act.LEAKY_RELU}, [(3,)],
         "node 'n' (Activation): Activation leaky_relu needs attribute 'alpha'"),
        (Op.ACTIVATION, [(3,)], {"kind": "relu"}, [(3,)],
         "node 'n' (Activation): Activation kind must be an Act, not 'relu'"),
        (Op.ACTIVATION, [(3,)], {"kind": Act.PRELU}, [(3,)], "node 'n' (Activation): PRELU needs a slope input"),
        (Op.ACTIVATION, [(3,), rand(3)], {"kind": Act.RELU}, [(3,)],
         "node 'n' (Activation): Activation relu takes one input"),
        (Op.SOFTMAX, [(2, 3)], {"axis": 2, "log": False}, [(2, 3)],
         "node 'n' (Softmax): axis 2 out of range for rank 2"),
        (Op.ADD, [(2, 3), (2,)], None, [(2, 3)], "node 'n' (Add): shapes (2, 3) and (2,) do not broadcast"),
        (Op.SCALE_SHIFT, [(3,), rand(2, 3), rand(3)], None, [(3,)],
         "node 'n' (ScaleShift): ScaleShift (2, 3), (3,) do not broadcast to (3,)"),
        (Op.CONCAT, [(2, 3), (2, 4)], {"axis": 0}, [(4, 3)],
         "node 'n' (Concat): Concat inputs [(2, 3), (2, 4)] differ off axis 0"),
        (Op.RESHAPE, [(2, 3)], {"shape": (5,)}, [(5,)], "node 'n' (Reshape): Reshape (2, 3) -> (5,) changes the size"),
        (Op.RESHAPE, [(2, 3)], {"shape": (-1,)}, [(6,)], "node 'n' (Reshape): Reshape shape (-1,) must be resolved"),
        (Op.TRANSPOSE, [(2, 3)], {"perm": (0, 0)}, [(2, 2)], "node 'n' (Transpose): Transpose perm (0, 0) for rank 2"),
        (Op.PAD, [(2, 3)], {"pads": (1, 1), "value": 0.0}, [(4, 3)], "node 'n' (Pad): Pad pads (1, 1) for rank 2"),
        (Op.SLICE, [(4,)], {"starts": (0,), "ends": (4,), "steps": (0,)}, [(4,)],
         "node 'n' (Slice): Slice steps must be non-zero"),
        (Op.LSTM, [(5, 3), rand(8, 3), rand(8, 3)], {"hidden_size": 2}, [(5, 2), (2,), (2,)],
         "node 'n' (LSTM): LSTM weights (8, 3), (8, 3) for H=2"),
    ],
    ids=lambda v: v if isinstance(v, str) and v.startswith("node") else None,
)
def test_verify_rejects_bad_node(op, inputs, attrs, out_shapes, message):
    verify_fails(one_node(op, inputs, attrs, out_shapes), message)


def test_wrong_output_shape_names_the_node():
    graph = mlp()
    graph.node("fc").output.type = f32(4)
    verify_fails(graph, "node 'fc' (Dense): output 'fc' has shape (4,), rule says (3,)")


def test_missing_attribute():
    graph = mlp()
    del graph.node("act").attrs["kind"]
    verify_fails(graph, "node 'act' (Activation): missing attribute(s) kind")


def test_non_constant_weight():
    graph = Graph("g")
    x = graph.add_input("x", f32(4))
    w = graph.add_input("w", f32(4, 3))
    graph.outputs = [graph.add_node(Op.DENSE, [x, w], [f32(3)], name="fc").output]
    verify_fails(graph, "node 'fc' (Dense): input 1 ('w') must be a constant")


def test_too_many_and_too_few_inputs():
    graph = one_node(Op.RESHAPE, [(2, 3), (2, 3)], {"shape": (6,)}, [(6,)])
    verify_fails(graph, "node 'n' (Reshape): 2 inputs, want 1..1")
    graph = mlp()
    graph.node("fc").inputs.append(graph.constant("extra", rand(3)))
    verify_fails(graph, "node 'fc' (Dense): 4 inputs, want 2..3")
    graph.node("fc").inputs = graph.node("fc").inputs[:1]
    verify_fails(graph, "node 'fc' (Dense): 1 inputs, want 2..3")


def test_required_input_absent():
    graph = mlp()
    graph.node("fc").inputs[1] = None
    verify_fails(graph, "node 'fc' (Dense): required input 1 is absent")


def test_use_before_definition():
    graph = mlp()
    graph.nodes.reverse()
    verify_fails(graph, "node 'act' (Activation): input 'fc' is used before it is defined")


def test_use_of_a_value_nobody_defines():
    graph = mlp()
    graph.node("act").inputs = [Value("ghost", f32(3))]
    verify_fails(graph, "node 'act' (Activation): input 'ghost' is used before it is defined")


def test_duplicate_value_names():
    graph = mlp()
    graph.node("act").output.name = "x"
    verify_fails(graph, "two values are named 'x'")


def test_graph_input_must_not_be_constant():
    graph = mlp()
    graph.inputs[0].data = np.zeros(4)
    verify_fails(graph, "graph input 'x' is a constant or has a producer")


def test_output_must_name_its_producer():
    graph = mlp()
    graph.node("act").output.producer = graph.node("fc")
    verify_fails(graph, "node 'act' (Activation): output 'act' does not name it as producer")


def test_output_defined_twice():
    graph = one_node(Op.LSTM, [(5, 3), rand(8, 3), rand(8, 2)], {"hidden_size": 2}, [(5, 2), (2,), (2,)])
    node = graph.node("n")
    node.outputs[2] = node.outputs[1]
    graph.outputs = node.outputs[:2]
    verify_fails(graph, "node 'n' (LSTM): output 'n_out1' is defined twice")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_constant(bad):
    graph = mlp()
    data = rand(4, 3)
    data[2, 1] = bad
    graph.node("fc").inputs[1] = graph.constant("w_bad", data)
    verify_fails(graph, "node 'fc' (Dense): constant 'w_bad' is not finite")


def test_constant_data_shape_must_match_its_type():
    graph = mlp()
    graph.node("fc").inputs[2].type = f32(4)
    verify_fails(graph, "node 'fc' (Dense): constant 'b' data (3,) vs type (4,)")


def _sparse_weight_graph(data: np.ndarray, mask: np.ndarray) -> Graph:
    graph = mlp()
    w = Value("ws", TensorType(F, (4, 3), Sparsity(mask)), data)
    graph.node("fc").inputs[1] = w
    return graph


def test_sparsity_respected():
    mask = np.zeros((4, 3), bool)
    mask[0, :] = True
    data = rand(4, 3)
    data[0, :] = 0.0
    verify(_sparse_weight_graph(data, mask))


def test_sparsity_violated():
    mask = np.zeros((4, 3), bool)
    mask[0, :] = True
    data = rand(4, 3)
    data[0, :2] = 0.0  # data[0, 2] stays non-zero
    verify_fails(
        _sparse_weight_graph(data, mask), "node 'fc' (Dense): constant 'ws' is non-zero where its sparsity says zero"
    )


def _fixed_weight_graph(data: np.ndarray) -> Graph:
    graph = mlp()
    graph.node("fc").inputs[1] = Value("wq", TensorType(FixedType(8, 3), data.shape), data)
    return graph


def test_fixed_point_constant_in_range():
    verify(_fixed_weight_graph(np.array([[-128, 127, 0]] * 4, dtype=np.int64)))


def test_fixed_point_constant_with_float_data():
    verify_fails(
        _fixed_weight_graph(np.zeros((4, 3))), "node 'fc' (Dense): fixed-point constant 'wq' must hold int64 mantissas"
    )


@pytest.mark.parametrize("bad", [128, -129])
def test_fixed_point_constant_out_of_range(bad):
    data = np.zeros((4, 3), dtype=np.int64)
    data[1, 1] = bad
    verify_fails(_fixed_weight_graph(data), "node 'fc' (Dense): constant 'wq' has mantissas outside fixed<8,3>")


def test_graph_output_not_produced():
    graph = mlp()
    graph.outputs.append(Value("y", f32(3)))
    verify_fails(graph, "graph output 'y' is not produced by any node")


def test_graph_output_may_be_an_input_or_constant():
    graph = mlp()
    graph.outputs += [graph.inputs[0], graph.constant("k", rand(2))]
    verify(graph)


def test_concat_with_absent_input_is_a_verify_error():
    graph = one_node(Op.CONCAT, [(2, 3), None], {"axis": 0}, [(2, 3)])
    with pytest.raises(VerifyError, match=r"^node 'n' \(Concat\): "):
        verify(graph)


# -- graph helpers -------------------------------------------------------------------------------


def test_unique_name():
    graph = Graph()
    assert [graph.unique_name("x") for _ in range(3)] == ["x", "x_1", "x_2"]
    assert graph.unique_name("") == "v"
    assert graph.unique_name("") == "v_1"
    assert graph.add_input("x", f32(1)).name == "x_3"
    assert graph.constant("x_1", 0.0).name == "x_1_1"


def test_add_node_names():
    graph = Graph()
    x = graph.add_input("x", f32(3))
    a = graph.add_node(Op.QUANT, [x], [f32(3)])
    b = graph.add_node(Op.QUANT, [a.output], [f32(3)])
    c = graph.add_node(Op.QUANT, [b.output], [f32(3)], name="q", output_names=["y"])
    assert (a.name, a.output.name, b.name, b.output.name) == ("quant", "quant", "quant_1", "quant_1")
    assert (c.name, c.output.name) == ("q", "y")
    assert graph.node("quant_1") is b
    with pytest.raises(KeyError, match=r"^'nope'$"):
        graph.node("nope")


def test_constant():
    graph = Graph()
    c = graph.constant("c", [[1, 2], [3, 4]])
    assert c.is_const and c.data.dtype == np.float64 and c.type == f32(2, 2)
    assert not c.data.flags.writeable
    q = graph.constant("q", [1.0, -2.0], FixedType(8, 3))
    assert q.data.dtype == np.int64 and q.type == TensorType(FixedType(8, 3), (2,))
    assert not graph.inputs[:] and q.producer is None


def test_node_input_and_output():
    graph = mlp()
    fc = graph.node("fc")
    assert fc.input(2) is fc.inputs[2]
    assert fc.input(3) is None
    assert fc.output is fc.outputs[0]
    assert repr(fc) == "Node(Dense, 'fc')"
    assert repr(fc.output) == "Value('fc', float32[3])"


def test_values_in_order():
    graph = mlp()
    assert [v.name for v in graph.values()] == ["x", "w", "b", "fc", "act"]


def test_consumers():
    graph = mlp()
    fc = graph.node("fc")
    twice = graph.add_node(Op.ADD, [fc.output, fc.output], [f32(3)], name="twice")
    assert graph.consumers(fc.output) == [graph.node("act"), twice]
    assert graph.consumers(graph.node("act").output) == []
    assert graph.consumers(graph.inputs[0]) == [fc]


def test_rename():
    graph = mlp()
    act = graph.node("act").output
    graph.output_batch_axes["act"] = 1
    graph.rename(act, "y")
    assert act.name == "y" and graph.output_batch_axes == {"y": 1}
    graph.rename(act, "x")  # taken by the input
    assert act.name == "x_1" and graph.output_batch_axes == {"x_1": 1}
    graph.rename(act, "x_1")  # no-op
    assert act.name == "x_1"
    assert graph.unique_name("y") == "y"  # the old name was freed
    verify(graph)


def test_reserve_keeps_a_name_for_rename():
    graph = Graph()
    graph.reserve("out")
    x = graph.add_input("out", f32(1))
    assert x.name == "out_1"
    graph.rename(x, "out")
    assert x.name == "out"
    y = graph.add_input("z", f32(1))
    graph.rename(y, "out")  # no longer reserved, now taken; x's old name "out_1" was freed
    assert y.name == "out_1"


def test_replace_all_uses_keeps_output_batch_axes_in_sync():
    graph = mlp()
    fc, act = graph.node("fc"), graph.node("act")
    graph.output_batch_axes = {"act": 1}
    graph.replace_all_uses(act.output, fc.output)
    assert graph.outputs == [fc.output]
    assert graph.output_batch_axes == {"fc": 1}
    graph.replace_all_uses(graph.inputs[0], graph.inputs[0])
    assert fc.inputs[0] is graph.inputs[0]


def test_replace_all_uses_in_every_consumer():
    graph = mlp()
    fc = graph.node("fc")
    other = graph.add_node(Op.ADD, [fc.output, fc.output], [f32(3)], name="other")
    graph.outputs.append(other.output)
    new = graph.add_input("x2", f32(3))
    graph.replace_all_uses(fc.output, new)
    assert graph.node("act").inputs == [new] and other.inputs == [new, new]
    assert graph.consumers(fc.output) == []
    assert graph.output_batch_axes == {}


def test_remove_unused():
    graph = mlp()
    fc = graph.node("fc")
    graph.add_node(Op.ACTIVATION, [fc.output], [f32(3)], {"kind": Act.TANH}, name="dead1")
    graph.add_node(Op.QUANT, [graph.node("dead1").output], [f32(3)], name="dead2")
    assert graph.remove_unused() is True
    assert [n.name for n in graph.nodes] == ["fc", "act"]
    assert graph.remove_unused() is False
    verify(graph)


def test_remove_unused_keeps_multi_output_node_with_one_live_output():
    graph = one_node(Op.LSTM, [(5, 3), rand(8, 3), rand(8, 2)], {"hidden_size": 2}, [(5, 2), (2,), (2,)])
    lstm = graph.node("n")
    graph.outputs = [lstm.outputs[2]]
    assert graph.remove_unused() is False
    graph.outputs = []
    assert graph.remove_unused() is True and graph.nodes == []


def test_remove_node():
    graph = mlp()
    graph.remove_node(graph.node("act"))
    assert [n.name for n in graph.nodes] == ["fc"]


def test_toposort_restores_order():
    graph = mlp()
    fc = graph.node("fc")
    graph.add_node(Op.ADD, [graph.node("act").output, fc.output], [f32(3)], name="sum")
    graph.outputs = [graph.node("sum").output]
    graph.nodes = graph.nodes[::-1]
    graph.toposort()
    assert [n.name for n in graph.nodes] == ["fc", "act", "sum"]
    verify(graph)


def test_toposort_cycle():
    graph = Graph("cyc")
    x = graph.add_input("x", f32(3))
    a = graph.add_node(Op.ADD, [x, x], [f32(3)], name="a")
    b = graph.add_node(Op.QUANT, [a.output], [f32(3)], name="b")
    a.inputs[1] = b.output
    graph.outputs = [b.output]
    with pytest.raises(ValueError, match=r"^graph 'cyc' has a cycle through 'a'$"):
        graph.toposort()
    assert [n.name for n in graph.nodes] == ["a", "b"]  # unchanged on failure
