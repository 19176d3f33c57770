"""Constant matrix-vector products as adder graphs with shared subexpressions.

``y[j] = sum_i x[i] * W[i, j]`` for a constant integer ``W``: every weight is written in canonical
signed digits (CSD), so output ``j`` is a sum of signed, shifted inputs ``+-(x[i] << s)``. Many
outputs share pairs of such terms (``x[3] + (x[7] << 2)`` appears wherever both weights have
digits two places apart): computing each shared pair once and reusing it is the
common-subexpression elimination that makes a constant matrix product cheap in adders.

The heuristic here (written for fpgac; the idea is the classic two-term CSE):

1. **Terms.** Output ``j`` starts as its CSD terms ``(var, shift, sign)``; zero weights and zero
   digits give none.
2. **Sharing, greedily.** A pair of terms ``(a, s, g), (b, s + d, g * sigma)`` (``d >= 0``) is an
   instance of the pattern ``u = x[a] + sigma * (x[b] << d)``; it stands for ``g * (u << s)``.
   Repeatedly, the pattern with the most instances over all outputs (at least two; ties to the
   narrowest ``u``, then the shallowest) becomes a new variable ``u``: one adder, which removes
   one adder from every output that uses it. Counts are kept incrementally (each change to an
   output updates only the pairs of the terms it touched), so large layers stay fast.
3. **Trees.** Each output's remaining terms are summed by a tree that always adds the two
   terms that are ready earliest (by adder depth, then width), so shared variables that are
   already deep do not lengthen the output's critical path more than needed.

The result, an :class:`AdderGraph`, is plain data: every adder with its operands, shifts and
signs, and every output as one signed, shifted variable. :func:`evaluate` computes it on integers
(the tests check it equals ``x @ W`` exactly); :class:`~fpgac.hdl.Dense` builds it as hardware.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fpgac.hdl.arith import csd

__all__ = ["Adder", "AdderGraph", "Term", "build", "evaluate"]

#: a signed, shifted variable: ``sign * (var << shift)``; vars ``0..n_in-1`` are the inputs
Term = tuple[int, int, int]


@dataclass(frozen=True)
class Adder:
    """``a_sign * (var_a << a_shift) + b_sign * (var_b << b_shift) + const``: one adder or
    subtractor (``b`` is -1 for ``a``'s term plus the constant alone: a bias added)."""

    a: int
    a_shift: int
    a_sign: int
    b: int
    b_shift: int
    b_sign: int
    const: int = 0


@dataclass
class AdderGraph:
    """Adders over ``n_in`` input variables; adder ``k`` defines variable ``n_in + k``.

    ``outputs[j]`` is ``(var, shift, sign)``: output ``j`` equals ``sign * (var << shift)``, or an
    int for an output that is that constant (every weight zero: the bias). ``shared`` counts the
    adders made by subexpression sharing, ``tree`` those of the per-output sums (bias included).
    """

    n_in: int
    adders: list[Adder] = field(default_factory=list)
    outputs: list[Term | int] = field(default_factory=list)
    shared: int = 0
    tree: int = 0

    @property
    def count(self) -> int:
        return len(self.adders)

    def bounds(self, lo: Sequence[int], hi: Sequence[int]) -> list[tuple[int, int]]:
        """The exact ``(lo, hi)`` of every variable, from the inputs' ranges."""
        out = [(int(a), int(b)) for a, b in zip(lo, hi)]
        for add in self.adders:
            out.append(_adder_range(add, out))
        return out

    def cost(self, ranges: Sequence[tuple[int, int]]) -> int:
        """Full-adder bits of all adders for inputs in ``ranges`` (an estimate of the LUTs of the
        carry chains): the sum of :meth:`spans`."""
        return sum(self.spans(ranges))

    def spans(self, ranges: Sequence[tuple[int, int]]) -> list[int]:
        """Each adder's carry chain in bits for inputs in ``ranges``: its width less the low bits
        that only one operand has (they pass through)."""
        bounds = self.bounds([r[0] for r in ranges], [r[1] for r in ranges])
        return [max(1, _width(bounds[self.n_in + k]) - _carry_free(add)) for k, add in enumerate(self.adders)]

    def depths(self) -> list[int]:
        """Adder levels from the inputs to every variable."""
        depth = [0] * self.n_in
        for add in self.adders:
            depth.append(max(depth[add.a], depth[add.b] if add.b >= 0 else 0) + 1)
        return depth


def _carry_free(add: Adder) -> int:
    """The adder's low bits that one operand alone has (the other's are zero): they pass
    through without a carry chain, unless that operand is subtracted."""
    if add.b >= 0:
        (s0, g0), s1 = min((add.a_shift, add.a_sign), (add.b_shift, add.b_sign)), max(add.a_shift, add.b_shift)
        return s1 if g0 > 0 else s0
    tz = _trailing_zeros(add.const)
    if tz < add.a_shift or add.a_sign > 0:
        return max(add.a_shift, tz)
    return add.a_shift


def _adder_range(add: Adder, bounds: Sequence[tuple[int, int]]) -> tuple[int, int]:
    """The range of an adder's value from its operands' (exact when both are one variable)."""
    if add.a == add.b:  # x * (a_sign * 2**a_shift + b_sign * 2**b_shift)
        r = _term_range(bounds[add.a], 0, 1)
        k = add.a_sign * (1 << add.a_shift) + add.b_sign * (1 << add.b_shift)
        lo, hi = sorted((r[0] * k, r[1] * k))
        return lo + add.const, hi + add.const
    ra = _term_range(bounds[add.a], add.a_shift, add.a_sign)
    rb = _term_range(bounds[add.b], add.b_shift, add.b_sign) if add.b >= 0 else (0, 0)
    return ra[0] + rb[0] + add.const, ra[1] + rb[1] + add.const


def _trailing_zeros(n: int) -> int:
    return (n & -n).bit_length() - 1 if n else 0


def _term_range(r: tuple[int, int], shift: int, sign: int) -> tuple[int, int]:
    lo, hi = r[0] << shift, r[1] << shift
    return (lo, hi) if sign > 0 else (-hi, -lo)


def evaluate(graph: AdderGraph, x: np.ndarray) -> np.ndarray:
    """The graph on integer inputs ``x`` (``(n, n_in)``, exact in Python integers): ``(n, n_out)``."""
    x = np.asarray(x, dtype=object)
    values = [x[:, i] for i in range(graph.n_in)]
    for add in graph.adders:
        b = add.b_sign * (values[add.b] * (1 << add.b_shift)) if add.b >= 0 else 0
        values.append(add.a_sign * (values[add.a] * (1 << add.a_shift)) + b + add.const)
    cols = [np.full(len(x), o, dtype=object) if isinstance(o, int) else o[2] * (values[o[0]] * (1 << o[1]))
            for o in graph.outputs]
    return np.stack(cols, axis=1) if cols else np.zeros((len(x), 0), dtype=object)


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
    and under every depth between the shallowest and the unbounded area tree's (at most six)."""
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


def _width(r: tuple[int, int]) -> int:
    """Bits of the narrowest two's-complement (or unsigned, when ``lo >= 0``) word holding ``r``."""
    lo, hi = r
    if lo >= 0:
        return max(1, hi.bit_length())
    return 1 + max((-lo - 1).bit_length(), max(hi, 0).bit_length())


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


# -- trees ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Node:
    """A value of an output's tree: a leaf (a term, or the bias when ``var`` is -1) or the sum of
    two earlier nodes ``kids``. ``range`` is its true value's (shifts and signs applied); ``shift``
    the low bits that are zero in every leaf under it."""

    range: tuple[int, int]
    depth: int
    shift: int
    var: int = -2  # a leaf's variable (-1: the constant); -2 for a sum
    sign: int = 1  # a leaf's sign (the constant: its value)
    kids: tuple[int, int] = (-1, -1)

    @property
    def top(self) -> int:
        return _width(self.range)


def _tree(graph: AdderGraph, terms: dict[tuple[int, int], int], bias: int, bounds: list[tuple[int, int]],
          depth: list[int], area: bool, max_depth: int | None = None) -> Term | int:
    """Sum an output's terms and its bias by a tree; its final term.

    The pairs: with ``area``, the two terms of the smallest magnitude (a Huffman tree on the
    value's top bit), which keeps the wide additions few, as long as the tree can still end within
    ``max_depth`` levels (Kraft's inequality on the terms' depths: ``sum 2**depth <= 2**max_depth``);
    otherwise, and when not ``area``, the two that are ready first (the shallowest tree).

    The signs: every sum may be built as its value or its negation (the sign then travels to the
    sum that uses it). A dynamic program over the tree chooses them so that no adder subtracts both
    terms, a subtracted term is not the one whose low bits pass through, and the output itself is
    positive whenever any choice allows (otherwise it costs a negation).
    """
    if not terms:
        return bias
    nodes = [_Node(_term_range(bounds[v], s, g), depth[v], s, v, g) for (v, s), g in sorted(terms.items())]
    if bias:
        nodes.append(_Node((bias, bias), 0, _trailing_zeros(bias), -1, bias))
    live = list(range(len(nodes)))
    budget = None if max_depth is None else 1 << max_depth
    kraft = sum(1 << nodes[n].depth for n in live)
    while len(live) > 1:
        a, b = _pick(nodes, live, area, kraft, budget)
        live.remove(a)
        live.remove(b)
        na, nb = nodes[a], nodes[b]
        d = max(na.depth, nb.depth) + 1
        kraft += (1 << d) - (1 << na.depth) - (1 << nb.depth)
        total = (na.range[0] + nb.range[0], na.range[1] + nb.range[1])
        live.append(len(nodes))
        nodes.append(_Node(total, d, min(na.shift, nb.shift), kids=(a, b)))
    return _emit(graph, nodes, bounds, depth)


def _pick(nodes: list[_Node], live: list[int], area: bool, kraft: int, budget: int | None) -> tuple[int, int]:
    """The next two nodes to add (see :func:`_tree`)."""
    if area:
        small = sorted(live, key=lambda n: (nodes[n].top, nodes[n].depth, n))[:6]
        best = None
        for i, a in enumerate(small):
            for b in small[i + 1:]:
                na, nb = nodes[a], nodes[b]
                after = kraft + (1 << (max(na.depth, nb.depth) + 1)) - (1 << na.depth) - (1 << nb.depth)
                if budget is not None and after > budget:
                    continue
                # the smallest terms first; among pairs as small, one whose carry chain is an even
                # number of bits (carry cells hold two: an odd chain leaves half a cell unused)
                span = _width((na.range[0] + nb.range[0], na.range[1] + nb.range[1])) - max(na.shift, nb.shift)
                key = (max(na.top, nb.top), span % 2, i)
                if best is None or key < best[0]:
                    best = (key, a, b)
        if best is not None:
            return best[1], best[2]
    a, b = sorted(live, key=lambda n: (nodes[n].depth, nodes[n].top, n))[:2]
    return a, b


_NEVER = 1 << 60


def _emit(graph: AdderGraph, nodes: list[_Node], bounds: list[tuple[int, int]], depth: list[int]) -> Term:
    """The tree's adders, with the signs of least cost; the root's term."""
    # cost[n][p]: adder bits under node n when it is built as p * (its value), p = +1 (index 0) or -1
    cost: list[list[int]] = []
    choice: list[list[tuple[int, int] | None]] = []
    for node in nodes:
        if node.var == -1:  # the constant: either sign is free
            cost.append([0, 0])
            choice.append([None, None])
        elif node.var >= 0:  # a term: built as its variable, so its polarity is its sign
            cost.append([0 if node.sign > 0 else _NEVER, 0 if node.sign < 0 else _NEVER])
            choice.append([None, None])
        else:
            a, b = node.kids
            row, picks = [_NEVER, _NEVER], [None, None]
            for pi, p in enumerate((1, -1)):
                for qa in (1, -1):
                    for qb in (1, -1):
                        local = _adder_bits(nodes, node, p * qa, p * qb)
                        c = cost[a][qa < 0] + cost[b][qb < 0] + local
                        if c < row[pi]:
                            row[pi], picks[pi] = c, (qa, qb)
            cost.append(row)
            choice.append(picks)
    root = len(nodes) - 1
    polarity = [0] * len(nodes)
    polarity[root] = 1 if cost[root][0] < _NEVER else -1  # -1: the output needs a negation
    var_of = [-1] * len(nodes)
    for n in range(root, -1, -1):  # parents before kids: polarities top-down
        node = nodes[n]
        if node.var == -2:
            qa, qb = choice[n][polarity[n] < 0]
            polarity[node.kids[0]], polarity[node.kids[1]] = qa, qb
    for n, node in enumerate(nodes):  # kids before parents: the adders
        if node.var != -2:
            var_of[n] = node.var
            continue
        p = polarity[n]
        a, b = node.kids
        parts = []
        for k in (a, b):
            kid = nodes[k]
            parts.append((k, kid, p * polarity[k]))
        (ka, kida, sa), (kb, kidb, sb) = parts
        if kida.var == -1 or kidb.var == -1:  # a term plus the constant
            (kt, kid, st), const = ((kb, kidb, sb), kida.sign * sa) if kida.var == -1 else ((ka, kida, sa), kidb.sign * sb)
            base = node.shift  # the constant's trailing zeros and the term's shift, whichever is less
            adder = Adder(var_of[kt], _leaf_shift(kid) - base, st, -1, 0, 1, const >> base)
        else:
            base = node.shift
            lo, hi = sorted([(kida, ka, sa), (kidb, kb, sb)], key=lambda t: (_leaf_shift(t[0]), -t[2]))
            adder = Adder(var_of[lo[1]], _leaf_shift(lo[0]) - base, lo[2],
                          var_of[hi[1]], _leaf_shift(hi[0]) - base, hi[2])
        var_of[n] = graph.n_in + graph.count
        graph.adders.append(adder)
        bounds.append(_adder_range(adder, bounds))
        depth.append(node.depth)
    return (var_of[root], _leaf_shift(nodes[root]), polarity[root])


def _leaf_shift(node: _Node) -> int:
    """The shift at which a node's variable holds its value: a term's own, a sum's common one."""
    return node.shift if node.var != -1 else 0


def _adder_bits(nodes: list[_Node], node: _Node, sa: int, sb: int) -> int:
    """Adder bits of ``node`` when its kids enter with signs ``sa`` and ``sb`` (never both -1)."""
    ka, kb = (nodes[k] for k in node.kids)
    if ka.var == -1 or kb.var == -1:  # the constant takes any sign; only the term's matters
        t, st, c = (kb, sb, ka) if ka.var == -1 else (ka, sa, kb)
        tz = c.shift
        free = max(t.shift, tz) if (tz < t.shift or st > 0) else t.shift
        return max(1, node.top - free)
    if sa < 0 and sb < 0:
        return _NEVER
    (la, ls), (ha, hs) = sorted([(ka, sa), (kb, sb)], key=lambda t: (t[0].shift, -t[1]))
    free = ha.shift if ls > 0 else la.shift
    return max(1, node.top - free)
