"""``verify(graph)``: the graph is well-formed, every node fits its op, every shape is right.

A pass that breaks the graph is caught by the verify that runs after it, not three passes later
in a backend. Failures are internal errors (``VerifyError``), not user errors.
"""

from __future__ import annotations

import numpy as np

from fpgac.ir.graph import Graph
from fpgac.ir.ops import OP_SPECS, ShapeRuleError, infer_shapes
from fpgac.ir.types import FixedType

__all__ = ["verify", "VerifyError"]


class VerifyError(AssertionError):
    """The IR is malformed: a bug in the frontend or a pass."""


def verify(graph: Graph) -> None:
    """Check structure, op signatures, shapes and constants; raise ``VerifyError`` on the first fault."""
    defined: set[int] = {id(v) for v in graph.inputs}
    names: dict[str, int] = {}
    for value in graph.values():
        if value.name in names and names[value.name] != id(value):
            raise VerifyError(f"two values are named {value.name!r}")
        names[value.name] = id(value)
    for value in graph.inputs:
        if value.is_const or value.producer is not None:
            raise VerifyError(f"graph input {value.name!r} is a constant or has a producer")
    for node in graph.nodes:
        where = f"node {node.name!r} ({node.op.value})"
        spec = OP_SPECS.get(node.op)
        if spec is None:
            raise VerifyError(f"{where}: unknown op")
        count = len(node.inputs)
        if count < spec.min_inputs or (spec.max_inputs is not None and count > spec.max_inputs):
            raise VerifyError(f"{where}: {count} inputs, want {spec.min_inputs}..{spec.max_inputs}")
        for i, value in enumerate(node.inputs):
            if value is None:
                if i < spec.min_inputs:
                    raise VerifyError(f"{where}: required input {i} is absent")
                continue
            if i in spec.const_inputs and not value.is_const:
                raise VerifyError(f"{where}: input {i} ({value.name!r}) must be a constant")
            if value.is_const:
                _check_const(where, value)
            elif id(value) not in defined:
                raise VerifyError(f"{where}: input {value.name!r} is used before it is defined")
        if len(node.outputs) != spec.num_outputs:
            raise VerifyError(f"{where}: {len(node.outputs)} outputs, want {spec.num_outputs}")
        try:
            shapes = infer_shapes(node)
        except ShapeRuleError as err:
            raise VerifyError(f"{where}: {err}") from None
        for value, shape in zip(node.outputs, shapes):
            if value.producer is not node:
                raise VerifyError(f"{where}: output {value.name!r} does not name it as producer")
            if value.type.shape != tuple(shape):
                raise VerifyError(f"{where}: output {value.name!r} has shape {value.type.shape}, rule says {shape}")
            if id(value) in defined:
                raise VerifyError(f"{where}: output {value.name!r} is defined twice")
            defined.add(id(value))
    for value in graph.outputs:
        if id(value) not in defined and not value.is_const:
            raise VerifyError(f"graph output {value.name!r} is not produced by any node")


def _check_const(where: str, value) -> None:
    data = value.data
    if data.shape != value.type.shape:
        raise VerifyError(f"{where}: constant {value.name!r} data {data.shape} vs type {value.type.shape}")
    if isinstance(value.type.dtype, FixedType):
        if data.dtype != np.int64:
            raise VerifyError(f"{where}: fixed-point constant {value.name!r} must hold int64 mantissas")
        t = value.type.dtype
        if data.size and (data.min() < t.min_mantissa or data.max() > t.max_mantissa):
            raise VerifyError(f"{where}: constant {value.name!r} has mantissas outside {t}")
    elif not np.all(np.isfinite(data)):
        raise VerifyError(f"{where}: constant {value.name!r} is not finite")
    sparsity = value.type.sparsity
    if sparsity is not None and np.any(data[sparsity.zero] != 0):
        raise VerifyError(f"{where}: constant {value.name!r} is non-zero where its sparsity says zero")
