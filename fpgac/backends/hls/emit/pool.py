"""Pool and GlobalPool: pool.h, the windows, reciprocals and sum types from the op's plan."""

from __future__ import annotations

from typing import TYPE_CHECKING


from fpgac.ir import Node, semantics

from ..cpp import Struct, fixed, rom_type, words

from fpgac.ir.semantics.pool import reciprocal_type

if TYPE_CHECKING:
    from ..design import Design

from .common import geometry

__all__ = ["emit_global_pool", "emit_global_pool_stream", "emit_pool", "emit_pool_stream"]


def _pool_parts(d: Design, node: Node) -> tuple[str, str]:
    d.use("pool.h")
    x = node.inputs[0]
    plan: semantics.PoolPlan = semantics.plan(node)
    struct = geometry(plan.window, x.type.shape, node.output.type.shape)
    struct.name = d.layer_name(node, "config")
    avg = plan.average
    struct.comment = f"{node.name}: {'average' if avg else 'max'} pooling"
    struct.const("reuse", d.reuse).const("avg", avg, "bool")
    if avg:
        bits = plan.bits
        recip = plan.reciprocals.ravel()
        recip_t = reciprocal_type(bits)
        recip_rom_t = rom_type(0, int(recip.max()))
        rom_name = d.rom(node, "recip", recip_rom_t, recip,
                         f"{node.name}: round(2^{bits} / taps counted) per output position, mantissas of {recip_t}")
        struct.type("sum_t", fixed(plan.sum_type)).type("recip_t", fixed(recip_t))
    else:
        recip_rom_t = "uint8_t"
        rom_name = d.rom(node, "recip", recip_rom_t, [0], f"{node.name}: (max pooling divides nothing)")
        struct.type("sum_t", fixed(plan.sum_type)).type("recip_t", "ap_ufixed<1, 1>")
    struct.type("recip_rom_t", recip_rom_t)
    return d.config(struct), rom_name


def emit_pool(d: Design, node: Node, ins: list, outs: list) -> None:
    name, recip = _pool_parts(d, node)
    d.code(f"fpgac::pool_2d<{d.type_name(node.inputs[0])}, {d.type_name(node.output)}, {name}>({ins[0]}, {outs[0]}, "
           f"{recip});")


def emit_pool_stream(d: Design, node: Node, ins: list, outs: list) -> None:
    name, recip = _pool_parts(d, node)
    d.code(f"fpgac::pool_2d_stream<{d.type_name(node.inputs[0])}, {d.type_name(node.output)}, {name}>({ins[0]}, "
           f"{outs[0]}, {recip});")


def _global_pool_config(d: Design, node: Node) -> str:
    d.use("pool.h")
    x = node.inputs[0]
    c, p = words(x.type.shape)
    plan: semantics.GlobalPoolPlan = semantics.plan(node)
    avg = plan.average
    struct = Struct(d.layer_name(node, "config"), comment=f"{node.name}: global {'average' if avg else 'max'} pooling")
    struct.const("n_chan", c).const("n_positions", p).const("avg", avg, "bool")
    struct.type("sum_t", fixed(plan.sum_type))
    if avg:
        struct.const("recip", plan.reciprocal, "long long")
        struct.type("recip_t", fixed(reciprocal_type(plan.bits)))
    else:
        struct.const("recip", 0, "long long").type("recip_t", "ap_ufixed<1, 1>")
    return d.config(struct)


def emit_global_pool(d: Design, node: Node, ins: list, outs: list) -> None:
    name = _global_pool_config(d, node)
    d.code(f"fpgac::global_pool<{d.type_name(node.inputs[0])}, {d.type_name(node.output)}, {name}>({ins[0]}, "
           f"{outs[0]});")


def emit_global_pool_stream(d: Design, node: Node, ins: list, outs: list) -> None:
    name = _global_pool_config(d, node)
    d.code(f"fpgac::global_pool_stream<{d.type_name(node.inputs[0])}, {d.type_name(node.output)}, {name}>({ins[0]}, "
           f"{outs[0]});")
