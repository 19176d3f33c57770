"""From lane-level stages to one Amaranth component, and the stages to and from files.

Each stage becomes one :mod:`fpgac.hdl` component whose output lanes are exactly the IR value's
type (width and signedness), so every word between components holds the golden model's
mantissas. A chain of components that each take a word a cycle runs without stalls inside a
:class:`~fpgac.hdl.Metered` (a counter at the entrance, a queue at the end: no load enables and
no ``ready`` path through the layers); otherwise a :class:`~fpgac.hdl.StreamBuffer` after each
linear layer cuts the combinational ``ready`` path between layers. ``stages.json`` + ``stages.npz`` keep the stages (plain numbers),
so the design's ``design.py`` rebuilds the same Verilog without the model or the compiler's IR.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from ...hdl import (
    Argmax,
    Binary,
    Chain,
    Concat,
    Fork,
    Clip,
    Dense,
    DenseReuse,
    Groups,
    Lanes,
    Lookup,
    MaxWindows,
    Metered,
    PReLU,
    ReLU,
    Requant,
    Requantize,
    Select,
    Softmax,
    StreamBuffer,
    Timing,
)
from ...ir import parse_type
from ...ir.tables import Table
from . import lower as L

__all__ = ["AxiStream", "components", "load_stages", "save_stages", "top"]


def _lanes(count: int, t) -> Lanes:
    return Lanes(count, t.width, t.signed)


@dataclass(frozen=True)
class Pipelining:
    """How the components are built: ``reuse`` (Dense layers time-multiplexed when more than 1)
    and where registers go: with a ``clock_period`` (ns), Dense layers place them by the delay
    model of :class:`~fpgac.hdl.Timing`, and the comparator and adder trees of the other
    components every as many levels as fit in the period; without one, every ``levels_per_stage``."""

    reuse: int = 1
    clock_period: float | None = None
    levels_per_stage: int = 2

    @property
    def levels(self) -> int:
        if self.clock_period is None:
            return self.levels_per_stage
        timing = Timing()
        return max(1, int((self.clock_period - timing.register) // timing.adder(16)))


def components(stages: Sequence[L.Stage], opts: Pipelining = Pipelining(), *,
               buffers: bool = True) -> list[wiring.Component]:
    """One component per stage (and, with ``buffers``, a buffer after each linear one), output
    lanes as the IR types; a fully parallel linear stage and the Requant after it are one
    :class:`~fpgac.hdl.Dense` that requantizes before its output register."""
    parts: list[wiring.Component] = []
    k = 0
    while k < len(stages):
        s, after = stages[k], stages[k + 1] if k + 1 < len(stages) else None
        if isinstance(s, L.Linear) and isinstance(after, L.Requant) and opts.reuse == 1:
            part = _dense_requant(s, after, opts)
            part.nodes = [s.node, after.node]
            parts += [part, StreamBuffer(part.out_lanes.bits)] if buffers else [part]
            k += 2
        else:
            parts += stage_parts(s, opts, buffer=buffers)
            k += 1
    return parts


def _dense_requant(s: L.Linear, r: L.Requant, opts: Pipelining) -> Dense:
    spec = Requantize(shift=r.in_type.frac_bits - r.out_type.frac_bits, width=r.out_type.width,
                      signed=r.out_type.signed, rounding=r.out_type.rounding.name, overflow=r.out_type.overflow.name)
    part = Dense(s.matrix, s.bias, x=_lanes(s.n_in, s.in_type), levels_per_stage=opts.levels_per_stage,
                 clock_period=opts.clock_period, requant=spec)
    if _lanes(s.n_out, s.out_type).width < part.acc_lanes.width or part.out_lanes != _lanes(r.n_out, r.out_type):
        raise AssertionError(f"node {s.node!r}: lanes {part.acc_lanes}/{part.out_lanes} differ from the IR's")
    return part


def stage_parts(s: L.Stage, opts: Pipelining = Pipelining(), *, buffer: bool = True) -> list[wiring.Component]:
    """The component of one stage (and, with ``buffer``, a :class:`~fpgac.hdl.StreamBuffer`
    after a linear one to cut the ``ready`` path), output lanes as the IR types."""
    x, out = _lanes(s.n_in, s.in_type), _lanes(s.n_out, s.out_type)
    build = _COMPONENTS.get(type(s))
    if build is None:
        raise TypeError(f"no component for stage {type(s).__name__}")
    part = build(s, x, dict(out_width=out.width, out_signed=out.signed), opts)
    part.nodes = [s.node]  # the IR nodes it implements (for the report's rows)
    if part.out_lanes != out:
        raise AssertionError(f"node {s.node!r}: component lanes {part.out_lanes} differ from the IR's {out}")
    return [part, StreamBuffer(out.bits)] if buffer and isinstance(s, L.Linear) else [part]


def _dense(s: L.Linear, x: Lanes, fit: dict, opts: Pipelining) -> wiring.Component:
    if opts.reuse > 1:
        return DenseReuse(s.matrix, s.bias, x=x, reuse=opts.reuse, **fit)
    return Dense(s.matrix, s.bias, x=x, levels_per_stage=opts.levels_per_stage, clock_period=opts.clock_period,
                 **fit)


def _per_group(s: L.Softmax | L.ArgMax, x: Lanes, make) -> wiring.Component:
    """One unit over the whole vector, or one per group of lanes (along one axis of a larger tensor)."""
    whole = len(s.groups) == 1 and list(s.groups[0]) == list(range(s.n_in))
    return make(x) if whole else Groups(x, s.groups, make)


#: stage kind -> its component (stage, input lanes, output format, pipelining)
_COMPONENTS = {
    L.Linear: _dense,
    L.Requant: lambda s, x, fit, opts: Requant(
        x, shift=s.in_type.frac_bits - s.out_type.frac_bits, rounding=s.out_type.rounding.name,
        overflow=s.out_type.overflow.name, **fit),
    L.Relu: lambda s, x, fit, opts: ReLU(x, **fit),
    L.PReLU: lambda s, x, fit, opts: PReLU(x, slopes=s.slopes, slope_frac=s.slope_frac, **fit),
    L.Clip: lambda s, x, fit, opts: Clip(x, lo=s.lo, hi=s.hi, **fit),
    L.Lookup: lambda s, x, fit, opts: Lookup(x, s.table, **fit),
    L.MaxWindows: lambda s, x, fit, opts: MaxWindows(x, s.windows, levels_per_stage=opts.levels),
    L.Select: lambda s, x, fit, opts: Select(x, s.indices, fill=s.fill),
    L.Softmax: lambda s, x, fit, opts: _per_group(s, x, lambda lanes: Softmax(
        lanes, exp=s.exp, reciprocal=s.reciprocal, log=s.log, z_shift=s.z_shift, log_shift=s.log_shift,
        levels_per_stage=opts.levels, **fit)),
    L.ArgMax: lambda s, x, fit, opts: _per_group(s, x, lambda lanes: Argmax(
        lanes, select_last=s.select_last, levels_per_stage=opts.levels)),
    L.Combine: lambda s, x, fit, opts: Binary(
        x, _lanes(s.n_in, s.b_type), op=s.op, a_shift=s.a_shift, b_shift=s.b_shift, **fit),
    L.Join: lambda s, x, fit, opts: Concat([_lanes(c, t) for c, t in zip(s.counts, s.types)],
                                                   shifts=s.shifts, **fit),
}


def top(stages: Sequence[L.Stage], *, reuse: int = 1, axi: bool = False,
        clock_period: float | None = None) -> wiring.Component:
    """The whole network: ports ``i``/``o`` (or AXI4-Stream names with ``axi``); registers placed
    for ``clock_period`` ns (see :class:`Pipelining`)."""
    opts = Pipelining(reuse=reuse, clock_period=clock_period)
    if not L.is_chain(stages):
        network = Network(stages, opts)
        return AxiStream(network) if axi else network
    metered = opts.reuse == 1  # every component then takes a word a cycle and can run without stalls
    parts = components(stages, opts, buffers=not metered)
    if not any(getattr(p, "latency", 0) for p in parts):  # only wiring (a Pad, a Transpose): no clock
        parts.append(StreamBuffer(len(parts[-1].o.payload)))  # without a register; give it one
    if metered and any(getattr(p, "interval", 1) != 1 for p in parts):
        raise AssertionError("a fully parallel design holds a component that does not take a word a cycle")
    # no stalls inside: no load enables, no ready path through the layers; else buffers between them
    chain = Metered(parts) if metered else Chain(parts)
    chain.in_lanes = _lanes(stages[0].n_in, stages[0].in_type)
    chain.out_lanes = _lanes(stages[-1].n_out, stages[-1].out_type)
    chain.interval = max((getattr(p, "interval", 1) for p in chain.parts), default=1)
    return AxiStream(chain) if axi else chain


class Network(wiring.Component):
    """Stages that are not a chain (a residual Add, a Concat of branches): each stage's component
    reads the stages its ``sources`` name, through a :class:`~fpgac.hdl.Fork` where a value has
    several readers. Where a join's inputs arrive at different latencies, the earlier one waits in
    a FIFO as deep as the difference (plus one), so that a new vector can still enter every cycle;
    the FIFO's own latency of one cycle fits within that difference. Ports
    ``i``/``o``; :attr:`latency` is that of the longest path.
    """

    def __init__(self, stages: Sequence[L.Stage], opts: Pipelining = Pipelining()) -> None:
        self.stages = list(stages)
        self.units: list[wiring.Component] = []
        for s in self.stages:
            parts = stage_parts(s, opts)
            self.units.append(parts[0] if len(parts) == 1 else Chain(parts))
        self.sources = [s.sources or (k - 1,) for k, s in enumerate(self.stages)]
        self.ready_at = [0] * len(self.stages)  # cycles from the input to each stage's output
        for k, unit in enumerate(self.units):
            self.ready_at[k] = max(self._at(i) for i in self.sources[k]) + getattr(unit, "latency", 0)
        self.latency = self.ready_at[-1]
        self.interval = max((getattr(u, "interval", 1) for u in self.units), default=1)
        self.in_lanes = _lanes(self.stages[0].n_in, self.stages[0].in_type)
        self.out_lanes = _lanes(self.stages[-1].n_out, self.stages[-1].out_type)
        super().__init__({"i": In(stream.Signature(self.in_lanes.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def _at(self, source: int) -> int:
        return 0 if source < 0 else self.ready_at[source]

    @staticmethod
    def _inputs(unit: wiring.Component) -> list:
        if isinstance(unit, Binary):
            return [unit.a, unit.b]
        if isinstance(unit, Concat):
            return unit.inputs
        return [unit.i]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for k, unit in enumerate(self.units):
            m.submodules[f"stage{k}"] = unit
        readers: dict[int, list[tuple[int, object]]] = {}
        for k, unit in enumerate(self.units):
            for source, port in zip(self.sources[k], self._inputs(unit)):
                readers.setdefault(source, []).append((k, port))
        for source, ports in readers.items():
            out = wiring.flipped(self.i) if source < 0 else self.units[source].o
            bits = len(self.i.payload) if source < 0 else len(self.units[source].o.payload)
            if len(ports) > 1:
                m.submodules[f"fork{source + 1}"] = fork = Fork(bits, len(ports))
                wiring.connect(m, out, fork.i)
                outs = fork.outputs
            else:
                outs = [out]
            for (k, port), o in zip(ports, outs):
                wait = max(self._at(i) for i in self.sources[k]) - self._at(source)
                if wait > 0:  # the other input of stage k comes later: hold this one meanwhile
                    m.submodules[f"wait{source + 1}_{k}"] = queue = SyncFIFO(width=bits, depth=wait + 1)
                    wiring.connect(m, o, queue.w_stream)
                    o = queue.r_stream
                wiring.connect(m, o, port)
        wiring.connect(m, self.units[-1].o, wiring.flipped(self.o))
        return m


class AxiStream(wiring.Component):
    """``inner`` with AXI4-Stream port names: ``s_axis_t*`` in, ``m_axis_t*`` out.

    ``tdata`` is padded with zeros to a whole number of bytes, as AXI4-Stream requires; the lanes
    sit in its low bits as in ``inner``'s payload.
    """

    def __init__(self, inner: wiring.Component) -> None:
        self.inner = inner
        self.in_lanes, self.out_lanes = inner.in_lanes, inner.out_lanes
        self.latency, self.interval = inner.latency, getattr(inner, "interval", 1)
        bits_in, bits_out = (-(-len(p) // 8) * 8 for p in (inner.i.payload, inner.o.payload))
        super().__init__({
            "s_axis_tdata": In(bits_in), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "m_axis_tdata": Out(bits_out), "m_axis_tvalid": Out(1), "m_axis_tready": In(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.inner = inner = self.inner
        m.d.comb += [
            inner.i.payload.eq(self.s_axis_tdata[:len(inner.i.payload)]),
            inner.i.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(inner.i.ready),
            self.m_axis_tdata.eq(inner.o.payload),
            self.m_axis_tvalid.eq(inner.o.valid),
            inner.o.ready.eq(self.m_axis_tready),
        ]
        return m


# -- stages on disk ------------------------------------------------------------------------------

_ARRAYS = ("matrix", "bias", "indices", "slopes")
_TABLES = ("table", "exp", "reciprocal", "log")


def save_stages(stages: Sequence[L.Stage], folder: Path) -> None:
    """``stages.json`` (kinds, types, scalars, windows) and ``stages.npz`` (matrices, tables)."""
    described, arrays = [], {}
    for k, s in enumerate(stages):
        entry = {"kind": type(s).__name__, "node": s.node, "in_type": str(s.in_type), "out_type": str(s.out_type),
                 "n_in": s.n_in, "n_out": s.n_out}
        for name, value in vars(s).items():
            if name in entry:
                continue
            if name in _ARRAYS:
                arrays[f"{k}_{name}"] = np.asarray(value)
            elif name in _TABLES and value is None:
                entry[name] = None
            elif name in _TABLES:
                arrays[f"{k}_{name}"] = np.asarray(value.values)
                entry[name] = value.describe()
            elif name in ("windows", "groups"):
                entry[name] = [list(map(int, w)) for w in value]
            elif name == "sources":
                entry[name] = [int(i) for i in value]
            elif name == "b_type":
                entry[name] = str(value)
            elif name == "op":
                entry[name] = value.value  # a BinaryOp
            elif name == "types":
                entry[name] = [str(t) for t in value]
            else:
                entry[name] = value
        described.append(entry)
    (folder / "stages.json").write_text(json.dumps(described, indent=1) + "\n")
    np.savez_compressed(folder / "stages.npz", **arrays)


def load_stages(folder: Path) -> list[L.Stage]:
    described = json.loads((folder / "stages.json").read_text())
    stages = []
    with np.load(folder / "stages.npz") as arrays:
        for k, entry in enumerate(described):
            cls = getattr(L, entry.pop("kind"))
            entry["in_type"], entry["out_type"] = parse_type(entry["in_type"]), parse_type(entry["out_type"])
            for name in _ARRAYS:
                if f"{k}_{name}" in arrays.files:
                    entry[name] = arrays[f"{k}_{name}"]
            for name in _TABLES:
                if entry.get(name) is not None:
                    entry[name] = Table.from_description(entry[name], arrays[f"{k}_{name}"])
            for name in ("windows", "groups"):
                if name in entry:
                    entry[name] = [tuple(w) for w in entry[name]]
            entry["sources"] = tuple(entry.get("sources", ()))
            if "b_type" in entry:
                entry["b_type"] = parse_type(entry["b_type"])
            if "types" in entry:
                entry["types"] = [parse_type(t) for t in entry["types"]]
            stages.append(cls(**entry))
    return stages


def units(design: wiring.Component, name: str) -> list[tuple[str, list[str], wiring.Component]]:
    """The components of a built design as ``(Verilog module name, IR nodes, component)``, in
    order: the module names Amaranth gives them (``name.chain.part0`` ...), for reading a
    synthesis tool's per-module figures. Buffers, forks and queues are not listed (they are
    the design's handshake, not any layer's)."""
    found: list[tuple[str, list[str], wiring.Component]] = []

    def walk(c: wiring.Component, path: str) -> None:
        if isinstance(c, AxiStream):
            walk(c.inner, f"{path}.inner")
        elif isinstance(c, Metered):
            walk(c.chain, f"{path}.chain")
        elif isinstance(c, Network):
            for k, unit in enumerate(c.units):
                walk(unit, f"{path}.stage{k}")
        elif isinstance(c, Chain) and not hasattr(c, "nodes"):
            for k, part in enumerate(c.parts):
                walk(part, f"{path}.part{k}")
        elif getattr(c, "nodes", None):
            found.append((path, list(c.nodes), c))

    walk(design, name)
    return found
