"""Fold a per-channel scale-shift (an exported BatchNormalization) into the layer before it.

``Dense``/``Conv`` followed by ``y = x * s + t`` with ``s``, ``t`` constant per output channel
becomes one layer with ``W' = W * s`` (per output channel) and ``b' = b * s + t``. The hardware
then has no separate multiplier stage, and quantization sees the weights it will really use.

A layer whose weight or bias is already fixed point (a QONNX model's quantized weights) is left
alone: folding a float scale into it would move the weights off the grid the model was trained
on, so the scale-shift stays a layer of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgac.ir import Graph, Node, Op
from fpgac.passes.rewrite import (channel_vector, const_values, is_fixed, only_consumer, replace_layer_params,
                                  rewrite_each)

__all__ = ["FoldBatchNorm"]


@dataclass(frozen=True)
class FoldBatchNorm:
    def run(self, graph: Graph) -> bool:
        return rewrite_each(graph, (Op.SCALE_SHIFT,), self._fold)

    def _fold(self, graph: Graph, node: Node) -> bool:
        layer = only_consumer(graph, node.inputs[0], node)
        if layer is None or any(is_fixed(v) for v in layer.inputs[1:]):
            return False
        scale = channel_vector(layer, const_values(node.inputs[1]))
        shift = channel_vector(layer, const_values(node.inputs[2]))
        if scale is None or shift is None:
            return False
        weight, bias = layer.inputs[1].data, layer.inputs[2].data if layer.input(2) is not None else 0.0
        axis_shape = (1, -1) if layer.op is Op.DENSE else (-1,) + (1,) * (weight.ndim - 1)
        new_weight = weight * scale.reshape(axis_shape)
        new_bias = np.broadcast_to(bias, scale.shape) * scale + shift
        replace_layer_params(graph, layer, new_weight, new_bias, absorbed=node)
        return True
