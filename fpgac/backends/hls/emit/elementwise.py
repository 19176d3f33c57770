"""Elementwise layers: elementwise.h maps (requantization, ReLU, abs, clip with the plan's
bounds), PReLU, table lookups, binary ops (broadcast operands gathered) and their stream forms."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from fpgac.errors import UnsupportedError
from fpgac.ir import Act, Node, Op, Value, semantics

from ...codegen import identifier
from ..cpp import int_literal, rom_type, words

from .common import const_rom, size

if TYPE_CHECKING:
    from ..design import Design

__all__ = ["BINARY_OPS", "emit_binary", "emit_binary_stream", "emit_lookup", "emit_map", "emit_prelu", "is_mappable",
           "same_shape_runtime"]

BINARY_OPS = {Op.ADD: "add_op", Op.SUB: "sub_op", Op.MUL: "mul_op", Op.MAX: "max_op", Op.MIN: "min_op"}
_COMMUTATIVE = {Op.ADD, Op.MUL, Op.MAX, Op.MIN}


def _elementwise_op(node: Node) -> str:
    """The elementwise.h op struct of a Quant or a one-input Activation."""
    if node.op is Op.QUANT:
        return "fpgac::requantize_op"
    kind = node.attrs["kind"]
    if kind is Act.RELU:
        return "fpgac::relu_op"
    if kind is Act.ABS:
        return "fpgac::abs_op"
    if kind is Act.CLIP:
        lo, hi = semantics.plan(node).clip
        return f"fpgac::clip_op<{int_literal(lo)}, {int_literal(hi)}>"
    raise UnsupportedError(f"node {node.name!r} (Activation {kind.value}): no exact fixed-point form; quantization "
                           "turns it into a Lookup")


def is_mappable(node: Node) -> bool:
    return node.op is Op.QUANT or node.attrs["kind"] in (Act.RELU, Act.ABS, Act.CLIP)


def _sizes(x: Value, stream: bool) -> str:
    """An element-wise kernel's size arguments: ``N`` elements, or ``C, P`` words of a stream."""
    return ", ".join(map(str, words(x.type.shape))) if stream else str(size(x))


def emit_map(d: Design, node: Node, ins: list, outs: list, stream: bool = False) -> None:
    if not stream and node.op is Op.ACTIVATION and node.attrs["kind"] is Act.PRELU:
        return emit_prelu(d, node, ins, outs)
    d.use("elementwise.h")
    op = _elementwise_op(node)
    x = node.inputs[0]
    kernel = "map_stream" if stream else "map"
    d.code(f"fpgac::{kernel}<{op}, {d.type_name(x)}, {d.type_name(node.output)}, {_sizes(x, stream)}>"
           f"({ins[0]}, {outs[0]});")


def emit_prelu(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("elementwise.h")
    x, slope = node.inputs[0], node.inputs[1]
    if not slope.is_const:
        raise UnsupportedError(f"node {node.name!r} (PReLU): a run-time slope is not supported; give it as a constant")
    rom_name = const_rom(d, node, "slope", slope, x.type.shape)
    d.code(f"fpgac::prelu<{d.type_name(x)}, {d.type_name(slope)}, {d.type_name(node.output)}, {size(x)}>("
           f"{ins[0]}, {outs[0]}, {rom_name});")


def emit_lookup(d: Design, node: Node, ins: list, outs: list, stream: bool = False) -> None:
    d.use("elementwise.h")
    table, values = d.table(node, "table", semantics.plan(node).table)
    x = node.inputs[0]
    kernel = "lookup_stream" if stream else "lookup_map"
    d.code(f"fpgac::{kernel}<{table}, {d.type_name(x)}, {d.type_name(node.output)}, {_sizes(x, stream)}>"
           f"({ins[0]}, {outs[0]}, {values});")


def _gathered(d: Design, node: Node, index: int, array: str, shape: tuple[int, ...]) -> str:
    """A run-time operand broadcast to the output ``shape``: itself, or a gathered copy."""
    v = node.inputs[index]
    if v.type.shape == shape:
        return array
    d.use("shape.h")
    src = np.arange(size(v)).reshape(v.type.shape)
    idx = np.broadcast_to(src, shape).ravel()
    rom_name = d.rom(node, f"index{index}", rom_type(-1, size(v)), idx, f"{node.name}: broadcast of input {index}")
    name = d.names.fresh(f"{identifier(node.name)}_in{index}broadcast")
    t = d.type_name(v)
    d.code(f"{t} {name}[{math.prod(shape)}];", *d._partition(name))
    d.code(f"fpgac::gather<{t}, {t}, {math.prod(shape)}, 0>({array}, {name}, {rom_name});")
    return name


def emit_binary(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("elementwise.h")
    shape = node.output.type.shape
    n = math.prod(shape)
    out_t = d.type_name(node.output)
    a, b = node.inputs
    op = f"fpgac::{BINARY_OPS[node.op]}"
    if a.is_const and b.is_const:
        raise UnsupportedError(f"node {node.name!r} ({node.op.value}): both inputs are constants (fold them first)")
    if a.is_const or b.is_const:
        k = 0 if b.is_const else 1  # the run-time operand
        const = node.inputs[1 - k]
        if k == 1 and node.op not in _COMMUTATIVE:  # const - x  =  -(x - const): use a reversed op
            op = "fpgac::rsub_op"
        x = _gathered(d, node, k, ins[k], shape)
        rom_name = const_rom(d, node, "const", const, shape)
        d.code(f"fpgac::binary_const<{op}, {d.type_name(node.inputs[k])}, {d.type_name(const)}, {out_t}, {n}>("
               f"{x}, {rom_name}, {outs[0]});")
        return
    xa, xb = _gathered(d, node, 0, ins[0], shape), _gathered(d, node, 1, ins[1], shape)
    d.code(f"fpgac::binary<{op}, {d.type_name(a)}, {d.type_name(b)}, {out_t}, {n}>({xa}, {xb}, {outs[0]});")


def same_shape_runtime(node: Node) -> bool:
    return all(not v.is_const and v.type.shape == node.output.type.shape for v in node.inputs)


def emit_binary_stream(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("elementwise.h")
    a, b = node.inputs
    c, p = words(node.output.type.shape)
    d.code(f"fpgac::binary_stream<fpgac::{BINARY_OPS[node.op]}, {d.type_name(a)}, {d.type_name(b)}, "
           f"{d.type_name(node.output)}, {c}, {p}>({ins[0]}, {ins[1]}, {outs[0]});")
