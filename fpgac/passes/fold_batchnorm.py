"""Fold a per-channel scale-shift (an exported BatchNormalization) into the layer before it.

``Dense``/``Conv`` followed by ``y = x * s + t`` with ``s``, ``t`` constant per output channel
becomes one layer with ``W' = W * s`` (per output channel) and ``b' = b * s + t``. The hardware
then has no separate multiplier stage, and quantization sees the weights it will really use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgac.ir import Graph, Node, Op
from fpgac.passes.rewrite import channel_vector, only_consumer, replace_layer_params

__all__ = ["FoldBatchNorm"]


@dataclass(frozen=True)
class FoldBatchNorm:
    def run(self, graph: Graph) -> bool:
        changed = False
        for node in list(graph.nodes):
            if node.op is Op.SCALE_SHIFT and self._fold(graph, node):
                changed = True
        return changed

    def _fold(self, graph: Graph, node: Node) -> bool:
        layer = only_consumer(graph, node.inputs[0], node)
        if layer is None:
            return False
        scale = channel_vector(layer, node.inputs[1].data)
        shift = channel_vector(layer, node.inputs[2].data)
        if scale is None or shift is None:
            return False
        weight, bias = layer.inputs[1].data, layer.inputs[2].data if layer.input(2) is not None else 0.0
        axis_shape = (1, -1) if layer.op is Op.DENSE else (-1,) + (1,) * (weight.ndim - 1)
        new_weight = weight * scale.reshape(axis_shape)
        new_bias = np.broadcast_to(bias, scale.shape) * scale + shift
        replace_layer_params(graph, layer, new_weight, new_bias, absorbed=node)
        return True
