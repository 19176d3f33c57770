"""How a stream payload carries a vector of integers, and the stall-safe pipeline every component uses.

Every component in :mod:`fpgac.hdl` moves vectors over :mod:`amaranth.lib.stream` interfaces whose
payload is one flat ``unsigned(count * width)`` word: lane ``k`` occupies bits
``[k * width, (k + 1) * width)`` (lane 0 in the low bits), two's complement when the lanes are
signed. A flat word, rather than a ``data.ArrayLayout`` view, keeps the Verilog ports plain
vectors that a cocotb testbench or a vendor block design can drive without knowing Amaranth.
:class:`Lanes` describes one such format; every component exposes ``in_lanes`` and ``out_lanes``
so that a caller can size the next component from the previous one.

The lanes hold integer mantissas. Where the binary point is, is the caller's business: the
components only ever shift by amounts they are given.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from amaranth.hdl import Cat, Const, Module, Shape, Signal, Value, signed, unsigned
from amaranth.lib import wiring

__all__ = ["Component", "Lanes", "Pipeline", "resize", "shape_for"]


def shape_for(lo: int, hi: int) -> Shape:
    """The narrowest shape holding every integer in ``[lo, hi]``: unsigned unless ``lo < 0``."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if lo >= 0:
        return unsigned(max(1, hi.bit_length()))
    return signed(1 + max((-lo - 1).bit_length(), max(hi, 0).bit_length()))


def resize(value: Value, width: int) -> Value:
    """``value`` truncated or extended (by its own signedness) to exactly ``width`` bits, as raw bits."""
    value = Value.cast(value)
    n = len(value)
    if n >= width:
        return value[:width]
    if value.shape().signed:
        return Cat(value, value[-1].replicate(width - n))
    return Cat(value, Const(0, width - n))


@dataclass(frozen=True)
class Lanes:
    """A vector format: ``count`` lanes of ``width``-bit integers, lane 0 in the low bits of the word."""

    count: int
    width: int
    signed: bool = True

    def __post_init__(self) -> None:
        for name in ("count", "width"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"Lanes {name} must be a positive integer, not {v!r}")
        if not isinstance(self.signed, bool):
            raise TypeError(f"Lanes signed must be a bool, not {self.signed!r}")

    @classmethod
    def fitting(cls, count: int, lo: int, hi: int) -> Lanes:
        """The narrowest format whose lanes hold every integer in ``[lo, hi]``."""
        shape = shape_for(lo, hi)
        return cls(count, shape.width, shape.signed)

    @classmethod
    def output(cls, count: int, lo: int, hi: int, width: int | None = None, signed: bool | None = None, *,
               what: str = "component", holding: str = "the exact range") -> Lanes:
        """A component's output format: the narrowest for ``[lo, hi]``, or the ``width``/``signed``
        asked for, which must still hold every value (``ValueError`` naming ``what`` otherwise)."""
        exact = cls.fitting(count, lo, hi)
        if width is None and signed is None:
            return exact
        lanes = cls(count, exact.width if width is None else width, exact.signed if signed is None else signed)
        if not lanes.holds(lo, hi):
            raise ValueError(f"{what} output {lanes} cannot hold {holding} [{lo}, {hi}]; it needs {exact}")
        return lanes

    @property
    def bits(self) -> int:
        """Width of the whole payload word."""
        return self.count * self.width

    @property
    def shape(self) -> Shape:
        """The shape of one lane."""
        return signed(self.width) if self.signed else unsigned(self.width)

    @property
    def min(self) -> int:
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    def holds(self, lo: int, hi: int) -> bool:
        return self.min <= lo and hi <= self.max

    def with_count(self, count: int) -> Lanes:
        return Lanes(count, self.width, self.signed)

    # -- hardware ----------------------------------------------------------------------------

    def lane(self, payload: Value, k: int) -> Value:
        """Lane ``k`` of a payload word, with the lanes' signedness."""
        if not 0 <= k < self.count:
            raise IndexError(f"lane {k} out of range for {self}")
        v = Value.cast(payload)[k * self.width:(k + 1) * self.width]
        return v.as_signed() if self.signed else v

    def split(self, payload: Value) -> list[Value]:
        """All lanes of a payload word, lane 0 first."""
        return [self.lane(payload, k) for k in range(self.count)]

    def join(self, values: Sequence[Value]) -> Value:
        """A payload word from ``count`` values, each truncated or extended to the lane width.

        Truncation is only right when the value fits; components check that from exact bounds.
        """
        if len(values) != self.count:
            raise ValueError(f"{self} needs {self.count} values, got {len(values)}")
        return Cat(*(resize(v, self.width) for v in values))

    def signal(self, name: str | None = None) -> Signal:
        """A register or wire holding one payload word."""
        return Signal(self.bits, name=name)

    # -- software ----------------------------------------------------------------------------

    def pack(self, values: Iterable[int]) -> int:
        """The payload word (a Python int) holding ``values``; each must fit a lane."""
        values = [int(v) for v in values]
        if len(values) != self.count:
            raise ValueError(f"{self} needs {self.count} values, got {len(values)}")
        word = 0
        mask = (1 << self.width) - 1
        for k, v in enumerate(values):
            if not self.min <= v <= self.max:
                raise ValueError(f"lane {k} value {v} does not fit {self}")
            word |= (v & mask) << (k * self.width)
        return word

    def unpack(self, word: int) -> list[int]:
        """The lane values of a payload word (a Python int)."""
        word = int(word)
        mask = (1 << self.width) - 1
        out = []
        for k in range(self.count):
            v = (word >> (k * self.width)) & mask
            if self.signed and v >> (self.width - 1):
                v -= 1 << self.width
            out.append(v)
        return out

    def __str__(self) -> str:
        return f"{self.count}x{'s' if self.signed else 'u'}{self.width}"


class Pipeline:
    """Stall-safe pipeline control: a valid bit per register stage, one load enable for all.

    Every stage loads (``en``) when the last one is empty or the consumer is ready; otherwise the
    whole pipeline holds. Nothing is dropped or duplicated, a new vector enters every cycle while
    the output moves, and the enable is one gate from the output's valid and ``ready`` (not a
    chain through the stages: a chain of enables was the slowest path of a wide layer). A bubble
    waits while the output is stalled. ``ready`` upstream is combinational in ``ready``
    downstream; put a :class:`~fpgac.hdl.StreamBuffer` between components where that path gets
    long.

    Usage: ``p = Pipeline(m, i.valid)``; per stage ``p.stage()`` then ``p.reg(expr)`` for each value
    the stage holds (a memory read port of the stage takes ``p.en`` as its enable); finally
    ``o.valid, i.ready = p.finish(o.ready)``.

    ``hold=False``: a pipeline whose output is never stalled (inside a
    :class:`~fpgac.hdl.Metered`): no enables at all, every register loads every cycle.
    """

    def __init__(self, m: Module, valid: Value, name: str = "p", *, hold: bool = True) -> None:
        self._m = m
        self._name = name
        self._valids: list[Value] = [valid]
        self._ens: list[Value] = []
        self.hold = hold

    def stage(self) -> Value:
        """Open the next register stage; returns its load enable."""
        k = len(self._ens)
        self._ens.append(Signal(name=f"{self._name}_en{k}") if self.hold else Const(1))
        valid = Signal(name=f"{self._name}_valid{k}")
        self._load(valid.eq(self._valids[-1]))
        self._valids.append(valid)
        return self.en

    @property
    def en(self) -> Signal:
        """The load enable of the current (last opened) stage."""
        return self._ens[-1]

    @property
    def latency(self) -> int:
        return len(self._ens)

    @property
    def valid(self) -> Value:
        """The valid bit of the current (last opened) stage."""
        return self._valids[-1]

    def reg(self, value: Value, shape: Shape | None = None, name: str | None = None) -> Signal:
        """A register of the current stage loaded with ``value`` (``shape`` truncates when given).
        Data registers have no reset (only the valid bits do): nothing reads them before a valid
        one, and a reset net to every flip-flop of a wide layer is only fanout."""
        value = Value.cast(value)
        r = Signal(shape if shape is not None else value.shape(), name=name, reset_less=True)
        self._load(r.eq(value))
        return r

    def _load(self, assign: Any) -> None:
        """A register assignment of the current stage, under its enable (none without ``hold``)."""
        if self.hold:
            with self._m.If(self.en):
                self._m.d.sync += assign
        else:
            self._m.d.sync += assign

    def finish(self, ready: Value) -> tuple[Value, Value]:
        """Wire the enable chain; returns (valid out, ready in). Without ``hold`` the registers
        load every cycle and ``ready`` is not read: the caller never stalls the output."""
        if not self._ens:
            raise ValueError("a pipeline needs at least one stage")
        if not self.hold:
            return self._valids[-1], Const(1)
        go = Signal(name=f"{self._name}_go")
        self._m.d.comb += go.eq(~self._valids[-1] | ready)
        for en in self._ens:
            self._m.d.comb += en.eq(go)
        return self._valids[-1], go


class Component(wiring.Component):
    """The base of every component here: a constructor that refuses its arguments leaves no warning.

    Amaranth warns about an elaboratable that was created but never elaborated; one whose
    ``__init__`` raised (a weight matrix of the wrong shape, say) was never meant to be, and the
    caller has the exception already.
    """

    #: set by a :class:`~fpgac.hdl.Metered` holding it: the output is never stalled, so the
    #: pipeline registers need no load enable (:meth:`pipeline`)
    free_running: bool = False

    def pipeline(self, m: Module, valid: Value, name: str = "p") -> Pipeline:
        """This component's :class:`Pipeline`: without enables when :attr:`free_running`."""
        return Pipeline(m, valid, name, hold=not self.free_running)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def checked_init(self: Component, *args: Any, **kw: Any) -> None:
            try:
                init(self, *args, **kw)
            except Exception:
                self._MustUse__silence = True
                raise

        cls.__init__ = checked_init
