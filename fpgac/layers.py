"""One row per layer of a graph, as ``fpgac inspect`` prints it: op, shape, parameters, non-zeros,
multiplies, types."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgac.ir import FixedType, Graph, Node, Op

__all__ = ["LayerRow", "layer_table"]


@dataclass(frozen=True)
class LayerRow:
    """One row of ``fpgac inspect``: a layer, its op, its output shape and its parameter count.

    ``nonzeros`` counts the non-zero parameters; ``multiplies`` is what a fully unrolled design
    needs per inference: non-zero weights times the output positions each is used at (Dense:
    the leading axes; Conv: the output pixels; LSTM/GRU: the time steps), one per non-zero scale
    of a ScaleShift or constant Mul. A zero weight costs nothing. ``bit_operations`` weighs each
    multiply of a Dense, Conv, LSTM or GRU by its operands' widths (weight bits times input bits,
    quantized graphs; 0 otherwise): a measure of the multiplier hardware a design needs.
    """

    name: str
    op: str
    shape: tuple[int, ...]
    params: int
    weight_type: str = ""  # the type of its first constant input (quantized graphs), else ""
    output_type: str = ""
    nonzeros: int = 0
    multiplies: int = 0
    bit_operations: int = 0


def _multiplies(node: Node) -> int:
    out = node.output.type
    if node.op in (Op.DENSE, Op.CONV):
        w = node.inputs[1]
        units = w.type.shape[1 if node.op is Op.DENSE else 0]
        return int(np.count_nonzero(w.data)) * (out.size // units if units else 0)
    if node.op in (Op.LSTM, Op.GRU):
        return (int(np.count_nonzero(node.inputs[1].data)) + int(np.count_nonzero(node.inputs[2].data))) * out.shape[0]
    if node.op in (Op.SCALE_SHIFT, Op.MUL):
        consts = [v for v in node.inputs[:2] if v is not None and v.is_const]
        scale = node.inputs[1].data if node.op is Op.SCALE_SHIFT else consts[0].data if len(consts) == 1 else None
        if scale is not None:
            return int(np.count_nonzero(np.broadcast_to(scale, out.shape)))
    return 0


def layer_table(graph: Graph) -> list[LayerRow]:
    rows = []
    for node in graph.nodes:
        op = node.op.value
        if node.op in (Op.ACTIVATION, Op.POOL, Op.GLOBAL_POOL, Op.LOOKUP):
            op = f"{op}({node.attrs['kind'].value})"
        consts = [v for v in node.inputs if v is not None and v.is_const]
        params = sum(v.type.size for v in consts)
        weight = str(consts[0].type.dtype) if consts else ""
        nonzeros = sum(int(np.count_nonzero(v.data)) for v in consts)
        multiplies = _multiplies(node)
        rows.append(LayerRow(node.name, op, node.output.type.shape, params, weight, str(node.output.type.dtype),
                             nonzeros, multiplies, multiplies * _operand_bits(node)))
    return rows


def _operand_bits(node: Node) -> int:
    """Weight bits times input bits of a weighted layer's multiplies (0 unless both are fixed-point)."""
    if node.op not in (Op.DENSE, Op.CONV, Op.LSTM, Op.GRU) or node.inputs[1] is None:
        return 0
    x, w = node.inputs[0].type.dtype, node.inputs[1].type.dtype
    return x.width * w.width if isinstance(x, FixedType) and isinstance(w, FixedType) else 0

