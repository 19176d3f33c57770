"""Clip weights to ``[-T, T]``: a few outliers no longer set the integer bits of a whole layer.

Quantization sizes a layer's weight type from its largest weight; clipping the rare large ones
leaves more fractional bits for the rest. ``T`` is absolute (``limit``), or ``std`` times the
standard deviation of the layer's weights (``Scope.LAYER``) or of all selected weights together
(``Scope.GLOBAL``). Zeros stay zero, so a pruned weight's sparsity is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir import Graph
from fpgac.passes.layer_weights import Scope, set_const, weight_layers

__all__ = ["ClipWeights"]


@dataclass(frozen=True)
class ClipWeights:
    limit: float | None = None
    std: float | None = None
    scope: Scope = Scope.LAYER
    layers: frozenset[str] | None = None  # None: every Dense/Conv
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if (self.limit is None) == (self.std is None):
            raise UsageError("weight clipping takes either an absolute limit or a multiple of the standard deviation")
        value = self.limit if self.limit is not None else self.std
        if not value > 0:
            raise UsageError(f"the clipping limit must be positive, not {value!r}")

    def run(self, graph: Graph) -> bool:
        nodes = weight_layers(graph, self.layers, self.exclude)
        if not nodes:
            return False
        weights = [node.inputs[1].data for node in nodes]
        if self.limit is not None:
            limits = [self.limit] * len(nodes)
        elif self.scope is Scope.GLOBAL:
            limits = [self.std * float(np.concatenate([w.ravel() for w in weights]).std())] * len(nodes)
        else:
            limits = [self.std * float(w.std()) for w in weights]
        changed = False
        for node, w, t in zip(nodes, weights, limits):
            clipped = np.clip(w, -t, t)
            if t <= 0 or np.array_equal(clipped, w):  # t = 0: a layer of equal weights
                continue
            set_const(graph, node, 1, clipped, sparse=node.inputs[1].type.sparsity is not None)
            changed = True
        return changed
