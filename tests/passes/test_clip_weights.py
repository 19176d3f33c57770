"""Weight clipping: absolute, per-layer and global standard deviations, with hand-worked limits."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.errors import UsageError
from fpgac.ir import FloatType, Graph, Op, TensorType, verify
from fpgac.passes import ClipWeights, MagnitudePrune, PassManager, Scope

F = FloatType()
W1 = np.array([[3.0, -1.0], [1.0, -3.0]])  # std sqrt(5) = 2.236
W2 = np.array([[0.5], [-0.5]])  # std 0.5


def net() -> Graph:
    g = Graph("g")
    x = g.add_input("x", TensorType(F, (2,)))
    fc1 = g.add_node(Op.DENSE, [x, g.constant("w1", W1), g.constant("b1", [5.0, -5.0])], [TensorType(F, (2,))],
                     name="fc1")
    fc2 = g.add_node(Op.DENSE, [fc1.output, g.constant("w2", W2)], [TensorType(F, (1,))], name="fc2")
    g.outputs = [fc2.output]
    return g


def weights(g: Graph) -> tuple[np.ndarray, np.ndarray]:
    PassManager([], verify_each=True).run(g)
    verify(g)
    return g.node("fc1").inputs[1].data, g.node("fc2").inputs[1].data


def test_absolute_limit() -> None:
    g = net()
    assert ClipWeights(limit=2.0).run(g)
    w1, w2 = weights(g)
    np.testing.assert_array_equal(w1, [[2.0, -1.0], [1.0, -2.0]])
    np.testing.assert_array_equal(w2, W2)
    np.testing.assert_array_equal(g.node("fc1").inputs[2].data, [5.0, -5.0])  # biases are not clipped
    assert not ClipWeights(limit=2.0).run(g)


def test_per_layer_standard_deviations() -> None:
    g = net()
    ClipWeights(std=1.0).run(g)  # fc1 to +-2.236, fc2 to +-0.5 (unchanged)
    w1, w2 = weights(g)
    np.testing.assert_allclose(w1, [[np.sqrt(5), -1.0], [1.0, -np.sqrt(5)]])
    np.testing.assert_array_equal(w2, W2)


def test_global_standard_deviation() -> None:
    g = net()
    # all six weights: mean 0, variance (9+1+1+9+0.25+0.25)/6 = 3.4167, std 1.848; 0.5 * std = 0.924
    ClipWeights(std=0.5, scope=Scope.GLOBAL).run(g)
    w1, w2 = weights(g)
    limit = 0.5 * np.sqrt(20.5 / 6)
    np.testing.assert_allclose(w1, [[limit, -limit], [limit, -limit]])
    np.testing.assert_array_equal(w2, W2)


def test_pruned_zeros_stay_recorded() -> None:
    g = net()
    PassManager([MagnitudePrune(sparsity=0.5, layers=frozenset({"fc1"})), ClipWeights(limit=2.0)],
                verify_each=True).run(g)
    w = g.node("fc1").inputs[1]
    np.testing.assert_array_equal(w.data, [[2.0, 0.0], [0.0, -2.0]])
    assert w.type.sparsity.nnz == 2


@pytest.mark.parametrize("options, message", [
    (dict(), "weight clipping takes either an absolute limit or a multiple of the standard deviation"),
    (dict(limit=1.0, std=1.0), "weight clipping takes either an absolute limit or a multiple of the standard deviation"),
    (dict(limit=0.0), r"the clipping limit must be positive, not 0\.0"),
    (dict(std=-1.0), r"the clipping limit must be positive, not -1\.0"),
])
def test_options_are_checked(options, message) -> None:
    with pytest.raises(UsageError, match=f"^{message}$"):
        ClipWeights(**options)
