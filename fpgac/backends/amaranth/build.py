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

import re
from collections.abc import Sequence
from dataclasses import dataclass

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
    Fixed,
    PReLU,
    ReLU,
    Recurrent,
    RecurrentStack,
    Requant,
    Requantize,
    Select,
    Softmax,
    StreamBuffer,
    Timing,
    csd,
)
from ...hdl import cmvm
from . import lower as L

__all__ = ["AxiStream", "assign_products", "components", "requantize_spec", "top"]


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
    _prefetch(stages, opts, fused=True)
    parts: list[wiring.Component] = []
    k = 0
    while k < len(stages):
        s, after = stages[k], stages[k + 1] if k + 1 < len(stages) else None
        if isinstance(s, L.Recurrent):  # with the layers it passes its whole sequence to, a step at a time
            layers = [s]
            while (layers[-1].output == 0 and k + len(layers) < len(stages)
                   and isinstance(stages[k + len(layers)], L.Recurrent)):
                layers.append(stages[k + len(layers)])
            part = RecurrentStack([_recurrent_layer(r, opts) for r in layers])
            part.nodes = [r.node for r in layers]
            parts.append(part)
            k += len(layers)
            continue
        if isinstance(s, L.Linear) and isinstance(after, L.Requant) and opts.reuse == 1:
            part = _dense_requant(s, after, opts)
            part.nodes = [s.node, after.node]
            parts += [part, StreamBuffer(part.out_lanes.bits)] if buffers else [part]
            k += 2
        else:
            parts += stage_parts(s, opts, buffer=buffers)
            k += 1
    return parts


#: weights from which a fully parallel Dense's adder graphs are worth a worker process
PREFETCH_WEIGHTS = 512


def _prefetch(stages: Sequence[L.Stage], opts: Pipelining, *, fused: bool) -> None:
    """Compute the adder-graph candidates of the large fully parallel Dense layers on all cores
    (:func:`~fpgac.hdl.cmvm.prefetch`) before the layers are built one by one; ``fused``: a Linear
    followed by a Requant is one Dense (as :func:`components` builds it)."""
    if opts.reuse != 1:
        return
    jobs = []
    for s, after in zip(stages, [*stages[1:], None]):
        if isinstance(s, L.Linear) and s.n_in * s.n_out >= PREFETCH_WEIGHTS:
            spec = requantize_spec(after) if fused and isinstance(after, L.Requant) else None
            jobs.append(Dense.graph_job(s.matrix, s.bias, _lanes(s.n_in, s.in_type), spec, products=s.products))
    if len(jobs) > 1:
        cmvm.prefetch(jobs)


def assign_products(stages: Sequence[L.Stage], budget: int | None) -> int:
    """Choose the weights of the fully parallel Linear stages whose products are made on
    multipliers (DSP blocks), into each stage's ``products``: up to ``budget`` of them (None: all),
    those with the most canonical signed digits first (a product on a multiplier saves that many
    adders less one), then in stage and weight order. A weight of one digit (a power of two) is a
    shift, never a product. Returns how many were chosen."""
    found = []
    for k, s in enumerate(stages):
        if isinstance(s, L.Linear):
            s.products = []
            w = np.asarray(s.matrix)
            if budget == 0:
                continue
            for i, j in zip(*np.nonzero(w)):
                digits = len(csd(int(w[i, j])))
                if digits > 1:
                    found.append((-digits, k, int(i), int(j)))
    found.sort()
    chosen = found if budget is None else found[:budget]
    for _, k, i, j in chosen:
        stages[k].products.append((i, j))
    return len(chosen)


def requantize_spec(r: L.Requant) -> Requantize:
    """The cast of a Requant stage, for a component to do on its own results."""
    return Requantize(shift=r.in_type.frac_bits - r.out_type.frac_bits, width=r.out_type.width,
                      signed=r.out_type.signed, rounding=r.out_type.rounding.name, overflow=r.out_type.overflow.name)


def _dense_requant(s: L.Linear, r: L.Requant, opts: Pipelining) -> Dense:
    spec = requantize_spec(r)
    part = Dense(s.matrix, s.bias, x=_lanes(s.n_in, s.in_type), levels_per_stage=opts.levels_per_stage,
                 clock_period=opts.clock_period, requant=spec, products=s.products)
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
                 products=s.products, **fit)


def _fixed(t) -> Fixed:
    return Fixed(t.width, t.frac_bits, t.signed, t.rounding.name, t.overflow.name)


def _recurrent(s: L.Recurrent, x: Lanes, fit: dict, opts: Pipelining) -> wiring.Component:
    return RecurrentStack([_recurrent_layer(s, opts)])


def _recurrent_layer(s: L.Recurrent, opts: Pipelining) -> Recurrent:
    lstm = s.kind == "lstm"
    return Recurrent(s.kind, _lanes(s.n_x, s.in_type), steps=s.steps, n_x=s.n_x, hidden=s.hidden, weights=s.matrix, bias=s.bias,
                     acc_frac=s.acc_frac, gate=_fixed(s.gate_type), state=_fixed(s.state_type),
                     cell=_fixed(s.cell_type) if lstm else None, sigmoid=s.sigmoid,
                     sigmoid_frac=s.sigmoid.out_type.frac_bits, tanh=s.tanh, tanh_frac=s.tanh.out_type.frac_bits,
                     tanh_cell=s.tanh_cell if lstm else None,
                     tanh_cell_frac=s.tanh_cell.out_type.frac_bits if lstm else 0, h0=s.h0, c0=s.c0,
                     output=s.output, reuse=opts.reuse, clock_period=opts.clock_period)


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
    L.Recurrent: _recurrent,
    L.Combine: lambda s, x, fit, opts: Binary(
        x, _lanes(s.n_in, s.b_type), op=s.op, a_shift=s.a_shift, b_shift=s.b_shift, **fit),
    L.Join: lambda s, x, fit, opts: Concat([_lanes(c, t) for c, t in zip(s.counts, s.types)],
                                                   shifts=s.shifts, **fit),
}


def top(stages: Sequence[L.Stage], *, reuse: int = 1, axi: bool = False, clock_period: float | None = None,
        names: tuple[Sequence[str], Sequence[str]] | None = None) -> wiring.Component:
    """The whole network: ports ``i``/``o`` (or AXI4-Stream names with ``axi``); registers placed
    for ``clock_period`` ns (see :class:`Pipelining`). With several graph inputs or outputs, one
    stream per input and output, ``i_<name>`` and ``o_<name>`` after ``names`` (the graph's input
    and output names; ``in0``/``out0`` .. without)."""
    opts = Pipelining(reuse=reuse, clock_period=clock_period)
    if not L.is_chain(stages):
        network = Network(stages, opts, names)
        return AxiStream(network) if axi else network
    # with reuse 1 every component but a recurrence takes a word a cycle and can run without stalls
    metered = opts.reuse == 1 and not any(isinstance(s, L.Recurrent) for s in stages)
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
    chain.in_ports, chain.out_ports = [("i", chain.in_lanes)], [("o", chain.out_lanes)]
    return AxiStream(chain) if axi else chain


def port_names(names: Sequence[str], prefix: str) -> list[str]:
    """Distinct port (Amaranth member, Verilog) names ``<prefix>_<name>`` for ONNX value names."""
    found: list[str] = []
    for name in names:
        base = f"{prefix}_" + re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z]", "_", name)).strip("_")
        port, k = base.rstrip("_"), 1
        while port in found:
            port, k = f"{base}_{k}", k + 1
        found.append(port)
    return found


def input_lanes(stages: Sequence[L.Stage], j: int) -> Lanes:
    """The lanes of graph input ``j``, from a stage that reads it."""
    for s in stages:
        for position, source in enumerate(s.sources or ((-1,) if s is stages[0] else ())):
            if source != -1 - j:
                continue
            if isinstance(s, L.Combine):
                return _lanes(s.n_in, s.in_type if position == 0 else s.b_type)
            if isinstance(s, L.Join):
                return _lanes(s.counts[position], s.types[position])
            return _lanes(s.n_in, s.in_type)
    raise ValueError(f"graph input {j} is read by no stage")


class Network(wiring.Component):
    """Stages that are not a chain (a residual Add, a Concat of branches, several graph inputs or
    outputs): each stage's component reads the stages its ``sources`` name, through a
    :class:`~fpgac.hdl.Fork` where a value has several readers (a graph output among them). Where a
    join's inputs arrive at different latencies, the earlier one waits in a FIFO as deep as the
    difference (plus one), so that a new vector can still enter every cycle; the FIFO's own latency
    of one cycle fits within that difference. Ports ``i``/``o`` with one input and one output, else
    one stream per graph input and output (:attr:`in_ports`, :attr:`out_ports`: name and lanes;
    each stream moves on its own handshake). :attr:`latency` is that of the longest path.
    """

    def __init__(self, stages: Sequence[L.Stage], opts: Pipelining = Pipelining(),
                 names: tuple[Sequence[str], Sequence[str]] | None = None) -> None:
        self.stages = list(stages)
        self.units: list[wiring.Component] = []
        _prefetch(self.stages, opts, fused=False)
        for s in self.stages:
            parts = stage_parts(s, opts)
            self.units.append(parts[0] if len(parts) == 1 else Chain(parts))
        self.sources = [s.sources or (k - 1,) for k, s in enumerate(self.stages)]
        self.ready_at = [0] * len(self.stages)  # cycles from the input to each stage's output
        for k, unit in enumerate(self.units):
            self.ready_at[k] = max(self._at(i) for i in self.sources[k]) + getattr(unit, "latency", 0)
        self.outputs = L.graph_outputs(self.stages)
        n_in = L.graph_inputs(self.stages)
        self.latency = max(self.ready_at[k] for k in self.outputs)
        self.interval = max((getattr(u, "interval", 1) for u in self.units), default=1)
        lanes_in = [input_lanes(self.stages, j) for j in range(n_in)]
        lanes_out = [_lanes(self.stages[k].n_out, self.stages[k].out_type) for k in self.outputs]
        if n_in == 1 and len(self.outputs) == 1:
            self.in_ports, self.out_ports = [("i", lanes_in[0])], [("o", lanes_out[0])]
        else:
            given_in, given_out = names or ([f"in{j}" for j in range(n_in)], [f"out{k}" for k in range(len(lanes_out))])
            if len(given_in) != n_in or len(given_out) != len(lanes_out):
                raise ValueError(f"names for {len(given_in)} inputs and {len(given_out)} outputs; the stages have "
                                 f"{n_in} and {len(lanes_out)}")
            self.in_ports = list(zip(port_names(given_in, "i"), lanes_in))
            self.out_ports = list(zip(port_names(given_out, "o"), lanes_out))
        self.in_lanes, self.out_lanes = self.in_ports[0][1], self.out_ports[0][1]
        members = {name: In(stream.Signature(lanes.bits)) for name, lanes in self.in_ports}
        members.update({name: Out(stream.Signature(lanes.bits)) for name, lanes in self.out_ports})
        super().__init__(members)

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
        readers: dict[int, list[tuple[int | None, object]]] = {}  # source -> (reading stage, its port)
        for k, unit in enumerate(self.units):
            for source, port in zip(self.sources[k], self._inputs(unit)):
                readers.setdefault(source, []).append((k, port))
        for (name, _), k in zip(self.out_ports, self.outputs):
            readers.setdefault(k, []).append((None, wiring.flipped(getattr(self, name))))
        for source, ports in readers.items():
            if source < 0:
                out = wiring.flipped(getattr(self, self.in_ports[-1 - source][0]))
                bits = self.in_ports[-1 - source][1].bits
            else:
                out, bits = self.units[source].o, len(self.units[source].o.payload)
            if len(ports) > 1:
                m.submodules[f"fork{source + 1}" if source >= 0 else f"fork_in{-1 - source}"] = fork = Fork(bits, len(ports))
                wiring.connect(m, out, fork.i)
                outs = fork.outputs
            else:
                outs = [out]
            for (k, port), o in zip(ports, outs):
                wait = 0 if k is None else max(self._at(i) for i in self.sources[k]) - self._at(source)
                if wait > 0:  # the other input of stage k comes later: hold this one meanwhile
                    m.submodules[f"wait{source + 1}_{k}"] = queue = SyncFIFO(width=bits, depth=wait + 1)
                    wiring.connect(m, o, queue.w_stream)
                    o = queue.r_stream
                wiring.connect(m, o, port)
        return m


class AxiStream(wiring.Component):
    """``inner`` with AXI4-Stream port names: ``s_axis_t*`` in, ``m_axis_t*`` out (with several
    inputs or outputs, ``s_axis_<name>_t*`` and ``m_axis_<name>_t*`` for ports ``i_<name>`` and
    ``o_<name>``).

    ``tdata`` is padded with zeros to a whole number of bytes, as AXI4-Stream requires; the lanes
    sit in its low bits as in ``inner``'s payload.
    """

    def __init__(self, inner: wiring.Component) -> None:
        self.inner = inner
        self.in_lanes, self.out_lanes = inner.in_lanes, inner.out_lanes
        self.latency, self.interval = inner.latency, getattr(inner, "interval", 1)
        single = len(inner.in_ports) == 1 and len(inner.out_ports) == 1
        self.in_ports = [("s_axis" if single else f"s_axis_{name[2:]}", lanes) for name, lanes in inner.in_ports]
        self.out_ports = [("m_axis" if single else f"m_axis_{name[2:]}", lanes) for name, lanes in inner.out_ports]
        members = {}
        for (axis, _), (name, _) in zip(self.in_ports, inner.in_ports):
            bits = -(-len(getattr(inner, name).payload) // 8) * 8
            members.update({f"{axis}_tdata": In(bits), f"{axis}_tvalid": In(1), f"{axis}_tready": Out(1)})
        for (axis, _), (name, _) in zip(self.out_ports, inner.out_ports):
            bits = -(-len(getattr(inner, name).payload) // 8) * 8
            members.update({f"{axis}_tdata": Out(bits), f"{axis}_tvalid": Out(1), f"{axis}_tready": In(1)})
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.inner = inner = self.inner
        for (axis, _), (name, _) in zip(self.in_ports, inner.in_ports):
            port = getattr(inner, name)
            m.d.comb += [
                port.payload.eq(getattr(self, f"{axis}_tdata")[:len(port.payload)]),
                port.valid.eq(getattr(self, f"{axis}_tvalid")),
                getattr(self, f"{axis}_tready").eq(port.ready),
            ]
        for (axis, _), (name, _) in zip(self.out_ports, inner.out_ports):
            port = getattr(inner, name)
            m.d.comb += [
                getattr(self, f"{axis}_tdata").eq(port.payload),
                getattr(self, f"{axis}_tvalid").eq(port.valid),
                port.ready.eq(getattr(self, f"{axis}_tready")),
            ]
        return m


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
