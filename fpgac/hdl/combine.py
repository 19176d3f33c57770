"""Components that compute on the lanes of one or two streams: Binary (Add/Sub/Mul/Max/Min of
two streams lane by lane), Concat (the lanes of several streams side by side) and Argmax.

Joining several input streams: a word moves only when every input offers one; each input's
``ready`` is the component's ready and the other inputs' ``valid`` (allowed: ready may depend on
valid, valid never depends on ready).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

from amaranth.hdl import Const, Module, Mux, Signal, Value
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from fpgac.hdl.arith import stages_for, tree_depth, tree_reduce
from fpgac.hdl.lanes import Component, Lanes

__all__ = ["Argmax", "Binary", "BinaryOp", "Concat", "join_valid"]


def join_valid(m: Module, ports: Sequence[stream.Interface], ready: Value) -> Value:
    """Join input streams: returns the joined valid; drives each port's ready."""
    valid = Const(1, 1)
    for p in ports:
        valid = valid & p.valid
    for p in ports:
        others = Const(1, 1)
        for q in ports:
            if q is not p:
                others = others & q.valid
        m.d.comb += p.ready.eq(ready & others)
    return valid


class BinaryOp(enum.Enum):
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    MAX = "max"
    MIN = "min"

    @classmethod
    def cast(cls, op: object) -> BinaryOp:
        """A member from itself, a same-named member of another enum (the IR's ``Op``), or its name."""
        name = op if isinstance(op, str) else getattr(op, "name", None)
        try:
            return cls[str(name).upper()]
        except KeyError:
            raise ValueError(f"BinaryOp must be one of {', '.join(cls.__members__)}, not {op!r}") from None


def _apply(op: BinaryOp, a: Value, b: Value) -> Value:
    return {
        BinaryOp.ADD: lambda: a + b,
        BinaryOp.SUB: lambda: a - b,
        BinaryOp.MUL: lambda: a * b,
        BinaryOp.MAX: lambda: Mux(a >= b, a, b),
        BinaryOp.MIN: lambda: Mux(a <= b, a, b),
    }[op]()


def _bounds(op: BinaryOp, a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    (alo, ahi), (blo, bhi) = a, b
    if op is BinaryOp.ADD:
        return alo + blo, ahi + bhi
    if op is BinaryOp.SUB:
        return alo - bhi, ahi - blo
    if op is BinaryOp.MUL:
        c = [alo * blo, alo * bhi, ahi * blo, ahi * bhi]
        return min(c), max(c)
    if op is BinaryOp.MAX:
        return max(alo, blo), max(ahi, bhi)
    return min(alo, blo), min(ahi, bhi)


class Binary(Component):
    """Lane-wise ``a op b`` of two streams with the same lane count: the IR's Add/Sub/Mul/Max/Min.

    Parameters
    ----------
    a, b : Lanes
        The two input formats (same ``count``).
    op : BinaryOp (or ``"add"``, or the IR's ``Op.ADD``)
    a_shift, b_shift : int
        Left shifts that bring both operands to the output's fractional bits (Add/Sub/Max/Min
        align their inputs; Mul needs none).
    out_width, out_signed : optional
        Output lane format; by default the narrowest that holds the exact result.

    Ports ``a``, ``b`` (inputs, joined), ``o``. Latency 1, interval 1.
    """

    latency = 1

    def __init__(self, a: Lanes, b: Lanes, *, op: object, a_shift: int = 0, b_shift: int = 0,
                 out_width: int | None = None, out_signed: bool | None = None) -> None:
        if a.count != b.count:
            raise ValueError(f"Binary inputs need the same lane count, not {a} and {b}")
        if a_shift < 0 or b_shift < 0:
            raise ValueError(f"Binary shifts must be >= 0, not {a_shift} and {b_shift}")
        self.op = BinaryOp.cast(op)
        self.a_lanes, self.b_lanes = a, b
        self.in_lanes = a
        self.a_shift, self.b_shift = a_shift, b_shift
        lo, hi = _bounds(self.op, (a.min << a_shift, a.max << a_shift), (b.min << b_shift, b.max << b_shift))
        self.out_lanes = Lanes.output(a.count, lo, hi, out_width, out_signed, what="Binary")
        super().__init__({"a": In(stream.Signature(a.bits)), "b": In(stream.Signature(b.bits)),
                          "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        xs = [v << self.a_shift for v in self.a_lanes.split(self.a.payload)]
        ys = [v << self.b_shift for v in self.b_lanes.split(self.b.payload)]
        joined, ready = Signal(name="joined_valid"), Signal(name="ready")
        m.d.comb += joined.eq(join_valid(m, [self.a, self.b], ready))
        pipe = self.pipeline(m, joined)
        pipe.stage()
        zs = [_apply(self.op, x, y) for x, y in zip(xs, ys)]
        m.d.comb += self.o.payload.eq(pipe.reg(self.out_lanes.join(zs), name="y"))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), ready.eq(i_ready)]
        return m


class Concat(Component):
    """Concatenate the lanes of several streams: input 0's lanes first (lowest lanes of ``o``).

    Parameters
    ----------
    inputs : sequence of Lanes
        The input formats.
    shifts : sequence of int, optional
        Left shifts aligning each input to the output's fractional bits (default all 0).
    out_width, out_signed : optional
        Output lane format (one for all lanes); by default the narrowest holding every input.

    Ports ``i0``, ``i1``, ... (joined; also listed in :attr:`inputs`), ``o``. Latency 1, interval 1.
    Concatenation along the channel axis of a pixel stream is this too (one pixel a word).
    """

    latency = 1

    def __init__(self, inputs: Sequence[Lanes], *, shifts: Sequence[int] | None = None,
                 out_width: int | None = None, out_signed: bool | None = None) -> None:
        inputs = list(inputs)
        if not inputs:
            raise ValueError("Concat needs at least one input")
        shifts = [0] * len(inputs) if shifts is None else [int(s) for s in shifts]
        if len(shifts) != len(inputs) or any(s < 0 for s in shifts):
            raise ValueError(f"Concat needs one shift >= 0 per input, not {shifts}")
        self.in_lanes_list = inputs
        self.shifts = shifts
        lo = min(x.min << s for x, s in zip(inputs, shifts))
        hi = max(x.max << s for x, s in zip(inputs, shifts))
        self.out_lanes = Lanes.output(sum(x.count for x in inputs), lo, hi, out_width, out_signed, what="Concat")
        members = {f"i{k}": In(stream.Signature(x.bits)) for k, x in enumerate(inputs)}
        members["o"] = Out(stream.Signature(self.out_lanes.bits))
        super().__init__(members)

    @property
    def inputs(self) -> list[stream.Interface]:
        return [getattr(self, f"i{k}") for k in range(len(self.in_lanes_list))]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        ports = self.inputs
        values = [v << s for p, x, s in zip(ports, self.in_lanes_list, self.shifts) for v in x.split(p.payload)]
        joined, ready = Signal(name="joined_valid"), Signal(name="ready")
        m.d.comb += joined.eq(join_valid(m, ports, ready))
        pipe = self.pipeline(m, joined)
        pipe.stage()
        m.d.comb += self.o.payload.eq(pipe.reg(self.out_lanes.join(values), name="y"))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), ready.eq(i_ready)]
        return m


class Argmax(Component):
    """The index of the largest lane: ties go to the first index, or the last with ``select_last``.

    A pairwise comparator tree (neighbours first, so a left operand always has the lower
    indices: "first" keeps it unless the right is strictly greater, "last" takes the right
    unless the left is strictly greater). Registers every ``levels_per_stage`` levels.

    Ports ``i`` (``x``), ``o``: one unsigned lane of ``max(1, bits(count - 1))`` bits, the IR's
    ArgMax type. Latency ``max(1, ceil(depth / levels_per_stage))``, interval 1.
    """

    def __init__(self, x: Lanes, *, select_last: bool = False, levels_per_stage: int = 2) -> None:
        self.in_lanes = x
        self.select_last = bool(select_last)
        self.levels_per_stage = levels_per_stage
        self.out_lanes = Lanes(1, max(1, (x.count - 1).bit_length()), False)
        self.latency = stages_for(tree_depth(x.count), levels_per_stage)
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x = self.in_lanes
        ishape = self.out_lanes.shape
        leaves = [(v, Const(k, ishape)) for k, v in enumerate(x.split(self.i.payload))]
        count = [0]

        def combine(a: tuple[Value, Value], b: tuple[Value, Value]) -> tuple[Value, Value]:
            take_b = Signal(name=f"take{count[0]}")
            count[0] += 1
            m.d.comb += take_b.eq(b[0] >= a[0] if self.select_last else b[0] > a[0])
            return Mux(take_b, b[0], a[0]), Mux(take_b, b[1], a[1])

        pipe = self.pipeline(m, self.i.valid)

        def register(n: tuple[Value, Value]) -> tuple[Value, Value]:
            return pipe.reg(n[0], x.shape), pipe.reg(n[1], ishape)

        (root,), _ = tree_reduce(pipe, [leaves], combine, register, self.levels_per_stage)
        m.d.comb += self.o.payload.eq(root[1])
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), self.i.ready.eq(i_ready)]
        return m
