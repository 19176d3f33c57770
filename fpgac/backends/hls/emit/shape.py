"""Layers that move elements: Concat, Reshape (a stream copy when the words match), and
Transpose, Slice and Pad as gathers through an index ROM (Pad's fill from the plan)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from fpgac.errors import UnsupportedError
from fpgac.ir import Node, Op, semantics

from ..cpp import int_literal, rom_type, words

from .common import size

if TYPE_CHECKING:
    from ..design import Design

__all__ = ["emit_concat", "emit_gather", "emit_reshape", "emit_reshape_stream", "same_words"]


def emit_concat(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("shape.h")
    axis = node.attrs["axis"]
    out_shape = node.output.type.shape
    outer, inner = math.prod(out_shape[:axis]), math.prod(out_shape[axis + 1:])
    offset = 0
    for v, array in zip(node.inputs, ins):
        if v.is_const:
            raise UnsupportedError(f"node {node.name!r} (Concat): constant input {v.name!r} is not supported")
        n = v.type.shape[axis]
        d.code(f"fpgac::concat_part<{d.type_name(v)}, {d.type_name(node.output)}, {outer}, {n}, {offset}, "
               f"{out_shape[axis]}, {inner}>({array}, {outs[0]});")
        offset += n


def emit_reshape(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("elementwise.h")
    x = node.inputs[0]
    d.code(f"fpgac::map<fpgac::copy_op, {d.type_name(x)}, {d.type_name(node.output)}, {size(x)}>({ins[0]}, "
           f"{outs[0]});")


def same_words(node: Node) -> bool:
    return words(node.inputs[0].type.shape) == words(node.output.type.shape)


def emit_reshape_stream(d: Design, node: Node, ins: list, outs: list) -> None:
    x = node.inputs[0]
    c, p = words(x.type.shape)
    d.code(f"fpgac::copy_stream<{d.type_name(x)}, {d.type_name(node.output)}, {c}, {p}>({ins[0]}, {outs[0]});")


def _gather_index(node: Node) -> tuple[np.ndarray, int]:
    """Transpose/Slice/Pad as an index table (output element -> input element, -1 for padding)."""
    x = node.inputs[0]
    src = np.arange(size(x)).reshape(x.type.shape)
    a = node.attrs
    if node.op is Op.TRANSPOSE:
        return src.transpose(a["perm"]).ravel(), 0
    if node.op is Op.SLICE:
        index = tuple(slice(s, e if e >= 0 else None, t) for s, e, t in zip(a["starts"], a["ends"], a["steps"]))
        return src[index].ravel(), 0
    r = len(x.type.shape)
    widths = [(a["pads"][i], a["pads"][r + i]) for i in range(r)]
    return np.pad(src, widths, constant_values=-1).ravel(), semantics.plan(node).fill


def emit_gather(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("shape.h")
    x = node.inputs[0]
    index, pad = _gather_index(node)
    rom_name = d.rom(node, "index", rom_type(-1, size(x)), index, f"{node.name}: input element of each output element"
                     + (" (-1: padding)" if node.op is Op.PAD else ""))
    d.code(f"fpgac::gather<{d.type_name(x)}, {d.type_name(node.output)}, {len(index)}, {int_literal(pad)}>({ins[0]}, "
           f"{outs[0]}, {rom_name});")
