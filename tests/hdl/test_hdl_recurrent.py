"""``fpgac.hdl.recurrent``'s arithmetic of folding and timing, worked by hand (the components
themselves are checked bit for bit on Verilator in ``tests/backends/test_amaranth_recurrent.py``,
where the measured latency must equal these figures)."""

from __future__ import annotations

import pytest

from fpgac.hdl.recurrent import folding
from fpgac.hdl.recurrent_stack import stack_timing


@pytest.mark.parametrize("hidden, inputs, reuse, expected", [
    (128, 256, 1024, (32, 1)),   # 4*128*256/1024 = 128 multipliers: 32 units x 4 gates, an input a cycle
    (128, 156, 1024, (16, 1)),   # 78 wanted: the largest divisor of 128 with 4 units <= 78 is 16
    (16, 22, 8, (16, 3)),        # 176 wanted, more than 4*16: all units, ceil(176/64) = 3 inputs a cycle
    (12, 16, 1000, (1, 1)),      # fewer than 4 wanted: one unit
])
def test_folding_picks_units_that_divide_the_hidden_size(hidden, inputs, reuse, expected) -> None:
    assert folding(hidden, inputs, reuse) == expected


def test_stack_timing_by_hand() -> None:
    # two layers of 3 and 5 cycles a step, 2 steps, Y collected at the end. Layer 0 starts step 0
    # at cycle 1 (the Serialize's first word), ends it at 4; layer 1 starts step 0 at 4. Layer 0's
    # step 1 starts at 4 (its word 0 is taken at 4, the same cycle), layer 1's at max(4 + 5, 4 + 3)
    # = 9, ending at 14; the Collect's word moves at 15.
    assert stack_timing([3, 5], [True, True], 2, collect=True) == (15, 10)
    # one layer, h out only: steps at 1, 1 + 4, 1 + 8: the word at 13
    assert stack_timing([4], [False], 3, collect=False) == (13, 12)
