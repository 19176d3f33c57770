"""Dense, Conv (array and line-buffer stream forms) and ScaleShift: dense.h, conv.h, elementwise.h."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from fpgac.ir import Node, semantics

from ..cpp import Struct

from .common import bias_rom, const_rom, derive, ftype, geometry, mac_config, size

if TYPE_CHECKING:
    from ..design import Design

__all__ = ["emit_conv", "emit_conv_stream", "emit_dense", "emit_scale_shift"]


def emit_dense(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("dense.h")
    x, w = node.inputs[0], node.inputs[1]
    n_in, n_out = w.type.shape
    rows = size(x) // n_in
    out_t = d.type_name(node.output)
    mac, roms = mac_config(d, node, "w", w.data, w, n_in, n_out, out_t, d.reuse)
    bias_t, bias_rom_t, bias = bias_rom(d, node, 2, n_out, ftype(node.output))
    struct = Struct(d.layer_name(node, "config"), comment=f"{node.name}: Dense")
    struct.const("n_rows", rows)
    struct.type("bias_t", bias_t).type("bias_rom_t", bias_rom_t)
    name = derive(d, struct, mac)
    d.code(f"fpgac::dense<{d.type_name(x)}, {out_t}, {name}>({ins[0]}, {outs[0]}, {', '.join(roms)}, {bias});")


def _conv_parts(d: Design, node: Node) -> tuple[str, list[str], str]:
    d.use("conv.h")
    x, w = node.inputs[0], node.inputs[1]
    m, cg, *kernel = w.type.shape
    groups = node.attrs["groups"]
    c = x.type.shape[0]
    taps = math.prod(kernel)
    # the weight as a matrix from the receptive field (c, kh, kw) to the output channels
    matrix = np.zeros((c * taps, m), dtype=np.int64)
    per_group = m // groups
    data = w.data.reshape(m, cg, taps)
    for f in range(m):
        g = f // per_group
        matrix[(g * cg) * taps:(g * cg + cg) * taps, f] = data[f].reshape(-1)
    out_t = d.type_name(node.output)
    mac, roms = mac_config(d, node, "w", matrix, w, c * taps, m, out_t, d.reuse)
    bias_t, bias_rom_t, bias = bias_rom(d, node, 2, m, ftype(node.output))
    plan: semantics.LinearPlan = semantics.plan(node)
    struct = geometry(plan.window, x.type.shape, node.output.type.shape)
    struct.name = d.layer_name(node, "config")
    struct.comment = f"{node.name}: Conv, {groups} group(s)"
    struct.const("n_filt", m)
    struct.type("bias_t", bias_t).type("bias_rom_t", bias_rom_t)
    return derive(d, struct, mac), roms, bias


def emit_conv(d: Design, node: Node, ins: list, outs: list) -> None:
    name, roms, bias = _conv_parts(d, node)
    x = node.inputs[0]
    d.code(f"fpgac::conv_2d<{d.type_name(x)}, {d.type_name(node.output)}, {name}>({ins[0]}, {outs[0]}, "
           f"{', '.join(roms)}, {bias});")


def emit_conv_stream(d: Design, node: Node, ins: list, outs: list) -> None:
    name, roms, bias = _conv_parts(d, node)
    x = node.inputs[0]
    d.code(f"fpgac::conv_2d_stream<{d.type_name(x)}, {d.type_name(node.output)}, {name}>({ins[0]}, {outs[0]}, "
           f"{', '.join(roms)}, {bias});")


def emit_scale_shift(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("elementwise.h")
    x, scale, shift = node.inputs
    shape = x.type.shape
    s, t = const_rom(d, node, "scale", scale, shape), const_rom(d, node, "shift", shift, shape)
    d.code(f"fpgac::scale_shift<{d.type_name(x)}, {d.type_name(scale)}, {d.type_name(shift)}, "
           f"{d.type_name(node.output)}, {size(x)}>({ins[0]}, {outs[0]}, {s}, {t});")
