"""The type arithmetic of quantization: activation, weight and exact (bound) types, and the
ranges and settle points the rules size them from. Shared by :mod:`.quantize_rules` and
:mod:`.quantize_rnn`."""

from __future__ import annotations

import math

import numpy as np

from fpgac.ir import FixedType, Overflow, Rounding
from fpgac.ir.semantics.bounds import bound_type, dot_bounds, mantissa_range, shifted

__all__ = ["MARGIN", "activation_type", "bound_type", "dot_bounds", "mantissa_range", "settle", "shifted", "weight_type"]

#: activations get integer bits for this multiple of the largest calibrated magnitude
MARGIN = 1.25


def activation_type(lo: float, hi: float, bits: int, *, int_bits: int | None = None) -> FixedType:
    """``bits`` wide, integer bits for ``MARGIN`` times the largest magnitude, RND and SAT."""
    signed = lo < 0
    if int_bits is None:
        m = max(abs(lo), abs(hi)) * MARGIN
        int_bits = (math.floor(math.log2(m)) + 1 if m > 0 else 0) + signed
    return FixedType(bits, int_bits, signed, Rounding.RND, Overflow.SAT)


def weight_type(data: np.ndarray, bits: int) -> FixedType:
    """The narrowest-range type of ``bits`` that holds every weight after rounding (RND, SAT)."""
    data = np.asarray(data, dtype=np.float64)
    signed = bool(data.size and data.min() < 0)
    m = float(np.abs(data).max()) if data.size else 0.0
    int_bits = (math.floor(math.log2(m)) + 1 if m > 0 else 0) + signed
    while True:
        t = FixedType(bits, int_bits, signed, Rounding.RND, Overflow.SAT)
        rounded = np.floor(data * 2.0**t.frac_bits + 0.5)
        if not data.size or (rounded.max() <= t.max_mantissa and rounded.min() >= t.min_mantissa):
            break
        int_bits += 1
    def exact(frac: int) -> bool:
        scaled = data * 2.0**frac
        return bool(np.all(scaled == np.round(scaled)))

    if not exact(t.frac_bits - 1):
        return t
    frac = next(f for f in range(t.frac_bits - 64, t.frac_bits) if exact(f))  # binarized, power-of-two...
    width = max(1, int_bits + frac)
    return FixedType(width, width - frac, signed, Rounding.RND, Overflow.SAT)


def settle(frac: int, rate: float = 1.0) -> float:
    """Where ``1 - e^(-rate x)`` is within half an LSB of 1 at ``frac`` fractional bits."""
    return (frac + 1) * math.log(2.0) / rate

