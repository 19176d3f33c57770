"""Convolution and pooling on pixel streams against the golden model (numpy integer math on a
one-node graph), several images back to back, under random stalls."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.hdl import Conv, GlobalPool, Lanes, Pool, run_vectors
from fpgac.ir import FixedType, Graph, Op, PoolKind, TensorType, infer_shapes, semantics
from fpgac.sim import run_fixed

X_TYPE = FixedType(6, 6)  # integer mantissas: a value is its mantissa


def _pixels(images: np.ndarray) -> np.ndarray:
    """[N, C, *spatial] -> one row per pixel, row-major, the C channels in each row."""
    _n, c = images.shape[:2]
    return np.moveaxis(images, 1, -1).reshape(-1, c)


def _images(rows: np.ndarray, n: int, spatial: tuple[int, ...]) -> np.ndarray:
    return np.moveaxis(rows.reshape(n, *spatial, rows.shape[1]), -1, 1)


def _golden(op: Op, images: np.ndarray, out_shape: tuple[int, ...], frac: int, attrs: dict,
            weights: np.ndarray | None = None, bias: np.ndarray | None = None) -> np.ndarray:
    g = Graph("t")
    x = g.add_input("x", TensorType(X_TYPE, images.shape[1:]))
    inputs = [x]
    if weights is not None:
        inputs.append(g.constant("w", weights, FixedType(8, 8)))
        inputs.append(g.constant("b", bias, FixedType(20, 20)))
    out = FixedType(48, 48 - frac)
    g.outputs = [g.add_node(op, inputs, [TensorType(out, out_shape)], attrs).output]
    (m,) = run_fixed(g, images.astype(np.float64), mantissas=True)
    return m


def _pool_node(c: int, size: tuple[int, ...], attrs: dict, frac: int):
    """The quantized Pool node of these attributes, its output shape from the IR's rule."""
    g = Graph("p")
    x = g.add_input("x", TensorType(X_TYPE, (c, *size)))
    node = g.add_node(Op.POOL, [x], [TensorType(FixedType(48, 48 - frac), ())], attrs)
    node.output.type = TensorType(node.output.type.dtype, infer_shapes(node)[0])
    return node


CONVS = [  # C, M, size, kernel, strides, dilations, pads, groups
    (2, 3, (5, 6), (3, 3), (1, 1), (1, 1), (1, 1, 1, 1), 1),
    (2, 4, (6, 5), (2, 3), (2, 1), (1, 2), (0, 2, 1, 0), 2),
    (1, 2, (4, 4), (2, 2), (3, 3), (1, 1), (2, 2, 2, 2), 1),  # stride > kernel, windows in the padding
    (2, 3, (12,), (5,), (1,), (1,), (2, 2), 1),  # 1-D
    (4, 4, (9,), (3,), (2,), (2,), (0, 1), 4),  # 1-D depthwise, stride and dilation
]


@pytest.mark.parametrize("serial", [False, True], ids=["taps at once", "a tap a cycle"])
@pytest.mark.parametrize("case", range(len(CONVS)))
def test_conv_matches_golden(case: int, serial: bool) -> None:
    c, mo, size, kernel, strides, dilations, pads, groups = CONVS[case]
    rng = np.random.default_rng(case)
    weights = rng.integers(-6, 7, size=(mo, c // groups, *kernel))
    weights[rng.random(weights.shape) < 0.3] = 0
    bias = rng.integers(-40, 41, size=mo)
    images = rng.integers(X_TYPE.min_mantissa, X_TYPE.max_mantissa + 1, size=(3, c, *size))
    images[0, :, 0] = X_TYPE.max_mantissa
    x = Lanes(c, X_TYPE.width, True)
    dut = Conv(x, size, weights, bias, strides=strides, dilations=dilations, pads=pads, groups=groups, serial=serial)
    out_shape = (mo, *dut.out_size)
    expected = _golden(Op.CONV, images, out_shape, 0, {"strides": list(strides), "dilations": list(dilations),
                                                           "pads": list(pads), "groups": groups}, weights, bias)
    rows, _ = run_vectors(dut, _pixels(images), count=3 * int(np.prod(dut.out_size)), seed=case)
    np.testing.assert_array_equal(_images(rows, 3, dut.out_size), expected)


def test_conv_time_multiplexed() -> None:
    c, mo, size = 2, 3, (4, 5)
    rng = np.random.default_rng(9)
    weights = rng.integers(-6, 7, size=(mo, c, 3, 3))
    bias = rng.integers(-40, 41, size=mo)
    images = rng.integers(-32, 32, size=(2, c, *size))
    dut = Conv(Lanes(c, 6, True), size, weights, bias, pads=(1, 1, 1, 1), reuse=6)
    expected = _golden(Op.CONV, images, (mo, *size), 0, {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1],
                                                              "groups": 1}, weights, bias)
    rows, _ = run_vectors(dut, _pixels(images), count=2 * 20, seed=3)
    np.testing.assert_array_equal(_images(rows, 2, size), expected)


def test_conv_streams_a_pixel_a_cycle() -> None:
    """At full rate the line buffer keeps up: about one cycle per pixel, plus a short drain per image."""
    size = (6, 6)
    weights = np.ones((2, 1, 3, 3), dtype=np.int64)
    images = np.arange(4 * 36).reshape(4, 1, *size) % 50 - 25
    dut = Conv(Lanes(1, 7, True), size, weights, pads=(1, 1, 1, 1))
    rows, run = run_vectors(dut, _pixels(images), count=4 * 36, valid_prob=1.0, ready_prob=1.0)
    expected = _golden(Op.CONV, images, (2, *size), 0, {"strides": [1, 1], "dilations": [1, 1], "pads": [1, 1, 1, 1],
                                                            "groups": 1}, weights, np.zeros(2, np.int64))
    np.testing.assert_array_equal(_images(rows, 4, size), expected)
    assert run.out_cycles["o"][-1] <= 4 * (36 + 8) + 10  # the last row of outputs waits for the last row of inputs


def test_max_pool_hand_worked() -> None:
    image = np.arange(1, 10).reshape(1, 1, 3, 3)  # 1 2 3 / 4 5 6 / 7 8 9
    dut = Pool(Lanes(1, 6, True), (3, 3), (2, 2), kind="max", out_size=(2, 2))
    rows, _ = run_vectors(dut, _pixels(image), count=4, seed=1)
    assert rows[:, 0].tolist() == [5, 6, 8, 9]


POOLS = [  # kind, C, size, kernel, strides, pads, ceil_mode, count_include_pad, bits
    (PoolKind.MAX, 2, (6, 6), (2, 2), (2, 2), (0, 0, 0, 0), False, False, None),
    (PoolKind.MAX, 3, (9,), (2,), (2,), (0, 0), False, False, None),
    (PoolKind.MAX, 1, (5, 5), (3, 3), (2, 2), (1, 1, 1, 1), True, False, None),
    (PoolKind.AVG, 2, (4, 4), (2, 2), (2, 2), (0, 0, 0, 0), False, True, 11),
    (PoolKind.AVG, 1, (5, 5), (3, 3), (2, 2), (1, 1, 1, 1), True, False, 6),
    (PoolKind.AVG, 1, (5, 5), (3, 3), (2, 2), (1, 1, 1, 1), True, True, 6),
    (PoolKind.AVG, 2, (7,), (3,), (2,), (1, 0), False, False, 5),
]


@pytest.mark.parametrize("case", range(len(POOLS)))
def test_pool_matches_golden(case: int) -> None:
    kind, c, size, kernel, strides, pads, ceil_mode, include, bits = POOLS[case]
    rng = np.random.default_rng(case)
    images = rng.integers(X_TYPE.min_mantissa, X_TYPE.max_mantissa + 1, size=(3, c, *size))
    images[1] = X_TYPE.min_mantissa
    attrs = {"kind": kind, "kernel": list(kernel), "strides": list(strides), "dilations": [1] * len(size), "pads": list(pads),
             "ceil_mode": ceil_mode, "count_include_pad": include}
    if bits is not None:
        attrs["reciprocal_bits"] = bits
    # the output size and the reciprocals come from the IR (its shape rule and the pool's plan)
    node = _pool_node(c, size, attrs, bits or 0)
    plan = semantics.plan(node)
    taps = int(np.prod(kernel))
    reciprocals = (semantics.round_half_up_reciprocal(np.arange(taps + 1), bits).tolist() if bits is not None
                   else None)
    dut = Pool(Lanes(c, X_TYPE.width, True), size, kernel, kind=kind, out_size=plan.window.out, strides=strides,
               pads=pads, count_include_pad=include, reciprocals=reciprocals)
    expected = _golden(Op.POOL, images, (c, *dut.out_size), bits or 0, attrs)
    rows, _ = run_vectors(dut, _pixels(images), count=3 * int(np.prod(dut.out_size)), seed=case)
    np.testing.assert_array_equal(_images(rows, 3, dut.out_size), expected)


@pytest.mark.parametrize(("kind", "bits"), [(PoolKind.MAX, None), (PoolKind.AVG, 9)])
def test_global_pool_matches_golden(kind: PoolKind, bits: int | None) -> None:
    rng = np.random.default_rng(2)
    images = rng.integers(X_TYPE.min_mantissa, X_TYPE.max_mantissa + 1, size=(4, 3, 2, 5))
    images[0] = X_TYPE.max_mantissa
    reciprocal = None if bits is None else int(semantics.round_half_up_reciprocal(10, bits))
    dut = GlobalPool(Lanes(3, X_TYPE.width, True), 10, kind=kind, reciprocal=reciprocal)
    attrs = {"kind": kind} | ({} if bits is None else {"reciprocal_bits": bits})
    expected = _golden(Op.GLOBAL_POOL, images, (3, 1, 1), bits or 0, attrs)
    rows, _ = run_vectors(dut, _pixels(images), count=4, seed=7)
    np.testing.assert_array_equal(rows, expected.reshape(4, 3))
