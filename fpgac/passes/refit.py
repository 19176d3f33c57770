"""Refit: after pruning, re-solve each layer's remaining weights so its outputs match the original's.

Pruning without retraining loses accuracy fast because each zeroed weight's contribution simply
disappears. Given calibration inputs, the layers can absorb much of it: layer by layer in graph
order, with ``X`` the layer's inputs in the pruned network (already refit upstream) and ``Y`` the
layer's outputs in the unpruned ``reference`` network, every output unit's weights that are still
non-zero, and its bias, are re-solved by least squares, ``min ||X_kept w + b - Y_j||^2 + damping *
mean(diag) * ||(w, b)||^2``. This is the layer-wise reconstruction of Optimal Brain Compression
and SparseGPT in its simplest form. The sparsity pattern is kept: a structurally zero weight stays
zero; only the surviving weights and the bias move.

Dense layers and Conv layers with ``groups=1`` are refit (a Conv's rows are its input patches at
every output position). A layer whose units differ from the reference's (structured pruning
removed some of them) keeps its weights, and the layers reading it are refit and compensate.
Layers of binary or ternary weights must not be refit (their levels would be lost): put ``refit``
before ``binary``/``ternary`` in a spec.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fpgac.errors import UsageError
from fpgac.ir import Graph, Node, Op
from fpgac.passes.layer_weights import set_const, weight_layers
from fpgac.ir.semantics import evaluate_float

__all__ = ["Refit"]

log = logging.getLogger(__name__)

#: at most this many rows (samples times output positions) enter one layer's least squares
MAX_ROWS = 200_000


@dataclass(frozen=True)
class Refit:
    reference: Graph = field(compare=False, repr=False)
    inputs: Mapping[str, np.ndarray] = field(compare=False, repr=False)
    damping: float = 0.01
    layers: frozenset[str] | None = None  # None: every Dense/Conv
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.damping > 0:
            raise UsageError(f"refit damping must be positive, not {self.damping!r}")

    def run(self, graph: Graph) -> bool:
        reference = evaluate_float(self.reference, self.inputs)
        refs = {n.name: n for n in self.reference.nodes}
        changed = False
        for node in weight_layers(graph, self.layers, self.exclude):
            ref = refs.get(node.name)
            if ref is None or ref.op is not node.op or ref.output.shape != node.output.shape:
                log.info("layer %r (%s): not refit: its units differ from the unpruned network's",
                         node.name, node.op.value)
                continue
            if node.op is Op.CONV and node.attrs["groups"] != 1:
                log.info("layer %r (Conv): not refit: grouped convolution", node.name)
                continue
            x = evaluate_float(graph, self.inputs)[node.inputs[0].name]
            untouched = np.array_equal(node.inputs[1].data, ref.inputs[1].data)
            if untouched and np.array_equal(x, reference[ref.inputs[0].name]):
                continue  # neither the layer nor anything before it was pruned
            changed |= self._refit(graph, node, x, np.asarray(reference[ref.output.name]))
        return changed

    def _refit(self, graph: Graph, node: Node, x: np.ndarray, y: np.ndarray) -> bool:
        w = node.inputs[1].data
        if node.op is Op.DENSE:
            rows, targets, kept = x.reshape(-1, w.shape[0]), y.reshape(-1, w.shape[1]), w.T != 0
        else:
            rows = _patches(node, x)
            targets = np.moveaxis(y, 1, -1).reshape(-1, w.shape[0])
            kept = w.reshape(w.shape[0], -1) != 0
        if len(rows) > MAX_ROWS:
            pick = np.random.default_rng(0).choice(len(rows), MAX_ROWS, replace=False)
            rows, targets = rows[pick], targets[pick]
        a = np.hstack([rows, np.ones((len(rows), 1))])
        gram, cross = a.T @ a, a.T @ targets
        solved = np.zeros((kept.shape[0], kept.shape[1] + 1))
        for j, mask in enumerate(kept):
            use = np.append(np.flatnonzero(mask), kept.shape[1])  # the surviving weights and the bias
            h = gram[np.ix_(use, use)]
            h = h + self.damping * max(float(np.mean(np.diag(h))), 1e-12) * np.eye(len(use))
            solved[j, use] = np.linalg.solve(h, cross[use, j])
        weights, bias = solved[:, :-1], solved[:, -1]
        weights = weights.T if node.op is Op.DENSE else weights.reshape(w.shape)
        set_const(graph, node, 1, weights, sparse=node.inputs[1].type.sparsity is not None)
        set_const(graph, node, 2, bias, sparse=False)
        return True


def _patches(node: Node, x: np.ndarray) -> np.ndarray:
    """A Conv's input patches, one row per (sample, output position): ``[N * P, C * prod(kernel)]``."""
    kernel = node.inputs[1].shape[2:]
    nd = len(kernel)
    strides, dilations, pads = node.attrs["strides"], node.attrs["dilations"], node.attrs["pads"]
    out = node.output.shape[1:]
    padded = np.pad(x, [(0, 0), (0, 0)] + [(pads[i], pads[nd + i]) for i in range(nd)])
    spans = [d * (k - 1) + 1 for k, d in zip(kernel, dilations)]
    view = sliding_window_view(padded, spans, axis=tuple(range(2, 2 + nd)))
    index = ((slice(None), slice(None)) + tuple(slice(0, o * s, s) for o, s in zip(out, strides))
             + tuple(slice(None, None, d) for d in dilations))
    patches = view[index]  # [N, C, *out, *kernel]
    order = [0] + list(range(2, 2 + nd)) + [1] + list(range(2 + nd, 2 + 2 * nd))
    return patches.transpose(order).reshape(-1, x.shape[1] * int(np.prod(kernel)))
