"""Every op is whole: it has semantics (a plan, a float and a fixed-point evaluation, or a stated
reason it has none) and every backend either builds it or refuses it with a stated message. A new
op added to ``fpgac.ir.Op`` and not to these tables fails here, not in a user's compile."""

from __future__ import annotations

import re

import pytest

from fpgac.backends.amaranth.lower import LOWERINGS, REFUSED as AMARANTH_REFUSED, lower
from fpgac.backends.cpu import generate
from fpgac.backends.cpu.layers import EMITTERS, REFUSED as CPU_REFUSED
from fpgac.backends.hls.design import Design
from fpgac.backends.hls.emit import PARALLEL, REFUSED as HLS_REFUSED
from fpgac.errors import UnsupportedError
from fpgac.ir import FixedType, Graph, Op, TensorType
from fpgac.ir.semantics import SEMANTICS
from fpgac.passes.quantize_rules import RULES


#: ops whose result rounds (no exact type): the rest are exact, and the quantizer takes their type from semantics
ROUNDING = {Op.QUANT, Op.LOOKUP, Op.LSTM, Op.GRU, Op.DIV}

BACKENDS = {
    "cpu": (EMITTERS, CPU_REFUSED),
    "xilinx": (PARALLEL, HLS_REFUSED),
    "amaranth": (LOWERINGS, AMARANTH_REFUSED),
}


def test_every_op_has_semantics() -> None:
    assert set(SEMANTICS) == set(Op)
    for op, s in SEMANTICS.items():
        assert callable(s.plan) and callable(s.float), op
        assert (s.fixed is not None) != bool(s.refused), f"{op}: a fixed-point evaluation or a reason, not both"
        assert (s.exact_type is None) == (op in ROUNDING), op


def test_every_op_has_a_quantization_rule_or_an_exact_type() -> None:
    for op in Op:
        assert op in RULES or SEMANTICS[op].exact_type is not None, op


@pytest.mark.parametrize("target", BACKENDS)
def test_every_backend_builds_or_refuses_every_op(target: str) -> None:
    table, refused = BACKENDS[target]
    assert set(table) | set(refused) == set(Op), f"{target}: missing {set(Op) - set(table) - set(refused)}"
    assert not set(table) & set(refused), f"{target}: both built and refused: {set(table) & set(refused)}"
    assert all(isinstance(why, str) and why for why in refused.values())


def _div_graph() -> Graph:
    g = Graph("divides")
    t = FixedType(8, 3)
    x = g.add_input("x", TensorType(t, (4,)))
    g.outputs = [g.add_node(Op.DIV, [x, x], [TensorType(t, (4,))], {}, name="odd").output]
    return g


@pytest.mark.parametrize("target", BACKENDS)
def test_a_refused_op_gives_its_stated_message(target: str) -> None:
    _, refused = BACKENDS[target]
    build = {"cpu": generate, "xilinx": lambda g: Design(g, "parallel", 1), "amaranth": lower}[target]
    with pytest.raises(UnsupportedError, match=rf"^node 'odd' \(Div\): {re.escape(refused[Op.DIV])}$"):
        build(_div_graph())
