"""Quant: the one op that rounds and saturates.

Fixed point: the input's mantissas requantized to the output's FixedType with its rounding and
overflow modes (:func:`fpgac.ir.requantize`, bit-exact with ``ap_fixed``). In float mode a Quant
whose output has a FixedType (a model's own quantizer, QONNX) rounds too: the network was trained
with it; one with a float output is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgac.ir.fixed import quantize, requantize, to_float
from fpgac.ir.graph import Node
from fpgac.ir.ops import Op
from fpgac.ir.types import FixedType

from .base import Args, Semantics

__all__ = ["QuantPlan", "SEMANTICS"]


@dataclass(frozen=True)
class QuantPlan:
    """From ``source`` to ``target``: the shift (``f_target - f_source``; negative drops bits,
    rounding by ``target.rounding``) and the saturation or wrap of ``target.overflow``."""

    source: FixedType
    target: FixedType

    @property
    def shift(self) -> int:
        return self.target.frac_bits - self.source.frac_bits


def plan(node: Node) -> QuantPlan:
    return QuantPlan(node.inputs[0].type.dtype, node.output.type.dtype)


def quant(node: Node, args: Args) -> list[np.ndarray]:
    dtype = node.output.type.dtype
    if isinstance(dtype, FixedType):
        return [to_float(quantize(args[0], dtype), dtype)]
    return [args[0]]


def quant_fixed(node: Node, p: QuantPlan, args: Args) -> list[np.ndarray]:
    return [requantize(args[0], p.source, p.target)]


SEMANTICS = {Op.QUANT: Semantics(plan, quant, quant_fixed)}
