"""Small pieces of C generation: containers, integer bounds, literals.

Containers: a value of ``FixedType`` ``t`` lives in the smallest of ``int8_t``, ``int16_t``,
``int32_t``, ``int64_t`` (``uint*_t`` when ``t`` is unsigned) that holds ``t.width`` bits.
Arithmetic never happens in a container: every operand is first widened to a *compute type*,
``int32_t`` when the exact bound of every intermediate fits 32 signed bits, else ``int64_t``
(64 bits is refused). Bounds are computed here, in Python, from the types and the constant
weights, so an accumulator can never overflow whatever the order of the sum.
"""

from __future__ import annotations

import re

import numpy as np

from fpgac.backends.codegen import Code as CWriter
from fpgac.backends.codegen import identifier as c_ident
from fpgac.errors import UnsupportedError
from fpgac.ir import FixedType

__all__ = ["CWriter", "container", "signed_bits", "compute_type", "maxabs", "rng", "c_ident", "c_array",
           "smallest_int", "smallest_uint", "sra", "shl", "rng_of_container", "container_bytes"]


def container(t: FixedType) -> str:
    """The C type that stores mantissas of ``t``."""
    for bits in (8, 16, 32, 64):
        if t.width <= bits:
            return f"{'' if t.signed else 'u'}int{bits}_t"
    raise UnsupportedError(f"{t} is wider than 64 bits")  # FixedType refuses this already


def container_bytes(ctype: str) -> int:
    return int(re.search(r"(\d+)_t$", ctype).group(1)) // 8


def rng_of_container(ctype: str) -> tuple[int, int]:
    """The values a C integer type holds."""
    bits = container_bytes(ctype) * 8
    return (0, (1 << bits) - 1) if ctype.startswith("u") else (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def rng(t: FixedType) -> tuple[int, int]:
    return t.min_mantissa, t.max_mantissa


def maxabs(t: FixedType) -> int:
    return max(-t.min_mantissa, t.max_mantissa)


def signed_bits(lo: int, hi: int) -> int:
    """The fewest two's complement bits holding every integer in ``[lo, hi]``."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def compute_type(*ranges: tuple[int, int], where: str = "") -> str:
    """``int32_t`` if every ``(lo, hi)`` fits 32 signed bits, else ``int64_t``; wider is refused."""
    bits = max(signed_bits(int(lo), int(hi)) for lo, hi in ranges)
    if bits <= 32:
        return "int32_t"
    if bits <= 64:
        return "int64_t"
    raise UnsupportedError(f"{where}: an intermediate needs {bits} bits; the cpu target computes in at most 64")


def smallest_int(lo: int, hi: int) -> str:
    bits = signed_bits(lo, hi)
    for size in (8, 16, 32, 64):
        if bits <= size:
            return f"int{size}_t"
    raise UnsupportedError(f"constant range {lo}..{hi} needs {bits} bits")


def smallest_uint(hi: int) -> str:
    for size in (8, 16, 32):
        if hi < (1 << size):
            return f"uint{size}_t"
    return "uint64_t"


def sra(ct: str, expr: str, s: int) -> str:
    """``floor(expr / 2**s)`` in compute type ``ct``."""
    return expr if s == 0 else f"fx_sra{ct[3:5]}({expr}, {s})"


def shl(ct: str, expr: str, s: int) -> str:
    """``expr * 2**s`` in compute type ``ct`` (s >= 0)."""
    return expr if s == 0 else f"fx_shl{ct[3:5]}({expr}, {s})"


def c_array(ctype: str, name: str, data: np.ndarray, per_line: int = 16) -> str:
    """``static const ctype name[n] = {...};`` (a zero-length array gets one unused 0)."""
    flat = [int(v) for v in np.asarray(data).reshape(-1)]
    if not flat:
        flat = [0]
    rows = [", ".join(str(v) for v in flat[i:i + per_line]) for i in range(0, len(flat), per_line)]
    body = ",\n    ".join(rows)
    return f"static const {ctype} {name}[{len(flat)}] = {{\n    {body}\n}};\n"
