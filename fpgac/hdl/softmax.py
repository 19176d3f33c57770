"""Softmax (and LogSoftmax) over the lanes of a word, from the tables the quantizer made.

The golden model's steps, each exact given its tables (``fpgac.ir.semantics.softmax``)::

    z = x - max(x)               exact, at x's fractional bits (the exp table's input type)
    e = exp.lookup(z)            per lane
    S = sum(e)                   exact
    y = e * reciprocal.lookup(S) exact product: exp's plus reciprocal's fractional bits
    or, for LogSoftmax:
    y = (z << z_shift) - (log.lookup(S) << log_shift)

Hardware: a max tree, one exp ROM read port per lane, an adder tree, one reciprocal (or log)
read, and a multiplier (or subtractor) per lane, all in one stall-safe pipeline.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from fpgac.hdl.arith import Term, TermBuilder, stages_for, tree_depth, tree_reduce
from fpgac.hdl.lanes import Component, Lanes, shape_for
from fpgac.hdl.lookup import TableSpec, table_finish, table_read

__all__ = ["Softmax"]


class Softmax(Component):
    """Softmax over all lanes of each word.

    Parameters
    ----------
    x : Lanes
        Input format (mantissas of the Softmax input; ``x.count`` is the softmax axis).
    exp : table
        The ``exp`` table (its input type is ``x - max(x)``: x's fractional bits).
    reciprocal : table, optional
        The ``reciprocal`` table (input: the sum of exps); give this or ``log``.
    log : table, optional
        The ``log_table`` of a LogSoftmax; then ``z_shift``/``log_shift`` align ``z`` and
        ``log(S)`` to the output's fractional bits (``frac - f_x``, ``frac - f_log``).
    levels_per_stage : int
        Levels of the max and sum trees between registers.
    out_width, out_signed : optional
        Output lane format; by default the narrowest holding the exact result.

    Tables may be :class:`~fpgac.hdl.TableSpec` or ``fpgac.ir.tables.Table``.

    Ports ``i`` (``x``), ``o`` (``out_lanes``). Interval 1; latency :attr:`latency` (the max tree,
    the exp read and interpolation, the sum tree, the reciprocal read and interpolation, the
    product: 7 stages for a few lanes and interpolated tables).
    """

    def __init__(self, x: Lanes, *, exp: object, reciprocal: object = None, log: object = None,
                 z_shift: int = 0, log_shift: int = 0, levels_per_stage: int = 2,
                 out_width: int | None = None, out_signed: bool | None = None) -> None:
        if (reciprocal is None) == (log is None):
            raise ValueError("Softmax needs exactly one of reciprocal (softmax) and log (log-softmax)")
        if z_shift < 0 or log_shift < 0:
            raise ValueError(f"Softmax shifts must be >= 0, not {z_shift} and {log_shift}")
        self.in_lanes = x
        self.exp = TableSpec.cast(exp)
        self.reciprocal = None if reciprocal is None else TableSpec.cast(reciprocal)
        self.log = None if log is None else TableSpec.cast(log)
        self.z_shift, self.log_shift = z_shift, log_shift
        self.levels_per_stage = levels_per_stage

        n = x.count
        self.z_bounds = (x.min - x.max, 0) if n > 1 else (0, 0)
        elo, ehi = self.exp.bounds
        self.sum_bounds = (n * elo, n * ehi)
        if self.reciprocal is not None:
            rlo, rhi = self.reciprocal.bounds
            corners = [a * b for a in (elo, ehi) for b in (rlo, rhi)]
            lo, hi = min(corners), max(corners)
            second = self.reciprocal
        else:
            llo, lhi = self.log.bounds
            zlo, zhi = self.z_bounds
            lo, hi = (zlo << z_shift) - (lhi << log_shift), (zhi << z_shift) - (llo << log_shift)
            second = self.log
        out = Lanes.output(n, lo, hi, out_width, out_signed, what="Softmax")
        self.out_lanes = out
        depth = tree_depth(n)
        self.latency = (stages_for(depth, levels_per_stage) + self.exp.latency
                        + stages_for(depth, levels_per_stage) + second.latency + 1)
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(out.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x, lps = self.in_lanes, self.levels_per_stage
        pipe = self.pipeline(m, self.i.valid)
        xs = x.split(self.i.payload)

        # 1. the maximum, with x carried alongside
        def bigger(a: Value, b: Value) -> Value:
            s = Signal(x.shape, name="max")
            m.d.comb += s.eq(Mux(a >= b, a, b))
            return s

        (top,), xs = tree_reduce(pipe, [xs], bigger, lambda v: pipe.reg(v, x.shape), lps, carry=xs)

        # 2. z = x - max; e = exp(z)
        zlo, zhi = self.z_bounds
        zs = []
        for k, v in enumerate(xs):
            z = Signal(shape_for(zlo, zhi), name=f"z{k}")
            m.d.comb += z.eq(v - top)
            zs.append(z)
        reads = table_read(m, pipe, self.exp, zs, zlo, zhi, "exp")
        if self.log is not None:
            zs = [pipe.reg(z, name=f"z{k}_") for k, z in enumerate(zs)]
        eshape = shape_for(*self.exp.bounds)
        es = [table_finish(self.exp, r) for r in reads]
        if self.exp.latency == 2:
            pipe.stage()
            es = [pipe.reg(e, eshape, name=f"e{k}") for k, e in enumerate(es)]
            if self.log is not None:
                zs = [pipe.reg(z) for z in zs]

        # 3. S = sum(e), with e (or z) carried alongside
        tb = TermBuilder(m, "sum")
        elo, ehi = self.exp.bounds
        leaves = [Term(e, False, elo, ehi) for e in es]
        keep = es if self.log is None else zs
        (total,), keep = tree_reduce(pipe, [leaves], tb.add, lambda t: tb.register(pipe, t), lps, carry=keep)

        # 4. the reciprocal (or log) of the sum
        second = self.reciprocal if self.log is None else self.log
        (read,) = table_read(m, pipe, second, [total.value], *self.sum_bounds, "second")
        keep = [pipe.reg(v) for v in keep]
        g = table_finish(second, read)
        if second.latency == 2:
            pipe.stage()
            g = pipe.reg(g, shape_for(*second.bounds), name="g")
            keep = [pipe.reg(v) for v in keep]

        # 5. y = e * reciprocal(S), or (z << z_shift) - (log(S) << log_shift)
        pipe.stage()
        if self.log is None:
            ys = [e * g for e in keep]
        else:
            ys = [(z << self.z_shift) - (g << self.log_shift) for z in keep]
        ys = [pipe.reg(y, self.out_lanes.shape, name=f"y{k}") for k, y in enumerate(ys)]
        m.d.comb += self.o.payload.eq(self.out_lanes.join(ys))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), self.i.ready.eq(i_ready)]
        return m
