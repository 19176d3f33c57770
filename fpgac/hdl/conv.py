"""Convolution and pooling on a pixel stream.

A feature map travels as a *pixel stream*: one word per pixel, holding all ``C`` channels as
lanes (channel ``c`` in lane ``c``), pixels in row-major order (``(0, 0), (0, 1), ...``), one
image after another. A 1-D signal ``[C, L]`` is an image of height 1. The IR is channels-first
(``[C, H, W]``); the backend turns a whole tensor into a pixel stream with
:class:`~fpgac.hdl.Serialize` and back with :class:`~fpgac.hdl.Collect`.

:class:`Window` buffers the last rows of the image in one memory (a line buffer of
``span + stride`` rows) and emits, for every output position in row-major order, the whole
receptive field as one word. :class:`Conv` is a Window followed by a :class:`~fpgac.hdl.Dense`
(or :class:`~fpgac.hdl.DenseReuse`) over the window: grouped and depthwise convolutions are a
Dense whose cross-group weights are zero, which costs nothing in shift-and-add form.
:class:`Pool` is a Window followed by a max or sum tree (:mod:`fpgac.hdl.tiled` has the pools
that need no line buffer: over whole tiles, and over the whole image).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from fpgac.hdl.arith import Term, TermBuilder, stages_for, tree_depth, tree_reduce
from fpgac.hdl.dense import Dense
from fpgac.hdl.dense_reuse import DenseReuse
from fpgac.hdl.lanes import Component, Lanes
from fpgac.hdl.streams import Chain

__all__ = ["Conv", "Pool", "PoolKind", "Window"]


def _pair(v: Sequence[int] | int, nd: int, what: str) -> tuple[int, ...]:
    t = (v,) * nd if isinstance(v, int) else tuple(int(a) for a in v)
    if len(t) != nd:
        raise ValueError(f"{what} needs {nd} values, not {v!r}")
    return t


def _geometry(size: Sequence[int], kernel: Sequence[int], strides: object, dilations: object, pads: object
              ) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int], tuple[int, int, int, int]]:
    """Normalize 1-D or 2-D geometry to 2-D: ``(H, W)``, kernel, strides, dilations, pads (t, l, b, r)."""
    nd = len(size)
    if nd not in (1, 2) or len(kernel) != nd:
        raise ValueError(f"1 or 2 spatial axes expected, not size {size} and kernel {kernel}")
    strides = _pair(1 if strides is None else strides, nd, "strides")
    dilations = _pair(1 if dilations is None else dilations, nd, "dilations")
    pads = (0,) * (2 * nd) if pads is None else tuple(int(p) for p in pads)
    if len(pads) != 2 * nd or any(p < 0 for p in pads):
        raise ValueError(f"pads need {2 * nd} values >= 0 (begins, then ends), not {pads}")
    if any(s < 1 for s in strides) or any(d < 1 for d in dilations):
        raise ValueError("strides and dilations must be >= 1")
    if nd == 1:
        return ((1, size[0]), (1, kernel[0]), (1, strides[0]), (1, dilations[0]), (0, pads[0], 0, pads[1]))
    return (tuple(size), tuple(kernel), strides, dilations, (pads[0], pads[1], pads[2], pads[3]))


class Window(Component):
    """Receptive fields of a pixel stream: one output word per output position, row-major.

    Parameters
    ----------
    x : Lanes
        One pixel: ``C`` channel lanes.
    size : (H, W)
        Image size.
    kernel : (kh, kw)
    strides, dilations : (sy, sx), (dy, dx)
    pads : (top, left, bottom, right)
        Zero padding (or ``pad_value``).
    out_size : (OH, OW), optional
        Defaults to the floor rule; pass the ceil_mode size to get the extra windows (their
        taps beyond the input are padding too).
    pad_value : int
        What a tap outside the input reads (0; a max pool uses the lanes' minimum).
    masks : bool
        Append ``2 * kh * kw`` bits above the taps: bit ``t`` of the first group is set when tap
        ``t`` lies inside the input, of the second when it lies inside the input or its explicit
        pads (for an average pool's divisor).
    serial : bool
        Read the taps one a cycle through one read port (a window every ``kh * kw`` cycles at
        most) instead of all at once: the buffer is one memory copy instead of one per tap, for a
        consumer that takes a word every ``kh * kw`` cycles or slower.

    Output word: ``kh * kw * C`` lanes of ``x``'s format, tap ``t = dy * kw + dx`` and channel ``c``
    in lane ``t * C + c`` (:attr:`out_lanes`), then the masks if asked for.

    Timing: pixels are written into a line buffer of ``span_y + sy`` rows. A window is emitted
    (into the output register) as soon as the last pixel it needs has arrived, one per cycle;
    the input stalls only when the buffer row it would overwrite is still needed. Between
    images there is one idle cycle, and the next image waits until every window of the current
    one has been emitted.
    """

    def __init__(self, x: Lanes, size: Sequence[int], kernel: Sequence[int], *, strides: Sequence[int] = (1, 1),
                 dilations: Sequence[int] = (1, 1), pads: Sequence[int] = (0, 0, 0, 0),
                 out_size: Sequence[int] | None = None, pad_value: int = 0, masks: bool = False,
                 serial: bool = False) -> None:
        self.serial = serial
        (self.height, self.width), self.kernel = tuple(size), tuple(kernel)
        self.strides, self.dilations, self.pads = tuple(strides), tuple(dilations), tuple(pads)
        if len(self.kernel) != 2 or len(self.strides) != 2 or len(self.dilations) != 2 or len(self.pads) != 4:
            raise ValueError("Window takes 2-D geometry: size, kernel, strides, dilations (2 each), pads (4)")
        if out_size is None:  # windows that fit the padded input
            out_size = [(n + self.pads[a] + self.pads[a + 2] - d * (k - 1) - 1) // s + 1
                        for a, (n, k, s, d) in enumerate(zip(size, kernel, strides, dilations))]
        self.out_size = tuple(out_size)
        if not x.min <= pad_value <= x.max:
            raise ValueError(f"pad value {pad_value} does not fit {x}")
        self.pad_value = pad_value
        self.masks = masks
        self.in_lanes = x
        self.taps = self.kernel[0] * self.kernel[1]
        self.out_lanes = x.with_count(self.taps * x.count)
        self.spans = tuple(d * (k - 1) + 1 for k, d in zip(self.kernel, self.dilations))
        self.rows = self.spans[0] + self.strides[0]
        bits = self.out_lanes.bits + (2 * self.taps if masks else 0)
        self.latency = 1
        super().__init__({"i": In(stream.Signature(x.bits)), "o": Out(stream.Signature(bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x = self.in_lanes
        H, W = self.height, self.width
        OH, OW = self.out_size
        (kh, kw), (sy, sx), (dy_, dx_) = self.kernel, self.strides, self.dilations
        pt, pl, pb, pr = self.pads
        L = self.rows
        depth = L * W

        mem = Memory(shape=unsigned(x.bits), depth=depth, init=[])
        m.submodules.buffer = mem
        wp = mem.write_port()

        # writer: the next pixel (wr, wc) to arrive; wbase = (wr mod L) * W
        wr = Signal(range(H + 1), name="wr")
        wc = Signal(range(max(W, 2)), name="wc")
        wbase = Signal(range(depth), name="wbase")
        # reader: the output position (oy, ox); its window's top-left input pixel (rmin, cmin);
        # rbase = (rmin mod L) * W
        oy = Signal(range(max(OH, 2)), name="oy")
        ox = Signal(range(max(OW, 2)), name="ox")
        rmin = Signal(range(-pt, max((OH - 1) * sy - pt, 0) + 1), init=-pt, name="rmin")
        cmin = Signal(range(-pl, max((OW - 1) * sx - pl, 0) + 1), init=-pl, name="cmin")
        rbase_init = ((-pt) % L) * W
        rbase = Signal(range(depth), init=rbase_init, name="rbase")
        rd_done = Signal(name="rd_done")
        wr_done = wr == H

        o_valid = Signal(name="o_valid")
        o_reg = Signal(len(self.o.payload), name="o_reg")
        out_free = ~o_valid | self.o.ready
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(o_reg)]

        # -- writing -----------------------------------------------------------------------------
        rmin_c = Mux(rmin < 0, 0, rmin) if pt else rmin
        may_write = ~wr_done & (rd_done | (wr < rmin_c + L))
        m.d.comb += [
            self.i.ready.eq(may_write),
            wp.addr.eq(wbase + wc),
            wp.data.eq(self.i.payload),
            wp.en.eq(self.i.valid & may_write),
        ]
        with m.If(self.i.valid & may_write):
            with m.If(wc == W - 1):
                m.d.sync += [wc.eq(0), wr.eq(wr + 1), wbase.eq(Mux(wbase == depth - W, 0, wbase + W))]
            with m.Else():
                m.d.sync += wc.eq(wc + 1)

        # -- reading -----------------------------------------------------------------------------
        rmax, cmax = rmin + self.spans[0] - 1, cmin + self.spans[1] - 1
        rneed = Mux(rmax < 0, 0, Mux(rmax > H - 1, H - 1, rmax))
        cneed = Mux(cmax < 0, 0, Mux(cmax > W - 1, W - 1, cmax))
        have = (wr > rneed) | ((wr == rneed) & (wc > cneed))
        if self.serial:  # tap t read this cycle; the window leaves with its last tap
            t = Signal(range(max(self.taps, 2)), name="tap")
            last_tap = t == self.taps - 1
            gather = ~rd_done & have
            emit = gather & last_tap & out_free
            with m.If(gather & ~last_tap):
                m.d.sync += t.eq(t + 1)
            with m.If(emit):
                m.d.sync += t.eq(0)
        else:
            emit = ~rd_done & have & out_free

        taps, inside, counted = [], [], []
        pad_word = x.join([Const(self.pad_value, x.shape)] * x.count)
        for ty in range(kh):
            row = rmin + ty * dy_
            off = ((ty * dy_) % L) * W
            rowaddr = Signal(range(depth), name=f"rowaddr{ty}")
            m.d.comb += rowaddr.eq(Mux(rbase + off >= depth, rbase + off - depth, rbase + off))
            row_in = (row >= 0) & (row < H)
            row_cnt = (row >= -pt) & (row < H + pb)
            for tx in range(kw):
                col = cmin + tx * dx_
                ok = Signal(name=f"inside{ty}_{tx}")
                m.d.comb += ok.eq(row_in & (col >= 0) & (col < W))
                inside.append(ok)
                counted.append(row_cnt & (col >= -pl) & (col < W + pr))
                if not self.serial:
                    rp = mem.read_port(domain="comb")
                    m.d.comb += rp.addr.eq(rowaddr + col)
                    taps.append(Mux(ok, rp.data, pad_word))
        self._mem, self._inside = mem, inside
        if self.serial:
            taps = [self._serial_tap(m, t, gather & ~last_tap, rmin, cmin, rbase, pad_word)]
        word = Cat(*taps, *inside, *counted) if self.masks else Cat(*taps)

        with m.If(emit):
            m.d.sync += [o_reg.eq(word), o_valid.eq(1)]
            with m.If(ox == OW - 1):
                m.d.sync += [ox.eq(0), cmin.eq(-pl)]
                with m.If(oy == OH - 1):
                    m.d.sync += rd_done.eq(1)
                with m.Else():
                    step = (sy % L) * W
                    m.d.sync += [oy.eq(oy + 1), rmin.eq(rmin + sy),
                                 rbase.eq(Mux(rbase + step >= depth, rbase + step - depth, rbase + step))]
            with m.Else():
                m.d.sync += [ox.eq(ox + 1), cmin.eq(cmin + sx)]
        with m.Elif(self.o.ready):
            m.d.sync += o_valid.eq(0)

        # -- the end of an image: both sides done, start the next -------------------------------
        with m.If(rd_done & wr_done):
            m.d.sync += [rd_done.eq(0), wr.eq(0), wc.eq(0), wbase.eq(0),
                         oy.eq(0), ox.eq(0), rmin.eq(-pt), cmin.eq(-pl), rbase.eq(rbase_init)]
        return m

    def _serial_tap(self, m: Module, t: Signal, shift: Value, rmin: Signal, cmin: Signal, rbase: Signal,
                         pad_word: Value) -> Value:
        """Serial mode: read tap ``t`` through one port; taps ``0 .. t - 1`` are shifted into a
        register as they are read (with ``shift``). Returns the whole window's taps once ``t`` is the
        last: the register's taps, then this cycle's."""
        x, (kh, kw), (dy_, dx_), L, W = self.in_lanes, self.kernel, self.dilations, self.rows, self.width
        depth = L * W
        rp = self._mem.read_port(domain="comb")
        offsets = Array(Const(((ty * dy_) % L) * W, range(depth + 1)) for ty in range(kh) for tx in range(kw))
        columns = Array(Const(tx * dx_, range(max(kw * dx_, 2))) for ty in range(kh) for tx in range(kw))
        row = Signal(range(depth * 2), name="tap_row")
        m.d.comb += [row.eq(rbase + offsets[t]),
                     rp.addr.eq(Mux(row >= depth, row - depth, row) + cmin + columns[t])]
        ok = Array(self._inside)[t]
        value = Mux(ok, rp.data, pad_word)
        held = Signal(x.bits * max(self.taps - 1, 1), name="taps_read", reset_less=True)
        if self.taps == 1:
            return value
        with m.If(shift):
            m.d.sync += held.eq(Cat(held[x.bits:], value) if self.taps > 2 else value)
        return Cat(held, value)


def conv_matrix(weights: np.ndarray, groups: int) -> np.ndarray:
    """The Dense matrix ``[kh * kw * C, M]`` of a ``[M, C / groups, kh, kw]`` kernel over a Window's lanes."""
    mo, cg = weights.shape[:2]
    c_in = cg * groups
    kernel = weights.shape[2:]
    taps = int(np.prod(kernel))
    w = weights.reshape(mo, cg, taps)
    mat = np.zeros((taps * c_in, mo), dtype=np.int64)
    per_group = mo // groups
    for o in range(mo):
        g = o // per_group
        for c in range(cg):
            for t in range(taps):
                mat[t * c_in + g * cg + c, o] = w[o, c, t]
    return mat


class Conv(Chain):
    """A 1-D or 2-D convolution on a pixel stream: a :class:`Window` and a Dense over it.

    Parameters
    ----------
    x : Lanes
        One input pixel: ``C`` channel lanes.
    size : (H, W) or (L,)
        Input image size.
    weights : integer array ``[M, C / groups, *kernel]`` (the IR's layout)
    bias : integer array ``[M]``, optional, aligned to the accumulator (as :class:`Dense`).
    strides, dilations : one per spatial axis (default 1)
    pads : begins then ends, one each per spatial axis (the IR's ``pads``)
    groups : int
    reuse : int, optional
        Use a :class:`DenseReuse` with this reuse factor instead of the unrolled :class:`Dense`.
    levels_per_stage, out_width, out_signed
        As :class:`Dense`.
    serial : bool
        The Window reads its taps one a cycle (see :class:`Window`).

    Ports ``i`` (a pixel stream of ``C`` lanes), ``o`` (a pixel stream of ``M`` lanes: the output
    image, row-major). :attr:`dense` and :attr:`window` are the parts; :attr:`out_size` the output
    image size. An output pixel leaves ``1 + dense.latency`` cycles after its last input pixel
    (unrolled) when nothing stalls.
    """

    def __init__(self, x: Lanes, size: Sequence[int], weights: object, bias: object = None, *,
                 strides: object = None, dilations: object = None, pads: object = None, groups: int = 1,
                 reuse: int | None = None, levels_per_stage: int = 2,
                 out_width: int | None = None, out_signed: bool | None = None, serial: bool = False) -> None:
        w = np.asarray(weights)
        if w.ndim not in (3, 4) or w.dtype.kind not in "iu":
            raise ValueError(f"Conv weights must be an integer array [M, C/groups, *kernel], not {w.dtype} {w.shape}")
        if groups < 1 or x.count % groups or w.shape[0] % groups or w.shape[1] * groups != x.count:
            raise ValueError(f"Conv with {x.count} input channels, groups {groups}, does not fit weights {w.shape}")
        if len(size) != w.ndim - 2:
            raise ValueError(f"Conv weights {w.shape} need {w.ndim - 2} spatial axes, not size {size}")
        size2, kernel2, strides2, dil2, pads2 = _geometry(tuple(size), w.shape[2:], strides, dilations, pads)
        self.window = Window(x, size2, kernel2, strides=strides2, dilations=dil2, pads=pads2, serial=serial)
        self.out_size = self.window.out_size if len(size) == 2 else (self.window.out_size[1],)
        mat = conv_matrix(w.reshape(w.shape[0], w.shape[1], *kernel2), groups)
        lanes = self.window.out_lanes
        if reuse is None:
            self.dense = Dense(mat, bias, x=lanes, levels_per_stage=levels_per_stage,
                               out_width=out_width, out_signed=out_signed)
        else:
            self.dense = DenseReuse(mat, bias, x=lanes, reuse=reuse, out_width=out_width, out_signed=out_signed)
        self.in_lanes, self.out_lanes = x, self.dense.out_lanes
        self.latency = self.window.latency + self.dense.latency
        super().__init__([self.window, self.dense])


class PoolKind(enum.Enum):
    MAX = "max"
    AVG = "avg"

    @classmethod
    def cast(cls, kind: object) -> PoolKind:
        """A member from itself, a same-named member of another enum (the IR's), or its name."""
        name = kind if isinstance(kind, str) else getattr(kind, "name", None)
        try:
            return cls[str(name).upper()]
        except KeyError:
            raise ValueError(f"PoolKind must be MAX or AVG, not {kind!r}") from None


def _avg_bounds(x: Lanes, reciprocals: Sequence[int]) -> tuple[int, int]:
    """The range of ``sum * reciprocals[count]`` over every count of taps (1 and up)."""
    lo = min(c * min(x.min, 0) * r for c, r in enumerate(reciprocals) if c)
    hi = max(c * max(x.max, 0) * r for c, r in enumerate(reciprocals) if c)
    return lo, hi


class _WindowReduce(Component):
    """Per channel, the max or the (divided) sum over a Window's taps."""

    def __init__(self, x: Lanes, taps: int, kind: PoolKind, reciprocals: Sequence[int] | None,
                 count_include_pad: bool, levels_per_stage: int, out: Lanes) -> None:
        self.x, self.taps, self.kind, self.reciprocals = x, taps, kind, reciprocals
        self.count_include_pad, self.levels_per_stage, self.out_lanes = count_include_pad, levels_per_stage, out
        extra = 2 * taps if kind is PoolKind.AVG else 0
        self.latency = stages_for(tree_depth(taps), levels_per_stage) + (1 if kind is PoolKind.AVG else 0)
        super().__init__({"i": In(stream.Signature(x.bits * taps + extra)), "o": Out(stream.Signature(out.bits))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        x, taps, C = self.x, self.taps, self.x.count
        lanes = self.x.with_count(taps * C).split(self.i.payload[:x.bits * taps])
        groups = [[lanes[t * C + c] for t in range(taps)] for c in range(C)]
        pipe = self.pipeline(m, self.i.valid)
        if self.kind is PoolKind.MAX:
            def bigger(a: Value, b: Value) -> Value:
                s = Signal(x.shape, name="max")
                m.d.comb += s.eq(Mux(a >= b, a, b))
                return s

            roots, _ = tree_reduce(pipe, groups, bigger, lambda v: pipe.reg(v, x.shape), self.levels_per_stage)
            ys = roots
        else:
            base = x.bits * taps
            mask = self.i.payload[base + (taps if self.count_include_pad else 0):][:taps]
            count = Signal(range(taps + 1), name="count")
            m.d.comb += count.eq(sum(mask[t] for t in range(taps)))
            tb = TermBuilder(m, "sum")
            leaves = [[Term(v, False, x.min, x.max) for v in g] for g in groups]
            roots, (count_r,) = tree_reduce(pipe, leaves, tb.add, lambda t: tb.register(pipe, t),
                                            self.levels_per_stage, carry=[count])
            recip = Signal(range(max(self.reciprocals) + 1), name="recip")
            with m.Switch(count_r):
                for c in range(taps + 1):
                    with m.Case(c):
                        m.d.comb += recip.eq(self.reciprocals[c])
            pipe.stage()
            ys = [pipe.reg(r.value * recip, self.out_lanes.shape, name=f"avg{k}") for k, r in enumerate(roots)]
        m.d.comb += self.o.payload.eq(self.out_lanes.join(ys))
        o_valid, i_ready = pipe.finish(self.o.ready)
        m.d.comb += [self.o.valid.eq(o_valid), self.i.ready.eq(i_ready)]
        return m


class Pool(Chain):
    """Max or average pooling (1-D or 2-D) on a pixel stream, with the IR's Pool semantics.

    Parameters
    ----------
    x : Lanes
        One pixel: ``C`` channel lanes.
    size : (H, W) or (L,)
    kernel : one per spatial axis
    kind : PoolKind (or the IR's PoolKind, or "max"/"avg")
    out_size : one per spatial axis
        The output positions along each axis (the IR's shape: ``ceil_mode`` is in it; windows
        past the end padding read padding).
    strides, dilations, pads, count_include_pad
        As the IR's Pool attributes.
    reciprocals : sequence of int
        AVG only: ``y = sum * reciprocals[count]``, ``count`` the taps inside the input (or
        inside input and explicit pads with ``count_include_pad``), from 0 to the kernel's taps
        (the IR's plan gives ``round_half_up(2**K / count)``); a window wholly in padding gives 0.
    levels_per_stage, out_width, out_signed
        As :class:`Dense`.

    MAX pads with the lanes' minimum (the golden model with -inf: the same unless a window lies
    wholly in padding, which the golden model cannot represent either).

    Ports ``i``, ``o`` (pixel streams of ``C`` lanes).
    """

    def __init__(self, x: Lanes, size: Sequence[int], kernel: Sequence[int], *, kind: object,
                 out_size: Sequence[int], strides: object = None, dilations: object = None, pads: object = None,
                 count_include_pad: bool = False, reciprocals: Sequence[int] | None = None, levels_per_stage: int = 2,
                 out_width: int | None = None, out_signed: bool | None = None) -> None:
        self.kind = PoolKind.cast(kind)
        size2, kernel2, strides2, dil2, pads2 = _geometry(tuple(size), tuple(kernel), strides, dilations, pads)
        if len(out_size) != len(size):
            raise ValueError(f"out_size needs {len(size)} values, not {out_size!r}")
        out_size = (1, *out_size) if len(size) == 1 else tuple(out_size)
        avg = self.kind is PoolKind.AVG
        taps = int(np.prod(kernel2))
        if avg and (reciprocals is None or len(reciprocals) != taps + 1 or min(reciprocals) < 0):
            raise ValueError(f"an average Pool needs {taps + 1} reciprocals >= 0 (one per count of taps from 0), "
                             f"not {reciprocals!r}")
        self.window = Window(x, size2, kernel2, strides=strides2, dilations=dil2, pads=pads2, out_size=out_size,
                             pad_value=0 if avg else x.min, masks=avg)
        self.out_size = tuple(out_size) if len(size) == 2 else (out_size[1],)
        lo, hi = _avg_bounds(x, reciprocals) if avg else (x.min, x.max)
        out = Lanes.output(x.count, lo, hi, out_width, out_signed, what="Pool")
        self.reduce = _WindowReduce(x, taps, self.kind, [int(r) for r in reciprocals] if avg else None,
                                    count_include_pad, levels_per_stage, out)
        self.in_lanes, self.out_lanes = x, out
        self.latency = self.window.latency + self.reduce.latency
        super().__init__([self.window, self.reduce])
