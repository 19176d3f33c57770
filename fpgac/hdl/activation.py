"""Elementwise activations that need no table: comparators and constant multiplications.

``Clip`` (and ``ReLU``, its ``lo = 0`` case), ``Abs`` and ``PReLU`` (LeakyReLU is a PReLU with
one slope) compute exactly what the golden model does on mantissas; the smooth functions
(sigmoid, tanh, ...) are :class:`~fpgac.hdl.Lookup` tables. A per-lane ``x * scale + shift`` with
constants is :class:`~fpgac.hdl.ScaleShift`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Const, Module, Mux, Value
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from fpgac.hdl.arith import Term, TermBuilder, csd
from fpgac.hdl.dense import Dense
from fpgac.hdl.lanes import Component, Lanes

__all__ = ["Abs", "Clip", "PReLU", "ReLU", "ScaleShift", "const_mul"]


class _Elementwise(Component):
    """One register stage applying :meth:`_lane` to every lane: latency 1, initiation interval 1."""

    latency = 1

    def __init__(self, x: Lanes, out: Lanes) -> None:
        self.in_lanes, self.out_lanes = x, out
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(out.bits))})

    def _lane(self, m: Module, k: int, v: Value) -> Value:
        raise NotImplementedError

    def elaborate(self, platform: object) -> Module:
        m = Module()
        ys = [self._lane(m, k, v) for k, v in enumerate(self.in_lanes.split(self.i.payload))]
        pipe = self.pipeline(m, self.i.valid)
        pipe.stage()
        m.d.comb += self.o.payload.eq(pipe.reg(self.out_lanes.join(ys), name="y"))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), self.i.ready.eq(i_ready)]
        return m


class Clip(_Elementwise):
    """``y = min(max(x, lo), hi)`` per lane, ``lo``/``hi`` integer mantissas (None: unbounded).

    The golden model's CLIP turns the float bounds into mantissas (``ceil(min / lsb)``,
    ``floor(max / lsb)``, clamped to the type); pass those. Ports ``i``, ``o``; latency 1.
    """

    def __init__(self, x: Lanes, *, lo: int | None = None, hi: int | None = None,
                 out_width: int | None = None, out_signed: bool | None = None) -> None:
        self.lo = x.min if lo is None else max(int(lo), x.min)
        self.hi = x.max if hi is None else min(int(hi), x.max)
        if self.lo > self.hi:
            raise ValueError(f"Clip bounds [{lo}, {hi}] leave nothing of {x}")
        super().__init__(x, Lanes.output(x.count, self.lo, self.hi, out_width, out_signed, what=type(self).__name__))

    def _lane(self, m: Module, k: int, v: Value) -> Value:
        x = self.in_lanes
        if self.lo > x.min:
            v = Mux(v < self.lo, self.lo, v)
        if self.hi < x.max:
            v = Mux(v > self.hi, self.hi, v)
        return v


class ReLU(Clip):
    """``y = max(x, 0)``: a :class:`Clip` with ``lo = 0`` (by default the output lanes are unsigned)."""

    def __init__(self, x: Lanes, *, out_width: int | None = None, out_signed: bool | None = None) -> None:
        super().__init__(x, lo=0, out_width=out_width, out_signed=out_signed)


class Abs(_Elementwise):
    """``y = |x|`` per lane. Ports ``i``, ``o``; latency 1."""

    def __init__(self, x: Lanes, *, out_width: int | None = None, out_signed: bool | None = None) -> None:
        hi = max(x.max, -x.min)
        super().__init__(x, Lanes.output(x.count, 0, hi, out_width, out_signed, what="Abs"))

    def _lane(self, m: Module, k: int, v: Value) -> Value:
        return Mux(v < 0, -v, v) if self.in_lanes.signed else v


def const_mul(m: Module, v: Value, c: int, lo: int, hi: int, name: str = "cm") -> tuple[Value, int, int]:
    """``v * c`` for a constant ``c`` as CSD shift-and-add; ``v`` in ``[lo, hi]``.

    Returns the product and its exact bounds.
    """
    c = int(c)
    a, b = lo * c, hi * c
    plo, phi = min(a, b), max(a, b)
    digits = csd(c)
    if not digits:
        return Const(0, 1), 0, 0
    tb = TermBuilder(m, name)
    terms = [Term(v << s, sign < 0, lo << s, hi << s) for s, sign in digits]
    total = terms[0]
    for t in terms[1:]:
        total = tb.add(total, t)
    total = tb.positive(total)
    return total.value, plo, phi


class PReLU(_Elementwise):
    """``y = x << slope_frac if x >= 0 else x * slope[k]`` per lane ``k``: the golden model's PRELU.

    ``slopes`` are integer mantissas with ``slope_frac`` fractional bits, one per lane (a LeakyReLU
    repeats its alpha); the output has ``slope_frac`` more fractional bits than the input. The
    products are constant shift-and-add. Ports ``i``, ``o``; latency 1.
    """

    def __init__(self, x: Lanes, *, slopes: Sequence[int], slope_frac: int,
                 out_width: int | None = None, out_signed: bool | None = None) -> None:
        s = np.asarray(slopes)
        if s.shape != (x.count,) or s.dtype.kind not in "iu":
            raise ValueError(f"PReLU slopes must be {x.count} integers (one per lane), not {s.dtype} {s.shape}")
        if slope_frac < 0:
            raise ValueError(f"PReLU slope_frac must be >= 0, not {slope_frac}")
        self.slopes = [int(v) for v in s]
        self.slope_frac = int(slope_frac)
        cands = [max(x.max, 0) << slope_frac, 0]
        if x.min < 0:
            cands += [x.min * v for v in self.slopes] + [-1 * v for v in self.slopes]
        super().__init__(x, Lanes.output(x.count, min(cands), max(cands), out_width, out_signed, what="PReLU"))

    def _lane(self, m: Module, k: int, v: Value) -> Value:
        x = self.in_lanes
        if x.min >= 0:
            return v << self.slope_frac
        prod, _, _ = const_mul(m, v, self.slopes[k], x.min, -1, name=f"slope{k}_")
        return Mux(v < 0, prod, v << self.slope_frac)


class ScaleShift(Dense):
    """``y[k] = x[k] * scale[k] + shift[k]`` with constants: a :class:`Dense` with a diagonal matrix.

    ``shift`` is aligned to the product's fractional bits, as a Dense bias is. Zero scales cost
    nothing; every product is shift-and-add. Ports, latency and options as :class:`Dense`.
    """

    def __init__(self, x: Lanes, *, scale: Sequence[int], shift: Sequence[int] | None = None,
                 levels_per_stage: int = 2, out_width: int | None = None, out_signed: bool | None = None) -> None:
        scale = np.asarray(scale)
        if scale.shape != (x.count,) or scale.dtype.kind not in "iu":
            raise ValueError(f"ScaleShift scale must be {x.count} integers (one per lane), not {scale.dtype} {scale.shape}")
        super().__init__(np.diag(scale.astype(np.int64)), shift, x=x, levels_per_stage=levels_per_stage,
                         out_width=out_width, out_signed=out_signed)
