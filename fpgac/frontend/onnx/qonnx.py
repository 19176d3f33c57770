"""QONNX's quantizers (what Brevitas exports) on constants and run-time tensors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fpgac.errors import (
    InvalidModelError,
)
from fpgac.ir import (
    MAX_EXACT_WIDTH,
    FixedType,
    FloatType,
    Op,
    Overflow,
    Rounding,
    Value,
)

from .context import Grid, Lowering, LoweringContext, Tensor

# -------------------------------------------------------------------------------------------
# QONNX quantizers (what Brevitas exports): Quant/IntQuant, BipolarQuant, Trunc
#
# Semantics from qonnx's operator docs (docs/qonnx-custom-ops/*.md). With v = x / scale + zeropt:
#   Quant:        q = round(clamp(v, min_int, max_int)); y = (q - zeropt) * scale
#   BipolarQuant: y = (x >= 0 ? 1 : -1) * scale
#   Trunc v1 (5 inputs):  q = round_mode(round_half_even(v) / 2**(in_bits - out_bits))
#                         y = (q - zeropt) * scale
#   Trunc v2 (6 inputs):  t = 2**round(log2(out_scale / scale))
#                         q = round_mode(clamp(round_half_even(v) / t, min_int, max_int))
#                         y = (q - zeropt / t) * out_scale
# Clamping before rounding to integer bounds equals rounding first (rounding is monotone and keeps
# integers), which is what an ap_fixed conversion does: round, then saturate.
# -------------------------------------------------------------------------------------------

#: the domains QONNX's quantizers appear under: qonnx's own, FINN's older one and Brevitas's export
QONNX_DOMAINS: tuple[str, ...] = ("qonnx.custom_op.general", "finn.custom_op.general", "onnx.brevitas")

#: the widest quantizer fpgac takes: a Quant's integer must stay exact through float64 and int64
_MAX_QUANT_BITS = 32


def _round_half_even(v: np.ndarray) -> np.ndarray:
    return np.round(v)


def _round_half_away(v: np.ndarray) -> np.ndarray:
    """HALF_UP: to nearest, ties away from zero (exact: ``a - floor(a)`` has no rounding error)."""
    a = np.abs(v)
    whole = np.floor(a)
    return np.copysign(whole + (a - whole >= 0.5), v) + 0.0


def _round_half_toward_zero(v: np.ndarray) -> np.ndarray:
    """HALF_DOWN: to nearest, ties toward zero."""
    a = np.abs(v)
    whole = np.floor(a)
    return np.copysign(whole + (a - whole > 0.5), v) + 0.0


def _round_away(v: np.ndarray) -> np.ndarray:
    """UP: away from zero."""
    return np.copysign(np.ceil(np.abs(v)), v) + 0.0


@dataclass(frozen=True)
class _RoundingMode:
    """A QONNX rounding mode: exactly, for constants, and as the ap_fixed mode (None: none exists)."""

    exact: Callable[[np.ndarray], np.ndarray]
    hardware: Rounding | None


#: QONNX's rounding modes (names case-insensitive); ROUND_TO_ZERO is Brevitas's name for DOWN
_ROUNDING_MODES: dict[str, _RoundingMode] = {
    "ROUND": _RoundingMode(_round_half_even, Rounding.RND_CONV),
    "HALF_EVEN": _RoundingMode(_round_half_even, Rounding.RND_CONV),
    "FLOOR": _RoundingMode(np.floor, Rounding.TRN),
    "DOWN": _RoundingMode(lambda v: np.trunc(v) + 0.0, Rounding.TRN_ZERO),
    "ROUND_TO_ZERO": _RoundingMode(lambda v: np.trunc(v) + 0.0, Rounding.TRN_ZERO),
    "HALF_UP": _RoundingMode(_round_half_away, Rounding.RND_INF),
    "HALF_DOWN": _RoundingMode(_round_half_toward_zero, Rounding.RND_ZERO),
    "CEIL": _RoundingMode(lambda v: np.ceil(v) + 0.0, None),
    "UP": _RoundingMode(_round_away, None),
}

_HARDWARE_MODES = ", ".join(name for name, mode in _ROUNDING_MODES.items() if mode.hardware is not None)


def _int_bounds(signed: bool, narrow: bool, bits: int) -> tuple[int, int]:
    """QONNX's min_int/max_int: the integer range of a quantizer."""
    if signed:
        return -(1 << (bits - 1)) + narrow, (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1 - narrow


def _pow2_exponents(scale: np.ndarray) -> np.ndarray | None:
    """``e`` with ``scale == 2**e`` elementwise, or None if some scale is not a power of two."""
    mantissa, exponent = np.frexp(np.asarray(scale, dtype=np.float64))
    return exponent.astype(np.int64) - 1 if np.all(mantissa == 0.5) else None


def _qonnx_inputs(cx: LoweringContext, counts: tuple[int, ...], names: str) -> None:
    got = len(cx.node.input)
    if got not in counts or not all(cx.has(i) for i in range(got)):
        want = " or ".join(map(str, counts))
        raise InvalidModelError(f"{cx.where()}: takes {want} inputs ({names}), got {got}")


def _qonnx_scale(cx: LoweringContext, index: int, what: str = "scale") -> np.ndarray:
    scale = np.asarray(cx.const(index, what), dtype=np.float64)
    if not np.all(np.isfinite(scale) & (scale > 0)):
        bad = float(scale[~(np.isfinite(scale) & (scale > 0))].reshape(-1)[0])
        raise InvalidModelError(f"{cx.where()}: {what} must be positive and finite, but holds {bad!r}")
    return scale


def _qonnx_zeropt(cx: LoweringContext, index: int) -> np.ndarray:
    zeropt = np.asarray(cx.const(index, "zeropt"), dtype=np.float64)
    if not np.all(np.isfinite(zeropt)):
        raise InvalidModelError(f"{cx.where()}: zeropt holds NaN or Inf")
    return zeropt


def _qonnx_bitwidth(cx: LoweringContext, index: int, what: str = "bitwidth") -> int:
    bits = np.asarray(cx.const(index, what), dtype=np.float64).reshape(-1)
    if bits.size == 0 or np.any(bits != bits[0]):
        raise cx.unsupported(f"{what} must be one number, but has {bits.size} different values")
    value = float(bits[0])
    if not (np.isfinite(value) and value == round(value) and value >= 1):
        raise InvalidModelError(f"{cx.where()}: {what} must be a positive integer, not {value!r}")
    if value > _MAX_QUANT_BITS:
        raise cx.unsupported(f"{what} {int(value)} exceeds the {_MAX_QUANT_BITS} bits fpgac quantizes to")
    return int(value)


def _qonnx_rounding(cx: LoweringContext, a: dict[str, Any], default: str) -> tuple[str, _RoundingMode]:
    name = a.get("rounding_mode", default)
    name = (name.decode() if isinstance(name, bytes) else str(name)).upper()
    if name not in _ROUNDING_MODES:
        raise InvalidModelError(
            f"{cx.where()}: rounding_mode {name!r} is not a QONNX mode ({', '.join(_ROUNDING_MODES)})"
        )
    return name, _ROUNDING_MODES[name]


def _hardware_rounding(cx: LoweringContext, name: str, mode: _RoundingMode) -> Rounding:
    if mode.hardware is None:
        raise cx.unsupported(
            f"rounding_mode {name} on a run-time tensor has no ap_fixed equivalent; fpgac takes {_HARDWARE_MODES}"
        )
    return mode.hardware


def _overflow(cx: LoweringContext, signed: bool, narrow: bool) -> Overflow:
    if narrow and not signed:
        raise cx.unsupported(
            "narrow unsigned quantization (0 to 2**bits - 2) on a run-time tensor has no ap_fixed overflow mode"
        )
    return Overflow.SAT_SYM if narrow else Overflow.SAT


def _same_shape(cx: LoweringContext, x: Tensor, *params: np.ndarray) -> None:
    """Scales and zero points may not broadcast the tensor they quantize to a larger shape."""
    try:
        shape = np.broadcast_shapes(x.full_shape, *(np.shape(p) for p in params))
    except ValueError:
        shape = None
    if shape != x.full_shape:
        shapes = ", ".join(str(list(np.shape(p))) for p in params)
        raise cx.unsupported(f"parameters of shapes {shapes} do not broadcast to the input's {list(x.full_shape)}")


def _set_constant(cx: LoweringContext, values: np.ndarray, grid: Grid | None) -> None:
    cx.set_outputs([np.asarray(values, dtype=np.float64)])
    if grid is not None:
        cx.grids[cx.node.output[0]] = grid


def _grid_of(scale: np.ndarray, zeropt: np.ndarray, signed: bool) -> Grid | None:
    """The grid of a quantized constant: every scale a power of two and no zero point."""
    exponents = _pow2_exponents(scale)
    if exponents is None or np.any(zeropt != 0):
        return None
    return Grid(int(-exponents.min()), signed)


def _scalar_exponent(scale: np.ndarray, zeropt: np.ndarray) -> int | None:
    """``e`` if the scale is one power of two ``2**e`` and the zero point is 0; else None."""
    exponents = _pow2_exponents(scale)
    if exponents is None or np.any(zeropt != 0) or np.any(exponents != exponents.reshape(-1)[0]):
        return None
    return int(exponents.reshape(-1)[0])


def _quant_node(cx: LoweringContext, x: Value, dtype: FixedType, suffix: str = "") -> Value:
    (out,) = cx.emit(Op.QUANT, [x], dtypes=[dtype], suffix=suffix)
    return out


def lower_qonnx_quant(cx: LoweringContext, a: dict[str, Any]) -> None:
    _qonnx_inputs(cx, (4,), "x, scale, zeropt, bitwidth")
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    name, mode = _qonnx_rounding(cx, a, "ROUND")
    scale, zeropt, bits = _qonnx_scale(cx, 1), _qonnx_zeropt(cx, 2), _qonnx_bitwidth(cx, 3)
    if bits == 1 and signed:
        raise cx.unsupported(
            "a 1-bit signed Quant is [-1, 0] by the QONNX spec but bipolar +-1 in qonnx's executor; "
            "export it as BipolarQuant"
        )
    lo, hi = _int_bounds(signed, narrow, bits)
    x = cx.sym(0)
    if isinstance(x, np.ndarray):
        q = mode.exact(np.clip(np.asarray(x, dtype=np.float64) / scale + zeropt, lo, hi))
        _set_constant(cx, (q - zeropt) * scale, _grid_of(scale, zeropt, signed))
        return
    x = cx.tensor(0)
    _same_shape(cx, x, scale, zeropt)
    rounding, overflow = _hardware_rounding(cx, name, mode), _overflow(cx, signed, narrow)
    exponent = _scalar_exponent(scale, zeropt)
    if exponent is not None:
        # one QUANT: the mantissa is the QONNX integer, the binary point sits where the scale says
        out = _quant_node(cx, x.value, FixedType(bits, bits + exponent, signed, rounding, overflow))
        cx.set_outputs([Tensor(out, x.batch_axis)])
        return
    # any other scale, or a zero point: to the integer domain and back around an integer QUANT;
    # what follows the QUANT is as wide a float as the input
    base = cx.node.name or cx.node.output[0]
    after = [x.value.type.dtype] if isinstance(x.value.type.dtype, FloatType) else None
    zero = cx.per_sample_const(zeropt, x, f"{base}.zeropt") if np.any(zeropt != 0) else None
    (v,) = cx.emit(Op.MUL, [x.value, cx.per_sample_const(1.0 / scale, x, f"{base}.inv_scale")], suffix="_prescale")
    if zero is not None:
        (v,) = cx.emit(Op.ADD, [v, zero], suffix="_zeropt")
    v = _quant_node(cx, v, FixedType(bits, bits, signed, rounding, overflow), suffix="_int")
    if zero is not None:
        (v,) = cx.emit(Op.SUB, [v, zero], dtypes=after, suffix="_unzeropt")
    (out,) = cx.emit(Op.MUL, [v, cx.per_sample_const(scale, x, f"{base}.scale")], dtypes=after, suffix="_rescale")
    cx.set_outputs([Tensor(out, x.batch_axis)])


def lower_qonnx_bipolar_quant(cx: LoweringContext, a: dict[str, Any]) -> None:
    _qonnx_inputs(cx, (2,), "x, scale")
    scale = _qonnx_scale(cx, 1)
    x = cx.sym(0)
    if not isinstance(x, np.ndarray):
        raise cx.unsupported("BipolarQuant of a run-time tensor is a sign function, which fpgac has no IR op for")
    values = np.where(np.asarray(x, dtype=np.float64) >= 0, 1.0, -1.0) * scale
    _set_constant(cx, values, _grid_of(scale, np.zeros(()), True))


def lower_qonnx_trunc(cx: LoweringContext, a: dict[str, Any]) -> None:
    """Trunc: version 1 (5 inputs) or version 2 (6 inputs, with out_scale, signed and narrow)."""
    _qonnx_inputs(cx, (5, 6), "x, scale, zeropt, in_bitwidth, [out_scale,] out_bitwidth")
    v2 = len(cx.node.input) == 6
    name, mode = _qonnx_rounding(cx, a, "FLOOR")
    scale, zeropt, in_bits = _qonnx_scale(cx, 1), _qonnx_zeropt(cx, 2), _qonnx_bitwidth(cx, 3, "in_bitwidth")
    out_scale = _qonnx_scale(cx, 4, "out_scale") if v2 else scale
    out_bits = _qonnx_bitwidth(cx, 5 if v2 else 4, "out_bitwidth")
    signed, narrow = bool(a.get("signed", 1)), bool(a.get("narrow", 0))
    if v2:
        shift = np.exp2(np.round(np.log2(out_scale / scale)))
        lo, hi = _int_bounds(signed, narrow, out_bits)
    else:
        shift = np.exp2(float(in_bits - out_bits))
        lo, hi = -np.inf, np.inf  # version 1 does not clamp
    x = cx.sym(0)
    if isinstance(x, np.ndarray):
        y = np.round(np.asarray(x, dtype=np.float64) / scale + zeropt)
        q = mode.exact(np.clip(y / shift, lo, hi))
        _set_constant(cx, (q - zeropt / shift) * out_scale if v2 else (q - zeropt) * scale, None)
        return
    x = cx.tensor(0)
    _same_shape(cx, x, scale, zeropt, out_scale)
    exponent = _scalar_exponent(scale, zeropt)
    out_exponent = _scalar_exponent(out_scale, zeropt)
    if exponent is None or out_exponent is None:
        raise cx.unsupported(
            "Trunc on a run-time tensor needs a power-of-two scalar scale"
            + (" and out_scale" if v2 else "") + " and a zero zeropt"
        )
    rounding = _hardware_rounding(cx, name, mode)
    if v2:
        # round to the input grid, then to the out_scale grid saturating to out_bitwidth: the second
        # QUANT has the narrower type
        overflow = _overflow(cx, signed, narrow)
        rounded = _trunc_round_input(cx, x.value, exponent, in_bits, out_bits + out_exponent - exponent)
        dtype = FixedType(out_bits, out_bits + out_exponent, signed, rounding, overflow)
        cx.set_outputs([Tensor(_quant_node(cx, rounded, dtype), x.batch_axis)])
        return
    # version 1 keeps the input's scale: the integer shrinks by k = in - out bits, and nothing
    # clamps, so the output type is as wide as the rounded input's range needs
    rounded = _trunc_round_input(cx, x.value, exponent, in_bits, 0)
    k = in_bits - out_bits
    dtype = rounded.type.dtype
    shift = -dtype.frac_bits - exponent - k  # from the rounded input's mantissa to the output's integer
    if shift >= 0:
        lo, hi = dtype.min_mantissa << shift, dtype.max_mantissa << shift
    else:  # floor and ceiling of the shifted bounds, which any rounding stays within
        lo, hi = dtype.min_mantissa >> -shift, -(-dtype.max_mantissa >> -shift)
    width = 1 + max(max(hi, 0).bit_length(), max(-lo - 1, 0).bit_length())
    base = cx.node.name or cx.node.output[0]
    (shifted,) = cx.emit(Op.MUL, [rounded, cx.constant(np.exp2(-float(k)), f"{base}.shift")], suffix="_shift")
    dtype = FixedType(width, width + exponent, True, rounding, Overflow.SAT)
    cx.set_outputs([Tensor(_quant_node(cx, shifted, dtype), x.batch_axis)])


def _trunc_round_input(cx: LoweringContext, x: Value, exponent: int, in_bits: int, out_span: int) -> Value:
    """Trunc's first step, ``round_half_even(x / scale) * scale``: a QUANT unless ``x`` is on that grid.

    Its type holds every ``in_bits``-bit integer, signed or not, and ``2**out_span`` (the output's
    range in units of the input scale), so where it saturates the output saturates anyway.
    """
    if _on_grid(x, exponent):
        return x
    width = max(in_bits + 1, out_span + 2, 2)
    if width > MAX_EXACT_WIDTH:
        raise cx.unsupported(
            f"Trunc would need a {width}-bit intermediate, more than the {MAX_EXACT_WIDTH} fpgac takes"
        )
    return _quant_node(cx, x, FixedType(width, width + exponent, True, Rounding.RND_CONV, Overflow.SAT), "_round")


def _on_grid(x: Value, exponent: int) -> bool:
    """Whether ``x`` is a QUANT output whose every value is a multiple of ``2**exponent``."""
    dtype = x.type.dtype
    return (x.producer is not None and x.producer.op is Op.QUANT and isinstance(dtype, FixedType)
            and -dtype.frac_bits >= exponent)


QONNX_LOWERINGS: dict[str, Lowering] = {
    "Quant": lower_qonnx_quant,
    "IntQuant": lower_qonnx_quant,
    "BipolarQuant": lower_qonnx_bipolar_quant,
    "Trunc": lower_qonnx_trunc,
}

QONNX_OPS: tuple[str, ...] = tuple(sorted(QONNX_LOWERINGS))
