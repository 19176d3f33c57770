"""Comparator and constant-product activations against numpy, under random stalls."""

from __future__ import annotations

import numpy as np

from fpgac.hdl import Abs, Clip, Lanes, PReLU, ReLU, ScaleShift, run_vectors


def _all(x: Lanes) -> np.ndarray:
    values = np.arange(x.min, x.max + 1)
    return np.resize(values, (-(-len(values) // x.count), x.count))


def test_relu() -> None:
    x = Lanes(4, 6, True)
    dut = ReLU(x)
    assert dut.out_lanes == Lanes(4, 5, False)  # the golden model's ufixed: one bit fewer
    rows = _all(x)
    got, _ = run_vectors(dut, rows, seed=1)
    np.testing.assert_array_equal(got, np.maximum(rows, 0))


def test_relu_to_a_given_format() -> None:
    x = Lanes(2, 6, True)
    got, _ = run_vectors(ReLU(x, out_width=6, out_signed=True), [[-32, 31], [5, -1]], seed=2)
    np.testing.assert_array_equal(got, [[0, 31], [5, 0]])


def test_clip() -> None:
    x = Lanes(3, 7, True)
    dut = Clip(x, lo=-20, hi=13)
    rows = _all(x)
    got, _ = run_vectors(dut, rows, seed=3)
    np.testing.assert_array_equal(got, np.clip(rows, -20, 13))
    assert dut.out_lanes == Lanes(3, 6, True)


def test_abs() -> None:
    x = Lanes(5, 5, True)
    rows = _all(x)
    got, _ = run_vectors(Abs(x), rows, seed=4)
    np.testing.assert_array_equal(got, np.abs(rows))  # |-16| = 16 needs the extra bit


def test_prelu() -> None:
    x = Lanes(4, 6, True)
    slopes = np.array([3, -5, 0, 13])  # with 3 fractional bits: 0.375, -0.625, 0, 1.625
    dut = PReLU(x, slopes=slopes, slope_frac=3)
    rows = _all(x)
    got, _ = run_vectors(dut, rows, seed=5)
    np.testing.assert_array_equal(got, np.where(rows >= 0, rows << 3, rows * slopes))


def test_prelu_of_unsigned_input_is_a_shift() -> None:
    x = Lanes(2, 4, False)
    got, _ = run_vectors(PReLU(x, slopes=[1, 2], slope_frac=2), [[0, 15], [3, 4]], seed=6)
    np.testing.assert_array_equal(got, [[0, 60], [12, 16]])


def test_scale_shift() -> None:
    x = Lanes(4, 6, True)
    scale, shift = np.array([7, -3, 0, 100]), np.array([-50, 9, 4, 0])
    rows = _all(x)
    got, _ = run_vectors(ScaleShift(x, scale=scale, shift=shift), rows, seed=7)
    np.testing.assert_array_equal(got, rows * scale + shift)
