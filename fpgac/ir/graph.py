"""Values, nodes and the graph.

The graph is mutable (passes rewrite it in place); types are not. A ``Value`` is either a graph
input, a node output, or a constant (``data`` is set). Nodes are kept in topological order:
``Graph.toposort()`` restores it after a pass that inserts out of order.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fpgac.ir.ops import Op
from fpgac.ir.printer import format_graph
from fpgac.ir.types import FloatType, TensorType

__all__ = ["Value", "Node", "Graph"]


@dataclass(eq=False)
class Value:
    """A tensor flowing through the graph; constant when ``data`` is not ``None``.

    ``data`` of a constant holds the per-sample array (float64 for float constants, int64
    mantissas once quantized); its shape equals ``type.shape``. ``range`` is the ``(min, max)``
    calibration observed for it (``None`` until the Calibrate pass runs).
    """

    name: str
    type: TensorType
    data: np.ndarray | None = field(default=None, repr=False)
    producer: Node | None = field(default=None, repr=False)
    range: tuple[float, float] | None = field(default=None, repr=False)

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    def __repr__(self) -> str:
        return f"Value({self.name!r}, {self.type})"


@dataclass(eq=False)
class Node:
    """One layer-level operation. Absent optional inputs (a Dense without bias) are ``None``."""

    op: Op
    name: str
    inputs: list[Value | None]
    outputs: list[Value]
    attrs: dict[str, Any] = field(default_factory=dict)

    def input(self, index: int) -> Value | None:
        return self.inputs[index] if index < len(self.inputs) else None

    @property
    def output(self) -> Value:
        return self.outputs[0]

    def __repr__(self) -> str:
        return f"Node({self.op.value}, {self.name!r})"


class Graph:
    """A layer-level network: inputs, nodes in topological order, outputs.

    ``output_batch_axes`` maps an output's name to where the batch axis goes when the output is
    handed back in the source model's layout (0 unless an exporter put it elsewhere, as ONNX LSTM
    does for its ``Y``).
    """

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.inputs: list[Value] = []
        self.outputs: list[Value] = []
        self.nodes: list[Node] = []
        self.output_batch_axes: dict[str, int] = {}
        self._names: set[str] = set()
        self._reserved: set[str] = set()

    # -- construction ---------------------------------------------------------------------

    def unique_name(self, base: str) -> str:
        """``base`` if unused in this graph, else ``base_1``, ``base_2``, ..."""
        base = base or "v"
        name, i = base, 0
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def forget(self, value: Value) -> None:
        """Release the name of a value no node produces or reads any more, for reuse."""
        self._names.discard(value.name)

    def reserve(self, name: str) -> None:
        """Keep ``name`` free for a later ``rename`` (the frontend keeps ONNX output names so)."""
        if name not in self._names:
            self._names.add(name)
            self._reserved.add(name)

    def rename(self, value: Value, name: str) -> None:
        """Give ``value`` the name ``name`` (with a suffix if another value has it)."""
        if value.name == name:
            return
        self._names.discard(value.name)
        axis = self.output_batch_axes.pop(value.name, None)
        if name in self._reserved:
            self._reserved.discard(name)
            value.name = name
        else:
            value.name = self.unique_name(name)
        if axis is not None:
            self.output_batch_axes[value.name] = axis

    def add_input(self, name: str, type: TensorType) -> Value:
        value = Value(self.unique_name(name), type)
        self.inputs.append(value)
        return value

    def constant(self, name: str, data: np.ndarray, dtype: Any = None) -> Value:
        """A new constant value holding ``data`` (float64 unless ``dtype`` says otherwise)."""
        array = np.array(data, dtype=np.float64 if dtype is None or isinstance(dtype, FloatType) else np.int64)
        array.setflags(write=False)
        return Value(self.unique_name(name), TensorType(dtype or FloatType(), array.shape), array)

    def add_node(
        self,
        op: Op,
        inputs: Sequence[Value | None],
        output_types: Sequence[TensorType],
        attrs: dict[str, Any] | None = None,
        name: str | None = None,
        output_names: Sequence[str] | None = None,
    ) -> Node:
        node_name = self.unique_name(name or op.value.lower())
        names = list(output_names) if output_names else [
            node_name if i == 0 else f"{node_name}_out{i}" for i in range(len(output_types))
        ]
        outputs = [
            Value(n if (n == node_name and i == 0) else self.unique_name(n), t)
            for i, (n, t) in enumerate(zip(names, output_types))
        ]
        node = Node(op, node_name, list(inputs), outputs, dict(attrs or {}))
        for value in outputs:
            value.producer = node
        self.nodes.append(node)
        return node

    # -- queries ----------------------------------------------------------------------------

    def consumers(self, value: Value) -> list[Node]:
        return [n for n in self.nodes if any(v is value for v in n.inputs)]

    def values(self) -> Iterator[Value]:
        """Every value once: inputs, then constants and node outputs in node order."""
        seen: set[int] = set()
        for value in self.inputs:
            seen.add(id(value))
            yield value
        for node in self.nodes:
            for value in [*node.inputs, *node.outputs]:
                if value is not None and id(value) not in seen:
                    seen.add(id(value))
                    yield value

    def node(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    # -- rewriting ------------------------------------------------------------------------

    def replace_all_uses(self, old: Value, new: Value) -> None:
        for node in self.nodes:
            node.inputs = [new if v is old else v for v in node.inputs]
        if any(v is old for v in self.outputs):
            axis = self.output_batch_axes.pop(old.name, None)
            self.outputs = [new if v is old else v for v in self.outputs]
            if axis is not None:
                self.output_batch_axes[new.name] = axis

    def remove_node(self, node: Node) -> None:
        self.nodes = [n for n in self.nodes if n is not node]

    def remove_unused(self) -> bool:
        """Drop nodes none of whose outputs reach a graph output. Says whether any went."""
        live: set[int] = {id(v) for v in self.outputs}
        kept: list[Node] = []
        for node in reversed(self.nodes):
            if any(id(v) in live for v in node.outputs):
                kept.append(node)
                live.update(id(v) for v in node.inputs if v is not None)
        changed = len(kept) != len(self.nodes)
        self.nodes = kept[::-1]
        return changed

    def toposort(self) -> None:
        """Reorder nodes so that every node comes after the producers of its inputs."""
        ready: set[int] = {id(v) for v in self.inputs}
        pending, ordered = list(self.nodes), []
        while pending:
            progress = False
            for node in list(pending):
                if all(v is None or v.is_const or id(v) in ready for v in node.inputs):
                    ordered.append(node)
                    ready.update(id(v) for v in node.outputs)
                    pending.remove(node)
                    progress = True
            if not progress:
                raise ValueError(f"graph {self.name!r} has a cycle through {pending[0].name!r}")
        self.nodes = ordered

    def __str__(self) -> str:
        return format_graph(self)
