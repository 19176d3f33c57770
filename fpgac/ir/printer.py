"""The stable text form of a graph, used by ``print(graph)``, ``--dump-ir`` and golden tests.

One line a node: ``%out: type = Op[name]{attrs}(inputs)``. Constants print as ``@name: type``
(their values are not printed); attributes in sorted order; enums by value; floats with ``repr``.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fpgac.ir.graph import Graph, Value

__all__ = ["format_graph", "format_value"]


def format_value(value: Value | None) -> str:
    if value is None:
        return "_"
    return f"{'@' if value.is_const else '%'}{value.name}"


def _format_attr(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list)):
        return "[" + ",".join(_format_attr(v) for v in value) + "]"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def format_graph(graph: Graph) -> str:
    ins = ", ".join(f"%{v.name}: {v.type}" for v in graph.inputs)
    outs = ", ".join(f"{format_value(v)}: {v.type}" for v in graph.outputs)
    lines = [f"graph {graph.name}({ins}) -> ({outs}) {{"]
    consts: dict[int, Value] = {}
    for node in graph.nodes:
        for value in node.inputs:
            if value is not None and value.is_const:
                consts.setdefault(id(value), value)
    for value in consts.values():
        lines.append(f"  {format_value(value)}: {value.type}")
    for node in graph.nodes:
        results = ", ".join(f"%{v.name}: {v.type}" for v in node.outputs)
        attrs = ", ".join(f"{k}={_format_attr(v)}" for k, v in sorted(node.attrs.items()))
        args = ", ".join(format_value(v) for v in node.inputs)
        lines.append(f"  {results} = {node.op.value}[{node.name}]{{{attrs}}}({args})")
    lines.append("}")
    return "\n".join(lines)
