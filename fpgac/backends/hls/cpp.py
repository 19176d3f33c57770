"""How IR things are spelled in C++: types, identifiers, integer ROMs (the writer is ``codegen.Code``)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from fpgac.backends.codegen import Code, identifier
from fpgac.ir import FixedType, Overflow, Rounding

__all__ = ["Code", "Namer", "Struct", "fixed", "fixed_rom_type", "index_type", "int_literal", "rom", "rom_type",
           "words"]


def fixed(t: FixedType) -> str:
    """The ap_fixed type with exactly ``t``'s width, integer bits, rounding and overflow."""
    base = "ap_fixed" if t.signed else "ap_ufixed"
    args = [str(t.width), str(t.int_bits)]
    if t.rounding is not Rounding.TRN or t.overflow is not Overflow.WRAP:
        args += [f"AP_{t.rounding.value}", f"AP_{t.overflow.value}"]
    return f"{base}<{', '.join(args)}>"


def rom_type(lo: int, hi: int) -> str:
    """The narrowest native integer type holding every value in ``[lo, hi]`` (a ROM's element type).

    Native integers, not ap_int: a ROM of thousands of ap_int or ap_fixed initializers takes g++
    tens of seconds to compile, a ROM of int8_t none.
    """
    lo, hi = int(min(lo, 0)), int(max(hi, 0))
    for bits in (8, 16, 32, 64):
        if lo < 0 and -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            return f"int{bits}_t"
        if lo >= 0 and hi < (1 << bits):
            return f"uint{bits}_t"
    raise ValueError(f"no native integer holds {lo}..{hi}")


def fixed_rom_type(t: FixedType) -> str:
    """The ROM element type for mantissas of ``t``."""
    return rom_type(t.min_mantissa, t.max_mantissa)


def index_type(n: int) -> str:
    """An unsigned type for indices ``0 .. n - 1``."""
    return rom_type(0, max(n - 1, 0))


def int_literal(v: int) -> str:
    v = int(v)
    if -(1 << 31) <= v < (1 << 31):
        return str(v)
    return f"{v}LL" if v >= -(1 << 63) + 1 else f"({v + 1}LL - 1)"


def rom(ctype: str, name: str, values: Iterable[int], per_line: int = 16) -> str:
    """``static const ctype name[n] = {...};`` (at least one element: C++ has no empty arrays)."""
    items = [int_literal(v) for v in np.asarray(list(values) if not isinstance(values, np.ndarray) else values).ravel()]
    if not items:
        items = ["0"]
    lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"static const {ctype} {name}[{len(items)}] = {{\n    {body}}};\n"


_KEYWORDS = set("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char16_t char32_t class
compl const constexpr const_cast continue decltype default delete do double dynamic_cast else enum
explicit export extern false float for friend goto if inline int long mutable namespace new noexcept
not not_eq nullptr operator or or_eq private protected public register reinterpret_cast return short
signed sizeof static static_assert static_cast struct switch template this thread_local throw true try
typedef typeid typename union unsigned using virtual void volatile wchar_t while xor xor_eq
main fpgac hls std ap_fixed ap_ufixed ap_int ap_uint int8_t int16_t int32_t int64_t uint8_t uint16_t
uint32_t uint64_t
""".split())


class Namer:
    """Unique C++ identifiers: each one asked for is made valid and, if taken, suffixed ``_2``, ``_3``..."""

    def __init__(self) -> None:
        self.taken: set[str] = set(_KEYWORDS)

    def fresh(self, name: str) -> str:
        base = identifier(name)
        ident, i = base, 1
        while ident in self.taken:
            i += 1
            ident = f"{base}_{i}"
        self.taken.add(ident)
        return ident


def words(shape: tuple[int, ...]) -> tuple[int, int]:
    """(values per word, words) of a tensor in io_stream form: channels, then positions."""
    size = math.prod(shape)
    channels = shape[0] if shape else 1
    return channels, (size // channels if channels else 0)


@dataclass
class Struct:
    """A configuration struct: ``static const`` members and typedefs, in order."""

    name: str
    members: list[tuple[str, str, object]] = field(default_factory=list)  # (ctype, name, value)
    types: list[tuple[str, str]] = field(default_factory=list)  # (name, C++ type)
    comment: str = ""

    def const(self, name: str, value: object, ctype: str = "unsigned") -> Struct:
        self.members.append((ctype, name, value))
        return self

    def type(self, name: str, cpp: str) -> Struct:
        self.types.append((name, cpp))
        return self

    def text(self) -> str:
        code = Code()
        if self.comment:
            code(f"// {self.comment}")
        code(f"struct {self.name} {{")
        with code.indent():
            for ctype, name, value in self.members:
                if isinstance(value, bool):
                    literal = "true" if value else "false"
                elif ctype == "long long":
                    literal = f"{int(value)}LL"
                else:
                    literal = str(value)
                code(f"static const {ctype} {name} = {literal};")
            for name, cpp in self.types:
                code(f"typedef {cpp} {name};")
        code("};")
        return code.text()
