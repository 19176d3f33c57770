"""Softmax (and log-softmax) with softmax.h, its types and tables from the plan, and ArgMax (shape.h)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING


from fpgac.ir import Node, semantics

from ..cpp import Struct, fixed

if TYPE_CHECKING:
    from ..design import Design

__all__ = ["emit_argmax", "emit_softmax"]


def emit_softmax(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("softmax.h")
    x = node.inputs[0]
    plan: semantics.SoftmaxPlan = semantics.plan(node)
    axis = plan.axis
    log = plan.log is not None
    exp = plan.exp
    inv = plan.log if log else plan.reciprocal
    exp_cfg, exp_values = d.table(node, "exp", exp)
    inv_cfg, inv_values = d.table(node, "log" if log else "reciprocal", inv)
    struct = Struct(d.layer_name(node, "config"),
                    comment=f"{node.name}: {'log-' if log else ''}softmax along axis {axis}")
    struct.const("n_outer", plan.outer).const("n", plan.n).const("n_inner", plan.inner)
    struct.const("log", log, "bool")
    struct.type("z_t", fixed(plan.z_type)).type("exp_t", fixed(exp.out_type)).type("sum_t", fixed(plan.sum_type))
    struct.type("inv_t", fixed(inv.out_type)).type("exp_table", exp_cfg).type("inv_table", inv_cfg)
    name = d.config(struct)
    d.code(f"fpgac::softmax<{d.type_name(x)}, {d.type_name(node.output)}, {name}>({ins[0]}, {outs[0]}, {exp_values}, "
           f"{inv_values});")


def emit_argmax(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("shape.h")
    x = node.inputs[0]
    shape, axis = x.type.shape, node.attrs["axis"]
    last = "true" if node.attrs["select_last_index"] else "false"
    d.code(f"fpgac::argmax<{d.type_name(x)}, {d.type_name(node.output)}, {math.prod(shape[:axis])}, {shape[axis]}, "
           f"{math.prod(shape[axis + 1:])}, {last}>({ins[0]}, {outs[0]});")
