"""Select (wiring) and MaxWindows (flattened max pool) against numpy, under random stalls."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.hdl import Chain, Lanes, MaxWindows, Select, StreamBuffer, run_vectors


def test_select_moves_and_fills_lanes() -> None:
    x = Lanes(5, 6, True)
    rows = np.random.default_rng(0).integers(x.min, x.max + 1, (40, 5))
    indices = [4, -1, 0, 0, 2, -1]
    select = Select(x, indices, fill=-7)
    dut = Chain([select, StreamBuffer(select.out_lanes.bits)])  # wires alone have no clock to simulate
    dut.out_lanes = select.out_lanes
    out, _ = run_vectors(dut, rows, seed=1)
    expected = np.where(np.array(indices) >= 0, rows[:, np.maximum(indices, 0)], -7)
    assert np.array_equal(out, expected)


def test_max_windows_like_a_2x2_pool() -> None:
    x = Lanes(16, 5, True)  # a 4x4 image, row-major
    windows = [[r * 4 + c, r * 4 + c + 1, r * 4 + c + 4, r * 4 + c + 5] for r in (0, 2) for c in (0, 2)]
    windows.append([7])  # a window of one lane is that lane
    rows = np.random.default_rng(2).integers(x.min, x.max + 1, (50, 16))
    dut = MaxWindows(x, windows, levels_per_stage=1)
    out, _ = run_vectors(dut, rows, seed=3)
    expected = np.stack([rows[:, w].max(axis=1) for w in windows], axis=1)
    assert np.array_equal(out, expected)
    assert dut.latency == 2


@pytest.mark.parametrize(("make", "message"), [
    (lambda: Select(Lanes(3, 4), [3]), "outside"),
    (lambda: Select(Lanes(3, 4), [-1], fill=99), "does not fit"),
    (lambda: MaxWindows(Lanes(3, 4), [[]]), "at least one lane"),
])
def test_bad_arguments(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()
