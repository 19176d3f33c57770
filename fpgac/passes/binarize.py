"""Binary and ternary weights: every weight becomes ``-s``, ``+s`` (or ``0``), ``s`` a power of two.

Binary: ``w -> s * sign(w)`` (``sign(0) = +1``; a structurally zero weight stays 0). Ternary
(TWN): ``w -> s * sign(w)`` where ``|w| > threshold * mean|w|``, else 0, and the new zeros are
recorded as structural. The scale is ``s = 2**round(log2(mean |w|))`` over the weights that stay
non-zero, one per layer or one per output channel (Dense column, Conv filter). Biases are kept.

The scale is a power of two so that no multiplier is needed and the golden model is exact: with a
per-layer scale the quantizer's ``weight_type`` finds that the weights fit a 2-bit type
(mantissas -1, 0, 1 at ``s``'s place); per-channel scales widen it by the octaves between the
smallest and largest scale (exact while that span stays within ``--bits``).

How backends map them (the IR stays plain Dense/Conv with constant weights; a backend may check
that every non-zero weight of a channel is ``+-s``):

- binary weights times binary activations (``+-1``, as a QONNX ``BipolarQuant`` in front of the
  layer gives): encode ``+1`` as bit 1 and ``-1`` as 0; an ``n``-term dot product is
  ``2 * popcount(XNOR(a, w)) - n``, then the scale, a shift. XNOR-popcount, no products.
- binary or ternary weights times multi-bit activations: each term is ``+x``, ``-x`` or nothing,
  so a layer is an adder/subtractor tree (ternary zeros emit no hardware, like any pruned weight)
  and the power-of-two scale is a wired shift of each output's sum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir import Graph
from fpgac.passes.layer_weights import set_const, unit_axis, weight_layers

__all__ = ["Binarize"]

#: ternary weight networks' threshold: zero |w| <= 0.7 * mean|w|
TERNARY_THRESHOLD = 0.7


@dataclass(frozen=True)
class Binarize:
    ternary: bool = False
    threshold: float = TERNARY_THRESHOLD  # ternary only, as a multiple of the mean |w|
    per_channel: bool = False
    layers: frozenset[str] | None = None  # None: every Dense/Conv
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.threshold >= 0:
            raise UsageError(f"the ternary threshold must be a non-negative multiple of mean |w|, "
                             f"not {self.threshold!r}")

    def run(self, graph: Graph) -> bool:
        changed = False
        for node in weight_layers(graph, self.layers, self.exclude):
            value = node.inputs[1]
            pruned = value.type.sparsity.zero if value.type.sparsity is not None else np.zeros(value.shape, bool)
            axis = unit_axis(node)
            w, p = np.moveaxis(value.data, axis, 0), np.moveaxis(pruned, axis, 0)
            rows = w.shape[0] if self.per_channel else 1
            new = np.stack([self._levels(g, q) for g, q in zip(w.reshape(rows, -1), p.reshape(rows, -1))])
            new = np.moveaxis(new.reshape(w.shape), 0, axis)
            if not np.array_equal(new, value.data):
                set_const(graph, node, 1, new, sparse=self.ternary or value.type.sparsity is not None)
                changed = True
        return changed

    def _levels(self, w: np.ndarray, pruned: np.ndarray) -> np.ndarray:
        mag = np.abs(w)
        keep = ~pruned
        if self.ternary and keep.any():
            keep &= mag > self.threshold * mag[keep].mean()
        mean = mag[keep].mean() if keep.any() else 0.0
        if mean == 0:
            return np.zeros_like(w)
        s = 2.0 ** math.floor(math.log2(mean) + 0.5)
        return np.where(keep, np.where(w < 0, -s, s), 0.0)
