"""``--io stream``: the stream stages (:mod:`.stream`) as :mod:`fpgac.hdl` components, wired into one design.

Each Conv is a :class:`~fpgac.hdl.Window` and a matrix unit (a :class:`~fpgac.hdl.FoldedMatrix`,
or the unrolled :class:`~fpgac.hdl.Dense` when its layer has one cycle a word), each Dense a matrix
unit reading the pixels as words; a pool over whole tiles is a :class:`~fpgac.hdl.TiledPool`
(with a queue of one row of its results), other pools a Window and a tree; the other stages are
built as the fully parallel target builds them, on a pixel's lanes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields

import numpy as np
from amaranth.lib import wiring

from ...devices import Device
from ...hdl import Chain, Collect, Dense, GlobalPool, Lanes, Pool, Requantize, StreamBuffer, Window
from ...hdl import PReLU as PReLUUnit
from ...hdl.conv import conv_matrix
from ...hdl.fold import FoldedMatrix
from ...hdl.streams import Queue
from ...hdl.tiled import TiledPool
from .build import AxiStream, Pipelining, requantize_spec, stage_parts
from .lower import Linear, Requant, Stage
from .stream import (ConvPixels, FoldedLinear, GlobalPoolPixels, LinearPixels, Pixels, PoolPixels, PReLUPixels,
                     fold, tiled)

__all__ = ["dsp_budget", "stream_components", "stream_top"]


def _matrix_unit(matrix: np.ndarray, bias: np.ndarray, x: Lanes, beat: int, simd: int, pe: int,
                 requant: Requantize | None, opts: Pipelining, dsps: int | None) -> wiring.Component:
    """A :class:`FoldedMatrix`, or with one cycle a word (``simd == beat`` over one word, ``pe``
    all outputs) the unrolled constant-weight :class:`~fpgac.hdl.Dense`."""
    K, M = matrix.shape
    if beat == K and simd == K and pe == M:
        return Dense(matrix, bias, x=x.with_count(K), levels_per_stage=opts.levels_per_stage,
                     clock_period=opts.clock_period, requant=requant)
    return FoldedMatrix(matrix, bias, x=x, beat=beat, simd=simd, pe=pe, requant=requant, levels_per_stage=opts.levels,
                        dsps=dsps)


def stream_components(stages: Sequence[Stage], opts: Pipelining = Pipelining(),
                      dsps: int | None = None) -> list[wiring.Component]:
    """One component per stage (a Conv's Window and matrix unit as one :class:`~fpgac.hdl.Chain`),
    a Conv's or Dense's requantizing cast fused into its matrix unit, a buffer after each of them;
    ``dsps`` of the folded multipliers (in layer order; None: all) are products for DSP blocks."""
    parts: list[wiring.Component] = []
    left = dsps
    k = 0
    while k < len(stages):
        s, after = stages[k], stages[k + 1] if k + 1 < len(stages) else None
        x = Lanes(s.n_in, s.in_type.width, s.in_type.signed)
        nodes = [s.node]
        if isinstance(s, (ConvPixels, FoldedLinear)):
            requant = requantize_spec(after) if isinstance(after, Requant) else None
            simd, pe, beat = fold(s)
            mine = None if left is None else min(left, simd * pe)
            if isinstance(s, ConvPixels):
                nd = len(s.size)
                size, kernel = ((1, *s.size), (1, *s.weights.shape[2:])) if nd == 1 else (s.size, s.weights.shape[2:])
                strides, dil = ((1, *s.strides), (1, *s.dilations)) if nd == 1 else (s.strides, s.dilations)
                pads = (0, s.pads[0], 0, s.pads[1]) if nd == 1 else tuple(s.pads)
                matrix = conv_matrix(s.weights.reshape(*s.weights.shape[:2], *kernel), s.groups)
                unit = _matrix_unit(matrix, s.bias, x, beat, simd, pe, requant, opts, mine)
                # a unit that takes a window every as many cycles as it has taps, or fewer, reads
                # them one a cycle: one copy of the line buffer instead of one per tap
                serial = getattr(unit, "interval", 1) >= int(np.prod(kernel))
                window = Window(x, size, kernel, strides=strides, dilations=dil, pads=pads, serial=serial)
                part = Chain([window, unit])
                part.in_lanes, part.out_lanes = x, unit.out_lanes
                part.interval = getattr(unit, "interval", 1)  # cycles per output word
            else:
                part = unit = _matrix_unit(s.matrix, s.bias, x.with_count(beat), beat, simd, pe, requant, opts, mine)
            if left is not None and isinstance(unit, FoldedMatrix):
                left -= mine
            part.fold = {"node": s.node, "cycles_per_word": s.cycles, "simd": simd, "pe": pe,
                         "multipliers": 0 if isinstance(unit, Dense) else simd * pe,
                         "dsp_multipliers": 0 if isinstance(unit, Dense) else (simd * pe if mine is None else mine),
                         "words": s.words_out, "cycles": getattr(unit, "interval", 1) * s.words_out}
            expect = after if requant is not None else s
            if requant is not None:
                nodes.append(after.node)
                k += 1
            out = Lanes(s.n_out, expect.out_type.width, expect.out_type.signed)
            if part.out_lanes != out:
                raise AssertionError(f"node {s.node!r}: lanes {part.out_lanes} differ from the IR's {out}")
            part.nodes = nodes
            parts += [part, StreamBuffer(out.bits)]
        elif isinstance(s, PoolPixels) and tiled(s):
            out = Lanes(s.n_out, s.out_type.width, s.out_type.signed)
            size, kernel = ((1, *s.size), (1, *s.kernel)) if len(s.size) == 1 else (tuple(s.size), tuple(s.kernel))
            taps = int(np.prod(s.kernel))
            part = TiledPool(x, size, kernel, kind=s.kind,
                             reciprocal=int(s.reciprocals[taps]) if s.kind == "avg" else None,
                             out_width=out.width, out_signed=out.signed)
            part.nodes = nodes
            # a row of its results may wait, as in a window's line buffer: the layers on either
            # side each keep their own pace within a row
            parts += [part, Queue(out.bits, part.out_size[1])]
        elif isinstance(s, PoolPixels):
            out = Lanes(s.n_out, s.out_type.width, s.out_type.signed)
            part = Pool(x, s.size, s.kernel, kind=s.kind, out_size=s.out_size, strides=s.strides,
                        dilations=s.dilations, pads=s.pads, count_include_pad=s.count_include_pad,
                        reciprocals=None if s.reciprocals is None else [int(r) for r in s.reciprocals],
                        levels_per_stage=opts.levels, out_width=out.width, out_signed=out.signed)
            part.nodes = nodes
            parts.append(part)
        elif isinstance(s, GlobalPoolPixels):
            out = Lanes(s.n_out, s.out_type.width, s.out_type.signed)
            part = GlobalPool(x, s.count, kind=s.kind, reciprocal=s.multiplier if s.kind == "avg" else None,
                              out_width=out.width, out_signed=out.signed)
            part.nodes = nodes
            parts.append(part)
        elif isinstance(s, LinearPixels):  # as the fully parallel target builds a Linear, on a pixel
            plain = Linear(**{f.name: getattr(s, f.name) for f in fields(Linear)})
            parts += stage_parts(plain, opts, buffer=False)
        elif isinstance(s, PReLUPixels):
            out = Lanes(s.n_out, s.out_type.width, s.out_type.signed)
            part = PReLUUnit(x, slopes=s.slopes, slope_frac=s.slope_frac, out_width=out.width, out_signed=out.signed)
            part.nodes = nodes
            parts.append(part)
        elif isinstance(s, Pixels):
            part = Collect(x, s.count, channels_first=True)
            part.nodes = nodes
            parts.append(part)
        else:
            parts += stage_parts(s, opts, buffer=False)
        k += 1
    return parts


def dsp_budget(dsp: str, part: Device, stages: Sequence[Stage]) -> int | None:
    """How many folded multipliers are written as products for DSP blocks: all with "always"
    (None), none with "never", and with "auto" the device's DSP count less what the Softmax
    units take (two products a lane and one more each: the exponentials' and the reciprocal's)."""
    if dsp == "always":
        return None
    if dsp == "never":
        return 0
    held = sum(2 * s.n_in + 1 for s in stages if type(s).__name__ == "Softmax")
    return max(0, part.dsps - held)


def stream_top(stages: Sequence[Stage], *, words_in: int, axi: bool = False,
               clock_period: float | None = None, dsps: int | None = None) -> wiring.Component:
    """The whole network on a stream: ports ``i`` (``words_in`` words per inference: the input's
    pixels) and ``o``; ``interval`` is the planned cycles per inference (the slowest layer's).
    ``dsps``: how many of the folded multipliers are products for DSP blocks, in layer order
    (the rest are built from LUTs); None: all."""
    opts = Pipelining(clock_period=clock_period)
    parts = stream_components(stages, opts, dsps=dsps)
    chain = Chain(parts)
    chain.in_lanes = Lanes(stages[0].n_in, stages[0].in_type.width, stages[0].in_type.signed)
    chain.out_lanes = Lanes(stages[-1].n_out, stages[-1].out_type.width, stages[-1].out_type.signed)
    chain.folds = [p.fold for p in parts if hasattr(p, "fold")]
    chain.interval = max([words_in] + [f["cycles"] for f in chain.folds])
    chain.words_in = words_in
    chain.words_out = _words_out(stages, words_in)
    chain.in_ports, chain.out_ports = [("i", chain.in_lanes)], [("o", chain.out_lanes)]
    if not axi:
        return chain
    wrapped = AxiStream(chain)
    wrapped.folds, wrapped.words_in, wrapped.words_out = chain.folds, chain.words_in, chain.words_out
    return wrapped


def _words_out(stages: Sequence[Stage], words_in: int) -> int:
    """Words per inference on the output: those of the last stage that changes the word count
    (the input's, when none does)."""
    words = words_in
    for s in stages:
        words = getattr(s, "words_out", words)
    return words
