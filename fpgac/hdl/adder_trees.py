"""The output trees of an adder graph: which terms to add first, and with which signs."""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import cached_property

from fpgac.hdl.adder_graph import (
    Adder,
    AdderGraph,
    Term,
    _adder_range,
    _term_range,
    _trailing_zeros,
    _width,
)


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

    @cached_property
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
        small = heapq.nsmallest(6, live, key=lambda n: (nodes[n].top, nodes[n].depth, n))
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
    a, b = heapq.nsmallest(2, live, key=lambda n: (nodes[n].depth, nodes[n].top, n))
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
