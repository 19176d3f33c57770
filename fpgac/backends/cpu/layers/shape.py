"""Layers that move elements in C: Reshape (an alias when the layout is unchanged), Transpose,
Slice, Pad (its fill mantissa from the plan) and Concat (its input shifts from the plan)."""

from __future__ import annotations

import math

from fpgac.ir import Node, semantics
from fpgac.ir.semantics import ConcatPlan

from ..cgen import compute_type, rng, shl
from ..program import Layer, Program
from .common import nested, strides, where

__all__ = ["concat", "pad", "reshape", "slice_", "transpose"]


def reshape(p: Program, node: Node) -> None:
    if p.alias(node.output, node.inputs[0]):
        return
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    with L.w.block(f"for ({p.index} i = 0; i < {node.output.type.size}; i++)"):
        L.w(f"{Y}[i] = {X}[i];")
    L.finish("a copy (the layout is unchanged)")


def transpose(p: Program, node: Node) -> None:
    x = node.inputs[0]
    perm = node.attrs["perm"]
    st = strides(x.type.shape)
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    nested(L, node.output.type.shape,
            lambda ix: " + ".join(f"{ix[d]} * {st[perm[d]]}" for d in range(len(perm))) or "0",
            lambda i: f"{Y}[o++] = {X}[{i}];")
    L.finish(f"perm {list(perm)}")


def slice_(p: Program, node: Node) -> None:
    x = node.inputs[0]
    a = node.attrs
    st = strides(x.type.shape)
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    nested(L, node.output.type.shape,
            lambda ix: " + ".join(_affine(s, ix[d], t, st[d])
                                  for d, (s, t) in enumerate(zip(a["starts"], a["steps"]))) or "0",
            lambda i: f"{Y}[o++] = {X}[{i}];")
    L.finish(f"starts {list(a['starts'])}, steps {list(a['steps'])}")


def _affine(start: int, index: str, step: int, stride: int) -> str:
    """``(start + index * step) * stride`` without the factors that are 1 or terms that are 0."""
    term = index if step == 1 else f"{index} * {step}" if step > 0 else f"- {index} * {-step}"
    inner = (f"{start} {term}" if term.startswith("-") else f"{start} + {term}") if start else term
    if stride == 1:
        return inner if not start else f"({inner})"
    return f"({inner}) * {stride}"


def pad(p: Program, node: Node) -> None:
    x = node.inputs[0]
    value = semantics.plan(node).fill
    pads = node.attrs["pads"]
    r = len(x.type.shape)
    ost = strides(node.output.type.shape)
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    with L.w.block(f"for ({p.index} i = 0; i < {node.output.type.size}; i++)"):
        L.w(f"{Y}[i] = {int(value)};")
    names_out = lambda ix: " + ".join(f"({ix[d]} + {pads[d]}) * {ost[d]}" for d in range(r)) or "0"  # noqa: E731
    nested(L, x.type.shape, names_out, lambda i: f"{Y}[{i}] = {X}[o++];")
    L.finish(f"pads {list(pads)}, value mantissa {int(value)}")


def concat(p: Program, node: Node) -> None:
    ty = node.output.type.dtype
    axis = node.attrs["axis"]
    shape = node.output.type.shape
    outer, inner = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    L = Layer(p, node)
    names = [L.input(i, f"x{i}") for i in range(len(node.inputs))]
    Y = L.output(0, "y")
    plan: ConcatPlan = semantics.plan(node)
    ranges = [rng(ty)]
    for v, s in zip(node.inputs, plan.shifts):
        ranges.append((rng(v.type.dtype)[0] << s, rng(v.type.dtype)[1] << s))
    ct = compute_type(*ranges, where=where(node))
    out = p.ctype(node.output)
    w, it = L.w, p.index
    offset = 0
    for v, X, s in zip(node.inputs, names, plan.shifts):
        chunk = v.type.shape[axis] * inner
        with w.block(f"for ({it} r = 0; r < {outer}; r++)"):
            with w.block(f"for ({it} k = 0; k < {chunk}; k++)"):
                value = shl(ct, f"({ct}){X}[r * {chunk} + k]", s)
                w(f"{Y}[r * {shape[axis] * inner} + {offset} + k] = ({out}){value};")
        offset += chunk
    L.finish(f"axis {axis}, inputs shifted to {ty.frac_bits} fractional bits")
