"""Golden text of the IR printer: any change of format shows up here.

The expected strings are written by hand from the format documented in ``fpgac.ir.printer``:
a header ``graph name(inputs) -> (outputs) {``, then every constant once as ``@name: type`` in
order of first use, then one line a node ``%out: type = Op[name]{attrs}(inputs)`` with attributes
sorted, enums by value, bools lower-case, floats by ``repr``, absent inputs as ``_``.
"""

from __future__ import annotations

import numpy as np

from fpgac.ir import (
    Act,
    FixedType,
    FloatType,
    Graph,
    Op,
    Overflow,
    PoolKind,
    Rounding,
    Sparsity,
    TensorType,
    Value,
    format_graph,
    verify,
)

F = FloatType()


def f32(*shape: int) -> TensorType:
    return TensorType(F, shape)


def mlp() -> Graph:
    graph = Graph("mlp")
    x = graph.add_input("x", f32(4))
    w = graph.constant("w", np.ones((4, 3)))
    b = graph.constant("b", np.zeros(3))
    fc = graph.add_node(Op.DENSE, [x, w, b], [f32(3)], name="fc")
    act = graph.add_node(Op.ACTIVATION, [fc.output], [f32(3)], {"kind": Act.LEAKY_RELU, "alpha": 0.1}, name="act")
    probs = graph.add_node(Op.SOFTMAX, [act.output], [f32(3)], {"axis": 0, "log": False}, name="probs")
    graph.outputs = [probs.output]
    verify(graph)
    return graph


MLP_TEXT = """\
graph mlp(%x: float32[4]) -> (%probs: float32[3]) {
  @w: float32[4,3]
  @b: float32[3]
  %fc: float32[3] = Dense[fc]{}(%x, @w, @b)
  %act: float32[3] = Activation[act]{alpha=0.1, kind=leaky_relu}(%fc)
  %probs: float32[3] = Softmax[probs]{axis=0, log=false}(%act)
}"""


def test_mlp_golden():
    graph = mlp()
    assert str(graph) == MLP_TEXT
    assert format_graph(graph) == MLP_TEXT


def conv_net() -> Graph:
    graph = Graph("cnn")
    q = FixedType(8, 3, rounding=Rounding.RND, overflow=Overflow.SAT)
    x = graph.add_input("img", TensorType(FixedType(16, 6), (3, 8, 8)))
    mask = np.zeros((4, 3, 3, 3), bool)
    mask[0] = True  # output channel 0 pruned away: 81 of 108 weights remain
    w = Value("k", TensorType(F, (4, 3, 3, 3), Sparsity(mask)), np.where(mask, 0.0, 1.0))
    # [3,8,8], 3x3, stride 2, pads 1: (8+2-3)//2+1 = 4
    conv = graph.add_node(
        Op.CONV, [x, w, None], [TensorType(q, (4, 4, 4))],
        {"strides": (2, 2), "pads": (1, 1, 1, 1), "dilations": (1, 1), "groups": 1}, name="conv",
    )
    relu6 = graph.add_node(
        Op.ACTIVATION, [conv.output], [TensorType(q, (4, 4, 4))],
        {"kind": Act.CLIP, "min": 0.0, "max": 6.0}, name="relu6",
    )
    # ceil_mode: (4-2)/2 = 1 -> 1+1 = 2
    pool = graph.add_node(
        Op.POOL, [relu6.output], [TensorType(q, (4, 2, 2))],
        {"kind": PoolKind.MAX, "kernel": (2, 2), "strides": (2, 2), "dilations": (1, 1), "pads": (0, 0, 0, 0),
         "ceil_mode": True, "count_include_pad": False},
        name="pool",
    )
    flat = graph.add_node(Op.RESHAPE, [pool.output], [TensorType(q, (16,))], {"shape": [16]}, name="flat",
                          output_names=["features"])
    scale = graph.constant("s", 0.5)
    half = graph.add_node(Op.MUL, [flat.output, scale], [f32(16)], name="half")
    again = graph.add_node(Op.MUL, [scale, half.output], [f32(16)], name="quarter")
    graph.outputs = [again.output, flat.output]
    verify(graph)
    return graph


CONV_TEXT = """\
graph cnn(%img: fixed<16,6>[3,8,8]) -> (%quarter: float32[16], %features: fixed<8,3,RND,SAT>[16]) {
  @k: float32[4,3,3,3]{nnz=81}
  @s: float32[]
  %conv: fixed<8,3,RND,SAT>[4,4,4] = Conv[conv]{dilations=[1,1], groups=1, pads=[1,1,1,1], strides=[2,2]}(%img, @k, _)
  %relu6: fixed<8,3,RND,SAT>[4,4,4] = Activation[relu6]{kind=clip, max=6.0, min=0.0}(%conv)
  %pool: fixed<8,3,RND,SAT>[4,2,2] = Pool[pool]{ceil_mode=true, count_include_pad=false, dilations=[1,1], \
kernel=[2,2], kind=max, pads=[0,0,0,0], strides=[2,2]}(%relu6)
  %features: fixed<8,3,RND,SAT>[16] = Reshape[flat]{shape=[16]}(%pool)
  %half: float32[16] = Mul[half]{}(%features, @s)
  %quarter: float32[16] = Mul[quarter]{}(@s, %half)
}"""


def test_conv_golden():
    assert str(conv_net()) == CONV_TEXT


def test_multi_output_and_constant_graph_output():
    graph = Graph("rnn")
    x = graph.add_input("seq", f32(5, 3))
    lstm = graph.add_node(
        Op.LSTM, [x, graph.constant("W", np.zeros((8, 3))), graph.constant("R", np.zeros((8, 2)))],
        [f32(5, 2), f32(2), f32(2)], {"hidden_size": 2}, name="lstm",
    )
    graph.outputs = [lstm.outputs[0], lstm.outputs[1], graph.constant("k", np.zeros(2))]
    verify(graph)
    assert str(graph) == """\
graph rnn(%seq: float32[5,3]) -> (%lstm: float32[5,2], %lstm_out1: float32[2], @k: float32[2]) {
  @W: float32[8,3]
  @R: float32[8,2]
  %lstm: float32[5,2], %lstm_out1: float32[2], %lstm_out2: float32[2] = LSTM[lstm]{hidden_size=2}(%seq, @W, @R)
}"""


def test_empty_graph():
    graph = Graph()
    assert str(graph) == "graph model() -> () {\n}"


def test_attribute_formatting():
    graph = Graph("g")
    x = graph.add_input("x", f32(2, 3))
    node = graph.add_node(
        Op.ACTIVATION, [x], [f32(2, 3)],
        {"kind": Act.HARD_SIGMOID, "alpha": 1 / 6, "beta": 0.5, "zz": [True, (1, -2)], "inf": float("-inf")}, name="h",
    )
    graph.outputs = [node.output]
    line = str(graph).splitlines()[1]
    assert line == (
        "  %h: float32[2,3] = Activation[h]{alpha=0.16666666666666666, beta=0.5, inf=-inf, kind=hard_sigmoid, "
        "zz=[true,[1,-2]]}(%x)"
    )
