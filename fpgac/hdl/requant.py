"""Requantization in hardware: a shift with ap_fixed's rounding and overflow modes.

Bit-exact with ``fpgac.ir.fixed.requantize`` (and so with ``ap_fixed``): rounding first, on the
exact value, from the first dropped bit and the OR of the rest; then overflow on the rounded
integer. The modes are named as ``fpgac.ir.Rounding``/``Overflow`` name them; this package has
its own enums (it imports nothing from the IR), and :meth:`Rounding.cast` takes either.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from amaranth.hdl import Const, Module, Mux, Shape, Signal, Value
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from fpgac.hdl.lanes import Component, Lanes, shape_for

__all__ = ["Overflow", "Requant", "Requantize", "Rounding", "requant_expr"]


class _Castable(enum.Enum):
    @classmethod
    def cast(cls, mode: object) -> _Castable:
        """A member from itself, a same-named member of another enum (the IR's), or its name."""
        name = mode if isinstance(mode, str) else getattr(mode, "name", None)
        try:
            return cls[name]
        except KeyError:
            raise ValueError(f"{cls.__name__} must be one of {', '.join(cls.__members__)}, not {mode!r}") from None


class Rounding(_Castable):
    TRN = "TRN"  # floor
    TRN_ZERO = "TRN_ZERO"  # toward zero
    RND = "RND"  # nearest, half toward +inf
    RND_ZERO = "RND_ZERO"  # nearest, half toward zero
    RND_INF = "RND_INF"  # nearest, half away from zero
    RND_MIN_INF = "RND_MIN_INF"  # nearest, half toward -inf
    RND_CONV = "RND_CONV"  # nearest, half to even


class Overflow(_Castable):
    WRAP = "WRAP"
    SAT = "SAT"
    SAT_ZERO = "SAT_ZERO"
    SAT_SYM = "SAT_SYM"


def _round_up(mode: Rounding, qb: Value, r: Value, s: Value, odd: Value) -> Value:
    """ap_fixed's ``quantization_adjust``: whether to add one to the floor.

    ``qb`` the first dropped bit, ``r`` the OR of the others, ``s`` the source's sign, ``odd``
    the floor's lowest bit.
    """
    return {
        Rounding.TRN: Const(0, 1),
        Rounding.TRN_ZERO: s & (qb | r),
        Rounding.RND: qb,
        Rounding.RND_ZERO: qb & (s | r),
        Rounding.RND_INF: qb & (~s | r),
        Rounding.RND_MIN_INF: qb & r,
        Rounding.RND_CONV: qb & (odd | r),
    }[mode]


def requant_expr(
    m: Module,
    value: Value,
    lo: int,
    hi: int,
    shift: int,
    out: Lanes,
    rounding: Rounding,
    overflow: Overflow,
) -> Value:
    """Combinational requantization of one integer ``value`` known to lie in ``[lo, hi]``.

    ``shift`` is the number of fractional bits dropped (``src.frac_bits - dst.frac_bits``;
    negative: the value is shifted left, exactly). Returns a signal of ``out``'s lane shape.
    Comparators that the bounds prove unnecessary are not built.
    """
    rounding, overflow = Rounding.cast(rounding), Overflow.cast(overflow)
    value = Value.cast(value)
    if shift <= 0:
        v = value << -shift
        vlo, vhi = lo << -shift, hi << -shift
    else:
        n = shift
        src = value.shape()
        # a sign- (or zero-) extended copy, so that bits n - 1 and n exist even for a narrow input
        bits = Signal(Shape(max(src.width, n + 1), src.signed), name="rq_bits")
        m.d.comb += bits.eq(value)
        qb = bits[n - 1]
        r = bits[:n - 1].any() if n >= 2 else Const(0, 1)
        s = bits[-1] if src.signed else Const(0, 1)
        odd = bits[n]
        vlo, vhi = lo >> n, _rounded_max(hi, n)
        v = Signal(shape_for(vlo, vhi), name="rq_round")
        if rounding is Rounding.TRN:  # the floor: the shift alone, no adder
            m.d.comb += v.eq(bits >> n)
        else:
            m.d.comb += v.eq((bits >> n) + _round_up(rounding, qb, r, s, odd))
    omin, omax = out.min, out.max
    if overflow is Overflow.SAT_SYM and out.signed and out.width > 1:
        omin = -omax
    above = v > omax if vhi > omax else Const(0, 1)
    below = v < omin if vlo < omin else Const(0, 1)
    # assigning to the lane shape keeps the low bits: two's complement wrap-around
    if overflow is Overflow.WRAP:
        result = v
    elif overflow is Overflow.SAT_ZERO:
        result = Mux(above | below, 0, v)
    else:
        result = Mux(above, omax, Mux(below, omin, v))
    y = Signal(out.shape, name="rq_out")
    m.d.comb += y.eq(result)
    return y


@dataclass(frozen=True)
class Requantize:
    """A requantization a component applies to its own results before its output register
    (:class:`~fpgac.hdl.Dense` takes one): ``shift`` fractional bits dropped, rounded, then fit
    to ``width``/``signed`` by ``overflow``, exactly as :class:`Requant` does."""

    shift: int
    width: int
    signed: bool
    rounding: object = Rounding.TRN
    overflow: object = Overflow.WRAP

    def __post_init__(self) -> None:
        object.__setattr__(self, "rounding", Rounding.cast(self.rounding))
        object.__setattr__(self, "overflow", Overflow.cast(self.overflow))

    def lanes(self, count: int) -> Lanes:
        return Lanes(count, self.width, self.signed)

    def expr(self, m: Module, value: Value, lo: int, hi: int) -> Value:
        """The requantized ``value`` (known to lie in ``[lo, hi]``), combinational."""
        return requant_expr(m, value, lo, hi, self.shift, self.lanes(1), self.rounding, self.overflow)

    def carry_chains(self) -> int:
        """How many carry chains deep its logic is: the rounding adder (none for TRN, the floor:
        a shift), then the comparators (side by side), whose multiplexer :meth:`saturates`."""
        return int(self.shift > 0 and self.rounding is not Rounding.TRN) + int(self.saturates)

    @property
    def saturates(self) -> bool:
        return self.overflow is not Overflow.WRAP


def _rounded_max(hi: int, n: int) -> int:
    """An upper bound of ``round(hi / 2**n)`` for any mode (the floor, plus one if bits drop)."""
    return (hi >> n) + (1 if hi & ((1 << n) - 1) else 0)


class Requant(Component):
    """Requantize every lane: drop ``shift`` fractional bits with rounding, then fit ``out`` by overflow.

    Parameters
    ----------
    x : Lanes
        Input format.
    shift : int
        ``src.frac_bits - dst.frac_bits``: bits dropped (rounded); negative shifts left.
    out_width, out_signed : int, bool
        The destination lane format (``dst.width``, ``dst.signed``).
    rounding, overflow : Rounding, Overflow (or the IR's enums, or names)
        The destination type's modes.
    bounds : (lo, hi), optional
        Known bounds of the input values (default: the lanes' full range); tighter bounds let
        the component leave out comparators that can never fire.

    Ports ``i`` (``x``), ``o`` (``out_lanes``). Latency 1, initiation interval 1.
    """

    def __init__(
        self,
        x: Lanes,
        *,
        shift: int,
        out_width: int,
        out_signed: bool,
        rounding: object = Rounding.TRN,
        overflow: object = Overflow.WRAP,
        bounds: tuple[int, int] | None = None,
    ) -> None:
        self.in_lanes = x
        self.out_lanes = Lanes(x.count, out_width, out_signed)
        self.shift = int(shift)
        self.rounding = Rounding.cast(rounding)
        self.overflow = Overflow.cast(overflow)
        self.bounds = (x.min, x.max) if bounds is None else (int(bounds[0]), int(bounds[1]))
        self.latency = 1
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        ys = [
            requant_expr(m, v, *self.bounds, self.shift, self.out_lanes, self.rounding, self.overflow)
            for v in self.in_lanes.split(self.i.payload)
        ]
        pipe = self.pipeline(m, self.i.valid)
        pipe.stage()
        m.d.comb += self.o.payload.eq(pipe.reg(self.out_lanes.join(ys), name="y"))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), self.i.ready.eq(i_ready)]
        return m
