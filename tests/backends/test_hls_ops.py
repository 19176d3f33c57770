"""The xilinx target on ops the examples do not use, in both io modes, bit-exact.

Three small float graphs, quantized at 8 bits, cover the rest of the kernel library: elementwise
and shape ops (Abs, Clip, Add, Sub with a constant first, Mul, Max/Min with broadcasting, Slice,
Transpose, Pad, Concat of one value twice, ScaleShift, PReLU, a tanh table, softmax and
log-softmax along either axis, ArgMax with last-index ties, stream fan-out), window ops (grouped,
strided, dilated 1D and 2D convolutions with asymmetric padding, max and average pooling with
ceil_mode and both count_include_pad rules, global max and average pooling) and recurrent layers
(GRU without linear_before_reset and with an initial state, LSTM with initial states, its Y
through a Dense applied at every time step and its Y_c to the outputs).
"""

from __future__ import annotations

import numpy as np
import pytest

from fpgac import api
from fpgac.ir import (
    Act,
    FixedType,
    FloatType,
    Graph,
    Op,
    PoolKind,
    TensorType,
    infer_shapes,
    verify,
)

pytestmark = pytest.mark.requires("g++")

F = FloatType()


def node(g: Graph, op: Op, inputs: list, attrs: dict | None = None, n_out: int = 1, name: str | None = None):
    """Add a float node whose output shapes the op's shape rule gives."""
    n = g.add_node(op, inputs, [TensorType(F, ())] * n_out, attrs or {}, name=name)
    for v, s in zip(n.outputs, infer_shapes(n)):
        v.type = TensorType(F, s)
    return n.outputs if n_out > 1 else n.output


def elementwise_graph() -> Graph:
    rng = np.random.default_rng(1)
    g = Graph("ops_elementwise")
    x = g.add_input("x", TensorType(F, (3, 5)))
    a1 = node(g, Op.ACTIVATION, [x], dict(kind=Act.ABS))
    a2 = node(g, Op.ACTIVATION, [x], dict(kind=Act.CLIP, min=-0.5, max=0.75))
    a3 = node(g, Op.ADD, [a1, a2])
    a4 = node(g, Op.SUB, [g.constant("c5", rng.uniform(-1, 1, 5)), a3])
    a5 = node(g, Op.MUL, [a4, x])
    a6 = node(g, Op.MAX, [a5, g.constant("c31", rng.uniform(-1, 1, (3, 1)))])
    s = node(g, Op.SLICE, [x], dict(starts=(1, 0), ends=(2, 5), steps=(1, 1)))
    a7 = node(g, Op.MIN, [a6, s])
    a8 = node(g, Op.TRANSPOSE, [a7], dict(perm=(1, 0)))
    a9 = node(g, Op.PAD, [a8], dict(pads=(1, 0, 0, 2), value=0.5))
    a10 = node(g, Op.CONCAT, [a9, a9], dict(axis=0))
    a11 = node(g, Op.SCALE_SHIFT, [a10, g.constant("scale", rng.uniform(0.5, 2, (12, 1))),
                                   g.constant("shift", rng.uniform(-1, 1, (5,)))])
    a12 = node(g, Op.ACTIVATION, [a11], dict(kind=Act.LEAKY_RELU, alpha=0.125))
    a13 = node(g, Op.ACTIVATION, [a12], dict(kind=Act.TANH))
    a14 = node(g, Op.SOFTMAX, [a12], dict(axis=0, log=True))
    a15 = node(g, Op.ARGMAX, [a12], dict(axis=1, keepdims=False, select_last_index=True))
    a15.type = TensorType(FixedType(3, 3, signed=False), a15.type.shape)  # as the frontend types an index
    a16 = node(g, Op.SOFTMAX, [a13], dict(axis=1, log=False))
    g.outputs = [a14, a15, a16]
    verify(g)
    return g


def conv_graph() -> Graph:
    rng = np.random.default_rng(2)
    g = Graph("ops_conv")
    x = g.add_input("x", TensorType(F, (2, 9, 8)))
    w = g.constant("w", rng.normal(0, 0.5, (4, 1, 3, 2)))
    c = node(g, Op.CONV, [x, w, g.constant("b", rng.normal(0, 0.1, 4))],
             dict(strides=(2, 1), dilations=(1, 2), pads=(1, 0, 2, 1), groups=2))
    r = node(g, Op.ACTIVATION, [c], dict(kind=Act.RELU))
    p = node(g, Op.POOL, [r], dict(kind=PoolKind.MAX, kernel=(3, 2), strides=(2, 2), dilations=(1, 1),
                                   pads=(1, 0, 1, 0), ceil_mode=True, count_include_pad=False))
    a = node(g, Op.POOL, [r], dict(kind=PoolKind.AVG, kernel=(2, 3), strides=(1, 2), dilations=(1, 1),
                                   pads=(1, 1, 0, 1), ceil_mode=True, count_include_pad=False))
    a2 = node(g, Op.POOL, [r], dict(kind=PoolKind.AVG, kernel=(2, 2), strides=(2, 2), dilations=(1, 1),
                                    pads=(1, 1, 1, 1), ceil_mode=False, count_include_pad=True))
    gp = node(g, Op.GLOBAL_POOL, [p], dict(kind=PoolKind.MAX))
    ga = node(g, Op.GLOBAL_POOL, [a], dict(kind=PoolKind.AVG))
    f1 = node(g, Op.RESHAPE, [gp], dict(shape=(4,)))
    f2 = node(g, Op.RESHAPE, [ga], dict(shape=(4,)))
    cat = node(g, Op.CONCAT, [f1, f2], dict(axis=0))
    d = node(g, Op.DENSE, [cat, g.constant("dw", rng.normal(0, 0.5, (8, 3))), g.constant("db", rng.normal(0, 0.1, 3))])
    # 1D: [C, L] with dilation and a grouped conv, then global average
    x1 = g.add_input("s", TensorType(F, (4, 12)))
    c1 = node(g, Op.CONV, [x1, g.constant("w1", rng.normal(0, 0.5, (6, 2, 3)))],
              dict(strides=(1,), dilations=(2,), pads=(2, 1), groups=2))
    p1 = node(g, Op.POOL, [c1], dict(kind=PoolKind.AVG, kernel=(3,), strides=(2,), dilations=(1,), pads=(1, 1),
                                     ceil_mode=False, count_include_pad=True))
    g.outputs = [d, a2, p1]
    verify(g)
    return g


def recurrent_graph() -> Graph:
    rng = np.random.default_rng(3)
    g = Graph("ops_recurrent")
    x = g.add_input("x", TensorType(F, (5, 3)))
    h = 4
    gru = node(g, Op.GRU, [x, g.constant("W", rng.normal(0, 0.5, (3 * h, 3))),
                           g.constant("R", rng.normal(0, 0.5, (3 * h, h))), g.constant("B", rng.normal(0, 0.2, 6 * h)),
                           g.constant("h0", rng.uniform(-0.5, 0.5, h))],
               dict(hidden_size=h, linear_before_reset=0), n_out=2)
    lstm = node(g, Op.LSTM, [gru[0], g.constant("LW", rng.normal(0, 0.5, (4 * 3, h))),
                             g.constant("LR", rng.normal(0, 0.5, (4 * 3, 3))),
                             g.constant("LB", rng.normal(0, 0.2, 8 * 3)), g.constant("Lh0", rng.uniform(-0.5, 0.5, 3)),
                             g.constant("Lc0", rng.uniform(-0.5, 0.5, 3))],
                dict(hidden_size=3), n_out=3)
    per_step = node(g, Op.DENSE, [lstm[0], g.constant("DW", rng.normal(0, 0.5, (3, 2))),
                                  g.constant("DB", rng.normal(0, 0.1, 2))])
    g.outputs = [per_step, lstm[2], gru[1]]
    verify(g)
    return g


GRAPHS = {"elementwise": elementwise_graph, "conv": conv_graph, "recurrent": recurrent_graph}


@pytest.fixture(scope="module")
def compiled():
    cache: dict[str, api.CompiledModel] = {}

    def get(name: str) -> api.CompiledModel:
        if name not in cache:
            cache[name] = api.compile(GRAPHS[name](), bits=8, input_range=(-1, 1))
        return cache[name]

    return get


@pytest.mark.parametrize("io", ["parallel", "stream"])
@pytest.mark.parametrize("name", sorted(GRAPHS))
def test_ops_bit_exact(compiled, tmp_path, name, io) -> None:
    model = compiled(name)
    model.write(tmp_path / name, "xilinx", vectors=1000, io=io)
    report = api.verify(tmp_path / name)
    assert report.vectors == 1000
    assert report.mismatched_bits == 0, "\n".join(report.lines())
    assert report.extra["compiler_warnings"] == 0
