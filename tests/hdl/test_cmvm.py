"""The adder-graph builder for constant matrix products: exact against numpy on integers (Python
ints, so nothing wraps), its cost model worked by hand, its depth bound, and its decompositions."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.hdl import cmvm, csd


def _exact(graph: cmvm.AdderGraph, w: np.ndarray, b: np.ndarray | None, lo: int, hi: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_in = w.shape[0]
    x = rng.integers(lo, hi + 1, size=(60, n_in))
    x[0], x[1] = lo, hi
    want = x.astype(object) @ w.astype(object) + (0 if b is None else b.astype(object))
    np.testing.assert_array_equal(cmvm.evaluate(graph, x), want)
    # the bounds hold every value the graph computes on these inputs
    bounds = graph.bounds([lo] * n_in, [hi] * n_in)
    values = [x[:, i].astype(object) for i in range(n_in)]
    for add in graph.adders:
        other = add.b_sign * values[add.b] * (1 << add.b_shift) if add.b >= 0 else 0
        values.append(add.a_sign * values[add.a] * (1 << add.a_shift) + other + add.const)
    for v, (vlo, vhi) in zip(values, bounds):
        assert vlo <= min(v) and max(v) <= vhi


@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 5), (8, 8), (16, 16), (12, 40)])
@pytest.mark.parametrize("share", [False, True])
def test_graph_is_exact(shape: tuple[int, int], share: bool) -> None:
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    w = rng.integers(-128, 128, size=shape)
    w[rng.random(shape) < 0.2] = 0
    b = rng.integers(-3000, 3000, size=shape[1])
    graph = cmvm.build(w, b, share=share, ranges=[(-128, 127)] * shape[0])
    _exact(graph, w, b, -128, 127, seed=1)


def test_graph_is_exact_on_awkward_matrices() -> None:
    rng = np.random.default_rng(3)
    cases = [
        np.zeros((4, 3), int),                                   # every output is its bias
        np.tile(rng.integers(-60, 60, size=(6, 1)), (1, 5)),     # equal columns
        np.concatenate([rng.integers(-9, 9, size=(6, 4)), -rng.integers(1, 9, size=(6, 1))], axis=1),  # all negative
        rng.integers(-(1 << 20), 1 << 20, size=(5, 6)),          # wide weights: no hub search
        np.array([[1, 2, 4, 8, -16]]),                           # powers of two: no adders at all
    ]
    for k, w in enumerate(cases):
        b = rng.integers(-100, 100, size=w.shape[1])
        for lo, hi in [(-128, 127), (0, 15), (-1, 0)]:
            _exact(cmvm.build(w, b, ranges=[(lo, hi)] * w.shape[0]), w, b, lo, hi, seed=k)
    assert cmvm.build(np.array([[1, 2, 4, 8, -16]])).count == 0


def test_cost_by_hand() -> None:
    # 3 in canonical signed digits is 4 - 1: 3x = (x << 2) - x for x in [-128, 127]. One adder;
    # 3x is in [-384, 381], 10 bits; the subtracted x is the low term, so no bit passes through
    graph = cmvm.build(np.array([[3]]))
    assert graph.count == 1 and graph.cost([(-128, 127)]) == 10
    assert graph.bounds([-128], [127])[1] == (-384, 381)
    # 5x = x + (x << 2): x's two low bits pass through, the chain is 5x's 11 bits less 2
    graph = cmvm.build(np.array([[5]]))
    assert graph.count == 1 and graph.cost([(-128, 127)]) == 9
    # x[0] + x[1] on unsigned 4-bit inputs: one 5-bit adder
    graph = cmvm.build(np.array([[1], [1]]), ranges=[(0, 15), (0, 15)])
    assert graph.count == 1 and graph.cost([(0, 15), (0, 15)]) == 5


def test_sharing_saves_adders_and_depth_bound_holds() -> None:
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, size=(16, 16))
    plain = cmvm.build(w, share=False)
    digits = sum(len(csd(int(v))) for v in w.ravel())
    assert plain.count == digits - w.shape[1]  # one adder per digit beyond each output's first
    shared = cmvm.build(w)
    assert shared.count < 0.6 * plain.count
    assert shared.cost([(-128, 127)] * 16) < 0.65 * plain.cost([(-128, 127)] * 16)
    fastest = max(cmvm.build(w, max_depth=0).depths())  # nothing fits 0: the shallowest candidate
    for bound in range(fastest, fastest + 4):
        graph = cmvm.build(w, max_depth=bound)
        assert max(graph.depths()) <= bound
        _exact(graph, w, None, -128, 127, seed=bound)


def test_hub_columns_find_a_shared_part() -> None:
    # every column is one hidden vector plus a little noise: a hub (the vector) pays for itself
    rng = np.random.default_rng(7)
    hidden = rng.integers(-100, 100, size=(12, 1))
    w = hidden + rng.integers(-2, 3, size=(12, 10))
    plan = cmvm._hub_plan(w)
    assert plan is not None and plan.columns.shape[1] > w.shape[1]
    graph = cmvm.build(w)
    alone = sum(len(csd(int(v))) for v in w.ravel()) - w.shape[1]
    assert graph.count < 0.5 * alone
    _exact(graph, w, None, -128, 127, seed=0)


def test_prefetched_candidates_are_the_ones_computed_in_place(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    jobs = [dict(weights=rng.integers(-128, 128, size=(12, 6)), bias=list(rng.integers(-50, 50, size=6)),
                 ranges=[(0, 255)] * 12) for _ in range(2)]
    here = [cmvm.candidates(**job) for job in jobs]
    monkeypatch.setattr(cmvm.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    cmvm.prefetch(jobs)
    assert len(cmvm._PREFETCHED) == 2
    for job, want in zip(jobs, here):
        got = cmvm.candidates(**job)
        assert [(g.adders, g.outputs) for g in got] == [(g.adders, g.outputs) for g in want]
    assert not cmvm._PREFETCHED  # each taken once
