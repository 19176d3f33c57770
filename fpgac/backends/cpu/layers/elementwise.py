"""Elementwise layers in C: activations with an exact form (the clip bounds and PReLU's shift
from the plan), table lookups, requantization and the binary ops (their input shifts from the
plan, :mod:`fpgac.ir.semantics.elementwise`)."""

from __future__ import annotations

from fpgac.ir import Act, Node, Op, semantics
from fpgac.ir.semantics import BinaryPlan

from ..arith import lookup, requantizer
from ..cgen import compute_type, maxabs, rng, shl
from ..program import Layer, Program
from .common import loops, unsupported, where

__all__ = ["activation", "binary", "lookup_layer", "quant"]


def activation(p: Program, node: Node) -> None:
    x = node.inputs[0]
    tx, ty = x.type.dtype, node.output.type.dtype
    kind = node.attrs["kind"]
    L = Layer(p, node)
    X = L.input(0, "x")
    S = L.input(1, "slope") if kind is Act.PRELU else None
    Y = L.output(0, "y")
    out = p.ctype(node.output)
    lo, hi = rng(tx)
    if kind is Act.PRELU:
        slope = node.inputs[1]
        fs = semantics.plan(node).slope_frac
        if fs < 0:
            raise unsupported(node, f"slope type {slope.type.dtype} has negative fractional bits")
        smax = maxabs(slope.type.dtype)
        ct = compute_type((lo * smax, hi * smax), (lo << fs, hi << fs), (-(max(-lo, hi) * smax), max(-lo, hi) * smax),
                          rng(ty), where=where(node))
        loops(L, x.type.shape, [x.type.shape, slope.type.shape],
               lambda o, ix: [f"const {ct} v = {X}[{ix[0]}];",
                              f"{Y}[{o}] = ({out})(v >= 0 ? {shl(ct, 'v', fs)} : v * {S}[{ix[1]}]);"])
        L.finish(f"prelu: x << {fs} where x >= 0, else x * slope")
        return
    ct = compute_type((lo, hi), (-hi, -lo), where=where(node))
    if kind is Act.RELU:
        expr, what = "v > 0 ? v : 0", "relu"
    elif kind is Act.ABS:
        expr, what = "v < 0 ? -v : v", "abs"
    elif kind is Act.CLIP:
        clo, chi = semantics.plan(node).clip
        expr, what = f"v < {clo} ? {clo} : v > {chi} ? {chi} : v", f"clip to mantissas {clo}..{chi}"
    else:
        raise unsupported(node, f"activation {kind.value} has no exact fixed-point form "
                                 "(quantization makes it a Lookup)")
    with L.w.block(f"for ({p.index} i = 0; i < {x.type.size}; i++)"):
        L.w(f"const {ct} v = {X}[i];", f"{Y}[i] = ({out})({expr});")
    L.finish(what)


def _apply(p: Program, node: Node, function: str, what: str) -> None:
    """A layer that passes every element through one C function (a table lookup, a requantizer)."""
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    with L.w.block(f"for ({p.index} i = 0; i < {node.inputs[0].type.size}; i++)"):
        L.w(f"{Y}[i] = {function}({X}[i]);")
    L.finish(what)


def lookup_layer(p: Program, node: Node) -> None:
    x, table = node.inputs[0], semantics.plan(node).table
    _apply(p, node, lookup(p, table, *rng(x.type.dtype)),
           f"{node.attrs['kind'].value if 'kind' in node.attrs else table.function}: {table}")


def quant(p: Program, node: Node) -> None:
    x = node.inputs[0]
    _apply(p, node, requantizer(p, x.type.dtype, node.output.type.dtype),
           f"requantize {x.type.dtype} -> {node.output.type.dtype}")


def binary(p: Program, node: Node) -> None:
    """Add/Sub/Max/Min with both inputs shifted up to the output's fractional bits; Mul exact."""
    a, b = node.inputs
    ty = node.output.type.dtype
    ra, rb = rng(a.type.dtype), rng(b.type.dtype)
    plan: BinaryPlan = semantics.plan(node)
    sa, sb = plan.shifts
    if node.op is Op.MUL:
        corners = [u * v for u in ra for v in rb]
        ct = compute_type(ra, rb, (min(corners), max(corners)), rng(ty), where=where(node))
    else:
        (alo, ahi), (blo, bhi) = (ra[0] << sa, ra[1] << sa), (rb[0] << sb, rb[1] << sb)
        ct = compute_type(ra, rb, (alo, ahi), (blo, bhi), (alo + blo, ahi + bhi), (alo - bhi, ahi - blo), rng(ty),
                          where=where(node))
    form = {Op.ADD: "u + v", Op.SUB: "u - v", Op.MUL: "u * v", Op.MAX: "u > v ? u : v", Op.MIN: "u < v ? u : v"}
    L = Layer(p, node)
    A, B, Y = L.input(0, "a"), L.input(1, "b"), L.output(0, "y")
    out = p.ctype(node.output)
    loops(L, node.output.type.shape, [a.type.shape, b.type.shape],
           lambda o, ix: [f"const {ct} u = {shl(ct, f'({ct}){A}[{ix[0]}]', sa)};",
                          f"const {ct} v = {shl(ct, f'({ct}){B}[{ix[1]}]', sb)};",
                          f"{Y}[{o}] = ({out})({form[node.op]});"])
    L.finish(f"{node.op.value.lower()}, exact at {ty.frac_bits} fractional bits (inputs shifted up {sa} and {sb})")
