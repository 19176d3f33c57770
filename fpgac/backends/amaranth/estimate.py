"""A resource estimate of an ``--io stream`` design on ECP5, for choosing its folding (``--reuse auto``).

Not a measurement: ``fpgac report`` synthesizes the Verilog for that. The model counts what the
components are made of, with costs read off yosys ``synth_ecp5`` runs of the components (8-bit
lanes; wider lanes scale by their bits). On the founding CNN's layers it comes within 5% of
``synth_ecp5`` (the distributed RAM counted as the logic cells it takes once placed):

- a FoldedMatrix: per multiplier on a DSP block one MULT18X18D; per LUT product (partial-product
  sums, :func:`~fpgac.hdl.fold.lut_product`) about 136 LUT4-eq for 8 x 8 bits, scaling with the
  product of the widths; each PE's adder tree a carry chain per adder, and its accumulator,
  bias and cast (:data:`PE_LUTS`); the chunk multiplexer or shift register; the weights ROM in
  DP16KD blocks (the best of the block's six aspect ratios; a multiplexer over the blocks of a ROM
  deeper than one), the two-vector input memory (simd-lane chunks) in distributed RAM when 64
  words or fewer, else in DP16KD blocks; the outputs' queue in distributed RAM;
- a line buffer (Window, a Pool's too): distributed RAM, one copy per tap (a 16 x 4 cell takes
  eight logic cells once placed; one copy when the taps are read one a cycle), and the padding
  multiplexers; a pool over whole tiles (TiledPool) one row of
  partial results, one copy;
- an unrolled Dense: about 2 LUT4-eq per input bit of each non-zero weight (16 at 8 bits);
- everything else a LUT4 per lane bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...devices import Device
from ...errors import UnsupportedError
from ...hdl.fold import BANK_WORDS, SHIFT_CHUNKS
from .lower import Linear, Requant, Stage
from .stream import (
    ConvPixels,
    FoldedLinear,
    Pixels,
    PoolPixels,
    fold,
    plan_folds,
    tiled,
)
from .stream_build import dsp_budget

__all__ = ["Estimate", "auto_interval", "estimate", "fits"]

#: LUT4-eq of one 8 x 8 LUT product (measured: 16 of them between registers, synth_ecp5; the
#: same signed or unsigned)
LUT_PRODUCT = 136
#: logic cells (TRELLIS_COMB, a LUT4 each) one TRELLIS_DPR16X4 (16 x 4 bits of distributed RAM)
#: takes in nextpnr-ecp5's packing: 8.05 measured (the founding CNN: 4,582 DPR16X4 cells and
#: 73,607 LUT4-eq came to 110,485 TRELLIS_COMB)
LUTRAM_CELL = 8
#: LUT4-eq of each PE besides its products and tree: the accumulator, the bias, the requantizing
#: cast, the registers of the passes' results (measured on the founding CNN's layers: 75 to 150)
PE_LUTS = 130
#: the DP16KD block's aspect ratios (depth, width)
BRAM_SHAPES = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
#: the share of a device's LUTs and FFs a design may fill and still be placed and routed
HEADROOM = 0.85
#: logic cells (TRELLIS_COMB) nextpnr-ecp5 places per LUT4-eq counted here, distributed RAM
#: included (measured: the founding CNN at 9,216 cycles, 57,076 LUT4-eq and 1,134 DPR16X4 from
#: synth_ecp5, came to 72,326 TRELLIS_COMB, 1.20 of the 60,266 estimated)
PACKING = 1.2


@dataclass(frozen=True)
class Estimate:
    luts: int
    ffs: int
    dsps: int
    brams: int

    def __add__(self, other: Estimate) -> Estimate:
        return Estimate(self.luts + other.luts, self.ffs + other.ffs, self.dsps + other.dsps, self.brams + other.brams)

    def over(self, part: Device) -> list[str]:
        """What does not fit ``part``: its logic cells once placed (:data:`PACKING` per LUT4-eq) and
        FFs against :data:`HEADROOM` of the part's, for routing; DSP and block RAM against all."""
        return [f"{name} {used:,} of {have:,}" for name, used, have in
                (("logic cells", int(self.luts * PACKING), int(part.luts * HEADROOM)),
                 ("FF", self.ffs, int(part.ffs * HEADROOM)),
                 ("MULT18X18D", self.dsps, part.dsps), ("DP16KD", self.brams, part.brams)) if used > have]


def brams(depth: int, width: int) -> int:
    """DP16KD blocks of a ROM or RAM of ``depth`` words of ``width`` bits."""
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in BRAM_SHAPES)


def _lutram(depth: int, width: int, copies: int) -> int:
    return copies * math.ceil(depth / 16) * math.ceil(width / 4) * LUTRAM_CELL


def _window(channels: int, bits: int, width: int, rows: int, taps: int, serial: bool = False) -> Estimate:
    ram = _lutram(rows * width, channels * bits, 1 if serial else taps)
    return Estimate(ram + (1 if serial else taps) * channels * bits // 2, 2 * taps * channels * bits, 0, 0)


def _matrix(k: int, m: int, beat: int, simd: int, pe: int, wx: int, ww: int, dsp: int, wo: int) -> Estimate:
    mults = simd * pe
    passes, steps = m // pe, k // simd
    lut_products = mults - dsp
    scale = wx * ww / 64
    tree = pe * (simd - 1) * (wx + ww + math.ceil(math.log2(max(simd, 2))))
    sub = beat // simd  # chunks a word: a multiplexer (about 0.7 LUT4 a bit), or a shift register (one)
    mux = 0 if sub == 1 else beat * wx if sub > SHIFT_CHUNKS else beat * wx * 7 // 10
    depth = passes * steps  # a ROM deeper than a bank: each bank's word registered, then one picked
    banks = math.ceil(depth / BANK_WORDS)
    cascade = mults * ww * (banks - 1)
    luts = int(lut_products * LUT_PRODUCT * scale) + tree + mux + cascade + pe * PE_LUTS + 100
    ffs = mults * (wx + ww) * 2 + pe * 48 + m * 8 + beat * wx + (banks * mults * ww if banks > 1 else 0)
    rom = brams(depth, mults * ww) if depth > 16 else 0
    held = 0
    if passes > 1:  # two vectors of simd-lane chunks: distributed RAM when shallow, else block RAM
        if 2 * steps <= 64:
            held = _lutram(2 * steps, simd * wx, 1)
        else:
            rom += brams(2 * steps, simd * wx)
            held_banks = math.ceil(2 * steps / BANK_WORDS)
            if held_banks > 1:
                luts += simd * wx * (held_banks - 1)
                ffs += held_banks * simd * wx
    if depth <= 16:  # a shallow ROM is logic
        luts += mults * ww
    queue = _lutram(3, m * wo, 1)  # the outputs' queue (a few words)
    return Estimate(luts + held + queue, ffs, dsp, rom)


def estimate(stages: Sequence[Stage], dsps: int | None) -> Estimate:
    """The resources of the stream design of ``stages`` as :func:`~.stream.plan_folds` left them."""
    total = Estimate(0, 0, 0, 0)
    left = dsps
    for k, s in enumerate(stages):
        bits = s.in_type.width
        if isinstance(s, Requant) and k and isinstance(stages[k - 1], (ConvPixels, FoldedLinear)):
            continue  # built into the matrix unit before it (counted there)
        if isinstance(s, (ConvPixels, FoldedLinear)):
            simd, pe, beat = fold(s)
            k_in = beat * (1 if isinstance(s, ConvPixels) else s.beats)
            ww = int(np.abs(s.weights if isinstance(s, ConvPixels) else s.matrix).max()).bit_length() + 1
            if isinstance(s, ConvPixels):
                size = (1, *s.size) if len(s.size) == 1 else tuple(s.size)
                kernel = s.weights.shape[2:]
                span = (kernel[0] - 1) * (s.dilations[0] if len(s.size) == 2 else 1) + 1
                stride = s.strides[0] if len(s.size) == 2 else 1
                taps = int(np.prod(kernel))
                serial = (s.n_out // pe) * (k_in // simd) >= taps  # the unit's cycles per window
                total = total + _window(s.n_in, bits, size[1], span + stride, taps, serial)
            if simd == beat == k_in and pe == s.n_out:  # unrolled, constant weights
                nnz = int(np.count_nonzero(s.weights if isinstance(s, ConvPixels) else s.matrix))
                total = total + Estimate(unrolled_luts(nnz, bits), nnz * 6, 0, 0)
                continue
            mine = simd * pe if left is None else min(left, simd * pe)
            if left is not None:
                left -= mine
            after = stages[k + 1] if k + 1 < len(stages) else s
            wo = (after if isinstance(after, Requant) else s).out_type.width
            total = total + _matrix(k_in, s.n_out, beat, simd, pe, bits, ww, mine, wo)
        elif isinstance(s, PoolPixels) and tiled(s):  # a row of partial results, one copy
            ow = s.out_size[-1]
            acc = bits + (int(np.prod(s.kernel)).bit_length() if s.kind == "avg" else 0)
            total = total + Estimate(_lutram(ow, s.n_in * acc, 1) + 3 * s.n_in * acc, 3 * s.n_in * acc, 0, 0)
        elif isinstance(s, PoolPixels):
            size = (1, *s.size) if len(s.size) == 1 else tuple(s.size)
            taps = int(np.prod(s.kernel))
            span = (s.kernel[0] - 1) * s.dilations[0] + 1 if len(s.size) == 2 else 1
            stride = s.strides[0] if len(s.size) == 2 else 1
            total = total + _window(s.n_in, bits, size[1], span + stride, taps)
            total = total + Estimate(taps * s.n_in * bits, taps * s.n_in * bits, 0, 0)
        elif isinstance(s, Pixels):
            total = total + Estimate(s.n_out * bits // 2, 2 * s.n_out * bits, 0, 0)
        else:
            lanes = max(s.n_in, s.n_out)
            total = total + Estimate(lanes * bits, lanes * bits, 0, 0)
    return total


def unrolled_luts(nnz: int, bits: int) -> int:
    """LUT4-eq of an unrolled Dense with ``nnz`` non-zero weights on ``bits``-bit inputs."""
    return 2 * bits * nnz


def parallel_luts(stages: Sequence[Stage]) -> int:
    """LUT4-eq of the fully parallel design of ``lower``'s stages (``--io parallel``): each Linear
    as an unrolled Dense, everything else a LUT4 per lane bit. (On the bundled 16-64-32-32-5 MLP at
    8 bits this says 70k; yosys counts 57k.)"""
    total = 0
    for s in stages:
        if isinstance(s, Linear):
            total += unrolled_luts(int(np.count_nonzero(s.matrix)), s.in_type.width)
        else:
            total += max(s.n_in, s.n_out) * s.in_type.width
    return total


def fits(stages: Sequence[Stage], part: Device, dsps: int | None) -> tuple[bool, Estimate]:
    found = estimate(stages, dsps)
    return not found.over(part), found


def auto_interval(stages: Sequence[Stage], words_in: int, part: Device, dsp: str) -> int:
    """``--reuse auto``: the shortest interval (cycles per inference) whose design the estimate
    fits on ``part``, the stages folded for it. An UnsupportedError when even the smallest design
    (a multiplier per layer) does not fit, with its counts against the part's."""
    layers = [s for s in stages if isinstance(s, (ConvPixels, FoldedLinear))]
    most = max([words_in] + [int(np.prod(s.weights.shape)) * s.words_out if isinstance(s, ConvPixels)
                             else s.n_in * s.n_out for s in layers])
    candidates, n = [], float(words_in)
    while n < most:
        candidates.append(int(n))
        n *= 1.08
    candidates.append(most)
    dsps = dsp_budget(dsp, part, stages)
    lo, hi = 0, len(candidates) - 1
    plan_folds(stages, words_in, interval=candidates[hi])
    ok, smallest = fits(stages, part, dsps)
    if not ok:
        raise UnsupportedError(
            f"the model does not fit {part.name} at any folding: its smallest design ({candidates[hi]:,} cycles per "
            f"inference, a multiplier per layer) needs about {'; '.join(smallest.over(part))} (estimated; logic "
            f"cells and FFs counted against {HEADROOM:.0%} of the part's, for routing)")
    while lo < hi:  # the estimate shrinks as the interval grows: the first candidate that fits
        mid = (lo + hi) // 2
        plan_folds(stages, words_in, interval=candidates[mid])
        if fits(stages, part, dsps)[0]:
            hi = mid
        else:
            lo = mid + 1
    plan_folds(stages, words_in, interval=candidates[lo])
    return candidates[lo]
