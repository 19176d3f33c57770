"""The Quantize pass on hand-worked cases: every type below is worked out by hand from the rules
in the module docstring (activation widths with the 1.25 margin, weights' integer bits, biases at
the sums' fractional bits, exact accumulators from the input type's mantissa range)."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.errors import UsageError
from fpgac.ir import Act, FixedType, FloatType, Graph, Op, Overflow, Rounding, TensorType, verify
from fpgac.passes import PassManager
from fpgac.passes.calibrate import Calibrate
from fpgac.passes.quantize import LayerConfig, QuantConfig, Quantize, activation_type, weight_type

F = FloatType()
RND_SAT = dict(rounding=Rounding.RND, overflow=Overflow.SAT)


def _dense_relu(w: np.ndarray, b: np.ndarray) -> Graph:
    g = Graph("hand")
    x = g.add_input("x", TensorType(F, (2,)))
    fc = g.add_node(Op.DENSE, [x, g.constant("w", w), g.constant("b", b)], [TensorType(F, (w.shape[1],))], name="fc")
    relu = g.add_node(Op.ACTIVATION, [fc.output], [TensorType(F, (w.shape[1],))], {"kind": Act.RELU}, name="relu")
    g.outputs = [relu.output]
    verify(g)
    return g


def _quantize(g: Graph, x: np.ndarray, config: QuantConfig) -> Quantize:
    Calibrate({"x": x}).run(g)
    q = Quantize(config)
    PassManager([q], verify_each=True).run(g)
    return q


def test_activation_type_hand_worked() -> None:
    # |x| <= 3 with the 1.25 margin: 3.75 needs 2 integer bits, plus the sign: fixed<8,3>
    assert activation_type(-3.0, 2.0, 8) == FixedType(8, 3, True, **RND_SAT)
    # nothing negative: unsigned; 0.9 * 1.25 = 1.125 needs 1 integer bit
    assert activation_type(0.0, 0.9, 6) == FixedType(6, 1, False, **RND_SAT)
    # all zero: no integer bits needed
    assert activation_type(0.0, 0.0, 4) == FixedType(4, 0, False, **RND_SAT)


def test_weight_type_hand_worked() -> None:
    # largest |w| = 1.3: 1 integer bit plus the sign, 8 bits wide (not exact with fewer fractional bits)
    assert weight_type(np.array([1.3, -0.2]), 8) == FixedType(8, 2, True, **RND_SAT)
    # 0.999 rounds up to 1.0 at 6 fractional bits: the integer bits grow by one to hold it
    assert weight_type(np.array([0.999]), 8) == FixedType(8, 1, False, **RND_SAT)
    # exact with fewer fractional bits (powers of two): only those are kept
    assert weight_type(np.array([0.5, -1.0, 0.25]), 8) == FixedType(4, 2, True, **RND_SAT)


def test_dense_relu_types_hand_worked() -> None:
    """x in [-1, 1] (calibrated) -> fixed<8,2> (1.25 needs 1 integer bit + sign), mantissas
    -128..127 at 6 fractional bits. w = [[0.5, -1], [0.25, 1]] is exact at 2 fractional bits:
    fixed<4,2>, mantissas [[2, -4], [1, 4]]. Bias at the sums' 8 fractional bits: b = [0.5, -0.25]
    -> mantissas [128, -64]. Sums per column over x in [-128, 127]^2:
    column 0: w = (2, 1): min = -128*3 = -384, max = 127*3 = 381; + 128 -> [-256, 509]
    column 1: w = (-4, 4): min = -128*4 + -4*127 = -1020, max = 127*4 + 4*128 = 1020; - 64 -> [-1084, 956]
    so the accumulator spans [-1084, 956]: 12 bits signed at 8 fractional bits: fixed<12,4>."""
    w = np.array([[0.5, -1.0], [0.25, 1.0]])
    g = _dense_relu(w, np.array([0.5, -0.25]))
    x = np.array([[-1.0, 1.0], [1.0, -1.0], [0.5, 0.25]])
    q = _quantize(g, x, QuantConfig(bits=8))
    fc = g.node("fc")
    assert g.inputs[0].type.dtype == FixedType(8, 2, True, **RND_SAT)
    assert fc.inputs[1].type.dtype == FixedType(4, 2, True, **RND_SAT)
    np.testing.assert_array_equal(fc.inputs[1].data, [[2, -4], [1, 4]])
    assert fc.inputs[2].type.dtype.frac_bits == 8
    np.testing.assert_array_equal(fc.inputs[2].data, [128, -64])
    assert fc.output.type.dtype == FixedType(12, 4, True)
    # ReLU keeps the exact value, over its input *type*: [0, 2047] unsigned at 8 fractional bits
    assert g.node("relu").output.type.dtype == FixedType(11, 3, False)
    roles = {(r.layer, r.role) for r in q.records}
    assert {("x", "input"), ("fc", "weight"), ("fc", "bias"), ("fc", "accum")} <= roles


def test_the_output_is_narrowed_by_a_quant_at_its_calibrated_range() -> None:
    g = _dense_relu(np.array([[0.5, -1.0], [0.25, 1.0]]), np.array([0.5, -0.25]))
    _quantize(g, np.array([[-1.0, 1.0], [1.0, -1.0], [0.5, 0.25]]), QuantConfig(bits=8))
    out = g.outputs[0]
    assert out.producer.op is Op.QUANT and out.name == "relu"
    # calibrated relu output: max(0, x @ w + b) over the rows: [[0.75, 1.75], [0.25, 0], [0.8125, 0]] ->
    # largest 1.75, * 1.25 = 2.19: 2 integer bits, unsigned
    assert out.type.dtype == FixedType(8, 2, False, **RND_SAT)


def test_per_layer_overrides_and_one_precision() -> None:
    g = _dense_relu(np.array([[0.5, -1.0], [0.25, 1.0]]), np.array([0.5, -0.25]))
    x = np.array([[-1.0, 1.0], [1.0, -1.0]])
    _quantize(g, x, QuantConfig(bits=8, layers={"fc": LayerConfig(weight_bits=6)}))
    assert g.node("fc").inputs[1].type.dtype.width == 4  # exact at 2 fractional bits whatever the width
    g = _dense_relu(np.array([[0.3, -1.1], [0.2, 1.0]]), np.array([0.5, -0.25]))
    _quantize(g, x, QuantConfig(bits=8, layers={"fc": LayerConfig(weight_bits=6)}))
    assert g.node("fc").inputs[1].type.dtype == FixedType(6, 2, True, **RND_SAT)
    g = _dense_relu(np.array([[0.5, -1.0], [0.25, 1.0]]), np.array([0.5, -0.25]))
    t = FixedType(10, 4, True, **RND_SAT)
    _quantize(g, x, QuantConfig(bits=8, precision=t))
    assert g.inputs[0].type.dtype == t and g.node("fc").inputs[1].type.dtype == t


def test_an_accumulator_override_too_narrow_is_refused() -> None:
    g = _dense_relu(np.array([[0.5, -1.0], [0.25, 1.0]]), np.array([0.5, -0.25]))
    config = QuantConfig(bits=8, layers={"fc": LayerConfig(accum=FixedType(8, 0))})
    with pytest.raises(UsageError, match=r"^layer 'fc': accum type fixed<8,0> cannot hold every sum exactly; it "
                                         r"needs fixed<12,4> \(fpgac never lets an accumulator wrap\)$"):
        _quantize(g, np.array([[-1.0, 1.0]]), config)


def test_an_unknown_layer_in_the_config_is_refused() -> None:
    g = _dense_relu(np.array([[0.5, -1.0], [0.25, 1.0]]), np.array([0.5, -0.25]))
    with pytest.raises(UsageError, match="^precision config names unknown layer 'fc2'; layers are: fc, relu$"):
        _quantize(g, np.array([[-1.0, 1.0]]), QuantConfig(bits=8, layers={"fc2": LayerConfig(bits=4)}))


def test_config_widths_are_checked() -> None:
    with pytest.raises(UsageError, match="^bit widths must be integers from 2 to 32, not 1$"):
        QuantConfig(bits=1)
    with pytest.raises(UsageError, match="^table size must be from 2 to 65536, not 1$"):
        QuantConfig(table_size=1)


def test_a_smooth_activation_becomes_a_table_with_its_known_range() -> None:
    g = Graph("sig")
    x = g.add_input("x", TensorType(F, (3,)))
    g.outputs = [g.add_node(Op.ACTIVATION, [x], [TensorType(F, (3,))], {"kind": Act.SIGMOID}, name="s").output]
    _quantize(g, np.array([[-4.0, 0.0, 4.0]]), QuantConfig(bits=10))
    node = g.node("s")
    assert node.op is Op.LOOKUP and node.attrs["kind"] is Act.SIGMOID
    # sigmoid's range is [0, 1]: ufixed<10,0>, whatever calibration saw
    assert node.output.type.dtype == FixedType(10, 0, False, **RND_SAT)
