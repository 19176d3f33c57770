"""``--io stream``: the quantized IR as stages on a pixel stream, each layer folded to a cycle budget.

A feature map ``[C, H, W]`` (or ``[C, L]``) travels one pixel a word, its ``C`` channels as lanes,
pixels in row-major order, as :mod:`fpgac.hdl.conv` has it. Conv is a line-buffer
:class:`~fpgac.hdl.Window` and a matrix unit over each receptive field; pooling a Window and a
max or sum tree (:class:`~fpgac.hdl.Pool`) or an accumulator (:class:`~fpgac.hdl.GlobalPool`);
casts and activations act on each pixel's lanes. A Flatten keeps the pixel stream: the Dense
after it takes the pixels as the words of its input vector (its matrix's rows put in pixel
order), so no whole feature map is ever held in registers. Layers after a Dense (or before any
spatial op, for a flat input) work on whole vectors as in the fully parallel target.

Every Conv and Dense is folded to a budget of cycles per inference, the same for every layer (the
design's interval): a layer producing ``V`` words an inference gets ``budget // V`` cycles per
word, and takes the fewest multipliers (``pe`` outputs x ``simd`` inputs a cycle,
:func:`~fpgac.hdl.fold.fold_for`) that meet it, the weights in block RAM
(:class:`~fpgac.hdl.fold.FoldedMatrix`); a layer given one cycle a word is unrolled with constant
weights (:class:`~fpgac.hdl.Dense`). The default budget is the input's words per inference: no
layer is slower than the input stream. ``interval`` sets it; ``reuse`` sets the cycles per word
of every layer instead (as hls4ml's reuse factor).

The stages are :class:`~fpgac.backends.amaranth.lower.Stage` objects (saved and rebuilt as the
fully parallel ones are); :meth:`Stage.run` computes each on whole flattened tensors (``C``-order,
as the golden model), so :func:`~fpgac.backends.amaranth.lower.execute` checks the lowering
against ``run_fixed`` before any hardware is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ...errors import UnsupportedError
from ...ir import Graph, Node, Op, Overflow, PoolKind
from ...ir.semantics import plan
from ...hdl.fold import fold_for
from ...ir.semantics.windows import round_half_up_reciprocal
from .lower import (LOWERINGS, MAX_LANE_PAIRS, REFUSED, Linear, PReLU, Relu, Requant, Stage, _fuse_relu_requant, _linear,
                    _lower_node, _probe)

__all__ = ["ConvPixels", "FoldedLinear", "GlobalPoolPixels", "LinearPixels", "Pixels", "PReLUPixels", "PoolPixels",
           "fold", "lower_stream", "plan_folds", "tiled"]


def _windows(x: np.ndarray, size: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
             dilations: Sequence[int], pads: Sequence[int], out_size: Sequence[int], fill: int) -> np.ndarray:
    """``(n, C, *out, taps)``: every window's taps of ``x`` (``(n, C, *size)``), ``fill`` outside."""
    nd = len(size)
    ends = [max(pads[nd + a], (o - 1) * s + d * (k - 1) + 1 - n - pads[a])
            for a, (o, s, d, k, n) in enumerate(zip(out_size, strides, dilations, kernel, size))]
    xp = np.pad(x, [(0, 0), (0, 0)] + [(pads[a], ends[a]) for a in range(nd)], constant_values=fill)
    taps = []
    for offset in np.ndindex(*kernel):
        index = tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                      for o, d, s, n in zip(offset, dilations, strides, out_size))
        taps.append(xp[(slice(None), slice(None), *index)])
    return np.stack(taps, axis=-1)


@dataclass
class ConvPixels(Stage):
    """A Conv on a pixel stream: ``weights [M, C / groups, *kernel]``, ``bias [M]`` (aligned to the
    products), ``n_in = C`` and ``n_out = M`` lanes per pixel; ``cycles`` per output pixel."""

    weights: np.ndarray = field(default=None)
    bias: np.ndarray = field(default=None)
    size: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    dilations: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()
    groups: int = 1
    out_size: tuple[int, ...] = ()  # the output positions, as the golden model's window has them
    cycles: int = 1

    @property
    def words_out(self) -> int:
        return int(np.prod(self.out_size))

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        n, C, M = len(inputs[0]), self.n_in, self.n_out
        x = inputs[0].reshape(n, C, *self.size)
        win = _windows(x, self.size, self.weights.shape[2:], self.strides, self.dilations, self.pads,
                       self.out_size, 0)  # (n, C, *out, taps)
        g, cg, mg = self.groups, C // self.groups, M // self.groups
        w = self.weights.reshape(g, mg, cg, -1)
        win = win.reshape(n, g, cg, *self.out_size, w.shape[-1])
        ys = [np.einsum("nc...t,mct->nm...", win[:, k], w[k]) for k in range(g)]
        y = np.concatenate(ys, axis=1) + self.bias.reshape(-1, *(1,) * len(self.size))
        return y.reshape(n, -1)


@dataclass
class PoolPixels(Stage):
    """Max or average pooling on a pixel stream of ``n_in`` channels. ``reciprocals[c]``: an
    average's multiplier for a window counting ``c`` taps (``round_half_up(2**K / c)``)."""

    kind: str = "max"
    size: tuple[int, ...] = ()
    kernel: tuple[int, ...] = ()
    strides: tuple[int, ...] = ()
    dilations: tuple[int, ...] = ()
    pads: tuple[int, ...] = ()
    out_size: tuple[int, ...] = ()
    count_include_pad: bool = False
    reciprocals: np.ndarray | None = field(default=None)

    @property
    def words_out(self) -> int:
        return int(np.prod(self.out_size))

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        n, C = len(inputs[0]), self.n_in
        x = inputs[0].reshape(n, C, *self.size)
        if self.kind == "max":
            lo = np.iinfo(np.int64).min
            return _windows(x, self.size, self.kernel, self.strides, self.dilations, self.pads, self.out_size,
                            lo).max(axis=-1).reshape(n, -1)
        sums = _windows(x, self.size, self.kernel, self.strides, self.dilations, self.pads, self.out_size,
                        0).sum(axis=-1)
        inside = _windows(np.ones((1, 1, *self.size), dtype=np.int64), self.size, self.kernel, self.strides,
                          self.dilations, self.pads, self.out_size, 0).sum(axis=-1)
        if self.count_include_pad:  # the explicit pads count, the ceil_mode extension does not
            nd = len(self.size)
            padded = [n_ + self.pads[a] + self.pads[a + nd] for a, n_ in enumerate(self.size)]
            box = np.ones((1, 1, *padded), dtype=np.int64)
            inside = _windows(box, padded, self.kernel, self.strides, self.dilations, (0,) * (2 * nd),
                              self.out_size, 0).sum(axis=-1)
        return (sums * np.asarray(self.reciprocals)[inside]).reshape(n, -1)


@dataclass
class GlobalPoolPixels(Stage):
    """Max or average over the ``count`` pixels of each image: one word of ``n_in`` lanes an image."""

    kind: str = "max"
    count: int = 1
    multiplier: int = 0  # an average's round_half_up(2**K / count)

    words_out = 1

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        x = inputs[0].reshape(len(inputs[0]), self.n_in, self.count)
        return x.max(axis=-1) if self.kind == "max" else x.sum(axis=-1) * self.multiplier


@dataclass
class FoldedLinear(Stage):
    """``y = x @ matrix + bias`` with the input in ``beats`` words of ``n_in / beats`` lanes:
    ``matrix`` rows in stream order (after a Flatten, pixel ``p`` channel ``c`` is row
    ``p * C + c``); ``cycles`` per output vector."""

    matrix: np.ndarray = field(default=None)
    bias: np.ndarray = field(default=None)
    beats: int = 1
    cycles: int = 1

    words_out = 1

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        x = inputs[0]
        if self.beats > 1:  # the flattened [C, pixels] tensor, in stream order
            n = len(x)
            x = x.reshape(n, -1, self.beats).transpose(0, 2, 1).reshape(n, -1)
        return x @ self.matrix + self.bias


@dataclass
class Pixels(Stage):
    """A pixel stream of ``n_in`` channels, ``count`` pixels, gathered into one whole ``[C, pixels]``
    vector (a Flatten followed by something other than a Dense)."""

    count: int = 1

    words_out = 1

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return inputs[0]


@dataclass
class PReLUPixels(PReLU):
    """A PReLU on a pixel stream: ``slopes`` per channel (lane), the same at every pixel."""

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        m = inputs[0].reshape(len(inputs[0]), self.n_in, -1)
        slopes = self.slopes.reshape(1, -1, 1)
        return np.where(m >= 0, np.left_shift(m, self.slope_frac), m * slopes).reshape(len(m), -1)


#: linear ops that may act on each pixel's channels alike (per-channel scale and shift, a constant
#: per channel added or multiplied): probed, and built as a Linear over a pixel's lanes when they do
_PER_PIXEL = {Op.SCALE_SHIFT, Op.ADD, Op.SUB, Op.MUL}


def _per_pixel_linear(node: Node, channels: int, pixels: int) -> Stage:
    """A linear op that maps each pixel's channels by the same ``[C, C]`` matrix and bias: found by
    probing the golden op on the zero map and on each channel set to one at every pixel, and
    checked on each channel set to one at a single pixel (which must reach that pixel only)."""
    x, y = node.inputs[0], node.outputs[0]
    shape = (channels, pixels)
    zero = _probe(node, np.zeros((1, channels * pixels), dtype=np.int64))[0].reshape(shape)
    every = np.kron(np.eye(channels, dtype=np.int64), np.ones((1, pixels), dtype=np.int64))
    cols = _probe(node, every).reshape(channels, channels, pixels) - zero  # [c_in, c_out, pixel]
    single = np.zeros((channels, channels, pixels), dtype=np.int64)
    single[np.arange(channels), np.arange(channels), pixels - 1] = 1
    one = _probe(node, single.reshape(channels, -1)).reshape(channels, channels, pixels) - zero
    expect = np.zeros_like(one)
    expect[:, :, pixels - 1] = cols[:, :, pixels - 1]
    if (np.any(zero != zero[:, :1]) or np.any(cols != cols[:, :, :1]) or np.any(one != expect)):
        raise UnsupportedError(f"node {node.name!r} ({node.op.value}) on a feature map {list(x.type.shape)}: it does "
                               "not act on every pixel alike; not built by --io stream")
    return LinearPixels(node=node.name, in_type=x.type.dtype, out_type=y.type.dtype, n_in=channels, n_out=channels,
                        matrix=cols[:, :, 0], bias=zero[:, 0])


@dataclass
class LinearPixels(Linear):
    """``y = x @ matrix + bias`` on each pixel's ``n_in`` channels (a ``[C, C]`` matrix)."""

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        n = len(inputs[0])
        x = inputs[0].reshape(n, self.n_in, -1)
        return (np.einsum("ncp,cd->ndp", x, self.matrix) + self.bias.reshape(1, -1, 1)).reshape(n, -1)


#: ops applied to each pixel's lanes alike
_PIXELWISE = {Op.QUANT, Op.LOOKUP, Op.ACTIVATION}


def lower_stream(graph: Graph) -> list[Stage]:
    """The stages of ``graph`` on a pixel stream (see the module's docstring); a chain only.
    :func:`plan_folds` then sets each layer's cycles per word."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedError(f"--io stream builds models of one input and one output, not {len(graph.inputs)} and "
                               f"{len(graph.outputs)} (the fully parallel amaranth target builds them)")
    x = graph.inputs[0]
    shape = tuple(x.type.shape)
    pixels = int(np.prod(shape[1:])) if len(shape) >= 2 else 1  # words per inference in the stream
    spatial = len(shape) >= 2  # the value is a [C, *size] feature map on a pixel stream
    current = x
    stages: list[Stage] = []
    for node in graph.nodes:
        if node.op in REFUSED:
            raise UnsupportedError(f"node {node.name!r} ({node.op.value}): {REFUSED[node.op]}")
        data = [v for v in node.inputs if v is not None and not v.is_const]
        if len(data) != 1 or data[0] is not current:
            raise UnsupportedError(f"node {node.name!r} ({node.op.value}): --io stream builds a chain of layers, "
                                   "each reading the one before (the fully parallel amaranth target builds branches)")
        y = node.outputs[0]
        out_shape = tuple(y.type.shape)
        if node.op is Op.CONV and spatial:
            stages.append(_conv(node))
            pixels = stages[-1].words_out
        elif node.op is Op.POOL and spatial:
            stages.append(_pool(node))
            pixels = stages[-1].words_out
        elif node.op is Op.GLOBAL_POOL and spatial:
            p = plan(node)
            C = shape[0]
            avg = node.attrs["kind"] is not PoolKind.MAX
            stages.append(GlobalPoolPixels(node=node.name, in_type=node.inputs[0].type.dtype, out_type=y.type.dtype,
                                           n_in=C, n_out=C, kind="avg" if avg else "max", count=p.count,
                                           multiplier=int(p.reciprocal) if avg else 0))
            pixels = 1
        elif node.op is Op.RESHAPE and spatial and len(out_shape) == 1:
            spatial = False  # a Flatten: the pixels are the words of the flat vector, in stream order
        elif (node.op is Op.RESHAPE and spatial and len(out_shape) >= 2 and out_shape[0] == shape[0]
              and int(np.prod(out_shape[1:])) == pixels):
            pass  # unit axes added or removed, or a 2-D map seen as 1-D: the same pixels in the same order
        elif node.op in _PIXELWISE and (spatial or pixels > 1):
            stages.append(_pixelwise(node, shape[0] if spatial else int(np.prod(shape)) // pixels))
        elif node.op in _PER_PIXEL and spatial and out_shape == shape:
            stages.append(_per_pixel_linear(node, shape[0], pixels))
        elif node.op is Op.DENSE and not spatial:
            stages.append(_dense(node, pixels))
            pixels = 1
        elif not spatial:
            if pixels > 1:  # gather the flattened feature map first
                C = int(np.prod(shape)) // pixels
                t = node.inputs[0].type.dtype
                stages.append(Pixels(node=f"{node.name}_gather", in_type=t, out_type=t, n_in=C, n_out=C * pixels,
                                     count=pixels))
                pixels = 1
            stages.append(_lower_node(node))
        else:
            raise UnsupportedError(f"node {node.name!r} ({node.op.value}) on a feature map {list(shape)}: not built "
                                   "by --io stream (it builds Conv, pooling, casts, activations and a Flatten into "
                                   "Dense layers); the fully parallel amaranth target may")
        shape, current = out_shape, y
    if not stages:
        raise UnsupportedError("--io stream: the model computes nothing (no layer)")
    if current is not graph.outputs[0]:
        raise UnsupportedError(f"output {graph.outputs[0].name!r} is not the last layer computed")
    return _fuse_relu_requant(_cast_before_max(stages))


def _cast_before_max(stages: list[Stage]) -> list[Stage]:
    """Move each cast (Requant) that follows a ReLU or a max pool before it, so a Conv's or
    Dense's cast is built into its matrix unit and the ReLU and pool work on the narrow lanes.
    Exact: a cast that rounds and saturates is non-decreasing, so it commutes with a maximum
    (``q(max(a, b)) == max(q(a), q(b))``), and it maps 0 to 0, so with the ReLU too; a cast to an
    unsigned type then makes the ReLU's zeros itself (the ReLU is dropped). Not done for a cast
    that wraps or sets overflows to zero (not monotone), nor across a change of scale."""
    out = list(stages)
    moved = True
    while moved:
        moved = False
        for k in range(1, len(out)):
            r, s = out[k], out[k - 1]
            if not (isinstance(r, Requant) and r.out_type.overflow in (Overflow.SAT, Overflow.SAT_SYM)):
                continue
            is_max = ((isinstance(s, (PoolPixels, GlobalPoolPixels)) and s.kind == "max")
                      or isinstance(s, Relu))
            if not is_max or s.in_type.frac_bits != s.out_type.frac_bits or s.out_type != r.in_type:
                continue
            cast = replace(r, in_type=s.in_type, n_in=s.n_in, n_out=s.n_in)
            if isinstance(s, Relu) and not r.out_type.signed:
                out[k - 1:k + 1] = [cast]  # the unsigned cast saturates the negatives to 0 itself
            else:
                out[k - 1:k + 1] = [cast, replace(s, in_type=r.out_type, out_type=r.out_type)]
            moved = True
            break
    return out


def _conv(node: Node) -> ConvPixels:
    p = plan(node)
    w = p.window
    x, y = node.inputs[0], node.outputs[0]
    weights = np.asarray(node.inputs[1].data, dtype=np.int64)
    if tuple(w.ends_ext) != tuple(w.ends):
        raise UnsupportedError(f"node {node.name!r} (Conv): output positions past the padded input are not built by "
                               "--io stream")
    M = weights.shape[0]
    bias = np.zeros(M, dtype=np.int64) if p.bias is None else np.asarray(p.bias, dtype=np.int64).reshape(M)
    return ConvPixels(node=node.name, in_type=x.type.dtype, out_type=y.type.dtype, n_in=x.type.shape[0], n_out=M,
                      weights=weights, bias=bias, size=tuple(w.size), strides=tuple(w.strides),
                      dilations=tuple(w.dilations), pads=tuple(w.begins) + tuple(w.ends),
                      groups=int(node.attrs["groups"]), out_size=tuple(w.out))


def _pool(node: Node) -> PoolPixels:
    p = plan(node)
    w = p.window
    x, y = node.inputs[0], node.outputs[0]
    avg = p.average
    recips = None
    if avg:
        recips = np.concatenate([[0], round_half_up_reciprocal(np.arange(1, w.taps + 1), p.bits)]).astype(np.int64)
    return PoolPixels(node=node.name, in_type=x.type.dtype, out_type=y.type.dtype, n_in=x.type.shape[0],
                      n_out=x.type.shape[0], kind="avg" if avg else "max", size=tuple(w.size), kernel=tuple(w.kernel),
                      strides=tuple(w.strides), dilations=tuple(w.dilations), pads=tuple(w.begins) + tuple(w.ends),
                      out_size=tuple(w.out), count_include_pad=bool(node.attrs.get("count_include_pad", False)),
                      reciprocals=recips)


def _pixelwise(node: Node, channels: int) -> Stage:
    """The parallel lowering of an elementwise op on one pixel's ``channels`` lanes."""
    x, y = node.inputs[0], node.outputs[0]
    base = dict(node=node.name, in_type=x.type.dtype, out_type=y.type.dtype, n_in=channels, n_out=channels)
    if node.op is Op.ACTIVATION and node.attrs["kind"].name == "PRELU":
        slopes = np.broadcast_to(node.inputs[1].data, x.type.shape).reshape(channels, -1)
        if np.any(slopes != slopes[:, :1]):
            raise UnsupportedError(f"node {node.name!r} (PReLU): slopes that vary within a channel are not built by "
                                   "--io stream")
        return PReLUPixels(**base, slopes=slopes[:, 0].astype(np.int64), slope_frac=plan(node).slope_frac)
    return LOWERINGS[node.op](node, base)


def _dense(node: Node, pixels: int) -> FoldedLinear:
    x, y = node.inputs[0], node.outputs[0]
    n_in, n_out = int(np.prod(x.type.shape)), int(np.prod(y.type.shape))
    if n_in * n_out > MAX_LANE_PAIRS:
        raise UnsupportedError(f"node {node.name!r} (Dense): {n_in:,} x {n_out:,} weights are too many for the "
                               "amaranth target")
    base = dict(node=node.name, in_type=x.type.dtype, out_type=y.type.dtype, n_in=n_in, n_out=n_out)
    linear = _linear(node, base)
    matrix = linear.matrix
    if pixels > 1:  # rows in stream order: pixel p, channel c is flat row c * pixels + p
        C = n_in // pixels
        matrix = matrix.reshape(C, pixels, n_out).transpose(1, 0, 2).reshape(n_in, n_out)
    return FoldedLinear(**base, matrix=matrix, bias=linear.bias, beats=pixels)


def plan_folds(stages: Sequence[Stage], words_in: int, *, interval: int | None = None,
               reuse: int | None = None) -> int:
    """Set each Conv's and Dense's ``cycles`` per output word: ``reuse`` when given, else
    ``interval // words``; the default interval is ``words_in``, the input's words per inference.
    Returns the interval the design is planned for."""
    budget = interval if interval is not None else words_in
    for s in stages:
        if isinstance(s, (ConvPixels, FoldedLinear)):
            words = getattr(s, "words_out", 1)
            s.cycles = max(1, reuse if reuse is not None else budget // words)
    return budget


def fold(s: ConvPixels | FoldedLinear) -> tuple[int, int, int]:
    """``(simd, pe, beat)``: the folding of a Conv's or Dense's matrix unit for its ``cycles``."""
    if isinstance(s, ConvPixels):
        k = beat = s.n_in * int(np.prod(s.weights.shape[2:]))  # the receptive field: one word
    else:
        k, beat = s.n_in, s.n_in // s.beats
    simd, pe = fold_for(k, s.n_out, beat, s.cycles)
    return simd, pe, beat


def tiled(s: PoolPixels) -> bool:
    """Non-overlapping tiles covering the image: a :class:`~fpgac.hdl.tiled.TiledPool`."""
    return (tuple(s.kernel) == tuple(s.strides) and not any(s.pads) and all(d == 1 for d in s.dilations)
            and all(o * k == n for o, k, n in zip(s.out_size, s.kernel, s.size)))
