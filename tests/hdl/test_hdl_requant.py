"""Requant in Amaranth's simulator: hand-worked rounding and overflow, then every input of several
formats in every mode against the golden model's ``requantize`` (numpy integer shifts)."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.hdl import Lanes, Overflow, Requant, Rounding, run_vectors
from fpgac.ir import FixedType
from fpgac.ir import Overflow as IROverflow
from fpgac.ir import Rounding as IRRounding
from fpgac.ir.fixed import requantize

HALVES = [-5, -3, -1, 1, 3, 5]  # with shift 1: -2.5 -1.5 -0.5 0.5 1.5 2.5


@pytest.mark.parametrize(("mode", "expected"), [
    (Rounding.TRN, [-3, -2, -1, 0, 1, 2]),
    (Rounding.TRN_ZERO, [-2, -1, 0, 0, 1, 2]),
    (Rounding.RND, [-2, -1, 0, 1, 2, 3]),
    (Rounding.RND_ZERO, [-2, -1, 0, 0, 1, 2]),
    (Rounding.RND_INF, [-3, -2, -1, 1, 2, 3]),
    (Rounding.RND_MIN_INF, [-3, -2, -1, 0, 1, 2]),
    (Rounding.RND_CONV, [-2, -2, 0, 0, 2, 2]),
])
def test_rounding_hand_worked(mode: Rounding, expected: list[int]) -> None:
    dut = Requant(Lanes(6, 5, True), shift=1, out_width=8, out_signed=True, rounding=mode)
    got, _ = run_vectors(dut, [HALVES], seed=1)
    assert got.tolist() == [expected]


@pytest.mark.parametrize(("mode", "expected"), [
    (Overflow.WRAP, [2, -4, 3, -3]),
    (Overflow.SAT, [-4, -4, 3, 3]),
    (Overflow.SAT_SYM, [-3, -3, 3, 3]),
    (Overflow.SAT_ZERO, [0, -4, 3, 0]),
])
def test_overflow_hand_worked(mode: Overflow, expected: list[int]) -> None:
    dut = Requant(Lanes(4, 5, True), shift=0, out_width=3, out_signed=True, overflow=mode)
    got, _ = run_vectors(dut, [[-6, -4, 3, 5]], seed=2)
    assert got.tolist() == [expected]


FORMATS = [  # source width, signed, bits dropped, destination width, signed
    (8, True, 3, 4, True),
    (8, False, 2, 4, True),
    (6, True, -2, 8, False),
    (7, True, 5, 3, False),
    (5, True, 6, 2, True),  # more bits dropped than the source has
    (9, True, 1, 9, False),
]


@pytest.mark.parametrize("rounding", list(IRRounding))
def test_every_mode_matches_golden_requantize(rounding: IRRounding) -> None:
    for seed, (sw, ss, shift, dw, ds) in enumerate(FORMATS):
        x = Lanes(4, sw, ss)
        values = np.arange(x.min, x.max + 1)
        rows = np.resize(values, (-(-len(values) // 4), 4))
        for overflow in IROverflow:
            src = FixedType(sw, sw - 6, ss)
            dst = FixedType(dw, dw - 6 + shift, ds, rounding, overflow)
            dut = Requant(x, shift=shift, out_width=dw, out_signed=ds, rounding=rounding, overflow=overflow)
            got, _ = run_vectors(dut, rows, seed=seed, valid_prob=0.8, ready_prob=0.8)
            np.testing.assert_array_equal(got, requantize(rows, src, dst), err_msg=f"{src} -> {dst}")


def test_tight_bounds_leave_out_comparators() -> None:
    """Bounds that cannot overflow: the result still equals the golden model on them."""
    x = Lanes(3, 12, True)
    dut = Requant(x, shift=4, out_width=8, out_signed=True, rounding="RND", overflow="SAT", bounds=(-2000, 2000))
    rows = np.array([[-2000, 2000, 7], [-8, 8, 0]])
    got, _ = run_vectors(dut, rows, seed=3)
    src, dst = FixedType(12, 12), FixedType(8, 12, True, IRRounding.RND, IROverflow.SAT)
    np.testing.assert_array_equal(got, requantize(rows, src, dst))


def test_modes_are_named_like_the_irs() -> None:
    assert Rounding.cast(IRRounding.RND_CONV) is Rounding.RND_CONV
    assert Overflow.cast("SAT_SYM") is Overflow.SAT_SYM
    with pytest.raises(ValueError, match=r"^Rounding must be one of TRN, .*, not 'ROUND'$"):
        Rounding.cast("ROUND")


def test_carry_chains_count_the_rounding_adder_and_the_comparators() -> None:
    from fpgac.hdl.requant import Requantize

    assert Requantize(shift=4, width=8, signed=False, rounding="TRN", overflow="SAT").carry_chains() == 1  # a shift
    assert Requantize(shift=4, width=8, signed=False, rounding="RND", overflow="SAT").carry_chains() == 2
    assert Requantize(shift=4, width=8, signed=True, rounding="TRN", overflow="WRAP").carry_chains() == 0
    assert Requantize(shift=0, width=8, signed=True, rounding="RND", overflow="SAT").carry_chains() == 1
