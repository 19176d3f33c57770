"""Pool and GlobalPool in C: the windows, tap counts and reciprocals come from the op's plan
(:mod:`fpgac.ir.semantics.pool`)."""

from __future__ import annotations

import numpy as np

from fpgac.ir import Node, semantics
from fpgac.ir.semantics import GlobalPoolPlan, PoolPlan

from ..cgen import compute_type, rng, smallest_uint
from ..program import Layer, Program
from .common import where
from .linear import _as_2d, _pairs

__all__ = ["global_pool", "pool"]


def pool(p: Program, node: Node) -> None:
    """Pool (:mod:`fpgac.ir.semantics.pool`): padding never wins a max; an average is ``sum *
    reciprocal`` with each window's reciprocal from the plan."""
    x = node.inputs[0]
    tx, ty = x.type.dtype, node.output.type.dtype
    a = node.attrs
    plan: PoolPlan = semantics.plan(node)
    win = plan.window
    nd = win.nd
    C, (H, W) = x.type.shape[0], _as_2d(x.type.shape[1:])
    OH, OW = _as_2d(node.output.type.shape[1:])
    KH, KW = _pairs(win.kernel, nd, 1)
    SH, SW = _pairs(win.strides, nd, 1)
    DH, DW = _pairs(win.dilations, nd, 1)
    PT, PL = _pairs(win.begins, nd, 0)
    PB, PR = _pairs(win.ends, nd, 0)
    avg = plan.average
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    lo, hi = rng(tx)
    taps = KH * KW
    if avg:
        bits = plan.bits
        recips = plan.reciprocals.reshape(OH, OW).astype(object)
        rmax = int(recips.max()) if recips.size else 0
        ct = compute_type((lo * taps, hi * taps), (lo * taps * rmax, hi * taps * rmax), rng(ty), where=where(node))
        uniform = recips.size == 0 or (recips == recips.flat[0]).all()
        if uniform:
            recip = str(int(recips.flat[0])) if recips.size else "0"
        else:
            R = p.const(f"{node.name}_recip", smallest_uint(rmax), recips.astype(np.int64), "constants",
                        f"round(2^{bits} / taps counted) of each window")
            recip = f"({ct}){R}[oy * {OW} + ox]"
    else:
        ct = compute_type(rng(tx), where=where(node))
    with w.block(f"for ({it} c = 0; c < {C}; c++)"):
        w(f"const {p.ctype(x)} *xc = {X} + c * {H * W};")
        with w.block(f"for ({it} oy = 0; oy < {OH}; oy++)"):
            with w.block(f"for ({it} ox = 0; ox < {OW}; ox++)"):
                w(f"{ct} v = {0 if avg else lo};")
                with w.block(f"for ({it} ky = 0; ky < {KH}; ky++)"):
                    w(f"const {it} iy = oy * {SH} - {PT} + ky * {DH};")
                    if PT or PB or (OH - 1) * SH + (KH - 1) * DH >= H:
                        w(f"if (iy < 0 || iy >= {H})", "    continue;")
                    with w.block(f"for ({it} kx = 0; kx < {KW}; kx++)"):
                        w(f"const {it} ix = ox * {SW} - {PL} + kx * {DW};")
                        if PL or PR or (OW - 1) * SW + (KW - 1) * DW >= W:
                            w(f"if (ix < 0 || ix >= {W})", "    continue;")
                        w(f"const {ct} t = xc[iy * {W} + ix];")
                        w(*(["v += t;"] if avg else ["if (t > v)", "    v = t;"]))
                result = f"v * {recip}" if avg else "v"
                w(f"{Y}[(c * {OH} + oy) * {OW} + ox] = ({p.ctype(node.output)})({result});")
    L.finish(f"{a['kind'].value} over {KH}x{KW}, stride {SH}x{SW}, dilation {DH}x{DW}, pads {PT},{PL},{PB},{PR}"
             + (", ceil_mode" if a["ceil_mode"] else "")
             + (f", times round(2^{a['reciprocal_bits']} / count)" if avg else ""))


def global_pool(p: Program, node: Node) -> None:
    x = node.inputs[0]
    tx, ty = x.type.dtype, node.output.type.dtype
    C = x.type.shape[0]
    n = x.type.size // C if C else 0
    lo, hi = rng(tx)
    plan: GlobalPoolPlan = semantics.plan(node)
    avg = plan.average
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    if avg:
        bits, recip = plan.bits, plan.reciprocal
        ct = compute_type((lo * n, hi * n), (lo * n * recip, hi * n * recip), rng(ty), where=where(node))
    else:
        ct = compute_type(rng(tx))
    with w.block(f"for ({it} c = 0; c < {C}; c++)"):
        w(f"{ct} v = {0 if avg else lo};")
        with w.block(f"for ({it} i = 0; i < {n}; i++)"):
            w(f"const {ct} t = {X}[c * {n} + i];")
            w(*(["v += t;"] if avg else ["if (t > v)", "    v = t;"]))
        w(f"{Y}[c] = ({p.ctype(node.output)})({f'v * {recip}' if avg else 'v'});")
    L.finish(f"{node.attrs['kind'].value} over {n} positions"
             + (f", times round(2^{bits} / {n}) = {recip}" if avg else ""))
