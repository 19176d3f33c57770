"""Pooling without a line buffer: over non-overlapping tiles, and over whole images.

:class:`TiledPool` is the common pool (kernel equal to stride, no padding, no dilation, the image
a whole number of tiles) without a line buffer of whole input rows: each tile's row is reduced as
its pixels arrive, and the partial results of a row of tiles wait in a memory of ``W / kw`` words
(one read and one write port: a single copy, where a window's buffer needs one per tap).
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fpgac.hdl.activation import const_mul
from fpgac.hdl.conv import PoolKind
from fpgac.hdl.lanes import Component, Lanes, shape_for

__all__ = ["GlobalPool", "TiledPool"]


class TiledPool(Component):
    """Max or average over each ``kh x kw`` tile of an ``H x W`` pixel stream (``H``, ``W``
    multiples of the kernel): the golden model's Pool with ``strides == kernel`` and no padding.

    Parameters
    ----------
    x : Lanes
        One pixel: ``C`` channel lanes.
    size : (H, W)
    kernel : (kh, kw)
    kind : PoolKind (or its name)
    reciprocal : int
        AVG only: ``y = sum * reciprocal`` (every tile counts ``kh * kw`` taps).
    out_width, out_signed
        The output lanes' format (default: what holds every result).

    Ports ``i``, ``o`` (pixel streams of ``C`` lanes; ``o`` row-major over the tiles). A tile's
    result is registered with its last pixel (latency 1); the input waits only while a result
    cannot leave.
    """

    def __init__(self, x: Lanes, size: Sequence[int], kernel: Sequence[int], *, kind: object,
                 reciprocal: int | None = None, out_width: int | None = None, out_signed: bool | None = None) -> None:
        (self.height, self.width), (self.kh, self.kw) = tuple(size), tuple(kernel)
        if self.height % self.kh or self.width % self.kw:
            raise ValueError(f"TiledPool: a {self.height} x {self.width} image is not a whole number of "
                             f"{self.kh} x {self.kw} tiles")
        self.kind = PoolKind.cast(kind)
        avg = self.kind is PoolKind.AVG
        if avg and (reciprocal is None or reciprocal < 0):
            raise ValueError(f"an average TiledPool needs a reciprocal >= 0, not {reciprocal!r}")
        taps = self.kh * self.kw
        self.in_lanes, self.reciprocal = x, reciprocal
        self.sum_bounds = (taps * min(x.min, 0), taps * max(x.max, 0)) if avg else (x.min, x.max)
        if avg:
            a, b = self.sum_bounds[0] * reciprocal, self.sum_bounds[1] * reciprocal
            lo, hi = min(a, b), max(a, b)
        else:
            lo, hi = x.min, x.max
        self.out_lanes = Lanes.output(x.count, lo, hi, out_width, out_signed, what="TiledPool")
        self.out_size = (self.height // self.kh, self.width // self.kw)
        self.latency = 1
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(self.out_lanes.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x, C = self.in_lanes, self.in_lanes.count
        kh, kw, OW = self.kh, self.kw, self.out_size[1]
        avg = self.kind is PoolKind.AVG
        acc = Lanes(C, shape_for(*self.sum_bounds).width, shape_for(*self.sum_bounds).signed)
        ty, tx = Signal(range(max(kh, 2)), name="ty"), Signal(range(max(kw, 2)), name="tx")
        ox = Signal(range(max(OW, 2)), name="ox")
        row = Memory(shape=unsigned(acc.bits), depth=max(OW, 2), init=[])  # a row of tiles' partial results
        m.submodules.row = row
        rp, wp = row.read_port(domain="comb"), row.write_port()
        across = Signal(acc.bits, name="across", reset_less=True)  # the tile's current row so far

        o_valid, o_reg = Signal(name="o_valid"), Signal(self.out_lanes.bits, name="o_reg", reset_less=True)
        last_x, last_y = tx == kw - 1, ty == kh - 1
        emit = last_x & last_y
        out_free = ~o_valid | self.o.ready
        m.d.comb += [self.i.ready.eq(~emit | out_free), self.o.valid.eq(o_valid), self.o.payload.eq(o_reg)]
        fire = self.i.valid & self.i.ready

        def combine(a, b):
            return a + b if avg else Mux(a >= b, a, b)

        pixel = x.split(self.i.payload)
        held = acc.split(across)
        partial = acc.split(rp.data)
        h = [Signal(acc.shape, name=f"h{c}") for c in range(C)]  # the tile's row, this pixel included
        v = [Signal(acc.shape, name=f"v{c}") for c in range(C)]  # the tile so far, this row included
        for c in range(C):
            m.d.comb += [h[c].eq(Mux(tx == 0, pixel[c], combine(held[c], pixel[c]))),
                         v[c].eq(Mux(ty == 0, h[c], combine(partial[c], h[c])))]
        m.d.comb += [rp.addr.eq(ox), wp.addr.eq(ox), wp.data.eq(acc.join(v)), wp.en.eq(fire & last_x & ~last_y)]
        if avg:
            ys = [const_mul(m, v[c], self.reciprocal, *self.sum_bounds, name=f"avg{c}_")[0] for c in range(C)]
        else:
            ys = v
        with m.If(fire):
            m.d.sync += across.eq(acc.join(h))
            m.d.sync += tx.eq(Mux(last_x, 0, tx + 1))
            with m.If(last_x):
                with m.If(ox == OW - 1):
                    m.d.sync += [ox.eq(0), ty.eq(Mux(last_y, 0, ty + 1))]
                with m.Else():
                    m.d.sync += ox.eq(ox + 1)
        with m.If(fire & emit):
            m.d.sync += [o_reg.eq(self.out_lanes.join(ys)), o_valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += o_valid.eq(0)
        return m


class GlobalPool(Component):
    """Max or average over all pixels of each image of a pixel stream: one output word per image.

    Parameters
    ----------
    x : Lanes
        One pixel: ``C`` channel lanes.
    count : int
        Pixels per image (``H * W``, or ``L``).
    kind : PoolKind
    reciprocal : int
        AVG only: ``y = sum * reciprocal`` (a constant shift-and-add product; the IR's plan gives
        ``round_half_up(2**K / count)``).

    Ports ``i`` (pixel stream), ``o`` (one word of ``C`` lanes per image). The result is
    registered with the image's last pixel (latency 1 from it); the next image is accepted
    meanwhile, into the accumulators.
    """

    def __init__(self, x: Lanes, count: int, *, kind: object, reciprocal: int | None = None,
                 out_width: int | None = None, out_signed: bool | None = None) -> None:
        self.kind = PoolKind.cast(kind)
        if count < 1:
            raise ValueError(f"GlobalPool count must be >= 1, not {count}")
        avg = self.kind is PoolKind.AVG
        if avg and (reciprocal is None or reciprocal < 0):
            raise ValueError(f"an average GlobalPool needs a reciprocal >= 0, not {reciprocal!r}")
        self.in_lanes, self.count = x, count
        if avg:
            self.recip = int(reciprocal)
            self.sum_bounds = (count * x.min, count * x.max)
            a, b = self.sum_bounds[0] * self.recip, self.sum_bounds[1] * self.recip
            lo, hi = min(a, b), max(a, b)
        else:
            lo, hi = x.min, x.max
        out = Lanes.output(x.count, lo, hi, out_width, out_signed, what="GlobalPool")
        self.out_lanes = out
        self.latency = 1
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(out.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x, n = self.in_lanes, self.count
        avg = self.kind is PoolKind.AVG
        k = Signal(range(max(n, 2)), name="k")
        o_valid, o_reg = Signal(name="o_valid"), Signal(self.out_lanes.bits, name="o_reg")
        last = k == n - 1
        out_free = ~o_valid | self.o.ready
        fire = self.i.valid & self.i.ready
        m.d.comb += [self.i.ready.eq(~last | out_free), self.o.valid.eq(o_valid), self.o.payload.eq(o_reg)]
        acc_shape = shape_for(*self.sum_bounds) if avg else x.shape
        ys = []
        for c, v in enumerate(x.split(self.i.payload)):
            acc = Signal(acc_shape, name=f"acc{c}")
            nxt = Signal(acc_shape, name=f"acc{c}_next")
            if avg:
                m.d.comb += nxt.eq(Mux(k == 0, v, acc + v))
                prod, _, _ = const_mul(m, nxt, self.recip, *self.sum_bounds, name=f"avg{c}_")
                ys.append(prod)
            else:
                m.d.comb += nxt.eq(Mux((k == 0) | (v > acc), v, acc))
                ys.append(nxt)
            with m.If(fire):
                m.d.sync += acc.eq(nxt)
        with m.If(fire):
            m.d.sync += k.eq(Mux(last, 0, k + 1))
        with m.If(fire & last):
            m.d.sync += [o_reg.eq(self.out_lanes.join(ys)), o_valid.eq(1)]
        with m.Elif(self.o.ready):
            m.d.sync += o_valid.eq(0)
        return m
