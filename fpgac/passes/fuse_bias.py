"""Fuse ``Add``/``Sub`` of a per-channel constant into the bias of the layer before it.

``MatMul`` + ``Add`` (how TensorFlow and scikit-learn converters write a dense layer) and a Conv
followed by a separate bias add become one layer with a bias.

A layer whose weight or bias is already fixed point (a QONNX model's quantized weights) keeps its
Add: the rewrite would store the sum as a float bias beside mantissas. A fixed-point constant
added to a float layer is read as its values.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgac.ir import Graph, Node, Op
from fpgac.passes.rewrite import (channel_vector, const_values, is_fixed, only_consumer, replace_layer_params,
                                  rewrite_each)

__all__ = ["FuseBias"]


@dataclass(frozen=True)
class FuseBias:
    def run(self, graph: Graph) -> bool:
        return rewrite_each(graph, (Op.ADD, Op.SUB), self._fuse)

    def _fuse(self, graph: Graph, node: Node) -> bool:
        a, b = node.inputs
        if b is not None and b.is_const and not a.is_const:
            tensor, const, sign = a, b, (1.0 if node.op is Op.ADD else -1.0)
        elif node.op is Op.ADD and a.is_const and not b.is_const:
            tensor, const, sign = b, a, 1.0
        else:
            return False
        if node.output.type.shape != tensor.type.shape:
            return False  # the constant would broadcast the tensor to a larger shape
        layer = only_consumer(graph, tensor, node)
        if layer is None or any(is_fixed(v) for v in layer.inputs[1:]):
            return False
        add = channel_vector(layer, const_values(const))
        if add is None:
            return False
        bias = layer.inputs[2].data if layer.input(2) is not None else np.zeros_like(add)
        replace_layer_params(graph, layer, layer.inputs[1].data, bias + sign * add, absorbed=node)
        return True
