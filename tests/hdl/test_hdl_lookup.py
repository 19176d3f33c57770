"""Lookup ROMs: hand-worked plain and interpolated tables, then every input of real tables against
``Table.lookup`` (the golden model's indexing), under random stalls."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.hdl import Lanes, Lookup, TableSpec, run_vectors
from fpgac.ir import FixedType, Overflow, Rounding
from fpgac.ir.tables import Table


def test_plain_table_hand_worked() -> None:
    """4 entries, shift 1, offset 0: buckets {0,1} {2,3} {4,5} {6,7}; outside reads the ends."""
    spec = TableSpec((1, 5, 9, 13), shift=1, offset=0)
    dut = Lookup(Lanes(4, 8, True), spec)
    got, _ = run_vectors(dut, [[0, 1, 2, 3], [4, 5, 6, 7], [-5, 100, -128, 127]], seed=1)
    assert got.tolist() == [[1, 1, 5, 5], [9, 9, 13, 13], [1, 13, 1, 13]]


def test_interpolated_table_hand_worked() -> None:
    """values 0 10 20 15, shift 2: y = v[i] + ((v[i+1] - v[i]) * r >> 2), the shift flooring."""
    spec = TableSpec((0, 10, 20, 15), shift=2, offset=0, interpolate=True)
    dut = Lookup(Lanes(4, 6, True), spec)
    assert dut.latency == 2
    rows = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 31, -1, -32]]
    got, _ = run_vectors(dut, rows, seed=2)
    # 8..11: 20 + floor(-5 r / 4) = 20, 18, 17, 16
    assert got.tolist() == [[0, 2, 5, 7], [10, 12, 15, 17], [20, 18, 17, 16], [15, 15, 0, 0]]


SIGMOID = (lambda v: 1 / (1 + np.exp(-v)), FixedType(8, 1, False, Rounding.RND, Overflow.SAT), -6.0, 6.0)
TANH = (np.tanh, FixedType(8, 1, True, Rounding.RND, Overflow.SAT), -3.0, 3.0)


@pytest.mark.parametrize("interpolate", [False, True])
@pytest.mark.parametrize(("fn", "in_type", "size"), [
    (SIGMOID, FixedType(10, 4), 64),
    (TANH, FixedType(8, 3), 1024),  # one entry per input value: shift 0
    (TANH, FixedType(9, 2, False), 16),
])
def test_matches_table_lookup(fn, in_type: FixedType, size: int, interpolate: bool) -> None:
    f, out_type, lo, hi = fn
    table = Table.build("f", f, in_type, out_type, lo, hi, size, interpolate=interpolate)
    x = Lanes(3, in_type.width, in_type.signed)
    values = np.arange(in_type.min_mantissa, in_type.max_mantissa + 1)
    rows = np.resize(values, (-(-len(values) // 3), 3))
    dut = Lookup(x, table, out_width=out_type.width, out_signed=out_type.signed)  # the IR Table, as it is
    got, _ = run_vectors(dut, rows, seed=size)
    np.testing.assert_array_equal(got, table.lookup(rows))


def test_table_spec_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match=r"^a table needs values, shift and offset attributes, not 3$"):
        TableSpec.cast(3)
