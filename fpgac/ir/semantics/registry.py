"""The table from every op to its semantics, gathered from the family modules."""

from __future__ import annotations

from fpgac.ir.ops import Op

from . import activation, elementwise, linear, pool, quant, recurrent, shape, softmax
from .base import Semantics

__all__ = ["SEMANTICS"]

#: every op's plan, float and fixed-point evaluation (a test checks that no op is missing)
SEMANTICS: dict[Op, Semantics] = {}
for _family in (linear, pool, activation, softmax, elementwise, shape, recurrent, quant):
    SEMANTICS.update(_family.SEMANTICS)
