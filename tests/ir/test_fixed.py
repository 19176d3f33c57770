"""Exact fixed-point conversions and result types, with hand-worked values.

Expected mantissas are worked by hand from ap_fixed's definitions (a mantissa ``m`` of
``fixed<W,I>`` stands for ``m * 2**(I - W)``); ``test_fixed_vs_ap_fixed.py`` checks the same
functions against the real headers.
"""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.errors import UsageError
from fpgac.ir import (
    FixedType,
    Overflow,
    Rounding,
    add_type,
    mul_type,
    quantize,
    requantize,
    to_float,
)

R, O = Rounding, Overflow

# Values in LSBs: the ties +-0.5, +-1.5, +-2.5, then non-ties.
LSBS = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.75, -0.25, 0.25, 0.75, 1.25, -1.75]
ROUNDED = {
    R.TRN: [-3, -2, -1, 0, 1, 2, -1, -1, 0, 0, 1, -2],
    R.TRN_ZERO: [-2, -1, 0, 0, 1, 2, 0, 0, 0, 0, 1, -1],
    R.RND: [-2, -1, 0, 1, 2, 3, -1, 0, 0, 1, 1, -2],
    R.RND_ZERO: [-2, -1, 0, 0, 1, 2, -1, 0, 0, 1, 1, -2],
    R.RND_INF: [-3, -2, -1, 1, 2, 3, -1, 0, 0, 1, 1, -2],
    R.RND_MIN_INF: [-3, -2, -1, 0, 1, 2, -1, 0, 0, 1, 1, -2],
    R.RND_CONV: [-2, -2, 0, 0, 2, 2, -1, 0, 0, 1, 1, -2],
}


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize(("width", "int_bits"), [(8, 8), (8, 4), (6, -2), (4, 6)])
def test_rounding_modes_at_ties_and_between(rounding: Rounding, width: int, int_bits: int) -> None:
    t = FixedType(width, int_bits, rounding=rounding)
    x = np.ldexp(np.array(LSBS), -t.frac_bits)
    assert quantize(x, t).tolist() == ROUNDED[rounding]


def test_rounding_sees_every_bit_of_the_double() -> None:
    # 0.5 LSB + 2**-60 is not a tie: a float computation that loses the sticky bit gets 0.
    t = FixedType(8, 8, rounding=R.RND_MIN_INF)
    assert quantize(np.array([0.5 + 2.0**-52, -0.5 - 2.0**-52, 0.5]), t).tolist() == [
        1,
        -1,
        0,
    ]
    tiny = FixedType(8, 8, rounding=R.TRN)
    assert quantize(np.array([1e-300, -1e-300]), tiny).tolist() == [0, -1]


# fixed<4,2>: mantissas -8..7, values -2..1.75 in steps of 0.25.
SIGNED_IN = [1.75, 2.0, 2.25, 5.0, -2.0, -2.25, -5.0, np.inf, -np.inf]
SIGNED_OUT = {
    O.WRAP: [7, -8, -7, 4, -8, 7, -4, 0, 0],
    O.SAT: [7, 7, 7, 7, -8, -8, -8, 7, -8],
    O.SAT_ZERO: [7, 0, 0, 0, -8, 0, 0, 0, 0],
    O.SAT_SYM: [
        7,
        7,
        7,
        7,
        -7,
        -7,
        -7,
        7,
        -7,
    ],  # ap_fixed: the minimum itself becomes -max
}
# ufixed<4,2>: mantissas 0..15, values 0..3.75.
UNSIGNED_IN = [3.75, 4.0, 4.25, -0.25, -4.0, -4.25, 0.0, np.inf, -np.inf]
UNSIGNED_OUT = {
    O.WRAP: [15, 0, 1, 15, 0, 15, 0, 0, 0],  # modulo 16, negatives included
    O.SAT: [15, 15, 15, 0, 0, 0, 0, 15, 0],
    O.SAT_ZERO: [15, 0, 0, 0, 0, 0, 0, 0, 0],
    O.SAT_SYM: [15, 15, 15, 0, 0, 0, 0, 15, 0],
}


@pytest.mark.parametrize("overflow", list(Overflow))
def test_overflow_modes_signed(overflow: Overflow) -> None:
    t = FixedType(4, 2, overflow=overflow)
    assert quantize(np.array(SIGNED_IN), t).tolist() == SIGNED_OUT[overflow]


@pytest.mark.parametrize("overflow", list(Overflow))
def test_overflow_modes_unsigned(overflow: Overflow) -> None:
    t = FixedType(4, 2, signed=False, overflow=overflow)
    assert quantize(np.array(UNSIGNED_IN), t).tolist() == UNSIGNED_OUT[overflow]


def test_rounding_happens_before_overflow() -> None:
    x = np.array([1.875, -2.125, -2.25])  # 7.5, -8.5, -9 LSBs of fixed<4,2>
    assert quantize(x, FixedType(4, 2, rounding=R.RND, overflow=O.SAT)).tolist() == [
        7,
        -8,
        -8,
    ]
    assert quantize(x, FixedType(4, 2, rounding=R.RND, overflow=O.WRAP)).tolist() == [
        -8,
        -8,
        7,
    ]
    assert quantize(x, FixedType(4, 2, rounding=R.RND, overflow=O.SAT_SYM)).tolist() == [7, -7, -7]
    assert quantize(x, FixedType(4, 2, rounding=R.RND_INF, overflow=O.SAT_ZERO)).tolist() == [0, 0, 0]


def test_one_bit_sat_sym_acts_as_sat() -> None:
    # ap_fixed sets the pattern 0b1 on underflow, which in one signed bit is -1, not -max = 0.
    t = FixedType(1, 1, overflow=O.SAT_SYM)
    assert quantize(np.array([-3.0, -1.0, 0.0, 2.0]), t).tolist() == [-1, -1, 0, 0]


def test_huge_values_wrap_exactly() -> None:
    t = FixedType(32, 32)
    x = np.array([2.0**70 + 3 * 2.0**20, -(2.0**70) - 5 * 2.0**18, 2.0**1000])
    assert quantize(x, t).tolist() == [3 << 20, -5 << 18, 0]


def test_requantize_widening_is_exact() -> None:
    src, dst = FixedType(8, 3), FixedType(16, 6)
    m = np.arange(-128, 128)
    out = requantize(m, src, dst)
    assert out.tolist() == (m * 32).tolist()  # 5 fractional bits to 10
    np.testing.assert_array_equal(to_float(out, dst), to_float(m, src))


def test_requantize_narrowing_rounds_then_saturates() -> None:
    src, dst = FixedType(8, 4), FixedType(4, 2, rounding=R.RND_CONV, overflow=O.SAT)
    # -13/16 = -3.25 LSBs of dst, -14/16 = -3.5, -10/16 = -2.5, 127/16 = 31.75 -> saturates
    assert requantize(np.array([-13, -14, -10, 127, -128]), src, dst).tolist() == [
        -3,
        -4,
        -2,
        7,
        -8,
    ]


def test_requantize_unsigned_to_signed() -> None:
    src, dst = FixedType(4, 4, signed=False), FixedType(4, 4, overflow=O.SAT)
    assert requantize(np.array([0, 7, 8, 15]), src, dst).tolist() == [0, 7, 7, 7]
    wrap = FixedType(4, 4)
    assert requantize(np.array([0, 7, 8, 15]), src, wrap).tolist() == [0, 7, -8, -1]


def test_to_float() -> None:
    assert to_float(np.array([-8, 7]), FixedType(4, 2)).tolist() == [-2.0, 1.75]
    assert to_float(np.array([3]), FixedType(4, 6)).tolist() == [12.0]


@pytest.mark.parametrize(
    ("a", "b", "plus", "mult"),
    [
        (FixedType(8, 3), FixedType(6, 2), FixedType(9, 4), FixedType(14, 5)),
        (FixedType(8, 3), FixedType(6, 2, False), FixedType(9, 4), FixedType(14, 5)),
        (FixedType(8, 8, False), FixedType(4, 4), FixedType(10, 10), FixedType(12, 12)),
        (
            FixedType(4, 2, False),
            FixedType(6, 6, False),
            FixedType(9, 7, False),
            FixedType(10, 8, False),
        ),
        (
            FixedType(4, 0, False),
            FixedType(4, -2, False),
            FixedType(7, 1, False),
            FixedType(8, -2, False),
        ),
    ],
)
def test_result_types(a: FixedType, b: FixedType, plus: FixedType, mult: FixedType) -> None:
    assert add_type(a, b) == plus
    assert add_type(b, a) == plus
    assert mul_type(a, b) == mult


def test_result_types_never_overflow() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        a, b = (
            FixedType(
                int(rng.integers(1, 17)),
                int(rng.integers(-8, 21)),
                bool(rng.integers(2)),
            )
            for _ in "ab"
        )
        for ma in (
            a.min_mantissa,
            a.max_mantissa,
            0,
            int(rng.integers(a.min_mantissa, a.max_mantissa + 1)),
        ):
            for mb in (
                b.min_mantissa,
                b.max_mantissa,
                int(rng.integers(b.min_mantissa, b.max_mantissa + 1)),
            ):
                s = add_type(a, b)
                total = (ma << (s.frac_bits - a.frac_bits)) + (mb << (s.frac_bits - b.frac_bits))
                assert s.min_mantissa <= total <= s.max_mantissa, (a, b, ma, mb, s)
                p = mul_type(a, b)
                assert p.frac_bits == a.frac_bits + b.frac_bits
                assert p.min_mantissa <= ma * mb <= p.max_mantissa, (a, b, ma, mb, p)


def test_errors() -> None:
    with pytest.raises(UsageError, match=r"^cannot quantize NaN to fixed<8,4>: 1 of 2 values are NaN$"):
        quantize(np.array([1.0, np.nan]), FixedType(8, 4))
    with pytest.raises(
        UsageError,
        match=r"^target type fixed<63,3> is 63 bits wide: .* at most 62 bits$",
    ):
        quantize(np.array([1.0]), FixedType(63, 3))
    with pytest.raises(
        UsageError,
        match=r"^mantissas out of range for fixed<4,2>: expected -8\.\.7, got -8\.\.8$",
    ):
        requantize(np.array([-8, 8]), FixedType(4, 2), FixedType(8, 4))
    with pytest.raises(UsageError, match=r"^the exact product of int<40> and int<30> needs 70 bits"):
        mul_type(FixedType(40, 40), FixedType(30, 30))
