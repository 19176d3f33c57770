"""Binary and ternary weights: power-of-two scales by hand, and an exact fixed-point type for them."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac import api
from fpgac.ir import FixedType, FloatType, Graph, Op, TensorType, to_float, verify
from fpgac.passes import Binarize, MagnitudePrune, PassManager

F = FloatType()
# mean |w| = (0.3 + 0.5 + 0.1 + 0.02) / 4 = 0.23: log2 -2.12, scale 2^-2
W = np.array([[0.3, -0.5],
              [0.1, -0.02]])
# per column: [0.3, 0.1] mean 0.2 (log2 -2.32 -> 2^-2); [-0.9, -0.5] mean 0.7 (log2 -0.51 -> 2^-1)
WC = np.array([[0.3, -0.9],
               [0.1, -0.5]])


def net(w: np.ndarray) -> Graph:
    g = Graph("g")
    x = g.add_input("x", TensorType(F, (2,)))
    fc = g.add_node(Op.DENSE, [x, g.constant("w", w), g.constant("b", [0.1, 0.2])], [TensorType(F, (2,))], name="fc")
    g.outputs = [fc.output]
    verify(g)
    return g


def binarized(w: np.ndarray, *passes) -> np.ndarray:
    g = net(w)
    PassManager(list(passes), verify_each=True).run(g)
    return g.node("fc").inputs[1]


def test_binary_per_layer() -> None:
    w = binarized(W, Binarize())
    np.testing.assert_array_equal(w.data, [[0.25, -0.25], [0.25, -0.25]])
    assert w.type.sparsity is None


def test_binary_per_channel() -> None:
    np.testing.assert_array_equal(binarized(WC, Binarize(per_channel=True)).data, [[0.25, -0.5], [0.25, -0.5]])


def test_ternary_per_layer_records_its_zeros() -> None:
    # delta = 0.7 * 0.23 = 0.161: 0.3 and -0.5 stay, mean 0.4 (log2 -1.32 -> 2^-1)
    w = binarized(W, Binarize(ternary=True))
    np.testing.assert_array_equal(w.data, [[0.5, -0.5], [0, 0]])
    np.testing.assert_array_equal(w.type.sparsity.zero, [[False, False], [True, True]])


def test_ternary_per_channel_with_a_threshold() -> None:
    # column 0: delta = 0.5 * 0.2 = 0.1, 0.1 is not above it; column 1: delta 0.35, both stay (mean 0.7)
    w = binarized(WC, Binarize(ternary=True, threshold=0.5, per_channel=True))
    np.testing.assert_array_equal(w.data, [[0.25, -0.5], [0, -0.5]])


def test_pruned_weights_stay_zero_when_binarized() -> None:
    w = binarized(W, MagnitudePrune(sparsity=0.25), Binarize())  # 0.02 pruned; mean |w| of the rest 0.3
    np.testing.assert_array_equal(w.data, [[0.25, -0.25], [0.25, 0]])
    assert w.type.sparsity.nnz == 3


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("bits", [4, 8, 16])
def test_the_quantizer_gives_binarized_weights_an_exact_narrow_type(per_channel: bool, bits: int) -> None:
    rng = np.random.default_rng(0)
    g = net(rng.standard_normal((2, 2)))
    x = rng.uniform(-1, 1, (100, 2))
    for ternary in (False, True):
        compiled = api.compile(g, calibration=x, bits=bits, prune=f"{'ternary' if ternary else 'binary'}"
                               f"{':channel' if per_channel else ''}")
        want = compiled.float_graph.node("fc").inputs[1].data
        w = compiled.graph.node("fc").inputs[1]
        assert isinstance(w.type.dtype, FixedType)
        np.testing.assert_array_equal(to_float(w.data, w.type.dtype), want)  # exact
        if not per_channel:
            assert w.type.dtype.width <= 2  # mantissas -1, 0, +1 (one bit if all are >= 0)
        # the golden model then equals float up to the input's and output's rounding only
        assert np.abs(compiled.predict(x) - compiled.predict(x, float=True)).max() < 2 ** -(bits - 4)
