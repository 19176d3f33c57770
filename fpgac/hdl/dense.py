"""Dense layers with constant weights: fully unrolled shift-and-add, or time-multiplexed MACs.

Both compute ``y[j] = sum_i x[i] * weights[i, j] + bias[j]`` exactly, on integer mantissas:
``weights`` is ``[n_in, n_out]`` (the IR's orientation, ``y = x @ W``), ``bias`` is already
aligned to the accumulator's fractional bits (``f_x + f_w``). The output lanes hold the exact
accumulator, or, given a :class:`~fpgac.hdl.requant.Requantize`, :class:`Dense` requantizes
them before its output register (in the last adder stage when the delay model says it fits).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Const, Module, Signal, Value
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from fpgac.hdl import cmvm
from fpgac.hdl.lanes import Component, Lanes, shape_for
from fpgac.hdl.requant import Requantize, Rounding

__all__ = ["Dense", "Timing", "dense_bounds"]


#: how much adder area (a fraction) one cycle of latency is worth when choosing a Dense's graph
CYCLE_COST = 0.01


@dataclass(frozen=True)
class Timing:
    """A delay model of a carry-chain adder, in ns: ``entry + per_bit * bits`` (the route to it,
    its first cell, its sum out, and the ripple), and ``register``: clock to output plus setup.
    The defaults are read off nextpnr-ecp5's critical paths of fpgac's Dense layers on an
    LFE5U-85F: a route of 1.3 to 2 ns into each adder, 0.45 ns in and 0.44 ns out of its chain,
    0.07 ns per two bits, and 0.52 ns clock to output; ``lut``: one LUT and the route to it (a
    saturation's multiplexer after its comparators: 0.24 ns in the LUT, about 1 ns of route)."""

    entry: float = 2.3
    per_bit: float = 0.035
    register: float = 0.6
    lut: float = 1.2

    def adder(self, bits: int) -> float:
        return self.entry + self.per_bit * bits


def _int_matrix(weights: object, x: Lanes, what: str) -> np.ndarray:
    w = np.asarray(weights)
    if w.ndim != 2 or w.dtype.kind not in "iub":
        raise ValueError(f"{what} weights must be a 2-D integer array [n_in, n_out], not {w.dtype} {w.shape}")
    if w.shape[0] != x.count:
        raise ValueError(f"{what} weights have {w.shape[0]} rows but the input has {x.count} lanes")
    if w.shape[1] < 1:
        raise ValueError(f"{what} needs at least one output")
    return w.astype(object)  # Python ints: bounds of wide layers must not wrap in int64


def _int_bias(bias: object, n_out: int, what: str) -> list[int]:
    if bias is None:
        return [0] * n_out
    b = np.asarray(bias)
    if b.shape != (n_out,) or b.dtype.kind not in "iub":
        raise ValueError(f"{what} bias must be an integer vector of {n_out} values, not {b.dtype} {b.shape}")
    return [int(v) for v in b]


def dense_bounds(weights: np.ndarray, bias: Sequence[int], x: Lanes) -> list[tuple[int, int]]:
    """Exact ``(lo, hi)`` of each output over every input the lanes can hold."""
    out = []
    for j in range(weights.shape[1]):
        lo = hi = int(bias[j])
        for i in range(weights.shape[0]):
            w = int(weights[i, j])
            a, b = w * x.min, w * x.max
            lo, hi = lo + min(a, b), hi + max(a, b)
        out.append((lo, hi))
    return out


def _out_lanes(bounds: list[tuple[int, int]], out_width: int | None, out_signed: bool | None, what: str) -> Lanes:
    lo, hi = min(b[0] for b in bounds), max(b[1] for b in bounds)
    return Lanes.output(len(bounds), lo, hi, out_width, out_signed, what=what)


class Dense(Component):
    """A dense layer, fully unrolled: a shared adder graph, pipelined.

    The constant product is an adder graph (:mod:`fpgac.hdl.cmvm`): every weight in canonical
    signed digits; helper columns that several outputs add (hubs) and outputs computed from
    others where that has fewer digits; the digit pairs that several outputs share computed once
    (``share``); each output's remaining terms and its bias summed by a tree, the cheapest of the
    candidates in logic cells once pipelined: adder bits plus the register bits that only carry a
    value on through a stage (:func:`carried_bits`), a cycle of latency weighing
    :data:`CYCLE_COST`. A zero weight or a zero digit makes no hardware. Every adder is
    exactly as wide as its bounds and is its own signal with the ``keep`` attribute (named
    ``sum<k>``), so that synthesis tools (Yosys, Vivado, Quartus) map each to a carry chain
    instead of merging a stage's adders into one multi-operand sum.

    Parameters
    ----------
    weights : integer array ``[n_in, n_out]``
        Weight mantissas (``y = x @ weights``).
    bias : integer array ``[n_out]`` or None
        Bias mantissas at the accumulator's fractional bits.
    x : Lanes
        Input format; ``x.count`` must be ``n_in``.
    levels_per_stage : int
        Adder levels between pipeline registers. The output is always registered, so the
        latency is ``max(1, ceil(depth / levels_per_stage))`` cycles (see :attr:`latency`).
    share : bool
        Share subexpressions across outputs (default); off gives each output its own CSD tree.
    out_width, out_signed : optional
        Output lane format; by default the narrowest that holds the exact result. A given format
        must hold the exact range (checked here), or be ``requant``'s.
    requant : Requantize, optional
        Requantize every output before the output register: in the last adder stage when its
        rounding adder and comparators fit there (by the delay model, or as a level each without
        a ``clock_period``), else in one more stage. :attr:`acc_lanes` is the exact format.

    Ports
    -----
    i : ``In(stream.Signature(x.bits))``, ``n_in`` lanes of ``x``.
    o : ``Out(stream.Signature(out_lanes.bits))``, ``n_out`` lanes.

    Throughput one vector a cycle (initiation interval 1); stalls hold the pipeline
    (:class:`~fpgac.hdl.lanes.Pipeline`). :attr:`adders` counts adders, subtractors and output
    negations; :attr:`graph` is the adder graph.
    """

    def __init__(
        self,
        weights: object,
        bias: object = None,
        *,
        x: Lanes,
        levels_per_stage: int = 2,
        clock_period: float | None = None,
        timing: Timing | None = None,
        share: bool = True,
        out_width: int | None = None,
        out_signed: bool | None = None,
        requant: Requantize | None = None,
        products: Sequence[tuple[int, int]] = (),
    ) -> None:
        if not isinstance(levels_per_stage, int) or levels_per_stage < 1:
            raise ValueError(f"Dense levels_per_stage must be a positive integer, not {levels_per_stage!r}")
        self.timing = timing or Timing()
        if clock_period is not None and not clock_period > self.timing.register:
            raise ValueError(f"Dense clock_period must be more than the register's {self.timing.register} ns, "
                             f"not {clock_period!r}")
        self.weights = _int_matrix(weights, x, "Dense")
        n_out = self.weights.shape[1]
        self.bias = _int_bias(bias, n_out, "Dense")
        self.products = _check_products(self.weights, products)
        if self.products and clock_period is None:
            raise ValueError("Dense products on multipliers need a clock_period (they take the first stage)")
        self.in_lanes = x
        self.levels_per_stage = levels_per_stage
        self.clock_period = clock_period
        self.requant = requant
        # the constants the adder graph adds: the bias, and a rounding offset
        self.sum_bias, self._requant = _sum_bias(self.bias, requant)  # _requant: what is left after the sums
        self.bounds = dense_bounds(self.weights, self.sum_bias, x)
        if requant is None:
            self.acc_lanes = self.out_lanes = _out_lanes(self.bounds, out_width, out_signed, "Dense")
        else:
            self.acc_lanes = _out_lanes(self.bounds, None, None, "Dense")
            self.out_lanes = requant.lanes(n_out)
            if (out_width, out_signed) not in ((None, None), (requant.width, requant.signed)):
                raise ValueError(f"Dense output format ({out_width}, {out_signed}) is not its requantization's "
                                 f"({requant.width}, {requant.signed})")
        job = _graph_job(self.weights, self.sum_bias, x, share, self.products)
        self._ranges = ranges = job["ranges"]
        # each graph input's stage: the inputs 0, the products (graph inputs after them) 1
        self._arrive = [0] * x.count + [1] * len(self.products)
        # the fewest cells (adder bits and carried register bits), a cycle of latency costing CYCLE_COST more
        best = None
        tail = self._requant_delay()
        for g in cmvm.candidates(**job):
            cost = g.cost(ranges)
            # the requantization after the last adders, or room kept for it in their stage
            for room in sorted({0.0, tail}):
                stages, ready = self._schedule(g, ranges, room)
                last = max(max(stages, default=0), max(self._arrive))
                extra = self._requant_extra(g, stages, ready, last)
                cycles = last + 1 + extra
                cells = cost + carried_bits(g, stages, ranges, self._arrive, last)
                score = (cells * (1 + CYCLE_COST * cycles), extra)  # ties: no stage of its own
                if best is None or score < best[0]:
                    best = (score, stages, cycles, g, extra)
        _, self.stage_of, self.latency, self.graph, self.requant_extra = best
        depths = self.graph.depths()
        self.depth = max([depths[o[0]] for o in self.graph.outputs if not isinstance(o, int)], default=0)
        negations = sum(1 for o in self.graph.outputs if not isinstance(o, int) and o[2] < 0)
        self.adders = self.graph.count + negations
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    @staticmethod
    def graph_job(weights: object, bias: object, x: Lanes, requant: Requantize | None = None,
                  share: bool = True, products: Sequence[tuple[int, int]] = ()) -> dict:
        """The arguments of :func:`cmvm.candidates` for a Dense of these (for
        :func:`cmvm.prefetch`, which computes several layers' candidates on all cores). Each of
        ``products`` is a graph input of its own after the ``x`` lanes, with weight 1 in its
        column, its weight zero in the matrix."""
        w = _int_matrix(weights, x, "Dense")
        sum_bias, _ = _sum_bias(_int_bias(bias, w.shape[1], "Dense"), requant)
        return _graph_job(w, sum_bias, x, share, products)

    def _schedule(self, graph: cmvm.AdderGraph, ranges: list[tuple[int, int]],
                  room: float = 0.0) -> tuple[list[int], list[float]]:
        """The pipeline stage of every adder (0 for the first), and when its sum is ready in its
        stage: every ``levels_per_stage`` adder levels (ready: its level in the stage), or, with a
        ``clock_period``, where the delay model says the next adder would not fit in the clock
        period any more (its operands then come from registers; ready: ns after the edge); an
        adder that makes an output must leave ``room`` ns in its stage (for a requantization)."""
        if self.clock_period is None:
            depths = graph.depths()[graph.n_in:]
            return ([(d - 1) // self.levels_per_stage for d in depths],
                    [float((d - 1) % self.levels_per_stage + 1) for d in depths])
        budget = self.clock_period - self.timing.register
        outputs = {o[0] for o in graph.outputs if not isinstance(o, int)}
        stage = list(self._arrive)
        ready = [0.0] * graph.n_in  # ns after the stage's clock edge
        for k, (add, span) in enumerate(zip(graph.adders, graph.spans(ranges))):
            delay = self.timing.adder(span)
            ops = [v for v in (add.a, add.b) if v >= 0]
            s = max(stage[v] for v in ops)
            t = max((ready[v] for v in ops if stage[v] == s), default=0.0) + delay
            after = room if graph.n_in + k in outputs else 0.0
            if t + after > budget and t > delay:  # does not fit after its operands: start the next stage
                s, t = s + 1, delay
            stage.append(s)
            ready.append(t)
        return stage[graph.n_in:], ready[graph.n_in:]

    def _requant_delay(self) -> float:
        """The requantization's delay: in ns with a ``clock_period``, else in adder levels."""
        chains = self._requant.carry_chains() if self._requant is not None else 0
        if self.clock_period is None or not chains:
            return float(chains)
        return chains * self.timing.adder(self.acc_lanes.width) + (self.timing.lut if self._requant.saturates else 0.0)

    def _requant_extra(self, graph: cmvm.AdderGraph, stages: list[int], ready: list[float], last: int) -> int:
        """1 if the requantization does not fit after the last stage's (``last``) output adders, else 0."""
        tail = self._requant_delay()
        if not tail:
            return 0
        latest = max((ready[o[0] - graph.n_in] for o in graph.outputs
                      if not isinstance(o, int) and o[0] >= graph.n_in and stages[o[0] - graph.n_in] == last),
                     default=0.0)
        limit = self.levels_per_stage if self.clock_period is None else self.clock_period - self.timing.register
        return int(latest + tail > limit)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x, graph = self.in_lanes, self.graph
        n_in = graph.n_in
        bounds = graph.bounds([r[0] for r in self._ranges], [r[1] for r in self._ranges])
        last = self.latency - 1 - self.requant_extra  # the last stage of adders
        needed = _needed(graph, self.stage_of, last)
        by_stage: list[list[int]] = [[] for _ in range(last + 1)]
        for k in range(graph.count):
            by_stage[self.stage_of[k]].append(k)

        xs = x.split(self.i.payload)
        value: dict[int, Value] = dict(enumerate(xs))  # each variable in the current stage
        pipe = self.pipeline(m, self.i.valid)
        for stage in range(last + 1):
            for k in by_stage[stage]:
                add = graph.adders[k]
                lo, hi = bounds[n_in + k]
                s = Signal(shape_for(lo, hi), name=f"sum{k}", attrs={"keep": 1})
                m.d.comb += s.eq(_adder_expr(add, value))
                value[n_in + k] = s
            pipe.stage()
            if stage == last:
                break
            for v in list(value):  # carry what a later stage reads into the next one
                if needed[v] > stage:
                    value[v] = pipe.reg(value[v], shape_for(*bounds[v]), name=f"r{stage + 1}_{v}")
                else:
                    del value[v]
            if stage == 0:  # the products on multipliers, registered into stage 1
                for k, (i, j) in enumerate(self.products):
                    v = x.count + k
                    value[v] = pipe.reg(xs[i] * int(self.weights[i, j]), shape_for(*bounds[v]), name=f"dsp{k}")
        outputs: list[Value] = []  # the exact results, a constant where an output is one
        for o in graph.outputs:
            if isinstance(o, int):
                outputs.append(Const(o, self.out_lanes.shape if self.requant is None else shape_for(o, o)))
            else:
                v, shift, sign = o
                y = _shifted(value[v], shift)
                outputs.append(y if sign > 0 else -y)
        constant = [isinstance(o, int) for o in graph.outputs]
        if self.requant_extra:  # the requantization in a stage of its own
            outputs = [y if c else pipe.reg(y, self.acc_lanes.shape, name=f"acc{j}")
                       for j, (y, c) in enumerate(zip(outputs, constant))]
            pipe.stage()
        if self.requant is not None:
            outputs = [self._requant.expr(m, y, *self.bounds[j]) for j, y in enumerate(outputs)]
        outputs = [y if c else pipe.reg(y, self.out_lanes.shape) for y, c in zip(outputs, constant)]
        m.d.comb += self.o.payload.eq(self.out_lanes.join(outputs))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), self.i.ready.eq(i_ready)]
        return m


def _graph_job(w: np.ndarray, sum_bias: list[int], x: Lanes, share: bool,
               products: Sequence[tuple[int, int]]) -> dict:
    """:meth:`Dense.graph_job` of checked integer weights and the constants the graph adds."""
    ranges = [(x.min, x.max)] * x.count
    if products:
        w = w.copy()
        extra = np.zeros((len(products), w.shape[1]), dtype=object)
        for k, (i, j) in enumerate(products):
            c, w[i, j], extra[k, j] = int(w[i, j]), 0, 1
            ranges.append((min(x.min * c, x.max * c), max(x.min * c, x.max * c)))
        w = np.vstack([w, extra])
    return dict(weights=w, bias=sum_bias, share=share, ranges=ranges)


def _check_products(weights: np.ndarray, products: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``products`` as a list of distinct ``(input, output)`` positions of non-zero weights."""
    out = [(int(i), int(j)) for i, j in products]
    n_in, n_out = weights.shape
    for i, j in out:
        if not (0 <= i < n_in and 0 <= j < n_out) or weights[i, j] == 0:
            raise ValueError(f"Dense product ({i}, {j}) is not a non-zero weight of the {n_in} x {n_out} matrix")
    if len(set(out)) != len(out):
        raise ValueError("Dense products must be distinct")
    return out


def _sum_bias(bias: list[int], requant: Requantize | None) -> tuple[list[int], Requantize | None]:
    """The constants the adder graph adds, and what is left of ``requant`` after the sums: round
    half up = floor((v + 2^(shift-1)) >> shift), so the offset joins the bias and no rounding
    adder is needed."""
    if requant is not None and requant.rounding is Rounding.RND and requant.shift > 0:
        return [b + (1 << (requant.shift - 1)) for b in bias], dataclasses.replace(requant, rounding=Rounding.TRN)
    return bias, requant


def carried_bits(graph: cmvm.AdderGraph, stages: Sequence[int], ranges: Sequence[tuple[int, int]],
                 arrive: Sequence[int] | None = None, last: int | None = None) -> int:
    """Register bits that carry a value on through a pipeline stage without adding to it: an
    input, or a sum already registered once, read again in a later stage. (A sum registered
    right after its adder can share the adder's slices; a carried register has no logic of its
    own to share one with.) ``stages``: each adder's stage, as
    :meth:`Dense._schedule` gives it; ``arrive``: each input's first stage (default 0; a product
    made on a multiplier arrives in stage 1, from the multiplier's own register); ``last``: the
    stage whose values are the outputs (default the last adder's), registered, not carried."""
    n_in = graph.n_in
    bounds = graph.bounds([r[0] for r in ranges], [r[1] for r in ranges])
    made = list(arrive if arrive is not None else [0] * n_in) + list(stages)
    needed = _needed(graph, stages, max(stages, default=0) if last is None else last)
    # variable v is registered at the end of stages made[v] .. needed[v] - 1; all but the first carry
    return sum(max(0, needed[v] - made[v] - (0 if v < n_in else 1)) * _bits(bounds[v])
               for v in range(len(bounds)))


def _needed(graph: cmvm.AdderGraph, stages: Sequence[int], last: int) -> list[int]:
    """The last stage that reads each variable of ``graph`` (-1: none): the adders' stages, and
    ``last`` for the outputs."""
    needed = [-1] * (graph.n_in + graph.count)
    for k, add in enumerate(graph.adders):
        for v in (add.a, add.b):
            if v >= 0:
                needed[v] = max(needed[v], stages[k])
    for o in graph.outputs:
        if not isinstance(o, int):
            needed[o[0]] = last
    return needed


def _bits(r: tuple[int, int]) -> int:
    return shape_for(*r).width


def _adder_expr(add: cmvm.Adder, value: dict[int, Value]) -> Value:
    """One adder of the graph as an expression: a positive term first (one subtractor, no
    negation). A term shifted left has zeros in its low bits, which synthesis passes through
    without a carry chain."""
    terms = [(add.a_sign, value[add.a], add.a_shift)]
    if add.b >= 0:
        terms.append((add.b_sign, value[add.b], add.b_shift))
    terms.sort(key=lambda t: -t[0])
    (s0, v0, sh0), rest = terms[0], terms[1:]
    const = Const(add.const, shape_for(add.const, add.const)) if add.const else None
    expr = _shifted(v0, sh0) if s0 > 0 else -_shifted(v0, sh0)
    for sign, v, sh in rest:
        expr = expr + _shifted(v, sh) if sign > 0 else expr - _shifted(v, sh)
    return expr + const if const is not None else expr


def _shifted(v: Value, shift: int) -> Value:
    """``v << shift`` for a constant shift, as wiring (no shifter cell in the netlist)."""
    return v.shift_left(shift) if shift else v

