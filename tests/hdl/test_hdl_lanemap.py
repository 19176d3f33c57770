"""Select (wiring), MaxWindows (flattened max pool) and Groups (a part per group of lanes) against
numpy, under random stalls."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.hdl import Argmax, Chain, Groups, Lanes, MaxWindows, ReLU, Select, StreamBuffer, run_vectors


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
    (lambda: Select(Lanes(3, 4), [3]), r"^Select indices \[3\] are outside the 3 input lanes \(-1: fill\)$"),
    (lambda: Select(Lanes(3, 4), [-1], fill=99), r"^Select fill 99 does not fit 3xs4$"),
    (lambda: MaxWindows(Lanes(3, 4), [[]]), r"^MaxWindows needs at least one window, and every window at least one lane$"),
])
def test_bad_arguments(make, message) -> None:
    with pytest.raises(ValueError, match=message):
        make()


# a [3, 4] tensor, channels-first: groups along axis 0 (strided lanes) and along axis 1 (runs)
ALONG_0 = [[0, 4, 8], [1, 5, 9], [2, 6, 10], [3, 7, 11]]
ALONG_1 = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]


@pytest.mark.parametrize("groups", [ALONG_0, ALONG_1], ids=["axis 0", "axis 1"])
def test_groups_of_argmax_put_each_result_at_its_group(groups) -> None:
    x = Lanes(12, 4, True)
    rows = np.random.default_rng(4).integers(x.min, x.max + 1, (60, 12))
    rows[:5] = 3  # ties: the first lane of a group wins
    dut = Groups(x, groups, lambda lanes: Argmax(lanes, levels_per_stage=1))
    assert dut.latency == dut.parts[0].latency >= 1
    out, _ = run_vectors(dut, rows, seed=5)
    expected = np.stack([rows[:, g].argmax(axis=1) for g in groups], axis=1)
    assert np.array_equal(out, expected)


def test_groups_of_a_lane_wise_part_put_lanes_back_in_place() -> None:
    """A part with a lane per input lane (ReLU): lane j of group k goes back to the input lane it
    came from (a lane out of place would show as another lane's value)."""
    x = Lanes(12, 5, True)
    rows = np.random.default_rng(6).integers(x.min, x.max + 1, (40, 12))
    dut = Groups(x, ALONG_0, lambda lanes: ReLU(lanes))
    out, _ = run_vectors(dut, rows, seed=7)
    assert np.array_equal(out, np.maximum(rows, 0))


def test_groups_must_be_one_size_and_cover_every_lane() -> None:
    x = Lanes(6, 4, True)
    with pytest.raises(ValueError, match=r"^Groups needs groups of one non-zero size, not sizes \[2, 4\]$"):
        Groups(x, [[0, 1, 2, 3], [4, 5]], lambda lanes: Argmax(lanes))
    with pytest.raises(ValueError, match="^Groups must cover each of the 6 input lanes once$"):
        Groups(x, [[0, 1], [2, 3], [4, 4]], lambda lanes: Argmax(lanes))
