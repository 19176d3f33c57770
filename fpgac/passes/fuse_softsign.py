"""Fuse ``x / (1 + |x|)`` into one Softsign activation.

PyTorch exports ``nn.Softsign`` as ``Abs``, ``Add`` of 1 and ``Div``. A division by a run-time
tensor has no fixed-point form, but Softsign does (a table), so the three nodes become one
``Activation(softsign)`` on ``x``. The Abs and the Add must feed nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpgac.ir import Act, Graph, Node, Op
from fpgac.passes.rewrite import const_values, rewrite_each

__all__ = ["FuseSoftsign"]


@dataclass(frozen=True)
class FuseSoftsign:
    def run(self, graph: Graph) -> bool:
        return rewrite_each(graph, (Op.DIV,), self._fuse)

    def _fuse(self, graph: Graph, div: Node) -> bool:
        x, denominator = div.inputs
        add = denominator.producer
        if x.is_const or add is None or add.op is not Op.ADD or div.output.type.shape != x.type.shape:
            return False
        one, magnitude = (add.inputs[0], add.inputs[1]) if add.inputs[0].is_const else (add.inputs[1], add.inputs[0])
        absolute = magnitude.producer
        if not (one.is_const and np.all(const_values(one) == 1.0) and add.output.type.shape == magnitude.type.shape):
            return False
        if absolute is None or absolute.op is not Op.ACTIVATION or absolute.attrs["kind"] is not Act.ABS:
            return False
        if absolute.inputs[0] is not x:
            return False
        outputs = {id(v) for v in graph.outputs}
        if id(denominator) in outputs or id(magnitude) in outputs:
            return False
        if graph.consumers(denominator) != [div] or graph.consumers(magnitude) != [add]:
            return False
        div.op, div.inputs, div.attrs = Op.ACTIVATION, [x], {"kind": Act.SOFTSIGN}
        graph.remove_node(add)
        graph.remove_node(absolute)
        return True
