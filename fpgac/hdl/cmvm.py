"""Constant matrix-vector products as adder graphs with shared subexpressions.

``y[j] = sum_i x[i] * W[i, j]`` for a constant integer ``W``: every weight is written in canonical
signed digits (CSD), so output ``j`` is a sum of signed, shifted inputs ``+-(x[i] << s)``. Many
outputs share pairs of such terms (``x[3] + (x[7] << 2)`` appears wherever both weights have
digits two places apart): computing each shared pair once and reusing it is the
common-subexpression elimination that makes a constant matrix product cheap in adders.

The heuristic here (written for fpgac; the idea is the classic two-term CSE):

1. **Plans.** The columns as they are; with hub columns (a helper column several outputs add
   or subtract, found by alternating minimization); or outputs computed from one another (a
   spanning forest over the columns). Each is written in CSD terms ``(var, shift, sign)``; zero
   weights and zero digits give none.
2. **Sharing, greedily.** A pair of terms ``(a, s, g), (b, s + d, g * sigma)`` (``d >= 0``) is an
   instance of the pattern ``u = x[a] + sigma * (x[b] << d)``; it stands for ``g * (u << s)``.
   Repeatedly, the pattern with the most instances over all outputs (at least two; ties to the
   narrowest ``u``, then the shallowest) becomes a new variable ``u``: one adder, which removes
   one adder from every output that uses it. Counts are kept incrementally (each change to an
   output updates only the pairs of the terms it touched), so large layers stay fast.
3. **Trees** (:mod:`fpgac.hdl.adder_trees`): each output's remaining terms summed for area
   under a depth bound, or for depth, the signs chosen by a dynamic program. Every plan and tree
   is a candidate; :func:`build` keeps the one with the fewest carry-chain bits.

The result, an :class:`AdderGraph`, is plain data: every adder with its operands, shifts and
signs, and every output as one signed, shifted variable. :func:`evaluate` computes it on integers
(the tests check it equals ``x @ W`` exactly); :class:`~fpgac.hdl.Dense` builds it as hardware.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from fpgac.hdl.adder_graph import Adder, AdderGraph, Term, _adder_range, _width, evaluate
from fpgac.hdl.adder_trees import _tree
from fpgac.hdl.arith import csd

__all__ = ["Adder", "AdderGraph", "Term", "build", "candidates", "evaluate", "prefetch"]
def build(weights: np.ndarray, bias: Sequence[int] | None = None, *, share: bool = True,
          ranges: Sequence[tuple[int, int]] | None = None, max_depth: int | None = None) -> AdderGraph:
    """The adder graph of ``x @ weights + bias`` (``weights``: integers ``[n_in, n_out]``): of the
    :func:`candidates`, the one with the fewest adder bits (:meth:`AdderGraph.cost`) whose depth
    is at most ``max_depth`` (the shallowest when none is).

    ``share`` enables the decompositions and subexpression sharing (off: each output's CSD terms
    summed alone, the plain shift-and-add form). ``ranges`` (default signed 8-bit) is each input's
    ``(lo, hi)``: it sizes every adder and so decides which candidate is cheapest.
    """
    ranges = _ranges(weights, ranges)
    scored = [(g.cost(ranges), max(g.depths(), default=0), g)
              for g in candidates(weights, bias, share=share, ranges=ranges, depth_bounds=(max_depth,))]
    fitting = [c for c in scored if max_depth is None or c[1] <= max_depth]
    if fitting:
        return min(fitting, key=lambda c: (c[0], c[1]))[2]
    return min(scored, key=lambda c: (c[1], c[0]))[2]


def _ranges(weights: np.ndarray, ranges: Sequence[tuple[int, int]] | None) -> list[tuple[int, int]]:
    n_in = np.asarray(weights).shape[0]
    return [(int(a), int(b)) for a, b in ranges] if ranges is not None else [(-128, 127)] * n_in


def candidates(weights: np.ndarray, bias: Sequence[int] | None = None, *, share: bool = True,
               ranges: Sequence[tuple[int, int]] | None = None,
               depth_bounds: Sequence[int | None] = (None,)) -> list[AdderGraph]:
    """Adder graphs of ``x @ weights + bias``: for each plan (the columns as they are, with hub
    columns, with column differences), its shared subexpressions, and then the output trees
    built for depth (the shallowest) and for area, unbounded, under each of ``depth_bounds``
    and under every depth between the shallowest and the unbounded area tree's (at most six).
    What :func:`prefetch` computed for the same arguments is taken from it (once)."""
    job = dict(weights=weights, bias=bias, share=share, ranges=ranges, depth_bounds=depth_bounds)
    found = _PREFETCHED.pop(_job_key(job), None) if _PREFETCHED else None
    return found if found is not None else _candidates(**job)


#: candidates computed ahead by :func:`prefetch`, by :func:`_job_key`, until asked for
_PREFETCHED: dict[tuple, list[AdderGraph]] = {}


def prefetch(jobs: Sequence[dict]) -> None:
    """Compute :func:`candidates` for each job (its keyword arguments) in worker processes, one
    per core, so that the calls that follow (a network's Dense layers, one after another) find
    them done. Nothing is done with fewer than two jobs or one core."""
    workers = min(len(jobs), len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    if workers < 2:
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        for job, found in zip(jobs, pool.map(_run_job, jobs)):
            _PREFETCHED[_job_key(job)] = found


def _run_job(job: dict) -> list[AdderGraph]:
    return _candidates(**job)


def _job_key(job: dict) -> tuple:
    w = np.asarray(job["weights"])
    bias, ranges = job.get("bias"), job.get("ranges")
    return (w.shape, tuple(int(v) for v in w.flat), None if bias is None else tuple(int(b) for b in bias),
            bool(job.get("share", True)), None if ranges is None else tuple((int(a), int(b)) for a, b in ranges),
            tuple(job.get("depth_bounds", (None,))))


def _candidates(weights: np.ndarray, bias: Sequence[int] | None = None, *, share: bool = True,
                ranges: Sequence[tuple[int, int]] | None = None,
                depth_bounds: Sequence[int | None] = (None,)) -> list[AdderGraph]:
    w = np.asarray(weights)
    n_in, n_out = w.shape
    ranges = _ranges(w, ranges)
    biases = [0] * n_out if bias is None else [int(b) for b in bias]
    plans = [_Plan(w.astype(object), [[] for _ in range(n_out)])]
    if share and n_out > 1:
        hubs = _hub_plan(w)
        if n_in * n_out <= _TRY_ALL:
            plans += [p for p in (hubs, _forest_plan(w, chain=2)) if p is not None]
        elif hubs is not None:
            plans = [hubs]  # large: the hub plan alone (it is the cheapest almost always; sharing is slow)
    out = []
    for plan in plans:
        graph = AdderGraph(n_in)
        outputs = [{(i, shift): sign for i in range(n_in) for shift, sign in csd(int(plan.columns[i, j]))}
                   for j in range(plan.columns.shape[1])]
        bounds = list(ranges)
        depth = [0] * n_in
        if not share:
            out.append(_finish(graph, outputs, plan, biases, bounds, depth, False, None))
            continue
        _share(graph, outputs, bounds, depth)
        fast = _finish(graph, outputs, plan, biases, bounds, depth, False, None)
        area = _finish(graph, outputs, plan, biases, bounds, depth, True, None)
        out += [fast, area]
        lo, hi = max(fast.depths(), default=0), max(area.depths(), default=0)
        wanted = {b for b in depth_bounds if b is not None} | set(range(lo, hi)[-6:])
        out += [_finish(graph, outputs, plan, biases, bounds, depth, True, b) for b in sorted(wanted)]
    return out


STARTS = 4

#: weights up to which every plan is built and the cheapest kept (above: compile time)
_TRY_ALL = 1024


@dataclass
class _Plan:
    """How to compute the outputs: ``y[j] = x @ columns[:, j] + sum(sign * (y[k] << shift) for
    k, sign, shift in refs[j])``. ``columns`` may have more columns than there are outputs
    (helper columns, computed like outputs but not outputs, without a bias)."""

    columns: np.ndarray
    refs: list[list[tuple[int, int, int]]]


def _popcount_csd(v: np.ndarray) -> np.ndarray:
    """Non-zero canonical signed digits of each integer (the non-adjacent form's weight)."""
    a = np.abs(v.astype(np.int64))
    return np.bitwise_count(((3 * a) ^ a) >> 1).astype(np.int64)


def _hub_plan(w: np.ndarray, max_hubs: int = 8) -> _Plan | None:
    """Hub columns: a helper column ``c`` that several outputs add or subtract, chosen so that
    their differences ``w[:, j] -+ c`` have fewer digits than the columns themselves (random
    weights too: ``c`` is a per-element compromise, not one of the columns). Found one at a time
    by alternating minimization: each output's sign (use ``+c``, ``-c`` or not) for a given ``c``,
    then each element of ``c`` for the given signs; while a hub saves at least two digits."""
    limit = int(np.abs(w).max(initial=0))
    if limit > 512:
        return None  # the per-element search is over every integer of twice the weights' range
    rest = w.astype(np.int64)
    n_in, n_out = rest.shape
    grid = np.arange(-2 * limit, 2 * limit + 1, dtype=np.int64)
    grid_digits = _popcount_csd(grid)
    hubs, signs = [], []
    for _ in range(max_hubs):
        best = None
        own = _popcount_csd(rest)
        for k in _starts(n_out, STARTS):  # start from some of the columns
            c = rest[:, k].copy()
            for _ in range(8):
                plus = _popcount_csd(rest - c[:, None]).sum(axis=0) + 1
                minus = _popcount_csd(rest + c[:, None]).sum(axis=0) + 1
                alone = own.sum(axis=0)
                sign = np.where((plus <= minus) & (plus < alone), 1, np.where(minus < alone, -1, 0))
                cost = grid_digits[None, :] + own[:, sign == 0].sum(axis=1)[:, None]
                for g in (1, -1):
                    cols = rest[:, sign == g]
                    if cols.shape[1]:
                        cost = cost + _popcount_csd(cols[:, None, :] - g * grid[None, :, None]).sum(axis=2)
                new = grid[np.argmin(cost, axis=1)]
                if (new == c).all():
                    break
                c = new
            after = rest - c[:, None] * sign[None, :]
            gain = int(own.sum() - _popcount_csd(after).sum() - _popcount_csd(c).sum() - np.count_nonzero(sign))
            if best is None or gain > best[0]:
                best = (gain, c, sign, after)
        if best is None or best[0] < 2:
            break
        _, c, sign, rest = best
        hubs.append(c)
        signs.append(sign)
    if not hubs:
        return None
    columns = np.concatenate([rest, np.stack(hubs, axis=1)], axis=1).astype(object)
    refs = [[(n_out + h, int(signs[h][j]), 0) for h in range(len(hubs)) if signs[h][j]] for j in range(n_out)]
    return _Plan(columns, refs)


def _starts(n: int, k: int) -> list[int]:
    """``k`` of ``range(n)``, spread evenly."""
    return sorted({round(i * (n - 1) / max(1, k - 1)) for i in range(min(k, n))})


def _forest_plan(w: np.ndarray, chain: int) -> _Plan | None:
    """Outputs computed from one another: a spanning forest over the columns (Prim's, from a
    virtual root), an edge ``p -> j`` costing the digits of ``w[:, j] - sign * (w[:, p] << shift)``
    plus one adder, the root edge the digits of ``w[:, j]`` alone; no path longer than ``chain``
    (each link is one more adder level). Pays when columns resemble each other."""
    n_out = w.shape[1]
    if np.abs(w).max(initial=0) >= 1 << 40:  # differences must not overflow int64
        return None
    cols = w.astype(np.int64).T  # [n_out, n_in]
    key = _popcount_csd(cols).sum(axis=1)
    parent: list[tuple[int, int, int] | None] = [None] * n_out
    level = [0] * n_out
    done = np.zeros(n_out, dtype=bool)
    for _ in range(n_out):
        k = int(np.argmin(np.where(done, np.iinfo(np.int64).max, key)))
        done[k] = True
        if parent[k] is not None:
            level[k] = level[parent[k][0]] + 1
        rest = np.flatnonzero(~done)
        if level[k] >= chain or not len(rest):
            continue
        for sign in (1, -1):
            for shift in (0, 1):
                cost = _popcount_csd(cols[rest] - sign * (cols[k] << shift)).sum(axis=1) + 1
                better = cost < key[rest]
                for j, c in zip(rest[better], cost[better]):
                    key[j] = c
                    parent[j] = (int(k), sign, shift)
    if all(p is None for p in parent):
        return None
    columns = w.astype(object).copy()
    for j, p in enumerate(parent):
        if p is not None:
            k, sign, shift = p
            columns[:, j] = w[:, j].astype(object) - sign * (w[:, k].astype(object) << shift)
    return _Plan(columns, [[p] if p is not None else [] for p in parent])


def _finish(shared: AdderGraph, outputs: list[dict[tuple[int, int], int]], plan: _Plan, biases: list[int],
            bounds: list[tuple[int, int]], depth: list[int], area: bool, max_depth: int | None) -> AdderGraph:
    """A copy of the shared graph with every column's tree added, the referenced ones first."""
    n_out = len(biases)
    graph = AdderGraph(shared.n_in, list(shared.adders), [], shared.shared)
    bounds, depth = list(bounds), list(depth)
    done: dict[int, Term | int] = {}
    all_biases = biases + [0] * (len(outputs) - n_out)

    def visit(j: int) -> None:
        if j in done:
            return
        terms, bias = dict(outputs[j]), all_biases[j]
        for k, sign, shift in plan.refs[j] if j < n_out else ():
            visit(k)
            bias -= sign * (all_biases[k] << shift)  # y[k] brings its own bias
            yk = done[k]
            if isinstance(yk, int):
                bias += sign * (yk << shift)
            else:
                t = (yk[0], yk[1] + shift)
                if t in terms:  # cannot happen: a column's result is an adder of its own
                    raise AssertionError("a referenced column's result collides with a term")
                terms[t] = yk[2] * sign
        done[j] = _tree(graph, terms, bias, bounds, depth, area, max_depth)

    for j in range(n_out):
        visit(j)
    graph.outputs = [done[j] for j in range(n_out)]
    graph.tree = graph.count - graph.shared
    return graph


# -- sharing ----------------------------------------------------------------------------------------

Key = tuple[int, int, int, int]  # (a, b, d, sigma): u = x[a] + sigma * (x[b] << d)


def _pair_range(bounds: Sequence[tuple[int, int]], a: int, b: int, d: int, sigma: int) -> tuple[int, int]:
    return _adder_range(Adder(a, 0, 1, b, d, sigma), bounds)


def _share(graph: AdderGraph, outputs: list[dict[tuple[int, int], int]], bounds: list[tuple[int, int]],
           depth: list[int]) -> None:
    total: dict[Key, int] = defaultdict(int)  # instances of each pattern over all outputs
    users: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))  # var -> output -> its terms
    rank: dict[Key, tuple[int, int]] = {}
    heap: list[tuple[int, int, int, Key]] = []

    def ranked(key: Key) -> tuple[int, int]:
        r = rank.get(key)
        if r is None:
            a, b, d, sigma = key
            r = rank[key] = (_width(_pair_range(bounds, a, b, d, sigma)), max(depth[a], depth[b]))
        return r

    def change(j: int, v: int, sh: int, g: int, by: int, push: bool = True) -> None:
        """Count (``by`` +1) or uncount (-1) the pairs of term ``(v, sh, g)`` with output ``j``'s terms."""
        users[v][j] += by
        for (w, s2), h in outputs[j].items():
            if sh < s2 or (sh == s2 and v < w):
                key = (v, w, s2 - sh, g * h)
            elif sh == s2 and v == w:
                continue
            else:
                key = (w, v, sh - s2, g * h)
            count = total[key] + by
            total[key] = count
            if push and by > 0 and count >= 2:
                heapq.heappush(heap, (-count, *ranked(key), key))

    for j, terms in enumerate(outputs):
        items = list(terms.items())
        outputs[j] = {}
        for t, g in items:
            change(j, t[0], t[1], g, +1, push=False)
            outputs[j][t] = g
    heap.extend((-count, *ranked(key), key) for key, count in total.items() if count >= 2)
    heapq.heapify(heap)

    def remove(j: int, t: tuple[int, int]) -> int:
        g = outputs[j].pop(t)
        change(j, t[0], t[1], g, -1)
        return g

    def add(j: int, t: tuple[int, int], g: int) -> None:
        if t in outputs[j]:  # the same variable at the same shift twice: 2u, or 0
            h = remove(j, t)
            if h == g:
                add(j, (t[0], t[1] + 1), g)
            return
        change(j, t[0], t[1], g, +1)
        outputs[j][t] = g

    # the pattern with the most instances first; an entry whose count has since fallen goes back
    # in at its count now (counts only fall by uncounting, which pushes nothing)
    while heap:
        count, _, _, key = heapq.heappop(heap)
        now = total.get(key, 0)
        if -count != now:
            if 2 <= now < -count:
                heapq.heappush(heap, (-now, *ranked(key), key))
            continue
        a, b, d, sigma = key
        var = graph.n_in + graph.count
        graph.adders.append(Adder(a, 0, 1, b, d, sigma))
        bounds.append(_pair_range(bounds, a, b, d, sigma))
        depth.append(max(depth[a], depth[b]) + 1)
        graph.shared += 1
        both = [j for j, n in users[a].items() if n > 0 and users[b].get(j, 0) > 0]
        for j in both:
            terms = outputs[j]
            # every instance, non-overlapping: a base term (a, s) with its partner (b, s + d)
            for sh in sorted(sh for (v, sh) in terms if v == a):
                g = terms.get((a, sh))
                partner = (b, sh + d)
                if g is None or partner == (a, sh) or terms.get(partner) != g * sigma:
                    continue
                remove(j, (a, sh))
                remove(j, partner)
                add(j, (var, sh), g)
