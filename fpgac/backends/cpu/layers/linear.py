"""Dense, Conv and ScaleShift in C: exact sums in the narrowest C type that holds them.

The fractional bits, the bias at them and the Conv window come from the op's plan
(:mod:`fpgac.ir.semantics.linear`). Sparse weights (pruned, or fewer bytes as non-zeros) are
stored and iterated as non-zeros only: Dense as compressed rows, Conv as a list of taps.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from fpgac.ir import Node, semantics
from fpgac.ir.semantics import LinearPlan

from ..cgen import compute_type, container, container_bytes, maxabs, rng, rng_of_container, smallest_int, smallest_uint
from ..program import Layer, Program
from .common import Rows, const_for, loops, product_type, where

__all__ = ["conv", "dense", "scale_shift"]


def dense(p: Program, node: Node) -> None:
    x, weight, bias = node.inputs[0], node.inputs[1], node.input(2)
    tx, ty = x.type.dtype, node.output.type.dtype
    plan: LinearPlan = semantics.plan(node)
    K, M = weight.type.shape
    rows = x.type.size // K if K else 0
    mat = Rows(p, node, weight, np.asarray(weight.data).T, "w")
    b = plan.bias.astype(object) if plan.bias is not None else np.zeros(M, dtype=object)
    bound = int(max(np.abs(b) + mat.row_bound(maxabs(tx)), default=0))
    ct = compute_type((-bound, bound), rng(ty), where=where(node))
    B = const_for(p, node, "bias", b, "biases", f"{bias.name} at {plan.frac} fractional bits") if bias is not None else None
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    outer = w.block(f"for ({it} r = 0; r < {rows}; r++)") if rows > 1 else contextlib.nullcontext()
    with outer:
        xr, yr = (f"{X} + r * {K}", f"{Y} + r * {M}") if rows > 1 else (X, Y)
        w(f"const {p.ctype(x)} *xr = {xr};", f"{p.ctype(node.output)} *yr = {yr};")
        with w.block(f"for ({it} o = 0; o < {M}; o++)"):
            w(f"{ct} acc = {B}[o];" if B else f"{ct} acc = 0;")
            mat.dot(w, ct, "acc", "o", "xr", it, maxabs(tx))
            w(f"yr[o] = ({p.ctype(node.output)})acc;")
    L.finish(f"{K} -> {M}{f' on {rows} rows' if rows > 1 else ''}: {mat.describe()}",
             f"x {tx} ({p.ctype(x)}) times w {weight.type.dtype} ({mat.wtype}), exact sum in {ct} "
             f"(bound {bound})")


def _as_2d(shape: Sequence[int]) -> tuple[int, int]:
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


def _pairs(values: Sequence[int], nd: int, fill: int) -> tuple[int, int]:
    return (fill, values[0]) if nd == 1 else (values[0], values[1])


def _valid(size: int, out: int, stride: int, pad: int, offset: int) -> tuple[int, int]:
    """The output positions ``[lo, hi)`` whose tap at ``offset`` (dilated) reads inside ``[0, size)``."""
    lo = max(0, -((offset - pad) // stride))  # ceil((pad - offset) / stride)
    hi = min(out, (size - 1 + pad - offset) // stride + 1)
    return lo, max(lo, hi)


def conv(p: Program, node: Node) -> None:
    """Conv as a sum over the kernel taps: for each output channel, each non-zero tap adds
    ``w * x[shifted window]`` to the whole output plane (the positions where the tap reads padding
    are left out: padding is zero). The accumulator is the output array itself when its C type
    holds every partial sum, so the innermost loop runs along a row and vectorizes."""
    x, weight, bias = node.inputs[0], node.inputs[1], node.input(2)
    tx, ty = x.type.dtype, node.output.type.dtype
    plan: LinearPlan = semantics.plan(node)
    win = plan.window
    a = node.attrs
    nd = win.nd
    C, (H, W) = x.type.shape[0], _as_2d(x.type.shape[1:])
    M, (OH, OW) = node.output.type.shape[0], _as_2d(node.output.type.shape[1:])
    data = np.asarray(weight.data, dtype=np.int64)
    data = data.reshape(data.shape[0], data.shape[1], *_as_2d(data.shape[2:]))
    Cg, KH, KW = data.shape[1], data.shape[2], data.shape[3]
    groups = a["groups"]
    SH, SW = _pairs(win.strides, nd, 1)
    DH, DW = _pairs(win.dilations, nd, 1)
    PT, PL = _pairs(win.begins, nd, 0)
    per_group = M // groups
    rows = [_valid(H, OH, SH, PT, ky * DH) for ky in range(KH)]
    cols = [_valid(W, OW, SW, PL, kx * DW) for kx in range(KW)]
    b = plan.bias.astype(object) if plan.bias is not None else np.zeros(M, dtype=object)
    xlo, xhi = rng(tx)
    neg = [sum(min(0, int(v) * xlo, int(v) * xhi) for v in data[m].reshape(-1)) for m in range(M)]
    pos = [sum(max(0, int(v) * xlo, int(v) * xhi) for v in data[m].reshape(-1)) for m in range(M)]
    # every partial sum (the bias first, then the products in any order) lies in [plo, phi]
    plo = min((int(b[m]) + neg[m] for m in range(M)), default=0)
    phi = max((int(b[m]) + pos[m] for m in range(M)), default=0)
    ct = compute_type((plo, phi), (min(neg, default=0), max(pos, default=0)), rng(ty), where=where(node))
    out_t = p.ctype(node.output)
    in_place = plo >= rng_of_container(out_t)[0] and phi <= rng_of_container(out_t)[1]
    wt = container(weight.type.dtype)
    pt = product_type(ct, maxabs(tx), int(np.abs(data).max()) if data.size else 0)
    nnz = int(np.count_nonzero(data))
    taps = [(m, c, ky, kx) for m in range(M) for c, ky, kx in zip(*np.nonzero(data[m]))]
    offsets = [((m // per_group * Cg + c) * H + ky * DH - PT) * W + kx * DW - PL for m, c, ky, kx in taps]
    off_t = smallest_int(min(offsets, default=0), max(offsets, default=0))
    k_t = smallest_uint(max(KH, KW))
    ptr = np.searchsorted([t[0] for t in taps], np.arange(M + 1)) if taps else np.zeros(M + 1, dtype=np.int64)
    ptr_t = smallest_uint(nnz)
    full_rows = all(r == (0, OH) for r in rows)  # no kernel row ever reads padding
    full_cols = all(c == (0, OW) for c in cols)
    per_tap = container_bytes(wt) + container_bytes(off_t) + (2 - full_rows - full_cols) * container_bytes(k_t)
    tap_bytes = nnz * per_tap + (M + 1) * container_bytes(ptr_t)
    sparse = nnz < data.size and (weight.type.sparsity is not None or tap_bytes < data.size * container_bytes(wt))
    B = const_for(p, node, "bias", b, "biases", f"{bias.name} at {plan.frac} fractional bits") if bias is not None else None
    if sparse:
        V = p.const(f"{node.name}_w", wt, np.array([data[t] for t in taps], dtype=np.int64), "weights",
                    f"{weight.name}: {weight.type.dtype}, {nnz} non-zero taps of {data.size}, by output channel")
        OFF = p.const(f"{node.name}_off", off_t, np.array(offsets), "indices",
                      f"{weight.name}: input offset of each tap at output (0, 0) (negative: in the padding)")
        KY = None if full_rows else p.const(f"{node.name}_ky", k_t, np.array([t[2] for t in taps]), "indices",
                                            f"{weight.name}: kernel row of each tap")
        KX = None if full_cols else p.const(f"{node.name}_kx", k_t, np.array([t[3] for t in taps]), "indices",
                                            f"{weight.name}: kernel column of each tap")
        PTR = p.const(f"{node.name}_tap", ptr_t, ptr, "indices",
                      f"{weight.name}: where each output channel's taps start")
    else:
        V = p.const(f"{node.name}_w", wt, data, "weights",
                    f"{weight.name}: {weight.type.dtype}, [{M}][{Cg}][{KH}][{KW}]")
    if not full_rows:
        ROWS = p.const(f"{node.name}_rows", smallest_uint(OH), np.array(rows).reshape(-1), "constants",
                       "per kernel row: the output rows [lo, hi) it reads inside the input")
    if not full_cols:
        COLS = p.const(f"{node.name}_cols", smallest_uint(OW), np.array(cols).reshape(-1), "constants",
                       "per kernel column: the output columns [lo, hi) it reads inside the input")
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    plane = OH * OW
    acc = "ym" if in_place else L.local(ct, "acc", plane)
    with w.block(f"for ({it} m = 0; m < {M}; m++)"):
        w(f"{out_t} *ym = {Y} + m * {plane};")
        with w.block(f"for ({it} i = 0; i < {plane}; i++)"):
            w(f"{acc}[i] = {B}[m];" if B else f"{acc}[i] = 0;")

        def tap(wv: str, off: str, ky: str, kx: str) -> None:
            r0, r1 = ("0", str(OH)) if full_rows else (f"{ROWS}[2 * {ky}]", f"{ROWS}[2 * {ky} + 1]")
            c0, c1 = ("0", str(OW)) if full_cols else (f"{COLS}[2 * {kx}]", f"{COLS}[2 * {kx} + 1]")
            with w.block(f"for ({it} oy = {r0}; oy < {r1}; oy++)"):
                store = out_t if in_place else ct
                step = f" * {SW}" if SW != 1 else ""
                w(f"const {it} at = {off} + oy * {SH * W};", f"{store} *ar = {acc} + oy * {OW};")
                w(f"for ({it} ox = {c0}; ox < {c1}; ox++)",
                  f"    ar[ox] = ({store})(ar[ox] + wv * {X}[at + ox{step}]);")

        if sparse:
            with w.block(f"for ({it} j = {PTR}[m]; j < {PTR}[m + 1]; j++)"):
                w(f"const {pt} wv = {V}[j];")
                tap("wv", f"{OFF}[j]", f"{KY}[j]", f"{KX}[j]")
        else:
            w(f"const {wt} *wm = {V} + m * {Cg * KH * KW};",
              f"const {it} first = (m / {per_group}) * {Cg * H * W} - {PT * W + PL};" if groups > 1
              else f"const {it} first = -{PT * W + PL};")
            w(f"for ({it} c = 0; c < {Cg}; c++)", f"    for ({it} ky = 0; ky < {KH}; ky++)")
            with w.indent(), w.indent():
                with w.block(f"for ({it} kx = 0; kx < {KW}; kx++)"):
                    w(f"const {pt} wv = wm[(c * {KH} + ky) * {KW} + kx];",
                      "if (wv == 0)", "    continue; /* zero weights are skipped */")
                    tap("wv", f"first + (c * {H} + ky * {DH}) * {W} + kx * {DW}", "ky", "kx")
        if not in_place:
            with w.block(f"for ({it} i = 0; i < {plane}; i++)"):
                w(f"ym[i] = ({out_t})acc[i];")
    how = (f"{nnz} non-zero taps of {data.size}, stored and iterated as non-zeros only" if sparse
           else f"{data.size} weights stored dense (fewer bytes than a tap list), zero ones skipped")
    L.finish(f"{C}x{H}x{W} -> {M}x{OH}x{OW}, kernel {KH}x{KW}, stride {SH}x{SW}, dilation {DH}x{DW}, "
             f"pads {list(a['pads'])}, groups {groups}",
             f"{how}; exact sums in {ct}, accumulated {'in the output' if in_place else 'in a local array'} "
             f"(partial sums {plo}..{phi})")


def scale_shift(p: Program, node: Node) -> None:
    x, scale, shift = node.inputs
    tx, ts, ty = x.type.dtype, scale.type.dtype, node.output.type.dtype
    plan: LinearPlan = semantics.plan(node)
    sh = plan.bias.astype(object)
    SH = const_for(p, node, "shift", sh, "biases", f"{shift.name} at {plan.frac} fractional bits")
    smax, shmax = maxabs(ts), max(abs(v) for v in np.asarray(sh).reshape(-1)) if sh.size else 0
    bound = maxabs(tx) * smax + shmax
    ct = compute_type((-bound, bound), rng(ty), where=where(node))
    L = Layer(p, node)
    X, S, Y = L.input(0, "x"), L.input(1, "scale"), L.output(0, "y")
    out = p.ctype(node.output)
    loops(L, x.type.shape, [x.type.shape, scale.type.shape, shift.type.shape],
           lambda o, ix: [f"{Y}[{o}] = ({out})(({ct}){X}[{ix[0]}] * {S}[{ix[1]}] + {SH}[{ix[2]}]);"])
    L.finish("x * scale + shift")
