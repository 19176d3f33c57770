"""QONNX models (Brevitas's export): Quant/IntQuant, BipolarQuant and Trunc in the frontend.

Expected values come from the QONNX operator docs (docs/qonnx-custom-ops/*.md in the qonnx
repository), written here again in plain numpy and float64, not from fpgac: the lowered graph must
equal them bit for bit. Where a model has standard layers as well, the same model with its
quantizers evaluated by that numpy code (quantized weights as initializers) runs in onnxruntime.
qonnx's own executor is a second, independent check where the package is installed.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import fpgac.api as api
from fpgac.errors import InvalidModelError, UnsupportedError
from fpgac.ir import FixedType, FloatType, Op, Overflow, Rounding
from fpgac.sim import evaluate_float, run_float

RNG = np.random.default_rng(11)
QONNX = "qonnx.custom_op.general"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


# -- the QONNX formulas, from the spec ------------------------------------------------------------


def spec_round(v: np.ndarray, mode: str) -> np.ndarray:
    """The spec's rounding-mode table: ROUND is half to even."""
    mode = mode.upper()
    if mode in ("ROUND", "HALF_EVEN"):
        return np.round(v)
    if mode == "FLOOR":
        return np.floor(v)
    if mode == "CEIL":
        return np.ceil(v)
    if mode in ("DOWN", "ROUND_TO_ZERO"):
        return np.trunc(v)
    if mode == "UP":
        return np.sign(v) * np.ceil(np.abs(v))
    if mode == "HALF_UP":
        return np.sign(v) * np.floor(np.abs(v) + 0.5)
    if mode == "HALF_DOWN":
        return np.sign(v) * np.ceil(np.abs(v) - 0.5)
    raise ValueError(mode)


def int_range(signed: bool, narrow: bool, bits: int) -> tuple[int, int]:
    lo = -(2 ** (bits - 1)) + (1 if narrow else 0) if signed else 0
    hi = 2 ** (bits - 1) - 1 if signed else 2**bits - 1 - (1 if narrow else 0)
    return lo, hi


def quant(x, scale, zeropt, bits, signed=True, narrow=False, mode="ROUND") -> np.ndarray:
    lo, hi = int_range(signed, narrow, bits)
    v = np.asarray(x, np.float64) / np.asarray(scale, np.float64) + zeropt
    v = np.where(v > hi, hi, np.where(v < lo, lo, v))
    return (spec_round(v, mode) - zeropt) * scale


def bipolar_quant(x, scale) -> np.ndarray:
    return np.where(np.asarray(x, np.float64) >= 0, 1.0, -1.0) * scale


def trunc_v1(x, scale, zeropt, in_bits, out_bits, mode="FLOOR") -> np.ndarray:
    y = np.round(np.asarray(x, np.float64) / scale + zeropt)
    y = spec_round(y / 2.0 ** (in_bits - out_bits), mode)
    return (y - zeropt) * scale


def trunc_v2(x, scale, zeropt, in_bits, out_scale, out_bits, signed=True, narrow=False, mode="FLOOR"):
    y = np.round(np.asarray(x, np.float64) / scale + zeropt)
    t = 2.0 ** np.round(np.log2(out_scale / scale))
    y = y / t
    lo, hi = int_range(signed, narrow, out_bits)
    y = spec_round(np.where(y > hi, hi, np.where(y < lo, lo, y)), mode)
    return (y - zeropt / t) * out_scale


# -- building and running models --------------------------------------------------------------------


def f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def quant_node(x, y, prefix, signed=1, narrow=0, mode="ROUND", op="Quant", domain=QONNX):
    return helper.make_node(op, [x, f"{prefix}.scale", f"{prefix}.zeropt", f"{prefix}.bits"], [y], name=y,
                            domain=domain, signed=signed, narrow=narrow, rounding_mode=mode)


def quant_inits(prefix, scale, zeropt=0.0, bits=8) -> list[tuple[str, np.ndarray]]:
    return [(f"{prefix}.scale", f32(scale)), (f"{prefix}.zeropt", f32(zeropt)), (f"{prefix}.bits", f32(bits))]


def model(nodes, inputs, outputs, inits=(), domain=QONNX) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "q",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in inits],
    )
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(domain, 1)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def load(tmp_path: Path, m: onnx.ModelProto):
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    return api.load(path)


def run64(graph, x: np.ndarray) -> np.ndarray:
    """The float reference's float64 values of the (only) output: exact, before the cast to float32."""
    (out,) = graph.outputs
    return np.asarray(evaluate_float(graph, x)[out.name])


def quant_ops(graph) -> list:
    return [n for n in graph.nodes if n.op is Op.QUANT]


def ties(scale: float, n: int = 24) -> np.ndarray:
    """Exact halfway points between grid values (and the grid values), where rounding modes differ."""
    k = np.arange(-n, n) / 2.0
    return f32(k * scale)


# -- Quant on run-time tensors: one QUANT node for a power-of-two scalar scale ---------------------


MODES = {"ROUND": Rounding.RND_CONV, "HALF_EVEN": Rounding.RND_CONV, "FLOOR": Rounding.TRN,
         "DOWN": Rounding.TRN_ZERO, "ROUND_TO_ZERO": Rounding.TRN_ZERO, "HALF_UP": Rounding.RND_INF,
         "HALF_DOWN": Rounding.RND_ZERO, "round": Rounding.RND_CONV}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("signed, narrow", [(1, 0), (1, 1), (0, 0)])
def test_quant_pow2_scale_is_one_quant(tmp_path: Path, mode: str, signed: int, narrow: int) -> None:
    scale, bits = 2.0**-3, 5
    m = model([quant_node("x", "y", "q", signed, narrow, mode)], [("x", ["N", 8])], [("y", ["N", 8])],
              quant_inits("q", scale, 0.0, bits))
    graph = load(tmp_path, m)
    (node,) = graph.nodes
    assert node.op is Op.QUANT
    overflow = Overflow.SAT_SYM if narrow else Overflow.SAT
    assert node.output.type.dtype == FixedType(bits, bits - 3, bool(signed), MODES[mode], overflow)
    x = np.concatenate([ties(scale).reshape(-1, 8), f32(RNG.uniform(-6, 6, size=(50, 8)))])
    want = quant(x, scale, 0.0, bits, signed, narrow, mode)
    np.testing.assert_array_equal(run64(graph, x), want)
    np.testing.assert_array_equal(run_float(graph, x)[0], want.astype(np.float32))


def test_quant_wide_and_coarse(tmp_path: Path) -> None:
    """A 32-bit quantizer and a scale above 1 (the binary point outside the word)."""
    for scale, bits in ((2.0**-20, 32), (4.0, 3)):
        m = model([quant_node("x", "y", "q")], [("x", ["N", 6])], [("y", ["N", 6])], quant_inits("q", scale, 0.0, bits))
        graph = load(tmp_path, m)
        exp = int(np.log2(scale))
        assert graph.nodes[0].output.type.dtype == FixedType(bits, bits + exp, True, Rounding.RND_CONV, Overflow.SAT)
        x = f32(RNG.uniform(-40, 40, size=(40, 6)))
        np.testing.assert_array_equal(run64(graph, x), quant(x, scale, 0.0, bits))


@pytest.mark.parametrize("domain, op", [("finn.custom_op.general", "Quant"), ("onnx.brevitas", "Quant"),
                                        (QONNX, "IntQuant")])
def test_older_domains_and_intquant(tmp_path: Path, domain: str, op: str) -> None:
    m = model([quant_node("x", "y", "q", op=op, domain=domain)], [("x", ["N", 4])], [("y", ["N", 4])],
              quant_inits("q", 2.0**-2, 0.0, 4), domain=domain)
    graph = load(tmp_path, m)
    assert [n.op for n in graph.nodes] == [Op.QUANT]
    x = f32(RNG.uniform(-3, 3, size=(30, 4)))
    np.testing.assert_array_equal(run64(graph, x), quant(x, 0.25, 0.0, 4))


# -- Quant on run-time tensors: any other scale, or a zero point -----------------------------------


def test_quant_non_pow2_scale_lowers_through_integers(tmp_path: Path) -> None:
    scale, bits = 0.0371, 6
    m = model([quant_node("x", "y", "q", 1, 1, "HALF_UP")], [("x", ["N", 10])], [("y", ["N", 10])],
              quant_inits("q", scale, 0.0, bits))
    graph = load(tmp_path, m)
    assert [n.op for n in graph.nodes] == [Op.MUL, Op.QUANT, Op.MUL]
    assert quant_ops(graph)[0].output.type.dtype == FixedType(bits, bits, True, Rounding.RND_INF, Overflow.SAT_SYM)
    x = f32(RNG.uniform(-2, 2, size=(500, 10)))
    np.testing.assert_array_equal(run64(graph, x), quant(x, f32(scale), 0.0, bits, True, True, "HALF_UP"))


def test_quant_per_channel_scale_on_activations(tmp_path: Path) -> None:
    """Per-channel scales ([1, C, 1, 1], powers of two or not) on a conv-shaped tensor."""
    scale = f32([0.25, 0.1, 2.0**-5]).reshape(1, 3, 1, 1)
    m = model([quant_node("x", "y", "q", 0, 0, "FLOOR")], [("x", ["N", 3, 4, 4])], [("y", ["N", 3, 4, 4])],
              quant_inits("q", scale, 0.0, 4))
    graph = load(tmp_path, m)
    assert [n.op for n in graph.nodes] == [Op.MUL, Op.QUANT, Op.MUL]
    assert quant_ops(graph)[0].output.type.dtype == FixedType(4, 4, False, Rounding.TRN, Overflow.SAT)
    x = f32(RNG.uniform(-1, 4, size=(50, 3, 4, 4)))
    np.testing.assert_array_equal(run64(graph, x), quant(x, scale, 0.0, 4, False, False, "FLOOR"))


def test_quant_with_zero_point(tmp_path: Path) -> None:
    """Asymmetric quantization: unsigned 8 bits, zero point 37, per-channel zero points too."""
    for zeropt in (f32(37.0), f32([[3.0, -2.0, 0.0, 100.0]])):
        m = model([quant_node("x", "y", "q", 0, 0)], [("x", ["N", 4])], [("y", ["N", 4])],
                  quant_inits("q", 2.0**-4, zeropt, 8))
        graph = load(tmp_path, m)
        assert [n.op for n in graph.nodes] == [Op.MUL, Op.ADD, Op.QUANT, Op.SUB, Op.MUL]
        assert quant_ops(graph)[0].output.type.dtype == FixedType(8, 8, False, Rounding.RND_CONV, Overflow.SAT)
        x = np.concatenate([ties(2.0**-4).reshape(-1, 4), f32(RNG.uniform(-8, 16, size=(200, 4)))])
        np.testing.assert_array_equal(run64(graph, x), quant(x, 2.0**-4, zeropt, 8, False))


# -- Quant on constants: quantized weights ---------------------------------------------------------


def narrowest(mantissas: np.ndarray, signed: bool) -> int:
    """The fewest bits holding every mantissa, counted the slow way."""
    for width in range(1, 64):
        lo, hi = (-(2 ** (width - 1)), 2 ** (width - 1) - 1) if signed else (0, 2**width - 1)
        if mantissas.min() >= lo and mantissas.max() <= hi:
            return width
    raise AssertionError


def gemm_with_quant_weight(w, w_scale, bits, signed=1, narrow=1, mode="ROUND", zeropt=0.0, bias=True):
    nodes = [quant_node("w", "wq", "w", signed, narrow, mode), helper.make_node(
        "Gemm", ["x", "wq", "b"] if bias else ["x", "wq"], ["y"], name="fc", transB=1)]
    inits = [("w", f32(w)), ("b", f32(RNG.normal(size=w.shape[0])))] + quant_inits("w", w_scale, zeropt, bits)
    inits = inits if bias else inits[:1] + inits[2:]
    return model(nodes, [("x", ["N", w.shape[1]])], [("y", ["N", w.shape[0]])], inits)


def test_quant_weights_per_channel_pow2_are_one_fixed_type(tmp_path: Path) -> None:
    w = f32(RNG.normal(size=(6, 5)))
    w_scale = f32(2.0 ** np.array([-3, -1, -4, 0, -2, -3])).reshape(6, 1)
    m = gemm_with_quant_weight(w, w_scale, 4)
    graph = load(tmp_path, m)
    (dense,) = graph.nodes
    weight = dense.inputs[1]
    wq = quant(w, w_scale, 0.0, 4, True, True)
    mantissas = (wq * 2.0**4).T  # frac bits: those of the finest scale, 2**-4
    assert np.array_equal(mantissas, np.round(mantissas))
    width = narrowest(mantissas, True)
    assert weight.type.dtype == FixedType(width, width - 4, True)
    assert weight.data.dtype == np.int64 and np.array_equal(weight.data, mantissas.astype(np.int64))
    x = f32(RNG.uniform(-2, 2, size=(40, 5)))
    b = numpy_helper.to_array(m.graph.initializer[1]).astype(np.float64)
    np.testing.assert_array_equal(run64(graph, x), x.astype(np.float64) @ wq.T + b)


@pytest.mark.parametrize("mode", ["ROUND", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN"])
def test_quant_weights_every_rounding_mode(tmp_path: Path, mode: str) -> None:
    """On constants every mode folds exactly, even those ap_fixed cannot express."""
    w = np.concatenate([ties(0.5, 15).reshape(3, 10), f32(RNG.normal(size=(3, 10)))])
    m = gemm_with_quant_weight(w, f32(0.5), 3, signed=0, narrow=1, mode=mode, bias=False)
    graph = load(tmp_path, m)
    wq = quant(w, 0.5, 0.0, 3, False, True, mode)
    weight = graph.nodes[0].inputs[1]
    assert weight.type.dtype == FixedType(narrowest(wq * 2, False), narrowest(wq * 2, False) - 1, False)
    np.testing.assert_array_equal(weight.data, (wq * 2).T.astype(np.int64))


def test_quant_weights_non_pow2_or_zero_point_stay_float(tmp_path: Path) -> None:
    w = f32(RNG.normal(size=(4, 3)))
    for scale, zeropt in ((f32(0.3), 0.0), (f32(0.25), 1.0)):
        graph = load(tmp_path, gemm_with_quant_weight(w, scale, 4, zeropt=zeropt, bias=False))
        weight = graph.nodes[0].inputs[1]
        assert weight.type.dtype == FloatType()
        np.testing.assert_array_equal(weight.data, quant(w, scale, zeropt, 4, True, True).T)


def test_bipolar_quant_weights(tmp_path: Path) -> None:
    w = f32(RNG.normal(size=(4, 6)))
    w[0, 0] = 0.0  # >= 0 is +1
    per_row = f32([[0.5], [2.0], [0.125], [1.0]])  # frac 3, mantissas up to 2 * 8 = 16: 6 bits
    for scale, dtype in ((f32(0.25), FixedType(2, 0, True)), (per_row, FixedType(6, 3, True)), (f32(0.3), FloatType())):
        nodes = [helper.make_node("BipolarQuant", ["w", "s"], ["wq"], name="wq", domain=QONNX),
                 helper.make_node("MatMul", ["x", "wqt"], ["y"], name="fc"),
                 helper.make_node("Transpose", ["wq"], ["wqt"], name="t", perm=[1, 0])]
        nodes = [nodes[0], nodes[2], nodes[1]]
        graph = load(tmp_path, model(nodes, [("x", ["N", 6])], [("y", ["N", 4])], [("w", w), ("s", scale)]))
        weight = graph.nodes[0].inputs[1]
        want = bipolar_quant(w, scale).T
        assert weight.type.dtype == dtype
        got = weight.data * 2.0 ** -dtype.frac_bits if isinstance(dtype, FixedType) else weight.data
        np.testing.assert_array_equal(got, want)
        x = f32(RNG.uniform(-1, 1, size=(20, 6)))
        np.testing.assert_array_equal(run64(graph, x), x.astype(np.float64) @ want)


def test_quantized_conv_then_batchnorm_keeps_the_scale_shift(tmp_path: Path) -> None:
    """BatchNorm is not folded into quantized weights: that would move them off their grid."""
    w = f32(RNG.normal(size=(4, 2, 3, 3)))
    w_scale = f32(2.0 ** np.array([-2, -3, -1, -2])).reshape(4, 1, 1, 1)
    bn = [f32(RNG.uniform(0.5, 1.5, 4)), f32(RNG.normal(size=4)), f32(RNG.normal(size=4)), f32(RNG.uniform(0.5, 2, 4))]
    nodes = [quant_node("w", "wq", "w", 1, 1),
             helper.make_node("Conv", ["x", "wq"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["y"], name="bn")]
    inits = [("w", w), *quant_inits("w", w_scale, 0.0, 4), ("g", bn[0]), ("beta", bn[1]), ("mean", bn[2]),
             ("var", bn[3])]
    graph = load(tmp_path, model(nodes, [("x", ["N", 2, 5, 5])], [("y", ["N", 4, 5, 5])], inits))
    assert [n.op for n in graph.nodes] == [Op.CONV, Op.SCALE_SHIFT]
    assert isinstance(graph.nodes[0].inputs[1].type.dtype, FixedType)
    # the same network with the quantized weights as a plain initializer, in onnxruntime
    twin = model(nodes[1:], [("x", ["N", 2, 5, 5])], [("y", ["N", 4, 5, 5])],
                 [("wq", f32(quant(w, w_scale, 0.0, 4, True, True)))] + inits[4:])
    x = f32(RNG.uniform(-1, 1, size=(8, 2, 5, 5)))
    (want,) = ort.InferenceSession(twin.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(run_float(graph, x)[0], want, rtol=1e-5, atol=1e-5)


def test_quantized_matmul_keeps_its_add_and_a_quantized_bias_fuses(tmp_path: Path) -> None:
    """FuseBias leaves a fixed-point weight's layer alone, and reads a fixed-point bias as values."""
    w, b = f32(RNG.normal(size=(5, 3))), f32(RNG.normal(size=3))
    x = f32(RNG.uniform(-1, 1, size=(10, 5)))
    # quantized weight, float bias: Dense + Add
    nodes = [quant_node("w", "wq", "w"), helper.make_node("MatMul", ["x", "wq"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "b"], ["y"], name="add")]
    graph = load(tmp_path, model(nodes, [("x", ["N", 5])], [("y", ["N", 3])],
                                 [("w", w), ("b", b), *quant_inits("w", 2.0**-3, 0.0, 6)]))
    assert [n.op for n in graph.nodes] == [Op.DENSE, Op.ADD]
    np.testing.assert_array_equal(run64(graph, x), x.astype(np.float64) @ quant(w, 2.0**-3, 0.0, 6) + b)
    # float weight, quantized bias: one Dense whose bias holds the bias's values
    nodes = [quant_node("b", "bq", "b"), helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "bq"], ["y"], name="add")]
    graph = load(tmp_path, model(nodes, [("x", ["N", 5])], [("y", ["N", 3])],
                                 [("w", w), ("b", b), *quant_inits("b", 2.0**-5, 0.0, 8)]))
    assert [n.op for n in graph.nodes] == [Op.DENSE]
    np.testing.assert_array_equal(graph.nodes[0].inputs[2].data, quant(b, 2.0**-5, 0.0, 8))


# -- Trunc ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["FLOOR", "ROUND", "HALF_UP"])
def test_trunc_v1_after_quant(tmp_path: Path, mode: str) -> None:
    """Version 1 (5 inputs) keeps the input scale: the integer loses in - out low bits, unclamped."""
    nodes = [quant_node("x", "xq", "q"),
             helper.make_node("Trunc", ["xq", "q.scale", "q.zeropt", "q.bits", "t.bits"], ["y"], name="y",
                              domain=QONNX, rounding_mode=mode)]
    inits = quant_inits("q", 2.0**-4, 0.0, 8) + [("t.bits", f32(5))]
    graph = load(tmp_path, model(nodes, [("x", ["N", 6])], [("y", ["N", 6])], inits))
    assert [n.op for n in graph.nodes] == [Op.QUANT, Op.MUL, Op.QUANT]  # no second rounding of xq
    assert quant_ops(graph)[1].output.type.dtype == FixedType(6, 2, True, MODES[mode], Overflow.SAT)
    x = f32(RNG.uniform(-10, 10, size=(300, 6)))
    want = trunc_v1(quant(x, 2.0**-4, 0.0, 8), 2.0**-4, 0.0, 8, 5, mode)
    np.testing.assert_array_equal(run64(graph, x), want)


@pytest.mark.parametrize("signed, narrow, mode", [(1, 0, "FLOOR"), (0, 0, "ROUND"), (1, 1, "DOWN")])
def test_trunc_v2_of_an_average(tmp_path: Path, signed: int, narrow: int, mode: str) -> None:
    """Version 2 (6 inputs): AveragePool -> Mul -> Trunc as Brevitas exports a TruncAvgPool."""
    nodes = [helper.make_node("AveragePool", ["x"], ["avg"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Mul", ["avg", "four"], ["sum"], name="mul"),
             helper.make_node("Trunc", ["sum", "s", "z", "ib", "os", "ob"], ["y"], name="y", domain=QONNX,
                              rounding_mode=mode, signed=signed, narrow=narrow)]
    inits = [("four", f32(4.0)), ("s", f32(2.0**-3)), ("z", f32(0.0)), ("ib", f32(10)), ("os", f32(2.0**-1)),
             ("ob", f32(4))]
    graph = load(tmp_path, model(nodes, [("x", ["N", 2, 4, 4])], [("y", ["N", 2, 2, 2])], inits))
    assert [n.op for n in graph.nodes] == [Op.POOL, Op.MUL, Op.QUANT, Op.QUANT]
    overflow = Overflow.SAT_SYM if narrow else Overflow.SAT
    assert quant_ops(graph)[1].output.type.dtype == FixedType(4, 3, bool(signed), MODES[mode], overflow)
    # inputs on the 2**-3 grid, as a quantized tensor's are, plus stray values that need the first rounding
    x = np.concatenate([f32(RNG.integers(-60, 60, size=(100, 2, 4, 4)) / 8.0),
                        f32(RNG.uniform(-8, 8, size=(100, 2, 4, 4)))])
    summed = x.astype(np.float64).reshape(-1, 2, 2, 2, 2, 2).mean(axis=(3, 5)) * 4.0
    want = trunc_v2(summed, 2.0**-3, 0.0, 10, 2.0**-1, 4, signed, narrow, mode)
    np.testing.assert_array_equal(run64(graph, x), want)


def test_trunc_on_constants_folds(tmp_path: Path) -> None:
    w = f32(RNG.uniform(-4, 4, size=(3, 4)))
    nodes = [helper.make_node("Trunc", ["w", "s", "z", "ib", "ob"], ["wt"], name="wt", domain=QONNX,
                              rounding_mode="ROUND"),
             helper.make_node("MatMul", ["x", "wt"], ["y"], name="fc")]
    inits = [("w", w), ("s", f32(0.2)), ("z", f32(1.0)), ("ib", f32(8)), ("ob", f32(6))]
    graph = load(tmp_path, model(nodes, [("x", ["N", 3])], [("y", ["N", 4])], inits))
    np.testing.assert_array_equal(graph.nodes[0].inputs[1].data, trunc_v1(w, f32(0.2), 1.0, 8, 6, "ROUND"))


# -- what is refused --------------------------------------------------------------------------------


def refused(tmp_path: Path, nodes, inits, error, message: str, shape=("N", 4)) -> None:
    m = model(nodes, [("x", list(shape))], [("y", list(shape))], inits)
    with pytest.raises(error, match=r"^.*m\.onnx: node 'y' \(" + nodes[-1].op_type + r"\): " + message + "$"):
        load(tmp_path, m)


@pytest.mark.parametrize("mode", ["CEIL", "UP"])
def test_rounding_modes_ap_fixed_lacks_are_refused_on_tensors(tmp_path: Path, mode: str) -> None:
    refused(tmp_path, [quant_node("x", "y", "q", mode=mode)], quant_inits("q", 0.5, 0.0, 4), UnsupportedError,
            f"rounding_mode {mode} on a run-time tensor has no ap_fixed equivalent; fpgac takes ROUND, HALF_EVEN, "
            "FLOOR, DOWN, ROUND_TO_ZERO, HALF_UP, HALF_DOWN")


def test_unknown_rounding_mode(tmp_path: Path) -> None:
    refused(tmp_path, [quant_node("x", "y", "q", mode="NEAREST")], quant_inits("q", 0.5, 0.0, 4), InvalidModelError,
            r"rounding_mode 'NEAREST' is not a QONNX mode \(ROUND, HALF_EVEN, FLOOR, DOWN, ROUND_TO_ZERO, HALF_UP, "
            r"HALF_DOWN, CEIL, UP\)")


def test_narrow_unsigned_is_refused_on_tensors(tmp_path: Path) -> None:
    refused(tmp_path, [quant_node("x", "y", "q", signed=0, narrow=1)], quant_inits("q", 0.5, 0.0, 4), UnsupportedError,
            r"narrow unsigned quantization \(0 to 2\*\*bits - 2\) on a run-time tensor has no ap_fixed overflow mode")


@pytest.mark.parametrize("bits, error, message", [
    (2.5, InvalidModelError, "bitwidth must be a positive integer, not 2.5"),
    (0.0, InvalidModelError, "bitwidth must be a positive integer, not 0.0"),
    (40.0, UnsupportedError, "bitwidth 40 exceeds the 32 bits fpgac quantizes to"),
    ([4.0, 5.0], UnsupportedError, "bitwidth must be one number, but has 2 different values"),
])
def test_bad_bitwidth(tmp_path: Path, bits, error, message: str) -> None:
    refused(tmp_path, [quant_node("x", "y", "q")], quant_inits("q", 0.5, 0.0, bits), error, message)


@pytest.mark.parametrize("scale, shown", [(0.0, "0.0"), (-0.5, "-0.5"), ([0.5, 1.0, -2.0, 1.0], "-2.0")])
def test_bad_scale(tmp_path: Path, scale, shown: str) -> None:
    refused(tmp_path, [quant_node("x", "y", "q")], quant_inits("q", scale, 0.0, 4), InvalidModelError,
            f"scale must be positive and finite, but holds {shown}")


def test_run_time_scale_is_refused(tmp_path: Path) -> None:
    nodes = [helper.make_node("Quant", ["x", "x", "z", "b"], ["y"], name="y", domain=QONNX)]
    refused(tmp_path, nodes, [("z", f32(0.0)), ("b", f32(4))], UnsupportedError,
            r"input 1 \('scale'\) must be a constant known at compile time, but it is computed at run time")


def test_one_bit_signed_quant_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, [quant_node("x", "y", "q")], quant_inits("q", 0.5, 0.0, 1), UnsupportedError,
            r"a 1-bit signed Quant is \[-1, 0\] by the QONNX spec but bipolar \+-1 in qonnx's executor; "
            "export it as BipolarQuant")


def test_bipolar_quant_on_a_tensor_is_refused(tmp_path: Path) -> None:
    nodes = [helper.make_node("BipolarQuant", ["x", "s"], ["y"], name="y", domain=QONNX)]
    refused(tmp_path, nodes, [("s", f32(1.0))], UnsupportedError,
            "BipolarQuant of a run-time tensor is a sign function, which fpgac has no IR op for")


@pytest.mark.parametrize("scale, zeropt", [(0.3, 0.0), (0.25, 2.0)])
def test_trunc_off_power_of_two_is_refused(tmp_path: Path, scale: float, zeropt: float) -> None:
    nodes = [helper.make_node("Trunc", ["x", "s", "z", "ib", "ob"], ["y"], name="y", domain=QONNX)]
    inits = [("s", f32(scale)), ("z", f32(zeropt)), ("ib", f32(8)), ("ob", f32(4))]
    refused(tmp_path, nodes, inits, UnsupportedError,
            "Trunc on a run-time tensor needs a power-of-two scalar scale and a zero zeropt")


def test_missing_input_and_unknown_qonnx_op(tmp_path: Path) -> None:
    nodes = [helper.make_node("Quant", ["x", "s", "z"], ["y"], name="y", domain=QONNX)]
    refused(tmp_path, nodes, [("s", f32(1.0)), ("z", f32(0.0))], InvalidModelError,
            r"takes 4 inputs \(x, scale, zeropt, bitwidth\), got 3")
    nodes = [helper.make_node("MultiThreshold", ["x", "t"], ["y"], name="y", domain=QONNX)]
    refused(tmp_path, nodes, [("t", f32(np.zeros((4, 3))))], UnsupportedError,
            "QONNX op MultiThreshold is not one fpgac compiles; it lowers BipolarQuant, IntQuant, Quant, Trunc")


# -- a whole quantized MLP: examples/qmlp.onnx --------------------------------------------------------


def qmlp_numpy(m: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """examples/qmlp.onnx from its initializers and the spec: Quant -> Gemm -> Relu -> Quant -> Gemm."""
    t = {i.name: numpy_helper.to_array(i).astype(np.float64) for i in m.graph.initializer}

    def q(prefix: str, value: np.ndarray, signed: bool, narrow: bool) -> np.ndarray:
        c = f"{prefix}/export_handler/Constant"
        return quant(value, t[f"{c}_output_0"], t[f"{c}_1_output_0"], int(t[f"{c}_2_output_0"]), signed, narrow)

    h = q("/input_quant", x, True, False)
    for i in (1, 2):
        w = q(f"/fc{i}/weight_quant", t[f"fc{i}.weight"], True, True)
        b = q(f"/fc{i}/bias_quant", t[f"fc{i}.bias"], True, False)
        h = h @ w.T + b
        if i == 1:
            h = q("/relu1/act_quant", np.maximum(h, 0.0), False, False)
    return h


def test_qmlp_example_end_to_end() -> None:
    m = onnx.load(EXAMPLES / "qmlp.onnx")
    graph = api.load(EXAMPLES / "qmlp.onnx")
    assert [n.op for n in graph.nodes] == [Op.QUANT, Op.DENSE, Op.ACTIVATION, Op.QUANT, Op.DENSE]
    assert [n.output.type.dtype for n in quant_ops(graph)] == [
        FixedType(8, 4, True, Rounding.RND_CONV, Overflow.SAT), FixedType(8, 4, False, Rounding.RND_CONV, Overflow.SAT)]
    for dense in (graph.nodes[1], graph.nodes[4]):
        assert all(isinstance(v.type.dtype, FixedType) for v in dense.inputs[1:])  # weights and biases
    x = f32(RNG.uniform(-10, 10, size=(1000, 16)))  # saturates the input quantizer too
    want = qmlp_numpy(m, x.astype(np.float64))
    np.testing.assert_array_equal(run64(graph, x), want)
    np.testing.assert_array_equal(run_float(graph, x)[0], want.astype(np.float32))


def _make_examples():
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_qmlp_example_against_onnx_reference() -> None:
    """The example script's own check (onnx.reference with a spec Quant) agrees too, in float32."""
    m = onnx.load(EXAMPLES / "qmlp.onnx")
    x = f32(RNG.uniform(-4, 4, size=(200, 16)))
    (want,) = _make_examples().run_reference(m, {"x": x})
    np.testing.assert_array_equal(run_float(api.load(EXAMPLES / "qmlp.onnx"), x)[0], want)


def test_qmlp_example_against_qonnx_executor() -> None:
    """qonnx's own executor, where it is installed: every value is exact in float32 here too."""
    pytest.importorskip("qonnx")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    m = copy.deepcopy(onnx.load(EXAMPLES / "qmlp.onnx"))
    x = f32(RNG.uniform(-10, 10, size=(64, 16)))
    for value in (m.graph.input[0], m.graph.output[0]):  # qonnx's executor wants a fixed batch
        value.type.tensor_type.shape.dim[0].dim_value = len(x)
    wrapper = ModelWrapper(m).transform(InferShapes())
    want = execute_onnx(wrapper, {"x": x})["y"]
    np.testing.assert_array_equal(run_float(api.load(EXAMPLES / "qmlp.onnx"), x)[0], want)


# -- compiling a QONNX model: the model's quantizers are kept, fpgac sizes the rest ----------------


@pytest.mark.parametrize("bits", [3, 5, 8])
def test_qmlp_compiled_keeps_the_models_quantizers(bits: int) -> None:
    """``bits`` sizes only what the model left in float (here the output): the model's own 8-bit
    quantizers are not narrowed again, so the golden model is the spec's value rounded once, to the
    output's type."""
    m = onnx.load(EXAMPLES / "qmlp.onnx")
    compiled = api.compile(EXAMPLES / "qmlp.onnx", bits=bits, input_range=(-1.0, 1.0))
    graph = compiled.graph
    assert [n.output.type.dtype.width for n in quant_ops(graph)][:2] == [8, 8]  # the model's, untouched
    (out,) = graph.outputs
    t = out.type.dtype
    assert out.producer.op is Op.QUANT and t.width == bits
    x = f32(RNG.uniform(-1, 1, size=(300, 16)))
    exact = qmlp_numpy(m, x.astype(np.float64))
    want = np.clip(np.floor(exact * 2.0**t.frac_bits + 0.5), t.min_mantissa, t.max_mantissa) / 2.0**t.frac_bits
    np.testing.assert_array_equal(np.asarray(compiled.predict(x), dtype=np.float64), want)


def test_a_models_bias_finer_than_its_sums_stays_exact(tmp_path: Path) -> None:
    """Input and weight at 2**-1 make sums at 2**-2; the model's bias is at 2**-6. The weight is
    restated with more fractional bits (zeros), so the bias is added exactly, as the spec says."""
    w, b = f32(RNG.normal(size=(3, 4))), f32(RNG.normal(size=3))
    nodes = [quant_node("x", "xq", "x"), quant_node("w", "wq", "w", 1, 1), quant_node("b", "bq", "b"),
             helper.make_node("Gemm", ["xq", "wq", "bq"], ["y"], name="fc", transB=1)]
    inits = [("w", w), ("b", b), *quant_inits("x", 0.5, 0.0, 6), *quant_inits("w", 0.5, 0.0, 4),
             *quant_inits("b", 2.0**-6, 0.0, 10)]
    path = tmp_path / "m.onnx"
    onnx.save(model(nodes, [("x", ["N", 4])], [("y", ["N", 3])], inits), path)
    compiled = api.compile(path, bits=16, input_range=(-8.0, 8.0))
    (dense,) = [n for n in compiled.graph.nodes if n.op is Op.DENSE]
    assert dense.output.type.dtype.frac_bits >= 6
    x = f32(RNG.uniform(-8, 8, size=(200, 4)))
    want = quant(x, 0.5, 0.0, 6) @ quant(w, 0.5, 0.0, 4, True, True).T + quant(b, 2.0**-6, 0.0, 10)
    np.testing.assert_array_equal(np.asarray(compiled.predict(x), dtype=np.float64), want)
