"""Tensor and element types of the IR.

Types are immutable values. ``FixedType`` has exactly the meaning of Xilinx's
``ap_fixed<W, I, Q, O>`` (``ap_ufixed`` when unsigned): a value is an integer mantissa ``m`` of
``width`` bits standing for ``m * 2**(int_bits - width)``.

Shapes in the IR are per sample: the batch dimension is implicit and never appears in a
``TensorType``. Layout is channels-first, as in ONNX (``[C, H, W]`` for an image, ``[C, L]`` for a
1D signal, ``[T, F]`` for a sequence).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

import numpy as np

from fpgac.errors import UsageError

__all__ = [
    "Rounding",
    "Overflow",
    "FloatType",
    "FixedType",
    "DType",
    "Sparsity",
    "TensorType",
    "parse_type",
]


class Rounding(enum.Enum):
    """Quantization (rounding) modes of ``ap_fixed``."""

    TRN = "TRN"  # toward -inf (floor); ap_fixed's default
    TRN_ZERO = "TRN_ZERO"  # toward zero
    RND = "RND"  # to nearest, half toward +inf
    RND_ZERO = "RND_ZERO"  # to nearest, half toward zero
    RND_INF = "RND_INF"  # to nearest, half away from zero
    RND_MIN_INF = "RND_MIN_INF"  # to nearest, half toward -inf
    RND_CONV = "RND_CONV"  # to nearest, half to even


class Overflow(enum.Enum):
    """Overflow modes of ``ap_fixed``."""

    WRAP = "WRAP"  # two's complement wrap-around; ap_fixed's default
    SAT = "SAT"  # saturate to the largest/smallest value
    SAT_ZERO = "SAT_ZERO"  # set to zero on overflow
    SAT_SYM = "SAT_SYM"  # saturate symmetrically: -max instead of min for signed types


@dataclass(frozen=True)
class FloatType:
    """An IEEE float tensor element, as the frontend produces before quantization."""

    bits: int = 32

    def __post_init__(self) -> None:
        if self.bits not in (16, 32, 64):
            raise UsageError(f"FloatType bits must be 16, 32 or 64, not {self.bits!r}")

    def __str__(self) -> str:
        return f"float{self.bits}"


@dataclass(frozen=True)
class FixedType:
    """``ap_fixed<width, int_bits, rounding, overflow>`` (``ap_ufixed`` when not ``signed``).

    ``int_bits`` counts the sign bit for signed types, as ap_fixed does, and may be negative or
    larger than ``width`` (the binary point then lies outside the word).
    """

    width: int
    int_bits: int
    signed: bool = True
    rounding: Rounding = Rounding.TRN
    overflow: Overflow = Overflow.WRAP

    def __post_init__(self) -> None:
        if not isinstance(self.width, int) or isinstance(self.width, bool) or not 1 <= self.width <= 64:
            raise UsageError(f"fixed-point width must be an integer from 1 to 64, not {self.width!r}")
        if not isinstance(self.int_bits, int) or isinstance(self.int_bits, bool):
            raise UsageError(f"fixed-point integer bits must be an integer, not {self.int_bits!r}")
        if not isinstance(self.rounding, Rounding):
            raise UsageError(f"rounding must be a Rounding, not {self.rounding!r}")
        if not isinstance(self.overflow, Overflow):
            raise UsageError(f"overflow must be an Overflow, not {self.overflow!r}")

    @property
    def frac_bits(self) -> int:
        """Bits after the binary point: the mantissa's scale is ``2**-frac_bits``."""
        return self.width - self.int_bits

    @property
    def lsb(self) -> float:
        """The value of one unit in the last place."""
        return 2.0 ** (-self.frac_bits)

    @property
    def min_mantissa(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_mantissa(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def min_value(self) -> float:
        return self.min_mantissa * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_mantissa * self.lsb

    def __str__(self) -> str:
        base = "fixed" if self.signed else "ufixed"
        defaults = self.rounding is Rounding.TRN and self.overflow is Overflow.WRAP
        if defaults and self.int_bits == self.width:
            return f"{'int' if self.signed else 'uint'}<{self.width}>"
        args = [str(self.width), str(self.int_bits)]
        if not defaults:
            args += [self.rounding.value, self.overflow.value]
        return f"{base}<{','.join(args)}>"


DType = FloatType | FixedType

_TYPE_RE = re.compile(
    r"^\s*(?:ap_)?(?P<kind>fixed|ufixed|int|uint|float(?:16|32|64)?)\s*"
    r"(?:<\s*(?P<args>[^<>]*)\s*>)?\s*$"
)


def parse_type(text: str) -> DType:
    """Parse an hls4ml-style precision string.

    Accepts ``fixed<16,6>``, ``ufixed<8,0,RND,SAT>``, ``int<8>``, ``uint<4>``, ``ap_fixed<...>``
    and ``float`` / ``float<32>``. Rounding and overflow are optional and in that order.
    """
    if not isinstance(text, str):
        raise UsageError(f"a precision must be a string such as 'fixed<16,6>', not {text!r}")
    match = _TYPE_RE.match(text)
    if not match:
        raise UsageError(
            f"cannot parse precision {text!r}: expected e.g. 'fixed<16,6>', "
            "'ufixed<8,0,RND,SAT>', 'int<8>' or 'float'"
        )
    kind = match["kind"]
    args = [a.strip() for a in match["args"].split(",")] if match["args"] is not None else []
    if kind.startswith("float"):
        if kind != "float":  # float16 / float32 / float64, as the IR printer writes them
            if args:
                raise UsageError(f"cannot parse precision {text!r}: {kind} takes no width")
            return FloatType(int(kind[5:]))
        if len(args) > 1 or (args and not args[0].isdigit()):
            raise UsageError(f"cannot parse precision {text!r}: float takes at most one width")
        return FloatType(int(args[0]) if args else 32)
    try:
        if kind in ("int", "uint"):
            if len(args) != 1:
                raise ValueError
            width = int(args[0])
            return FixedType(width, width, signed=(kind == "int"))
        if not 2 <= len(args) <= 4:
            raise ValueError
        width, int_bits = int(args[0]), int(args[1])
        rounding = Rounding(args[2].upper()) if len(args) > 2 else Rounding.TRN
        overflow = Overflow(args[3].upper()) if len(args) > 3 else Overflow.WRAP
    except ValueError:
        raise UsageError(
            f"cannot parse precision {text!r}: expected {kind}<W,I[,ROUNDING[,OVERFLOW]]> with "
            f"rounding one of {', '.join(r.value for r in Rounding)} and overflow one of "
            f"{', '.join(o.value for o in Overflow)}"
            if kind in ("fixed", "ufixed")
            else f"cannot parse precision {text!r}: expected {kind}<W>"
        ) from None
    return FixedType(width, int_bits, signed=(kind == "fixed"), rounding=rounding, overflow=overflow)


@dataclass(frozen=True, eq=False)
class Sparsity:
    """Which elements of a constant tensor are structurally zero (pruned).

    ``zero`` is a read-only boolean array of the tensor's shape. A structurally zero weight stays
    zero through every later pass, and backends emit no hardware for it.
    """

    zero: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        mask = np.array(self.zero, dtype=bool, copy=True)
        mask.setflags(write=False)
        object.__setattr__(self, "zero", mask)

    @property
    def nnz(self) -> int:
        return int(self.zero.size - np.count_nonzero(self.zero))

    @property
    def density(self) -> float:
        return self.nnz / self.zero.size if self.zero.size else 1.0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sparsity) and np.array_equal(self.zero, other.zero)

    def __hash__(self) -> int:
        return hash((self.zero.shape, self.zero.tobytes()))

    def __repr__(self) -> str:
        return f"Sparsity(nnz={self.nnz}/{self.zero.size})"


@dataclass(frozen=True)
class TensorType:
    """The type of one sample of a tensor: element type and per-sample shape (no batch axis)."""

    dtype: DType
    shape: tuple[int, ...]
    sparsity: Sparsity | None = None

    def __post_init__(self) -> None:
        shape = tuple(self.shape)
        if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise UsageError(f"a tensor shape must be a tuple of non-negative integers, not {self.shape!r}")
        object.__setattr__(self, "shape", tuple(int(d) for d in shape))
        if self.sparsity is not None and self.sparsity.zero.shape != self.shape:
            raise UsageError(
                f"sparsity mask shape {self.sparsity.zero.shape} does not match tensor shape {self.shape}"
            )

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def with_shape(self, shape: tuple[int, ...]) -> TensorType:
        return TensorType(self.dtype, tuple(shape))

    def __str__(self) -> str:
        dims = ",".join(str(d) for d in self.shape)
        text = f"{self.dtype}[{dims}]"
        if self.sparsity is not None:
            text += f"{{nnz={self.sparsity.nnz}}}"
        return text
