"""Helpers shared by the rewriting passes (folding constants into a Dense or Conv layer, fusing)."""

from __future__ import annotations

from collections.abc import Callable, Collection

import numpy as np

from fpgac.ir import FixedType, Graph, Node, Op, TensorType, Value, to_float

__all__ = ["rewrite_each", "only_consumer", "channel_vector", "replace_layer_params", "is_fixed", "const_values"]


def rewrite_each(graph: Graph, ops: Collection[Op], rewrite: Callable[[Graph, Node], bool]) -> bool:
    """``rewrite(graph, node)`` on every node of one of ``ops`` (a snapshot of the list, so a rewrite
    may remove nodes); says whether any changed the graph."""
    changed = False
    for node in list(graph.nodes):
        if node.op in ops and rewrite(graph, node):
            changed = True
    return changed


def only_consumer(graph: Graph, value: Value, consumer: Node) -> Node | None:
    """The Dense/Conv producing ``value`` if ``consumer`` is its only reader, else ``None``."""
    layer = value.producer
    if layer is None or layer.op not in (Op.DENSE, Op.CONV):
        return None
    if any(v is value for v in graph.outputs) or graph.consumers(value) != [consumer]:
        return None
    return layer


def channel_vector(layer: Node, data: np.ndarray) -> np.ndarray | None:
    """``data`` as one number per output channel of ``layer``, if that is all it varies along."""
    out_shape = layer.output.type.shape
    channels = out_shape[-1] if layer.op is Op.DENSE else out_shape[0]
    data = np.asarray(data, dtype=np.float64)
    if data.ndim > len(out_shape):
        return None
    full = np.broadcast_to(data, out_shape) if _broadcasts(data.shape, out_shape) else None
    if full is None:
        return None
    axis = len(out_shape) - 1 if layer.op is Op.DENSE else 0
    moved = np.moveaxis(full, axis, 0).reshape(channels, -1)
    if not np.all(moved == moved[:, :1]):
        return None
    return moved[:, 0].copy()


def _broadcasts(shape: tuple[int, ...], target: tuple[int, ...]) -> bool:
    return all(s in (1, t) for s, t in zip(shape[::-1], target[::-1]))


def replace_layer_params(graph: Graph, layer: Node, weight: np.ndarray, bias: np.ndarray, absorbed: Node) -> None:
    """Give ``layer`` new weight and bias and let it produce ``absorbed``'s output in its place."""
    old_w, old_b = layer.inputs[1], layer.input(2)
    new_w = _replacement(graph, old_w, weight)
    new_b = _replacement(graph, old_b, bias) if old_b is not None else graph.constant(f"{layer.name}.bias", bias)
    layer.inputs = [layer.inputs[0], new_w, new_b]
    out, old_out = absorbed.output, layer.output
    out.producer = layer
    layer.outputs = [out]
    graph.remove_node(absorbed)
    if not any(v is out for v in graph.outputs):  # graph outputs keep their (ONNX) names
        graph.forget(old_out)
        graph.rename(out, old_out.name)


def _replacement(graph: Graph, old: Value, data: np.ndarray) -> Value:
    """A constant holding ``data`` that takes ``old``'s name if nothing else reads ``old``."""
    if len(graph.consumers(old)) > 1:
        return graph.constant(old.name, data)  # shared weights: the other reader keeps the old one
    array = np.array(data, dtype=np.float64)
    array.setflags(write=False)
    return Value(old.name, TensorType(old.type.dtype, array.shape), array)


def is_fixed(value: Value | None) -> bool:
    return value is not None and isinstance(value.type.dtype, FixedType)


def const_values(value: Value) -> np.ndarray:
    """A constant's values: its mantissas scaled when it is fixed point (a QONNX model's)."""
    return to_float(value.data, value.type.dtype) if is_fixed(value) else value.data
