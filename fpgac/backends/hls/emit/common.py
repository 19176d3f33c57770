"""What the HLS emit functions share: sizes, constant ROMs, the mac config of a weight matrix,
biases, derived config structs and the window geometry of conv.h and pool.h."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from fpgac.ir import FixedType, Node, Value, semantics

from ..cpp import Struct, fixed, fixed_rom_type, index_type

if TYPE_CHECKING:
    from ..design import Design

__all__ = ["bias_rom", "broadcast", "const_rom", "derive", "ftype", "geometry", "mac_config", "size"]


def size(value: Value) -> int:
    return math.prod(value.type.shape)


def ftype(value: Value) -> FixedType:
    return value.type.dtype


def mac_config(d: Design, node: Node, role: str, w: np.ndarray, weight: Value, n_in: int, n_out: int,
                accum: str, reuse: int) -> tuple[str, list[str]]:
    """The non-zero entries of ``w[n_in, n_out]`` (mantissas) as ROMs, and their mac config (dense.h)."""
    rows, cols = np.nonzero(w)  # input-major: consecutive entries feed different outputs
    values = w[rows, cols]
    nnz = len(values)
    w_t = ftype(weight)
    d.weight_count += w.size
    d.nonzero_count += nnz
    note = f"{node.name} {role}: {nnz} of {w.size} weights non-zero, mantissas of {w_t}"
    w_rom_t, in_t, out_t = fixed_rom_type(w_t), index_type(n_in), index_type(n_out)
    roms = [
        d.rom(node, role, w_rom_t, values, note),
        d.rom(node, f"{role}i", in_t, rows, f"{node.name} {role}: input index of each weight"),
        d.rom(node, f"{role}o", out_t, cols, f"{node.name} {role}: output index of each weight"),
    ]
    struct = Struct(d.layer_name(node, f"{role}_config"), comment=f"{node.name}: {role} {n_in} -> {n_out}, {nnz} of "
                    f"{w.size} weights non-zero")
    struct.const("n_in", n_in).const("n_out", n_out).const("n_nonzero", nnz).const("n_rom", max(nnz, 1))
    struct.const("reuse", max(1, min(reuse, nnz)))
    struct.type("accum_t", accum).type("weight_t", d.type_name(weight)).type("weight_rom_t", w_rom_t)
    struct.type("in_index_t", in_t).type("out_index_t", out_t)
    return d.config(struct), roms


def bias_rom(d: Design, node: Node, index: int, n: int, accum: FixedType) -> tuple[str, str, str]:
    """(bias type, ROM element type, ROM name) of an optional bias input; zeros of the accumulator type without one."""
    value = node.input(index)
    if value is None:
        t, data = accum, np.zeros(n, dtype=np.int64)
    else:
        t, data = ftype(value), value.data
    rom_t = fixed_rom_type(t)
    name = fixed(t) if value is None else d.type_name(value)
    return name, rom_t, d.rom(node, "b", rom_t, data, f"{node.name} bias: mantissas of {t}")


def derive(d: Design, struct: Struct, base: str) -> str:
    """A config struct extending another (the mac config): ``struct X : base {...}``."""
    text = struct.text().replace(f"struct {struct.name} {{", f"struct {struct.name} : {base} {{", 1)
    d.configs.append(text)
    return struct.name


def broadcast(value: Value, shape: tuple[int, ...]) -> np.ndarray:
    """A constant's mantissas broadcast to ``shape`` (trailing axes aligned), flattened."""
    return np.broadcast_to(value.data, shape).ravel()


def const_rom(d: Design, node: Node, role: str, value: Value, shape: tuple[int, ...]) -> str:
    t = ftype(value)
    return d.rom(node, role, fixed_rom_type(t), broadcast(value, shape),
                 f"{node.name} {role} ({value.name}, broadcast to {list(shape)}): mantissas of {t}")



def geometry(window: semantics.Window, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> Struct:
    """conv.h / pool.h geometry of a 1D or 2D window op (its plan's window; the end pads include
    what ceil_mode adds); a 1D one is 2D with height 1."""
    nd = window.nd
    kernel, begins, ends = window.kernel, window.begins, window.ends_ext
    strides, dilations = window.strides, window.dilations
    if nd == 1:
        kernel, strides, dilations = (1, *kernel), (1, *strides), (1, *dilations)
        begins, ends = (0, *begins), (0, *ends)
        in_shape, out_shape = (in_shape[0], 1, *in_shape[1:]), (out_shape[0], 1, *out_shape[1:])
    s = Struct("")
    s.const("n_chan", in_shape[0]).const("in_height", in_shape[1]).const("in_width", in_shape[2])
    s.const("out_height", out_shape[1]).const("out_width", out_shape[2])
    s.const("filt_height", kernel[0]).const("filt_width", kernel[1])
    s.const("stride_height", strides[0]).const("stride_width", strides[1])
    s.const("dilation_height", dilations[0]).const("dilation_width", dilations[1])
    s.const("pad_top", begins[0]).const("pad_left", begins[1]).const("pad_bottom", ends[0]).const("pad_right", ends[1])
    return s
