"""Helpers shared by the weight passes (pruning, clipping, binarization).

They act on the weight (input 1) of Dense and Conv layers. A layer whose weight is already fixed
point (a QONNX model's own quantized weights) is left alone: the model was trained on that grid.
Every zero a pass leaves in a weight is recorded in its ``TensorType.sparsity``, so later passes
(and the quantizer, and the backends) know it is structurally zero.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable

import numpy as np

from fpgac.ir import FloatType, Graph, Node, Op, Sparsity, TensorType, Value

__all__ = ["WEIGHT_OPS", "Scope", "set_const", "unit_axis", "weight_layers"]

log = logging.getLogger(__name__)

class Scope(enum.Enum):
    """Whether a pass's target (a sparsity, a clipping limit) holds per layer or over all layers."""

    LAYER = "layer"
    GLOBAL = "global"


#: the layers whose weights the passes prune, clip and binarize
WEIGHT_OPS = (Op.DENSE, Op.CONV)


def unit_axis(node: Node) -> int:
    """The weight axis indexing the layer's output units: Dense ``[in, out]`` 1, Conv ``[M, ...]`` 0."""
    return 1 if node.op is Op.DENSE else 0


def weight_layers(graph: Graph, layers: Iterable[str] | None, exclude: Iterable[str]) -> list[Node]:
    """The Dense/Conv nodes with float weights that a pass selecting ``layers`` (None: all) acts on."""
    only = None if layers is None else set(layers)
    skip = set(exclude)
    nodes = []
    for node in graph.nodes:
        if node.op not in WEIGHT_OPS or node.name in skip or (only is not None and node.name not in only):
            continue
        if not isinstance(node.inputs[1].type.dtype, FloatType):
            log.info("layer %r (%s): weights are already fixed point; left as the model has them",
                     node.name, node.op.value)
            continue
        nodes.append(node)
    return nodes


def set_const(graph: Graph, node: Node, index: int, data: np.ndarray, *, sparse: bool = True) -> Value:
    """Give ``node`` a new float constant input ``index`` holding ``data``.

    With ``sparse``, every zero of ``data`` is recorded as structurally zero. A constant another
    node also reads keeps its old value there; the new one then gets a fresh name.
    """
    old = node.input(index)
    array = np.array(data, dtype=np.float64)
    array.setflags(write=False)
    zero = array == 0
    sparsity = Sparsity(zero) if sparse and zero.any() else None
    if old is None:
        name, dtype = graph.unique_name(f"{node.name}.bias"), FloatType()
    else:
        shared = any(n is not node for n in graph.consumers(old))
        name, dtype = (graph.unique_name(old.name) if shared else old.name), old.type.dtype
    value = Value(name, TensorType(dtype, array.shape, sparsity), array)
    while len(node.inputs) <= index:
        node.inputs.append(None)
    node.inputs[index] = value
    return value
