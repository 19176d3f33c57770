"""Exact fixed-point arithmetic on integer mantissas, bit-exact with Xilinx ``ap_fixed``.

The golden model must equal HLS C-simulation on every bit, so every conversion here reproduces
what ``ap_fixed_base.h`` does, not what a float computation would approximate: a value is split
into an integer and a power of two, rounding looks at the dropped bits exactly as ap_fixed does
(the first dropped bit and the OR of the rest), and overflow is decided on the exact rounded
integer. Floats are never used for arithmetic, only to split a double into ``M * 2**e``.

Mantissas are numpy ``int64``. To keep every intermediate exact in int64, the conversion
functions accept widths up to :data:`MAX_EXACT_WIDTH` (62) bits; wider types raise ``UsageError``.

ap_fixed semantics reproduced here (checked against the headers that hls4ml ships):

- Rounding happens first, on the exact value, then overflow on the rounded integer.
- ``WRAP`` keeps the low ``width`` bits (two's complement for signed, modulo ``2**width`` for
  unsigned, so ``ufixed`` of a negative number wraps rather than clamping).
- ``SAT_SYM`` on a signed type clamps to ``[-max, max]``: the most negative mantissa itself also
  becomes ``-max``. With ``width == 1`` ap_fixed sets the bit pattern ``1`` (that is ``-1``), so
  it acts as ``SAT``. On unsigned types it is ``SAT``.
- ``SAT_ZERO`` sets any out-of-range result to 0, and ``TRN_ZERO`` from an unsigned source is
  ``TRN`` (they agree on non-negative values anyway).
- ``+-inf`` behaves as ap_fixed's ``+-2**1024``: it saturates, or wraps to 0.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir.types import FixedType, Overflow, Rounding

__all__ = [
    "MAX_EXACT_WIDTH",
    "add_type",
    "mul_type",
    "quantize",
    "requantize",
    "to_float",
]

MAX_EXACT_WIDTH = 62
"""Widest type the mantissa conversions accept: keeps ``M << k`` thresholds and ``-M`` in int64."""

_Bits = np.ndarray  # boolean arrays
_Inc = Callable[[_Bits, _Bits, _Bits, np.ndarray], _Bits]

# Whether to add one to the floored value, from the first dropped bit ``qb``, the OR of the
# other dropped bits ``r``, the sign of the source ``s`` and the floored value ``fl``. These are
# ap_fixed's ``quantization_adjust`` rules, one line per mode.
_ROUND_UP: dict[Rounding, _Inc] = {
    Rounding.TRN: lambda qb, r, s, fl: np.zeros_like(qb),
    Rounding.TRN_ZERO: lambda qb, r, s, fl: s & (qb | r),
    Rounding.RND: lambda qb, r, s, fl: qb,
    Rounding.RND_ZERO: lambda qb, r, s, fl: qb & (s | r),
    Rounding.RND_INF: lambda qb, r, s, fl: qb & (~s | r),
    Rounding.RND_MIN_INF: lambda qb, r, s, fl: qb & r,
    Rounding.RND_CONV: lambda qb, r, s, fl: qb & (((fl & 1) != 0) | r),
}


def _check_width(t: FixedType, role: str) -> None:
    if not isinstance(t, FixedType):
        raise UsageError(f"{role} type must be a FixedType, not {t!r}")
    if t.width > MAX_EXACT_WIDTH:
        raise UsageError(
            f"{role} type {t} is {t.width} bits wide: exact mantissa arithmetic supports at most "
            f"{MAX_EXACT_WIDTH} bits"
        )


def _convert(man: np.ndarray, k: np.ndarray, t: FixedType) -> np.ndarray:
    """The mantissas of ``t`` holding ``man * 2**k``, rounded and overflowed as ap_fixed does.

    ``man`` is int64 with ``|man| < 2**62``; ``k`` is a per-element int64 shift (positive: the
    value is a multiple of the LSB; negative: bits are dropped and rounded).
    """
    man = man.astype(np.int64, copy=False)
    k = np.broadcast_to(np.asarray(k, dtype=np.int64), man.shape)
    width = t.width
    lo, hi = t.min_mantissa, t.max_mantissa
    if t.overflow is Overflow.SAT_SYM and t.signed and width > 1:
        lo = -hi  # ap_fixed's SAT_SYM: the most negative mantissa is an underflow too

    # Left shift (k >= 0): exact, no rounding. Compare man against hi and lo scaled down.
    kl = np.clip(k, 0, 63)
    big = k >= 64  # man * 2**k is a multiple of 2**64: wraps to 0, out of range unless 0
    above_l = np.where(big, man > 0, man > np.right_shift(np.int64(hi), kl))
    below_l = np.where(big, man < 0, man <= np.right_shift(np.int64(lo - 1), kl))
    low_l = np.where(big, np.uint64(0), np.left_shift(man.view(np.uint64), kl.astype(np.uint64)))

    # Right shift (k < 0) by n bits: floor, then ap_fixed's rounding increment. With n clamped
    # to 63 the floor, the first dropped bit and the sticky bit are unchanged for |man| < 2**62.
    n = np.clip(-k, 1, 63)
    twice = np.right_shift(man, n - 1)  # floor(2 * value)
    floor = np.right_shift(twice, 1)
    qb = (twice & 1) != 0
    r = (man & (np.left_shift(np.int64(1), n - 1) - 1)) != 0
    rounded = floor + _ROUND_UP[t.rounding](qb, r, man < 0, floor).astype(np.int64)

    left = k >= 0
    above = np.where(left, above_l, rounded > hi)
    below = np.where(left, below_l, rounded < lo)
    low = np.where(left, low_l, rounded.view(np.uint64)) & np.uint64((1 << width) - 1)
    wrapped = low.astype(np.int64)
    if t.signed:
        wrapped = np.where(wrapped >= (1 << (width - 1)), wrapped - (1 << width), wrapped)

    if t.overflow is Overflow.WRAP:
        return wrapped
    if t.overflow is Overflow.SAT_ZERO:
        return np.where(above | below, np.int64(0), wrapped)
    return np.where(above, np.int64(hi), np.where(below, np.int64(lo), wrapped))  # SAT, SAT_SYM


def quantize(x: np.ndarray, t: FixedType) -> np.ndarray:
    """The int64 mantissas that ``ap_fixed<...> v = (double)x;`` holds.

    A double is split exactly into a 53-bit integer and a power of two, so no scaling in floating
    point can round twice or lose a sticky bit. NaN has no fixed-point value (ap_fixed only warns
    and produces garbage), so it is refused.
    """
    _check_width(t, "target")
    x = np.asarray(x, dtype=np.float64)
    if np.isnan(x).any():
        raise UsageError(f"cannot quantize NaN to {t}: {int(np.isnan(x).sum())} of {x.size} values are NaN")
    inf = np.isinf(x)
    frac, exp = np.frexp(np.where(inf, np.copysign(1.0, x), x))
    man = np.ldexp(frac, 53).astype(np.int64)
    k = exp.astype(np.int64) - 53 + t.frac_bits
    k = np.where(inf, np.int64(2000), k)  # like ap_fixed: +-inf is +-2**1024
    return _convert(man, k, t)


def requantize(m: np.ndarray, src: FixedType, dst: FixedType) -> np.ndarray:
    """The mantissas of ``ap_fixed<dst> v = (ap_fixed<src>)m;``, with dst's rounding and overflow.

    Pure integer shifts, so a cast in the golden model is exactly the cast in the HLS kernel.
    """
    _check_width(src, "source")
    _check_width(dst, "destination")
    m = np.asarray(m)
    if m.dtype.kind not in "iu":
        raise UsageError(f"mantissas must be an integer array, not {m.dtype}")
    m = m.astype(np.int64)
    if m.size and (m.min() < src.min_mantissa or m.max() > src.max_mantissa):
        raise UsageError(
            f"mantissas out of range for {src}: expected {src.min_mantissa}..{src.max_mantissa}, "
            f"got {m.min()}..{m.max()}"
        )
    return _convert(m, np.int64(dst.frac_bits - src.frac_bits), dst)


def to_float(m: np.ndarray, t: FixedType) -> np.ndarray:
    """The float64 values of mantissas ``m`` of type ``t``: exact when ``t.width <= 53``."""
    return np.ldexp(np.asarray(m).astype(np.float64), -t.frac_bits)


def add_type(a: FixedType, b: FixedType) -> FixedType:
    """The type ``a + b`` has in ap_fixed (``RType<>::plus``): it can never overflow.

    An unsigned operand added to a signed one needs one more integer bit to stay representable
    in the signed result, hence the ``(b.signed and not a.signed)`` terms.
    """
    ia = a.int_bits + (b.signed and not a.signed)
    ib = b.int_bits + (a.signed and not b.signed)
    int_bits = max(ia, ib) + 1
    width = int_bits + max(a.frac_bits, b.frac_bits)
    return _result_type(width, int_bits, a.signed or b.signed, "sum", a, b)


def mul_type(a: FixedType, b: FixedType) -> FixedType:
    """The type ``a * b`` has in ap_fixed (``RType<>::mult``): it can never overflow."""
    return _result_type(
        a.width + b.width,
        a.int_bits + b.int_bits,
        a.signed or b.signed,
        "product",
        a,
        b,
    )


def _result_type(width: int, int_bits: int, signed: bool, what: str, a: FixedType, b: FixedType) -> FixedType:
    if width > 64:
        raise UsageError(f"the exact {what} of {a} and {b} needs {width} bits; at most 64 are supported")
    return FixedType(width, int_bits, signed)
