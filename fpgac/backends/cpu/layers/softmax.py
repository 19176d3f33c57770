"""Softmax (and log-softmax) and ArgMax along one axis in C; the softmax's tables and shifts
come from its plan (:mod:`fpgac.ir.semantics.softmax`)."""

from __future__ import annotations

import math

from fpgac.ir import Node, semantics
from fpgac.ir.semantics import SoftmaxPlan

from ..arith import lookup
from ..cgen import compute_type, container, rng, shl
from ..program import Layer, Program
from .common import row_base, where

__all__ = ["argmax", "softmax"]


def softmax(p: Program, node: Node) -> None:
    """z = x - max (exact), e = exp[z], S = sum e (exact), y = e * reciprocal[S] (or z - log[S])."""
    x = node.inputs[0]
    tx, ty = x.type.dtype, node.output.type.dtype
    shape = x.type.shape
    axis = node.attrs["axis"]
    n, inner = shape[axis], math.prod(shape[axis + 1:])
    outer = math.prod(shape[:axis])
    lo, hi = rng(tx)
    plan: SoftmaxPlan = semantics.plan(node)
    exp = plan.exp
    zlo = lo - hi
    e_lut = lookup(p, exp, zlo, 0)
    et = exp.out_type
    elo, ehi = rng(et)
    slo, shi = min(0, elo * n), max(0, ehi * n)
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    out = p.ctype(node.output)
    if plan.log is not None:
        log = plan.log
        s_lut = lookup(p, log, slo, shi)
        sz, sl = plan.z_shift, plan.log_shift
        llo, lhi = rng(log.out_type)
        ct = compute_type((zlo, hi - lo), (slo, shi), (zlo << sz, 0), (llo << sl, lhi << sl),
                          ((zlo << sz) - (lhi << sl), -(llo << sl)), rng(ty), where=where(node))
    else:
        recip = plan.reciprocal
        s_lut = lookup(p, recip, slo, shi)
        rlo, rhi = rng(recip.out_type)
        corners = [u * v for u in (elo, ehi) for v in (rlo, rhi)]
        ct = compute_type((zlo, hi - lo), (slo, shi), (min(corners), max(corners)), rng(ty), where=where(node))
    E = L.local(container(et), "e", n)
    with w.block(f"for ({it} r = 0; r < {outer * inner}; r++)"):
        w(row_base(it, n, inner))
        step = f" * {inner}" if inner > 1 else ""
        w(f"{ct} mx = {X}[base];", f"{ct} total = 0;")
        with w.block(f"for ({it} k = 1; k < {n}; k++)"):
            w(f"const {ct} v = {X}[base + k{step}];", "if (v > mx)", "    mx = v;")
        with w.block(f"for ({it} k = 0; k < {n}; k++)"):
            w(f"{E}[k] = {e_lut}(({ct}){X}[base + k{step}] - mx);", f"total += {E}[k];")
        if node.attrs["log"]:
            w(f"const {ct} ls = {shl(ct, f'({ct}){s_lut}(total)', sl)};")
            with w.block(f"for ({it} k = 0; k < {n}; k++)"):
                w(f"{Y}[base + k{step}] = ({out})({shl(ct, f'(({ct}){X}[base + k{step}] - mx)', sz)} - ls);")
        else:
            w(f"const {ct} inv = {s_lut}(total);")
            with w.block(f"for ({it} k = 0; k < {n}; k++)"):
                w(f"{Y}[base + k{step}] = ({out})(({ct}){E}[k] * inv);")
    L.finish(f"{'log-' if node.attrs['log'] else ''}softmax over axis {axis} ({n} values), tables "
             + f"{exp} and {node.attrs['log_table'] if node.attrs['log'] else node.attrs['reciprocal']}")


def argmax(p: Program, node: Node) -> None:
    x = node.inputs[0]
    shape = x.type.shape
    axis = node.attrs["axis"]
    n, inner, outer = shape[axis], math.prod(shape[axis + 1:]), math.prod(shape[:axis])
    better = ">=" if node.attrs["select_last_index"] else ">"
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    ct = compute_type(rng(x.type.dtype))
    with w.block(f"for ({it} r = 0; r < {outer * inner}; r++)"):
        w(row_base(it, n, inner))
        step = f" * {inner}" if inner > 1 else ""
        w(f"{ct} best = {X}[base];", f"{it} at = 0;")
        with w.block(f"for ({it} k = 1; k < {n}; k++)"):
            w(f"const {ct} v = {X}[base + k{step}];")
            with w.block(f"if (v {better} best)"):
                w("best = v;", "at = k;")
        w(f"{Y}[r] = ({p.ctype(node.output)})at;")
    L.finish(f"axis {axis}, ties to the {'last' if node.attrs['select_last_index'] else 'first'} index")
