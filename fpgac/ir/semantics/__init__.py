"""Each op's meaning in one place: its derived integers (a plan) and its float and fixed-point
evaluation, one module per op family.

- :func:`plan` gives a quantized node's plan: a frozen dataclass of every integer the hardware
  needs (shifts, clip bounds, reciprocals, intermediate types, tables, window geometry), checked
  against the node's types. Backends render from it and derive nothing themselves.
- :data:`SEMANTICS` maps every :class:`~fpgac.ir.Op` to its :class:`Semantics` (plan, float,
  fixed); :mod:`.interpret` runs a graph through it (the float reference and the bit-exact
  golden model, re-exported by :mod:`fpgac.sim`).
- :func:`activation_function` is the float function of an activation (what tables tabulate).

Adding an op: see CONTRIBUTING.md.
"""

from __future__ import annotations

from typing import Any

from fpgac.ir.graph import Node
from fpgac.ir.types import FixedType
from fpgac.ir.verify import VerifyError

from .activation import ActivationPlan, LookupPlan, clip_bounds
from .activation import function as activation_function
from .base import NO_PLAN, Semantics, is_fixed
from .elementwise import BinaryPlan
from .interpret import CHUNK_ELEMENTS, chunk_rows, evaluate_fixed, evaluate_float, run_fixed, run_float
from .linear import LinearPlan
from .pool import GlobalPoolPlan, PoolPlan
from .quant import QuantPlan
from .recurrent import RecurrentPlan, exact_types
from .registry import SEMANTICS
from .shape import ConcatPlan, PadPlan
from .softmax import SoftmaxPlan, difference_type, sum_type
from .windows import Window, round_half_up_reciprocal, window

__all__ = [
    "CHUNK_ELEMENTS",
    "NO_PLAN",
    "SEMANTICS",
    "ActivationPlan",
    "BinaryPlan",
    "ConcatPlan",
    "GlobalPoolPlan",
    "LinearPlan",
    "LookupPlan",
    "PadPlan",
    "PoolPlan",
    "QuantPlan",
    "RecurrentPlan",
    "Semantics",
    "SoftmaxPlan",
    "Window",
    "activation_function",
    "apply_fixed",
    "chunk_rows",
    "clip_bounds",
    "difference_type",
    "evaluate_fixed",
    "evaluate_float",
    "exact_type",
    "exact_types",
    "is_fixed",
    "plan",
    "round_half_up_reciprocal",
    "run_fixed",
    "run_float",
    "sum_type",
    "window",
]

def plan(node: Node) -> Any:
    """The plan of a quantized ``node``: every integer its hardware needs (see the family modules)."""
    return SEMANTICS[node.op].plan(node)


def exact_type(node: Node) -> FixedType:
    """The exact type of ``node``'s output from its quantized inputs and constants (see
    :class:`Semantics`): what the Quantize pass gives an op that does not round."""
    semantics = SEMANTICS[node.op]
    if semantics.exact_type is None:
        raise VerifyError(f"node {node.name!r} ({node.op.value}): its output is not exact (it rounds)")
    return semantics.exact_type(node)


def apply_fixed(node: Node, args: list) -> list:
    """The golden model's result of one quantized node on batched argument mantissas (as
    :mod:`.base` describes them): what a backend probes to read a layer's matrix or wiring."""
    semantics = SEMANTICS[node.op]
    if semantics.fixed is None:
        raise VerifyError(f"node {node.name!r} ({node.op.value}): {semantics.refused}")
    return semantics.fixed(node, semantics.plan(node), args)
