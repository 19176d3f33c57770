"""The fixed-point golden model: hand-worked cases, node-by-node against the float reference,
and the no-overflow property at the extremes of every input type."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fpgac import api
from fpgac.ir import (
    OP_SPECS, Act, FixedType, FloatType, Graph, Op, Overflow, PoolKind, Rounding, TensorType, quantize, to_float, verify,
)
from fpgac.ir.tables import Table
from fpgac.passes.calibrate import Calibrate
from fpgac.passes.quantize import Quantize, QuantConfig
from fpgac.sim import evaluate_fixed, run_fixed
from fpgac.ir.semantics import SEMANTICS

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RND_SAT = dict(rounding=Rounding.RND, overflow=Overflow.SAT)


# -- hand-worked --------------------------------------------------------------------------------


def test_dense_hand_worked() -> None:
    """x: fixed<8,4> (4 fractional bits), w: fixed<6,2> (4), bias at 8: every mantissa by hand."""
    g = Graph("t")
    x = g.add_input("x", TensorType(FixedType(8, 4, **RND_SAT), (2,)))
    w = g.constant("w", np.array([[3, -8], [5, 2]]), FixedType(6, 2))  # 0.1875 -0.5 / 0.3125 0.125
    b = g.constant("b", np.array([16, -1]), FixedType(12, 4))  # 0.0625, -1/256
    g.outputs = [g.add_node(Op.DENSE, [x, w, b], [TensorType(FixedType(20, 12), (2,))]).output]
    verify(g)
    # x = [1.5, -0.25] -> mantissas [24, -4]
    # y0 = 24*3 + -4*5 + 16 = 72 - 20 + 16 = 68;  y1 = 24*-8 + -4*2 - 1 = -192 - 8 - 1 = -201
    (m,) = run_fixed(g, np.array([[1.5, -0.25]]), mantissas=True)
    np.testing.assert_array_equal(m, [[68, -201]])
    (v,) = run_fixed(g, np.array([[1.5, -0.25]]))
    np.testing.assert_array_equal(v, [[68 / 256, -201 / 256]])


def test_input_rounds_and_saturates_by_its_type() -> None:
    g = Graph("t")
    x = g.add_input("x", TensorType(FixedType(4, 2, **RND_SAT), (4,)))  # step 0.25, range [-2, 1.75]
    g.outputs = [x]
    (m,) = run_fixed(g, np.array([[0.125, -0.125, 9.0, -9.0]]), mantissas=True)
    np.testing.assert_array_equal(m, [[1, 0, 7, -8]])  # RND: half up; SAT at both ends


def test_table_lookup_hand_worked() -> None:
    """ufixed<3,3> input (0..7), 4 entries: shift 1, buckets {0,1} {2,3} {4,5} {6,7}, midpoints 0.5 .. 6.5."""
    t = Table.build("double", lambda v: 2 * v, FixedType(3, 3, False), FixedType(5, 5, False, **RND_SAT), 0, 7, 4)
    assert (t.shift, t.offset, t.size) == (1, 0, 4)
    np.testing.assert_array_equal(t.values, [1, 5, 9, 13])
    np.testing.assert_array_equal(t.lookup(np.arange(8)), [1, 1, 5, 5, 9, 9, 13, 13])
    np.testing.assert_array_equal(t.lookup(np.array([-5, 100])), [1, 13])  # clipped to the ends


def test_interpolated_table_hand_worked() -> None:
    """2x on 0..7 with 4 entries, interpolated: shift 2, entries at 0, 4, 8 hold 0, 8, 16.

    m = 5: i = 1, r = 1 -> 8 + ((16 - 8) * 1 >> 2) = 10; m = 7: 8 + (24 >> 2) = 14; below the
    table reads its first entry, above it its last.
    """
    t = Table.build("double", lambda v: 2 * v, FixedType(3, 3, False), FixedType(5, 5, False, **RND_SAT), 0, 7, 4,
                    interpolate=True)
    assert (t.shift, t.offset, t.size) == (2, 0, 3)
    np.testing.assert_array_equal(t.values, [0, 8, 16])
    np.testing.assert_array_equal(t.lookup(np.array([0, 1, 2, 3, 4, 5, 6, 7, -3, 100])), [0, 2, 4, 6, 8, 10, 12, 14, 0, 16])


def test_average_pool_multiplies_by_rounded_reciprocal() -> None:
    """2x2 average of mantissas 1, 2, 3, 5 (sum 11) with K = 3: 11 * round(8 / 4) = 22 at 3 more bits."""
    g = Graph("t")
    x = g.add_input("x", TensorType(FixedType(8, 8), (1, 2, 2)))
    attrs = dict(kind=PoolKind.AVG, kernel=(2, 2), strides=(2, 2), dilations=(1, 1), pads=(0, 0, 0, 0),
                 ceil_mode=False, count_include_pad=False, reciprocal_bits=3)
    g.outputs = [g.add_node(Op.POOL, [x], [TensorType(FixedType(12, 9), (1, 1, 1))], attrs).output]
    (m,) = run_fixed(g, np.array([[[[1, 2], [3, 5]]]], dtype=float), mantissas=True)
    assert m.item() == 22  # 22 / 8 = 2.75 = 11 / 4 exactly


def test_overflowing_result_is_caught() -> None:
    """A type too narrow for the exact result is a bug the golden model refuses to hide."""
    g = Graph("t")
    a = g.add_input("a", TensorType(FixedType(8, 8), (1,)))
    b = g.add_input("b", TensorType(FixedType(8, 8), (1,)))
    g.outputs = [g.add_node(Op.ADD, [a, b], [TensorType(FixedType(8, 8), (1,))]).output]
    with pytest.raises(AssertionError, match=r"^node 'add' \(Add\): output 'add' mantissas 200\.\.200 overflow int<8> "
                                             r"\(-128\.\.127\)$"):
        run_fixed(g, [np.array([[100.0]]), np.array([[100.0]])])


def test_unquantized_graph_is_refused() -> None:
    g = Graph("t")
    g.outputs = [g.add_input("x", TensorType(FloatType(), (1,)))]
    with pytest.raises(AssertionError, match="^graph input 'x' has type float32: the golden model needs a quantized graph$"):
        run_fixed(g, np.zeros((1, 1)))


# -- node by node against the float reference --------------------------------------------------

#: ops whose fixed-point result is exact: the float reference on the same (dequantized) inputs
#: must give exactly the golden value
EXACT = {Op.DENSE, Op.CONV, Op.SCALE_SHIFT, Op.ADD, Op.SUB, Op.MUL, Op.MAX, Op.MIN, Op.CONCAT, Op.RESHAPE,
         Op.TRANSPOSE, Op.PAD, Op.SLICE, Op.ARGMAX}


def _quantized(name: str, bits: int, x: np.ndarray) -> Graph:
    graph = api.load(EXAMPLES / f"{name}.onnx")
    Calibrate({graph.inputs[0].name: x}).run(graph)
    Quantize(QuantConfig(bits=bits)).run(graph)
    verify(graph)
    return graph


def _example_input(name: str, n: int, seed: int) -> np.ndarray:
    if name == "digits":
        return np.load(EXAMPLES / "digits_test.npz")["x"][:n].astype(np.float64)
    shape = {"mlp": (16,), "cnn2d": (1, 8, 8), "cnn1d": (2, 32)}[name]
    return np.random.default_rng(seed).uniform(-1, 1, (n, *shape))


@pytest.mark.parametrize("bits", [16, 8])
@pytest.mark.parametrize("name", ["mlp", "cnn2d", "cnn1d", "digits"])
def test_every_node_against_float_reference(name: str, bits: int) -> None:
    """Exact ops equal the float op on the same values; Quant equals quantize(); tables are close."""
    x = _example_input(name, 200, 1)
    graph = _quantized(name, bits, x)
    mantissas = evaluate_fixed(graph, x)
    value_of = {}
    for v in graph.values():
        value_of[v.name] = to_float(v.data if v.is_const else mantissas[v.name], v.type.dtype)
    seen = set()
    for node in graph.nodes:
        seen.add(node.op)
        args = []
        for i, v in enumerate(node.inputs):
            if v is None:
                args.append(None)
            elif i in OP_SPECS[node.op].const_inputs:
                args.append(value_of[v.name])
            else:
                args.append(value_of[v.name] if not v.is_const else value_of[v.name][None])
        got = value_of[node.output.name]
        if node.op is Op.QUANT:
            want = to_float(quantize(args[0], node.output.type.dtype), node.output.type.dtype)
            np.testing.assert_array_equal(got, want, err_msg=node.name)
            continue
        floats = SEMANTICS[node.op].float(node, args)[0]
        if node.op in EXACT or (node.op is Op.ACTIVATION and node.attrs["kind"] is Act.RELU) or (
            node.op is Op.POOL and node.attrs["kind"] is PoolKind.MAX
        ):
            np.testing.assert_array_equal(got, np.broadcast_to(floats, got.shape), err_msg=node.name)
        elif node.op is Op.SOFTMAX:
            np.testing.assert_array_less(np.abs(got - floats), _softmax_bound(node, floats), err_msg=node.name)
        else:  # average pooling: round(2**K / count) is within half a unit, so relative error <= count / 2**(K+1)
            taps = np.prod(node.attrs["kernel"]) if node.op is Op.POOL else np.prod(node.inputs[0].type.shape[1:])
            rel = taps / 2.0 ** (node.attrs["reciprocal_bits"] + 1)
            np.testing.assert_allclose(got, floats, rtol=rel, atol=0, err_msg=node.name)
    assert Op.QUANT in seen


def _softmax_bound(node, p: np.ndarray) -> np.ndarray:
    """What the two tables allow: each entry is the function at its bucket's middle, rounded.

    exp: a bucket of z is ``2**shift`` LSBs wide, so e is off by a factor of at most e^(h) with h
    half that width, plus half an output LSB; the sum S is off by the same factor (plus n half
    LSBs); 1/S comes from a bucket of S (S >= 1) half as wide as ``2**shift`` LSBs of S, relative,
    plus half an LSB. Ratios of two such errors add (to first order).
    """
    exp, recip = node.attrs["exp"], node.attrs["reciprocal"]
    n = node.inputs[0].type.shape[node.attrs["axis"]]
    h = (2**exp.shift) * exp.in_type.lsb / 2
    e_lsb = exp.out_type.lsb / 2
    r_rel = (2**recip.shift) * recip.in_type.lsb / 2
    rel = 2 * np.expm1(h) + r_rel + n * e_lsb + recip.out_type.lsb
    return p * rel * 1.01 + e_lsb + recip.out_type.lsb / 2 + 1e-12


# -- no overflow at the extremes ----------------------------------------------------------------


def _extreme_inputs(t: FixedType, shape: tuple[int, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    corners = np.array([t.min_value, t.max_value, 0.0])
    return rng.choice(corners, size=(n, *shape), p=[0.45, 0.45, 0.1])


@pytest.mark.parametrize("seed", range(6))
def test_no_accumulator_overflows_at_extreme_inputs(seed: int) -> None:
    """Random weights (some huge, some tiny), calibrated on small inputs, run at the type limits.

    Every value of every node is checked against its type by the golden model itself (a value
    outside would raise); on top, the worst-case input of one Dense column reaches its bound.
    """
    rng = np.random.default_rng(seed)
    g = Graph("t")
    x = g.add_input("x", TensorType(FloatType(), (3, 6, 6)))
    f32 = lambda shape: TensorType(FloatType(), shape)  # noqa: E731
    scale = 10.0 ** rng.uniform(-3, 2)
    conv_w = g.constant("cw", rng.normal(0, scale, (4, 3, 3, 3)))
    conv = g.add_node(Op.CONV, [x, conv_w, g.constant("cb", rng.normal(0, 1, 4))], [f32((4, 6, 6))],
                      dict(strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1), groups=1))
    relu = g.add_node(Op.ACTIVATION, [conv.output], [f32((4, 6, 6))], dict(kind=Act.RELU))
    pool = g.add_node(Op.POOL, [relu.output], [f32((4, 3, 3))], dict(kind=PoolKind.AVG, kernel=(2, 2), strides=(2, 2),
                      dilations=(1, 1), pads=(0, 0, 0, 0), ceil_mode=False, count_include_pad=False))
    flat = g.add_node(Op.RESHAPE, [pool.output], [f32((36,))], dict(shape=(36,)))
    dense = g.add_node(Op.DENSE, [flat.output, g.constant("w", rng.normal(0, 1, (36, 5)) * 10.0 ** rng.uniform(-2, 2, (36, 1))),
                                  g.constant("b", rng.normal(0, 1, 5))], [f32((5,))])
    mul = g.add_node(Op.MUL, [dense.output, g.constant("k", rng.normal(0, 3, (5,)))], [f32((5,))])
    add = g.add_node(Op.ADD, [mul.output, dense.output], [f32((5,))])
    g.outputs = [add.output]
    verify(g)
    Calibrate({"x": rng.uniform(-0.1, 0.1, (64, 3, 6, 6))}).run(g)
    bits = int(rng.integers(4, 17))
    Quantize(QuantConfig(bits=bits)).run(g)
    verify(g)
    t = g.inputs[0].type.dtype
    values = evaluate_fixed(g, _extreme_inputs(t, (3, 6, 6), 200, rng))  # raises on any overflow

    # the Dense type is tight: the worst-case input of some column needs its top bit
    dense_node = next(n for n in g.nodes if n.op is Op.DENSE)
    xin, acc = dense_node.inputs[0].type.dtype, dense_node.output.type.dtype
    w = dense_node.inputs[1].data.astype(object)
    bias = dense_node.inputs[2]
    b = bias.data.astype(object) * 2 ** (acc.frac_bits - bias.type.dtype.frac_bits)
    highs = np.maximum(w * xin.max_mantissa, w * xin.min_mantissa).sum(axis=0) + b
    lows = np.minimum(w * xin.max_mantissa, w * xin.min_mantissa).sum(axis=0) + b
    assert acc.min_mantissa <= min(lows) and max(highs) <= acc.max_mantissa
    assert max(max(highs), -min(lows) - 1) > acc.max_mantissa // 2
    assert all(np.all(np.isfinite(v)) for v in values.values())
