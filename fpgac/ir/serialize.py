"""The IR on disk: ``graph.json`` (structure, types, attributes) and ``graph.npz`` (arrays).

Every output directory holds the quantized graph it was built from, so ``fpgac run OUT`` and
``fpgac inspect OUT`` work without the model, its calibration data or the compile options. The
format is plain data: values by name with their type strings (``fixed<16,6,RND,SAT>``), nodes with
their op and attributes, where an attribute is a JSON number, string, bool or null, or one of the
tagged forms below; every array (constants, sparsity masks, table values, array attributes) is an
entry of the ``.npz``. ``FORMAT`` changes when the layout does; a file of another format is refused.

Tagged attribute forms: ``{"tuple": [...]}``, ``{"dict": {...}}``, ``{"enum": ["Act", value]}``,
``{"type": "fixed<...>"}``, ``{"array": KEY}``, ``{"table": {...}}``.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir.graph import Graph, Node, Value
from fpgac.ir.ops import Act, Op, PoolKind
from fpgac.ir.tables import Table
from fpgac.ir.types import FixedType, FloatType, Sparsity, TensorType, parse_type

__all__ = ["FORMAT", "GRAPH_JSON", "GRAPH_NPZ", "load_graph", "save_graph"]

FORMAT = "fpgac-ir-1"
GRAPH_JSON, GRAPH_NPZ = "graph.json", "graph.npz"

_ENUMS: dict[str, type[Enum]] = {cls.__name__: cls for cls in (Act, PoolKind, Op)}


def save_graph(graph: Graph, folder: str | Path) -> None:
    """Write ``graph.json`` and ``graph.npz`` into ``folder``."""
    arrays: dict[str, np.ndarray] = {}

    def array(a: np.ndarray) -> str:
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(a)
        return key

    def attr(v: Any) -> Any:
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, np.bool_):
            return bool(v)
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, (float, np.floating)):
            return float(v)
        if isinstance(v, Enum):
            return {"enum": [type(v).__name__, v.value]}
        if isinstance(v, (FixedType, FloatType)):
            return {"type": str(v)}
        if isinstance(v, np.ndarray):
            return {"array": array(v)}
        if isinstance(v, Table):
            return {"table": {**v.describe(), "values": array(v.values)}}
        if isinstance(v, tuple):
            return {"tuple": [attr(x) for x in v]}
        if isinstance(v, list):
            return [attr(x) for x in v]
        if isinstance(v, dict):
            return {"dict": {str(k): attr(x) for k, x in v.items()}}
        raise TypeError(f"no on-disk form for attribute {v!r} ({type(v).__name__})")

    def value(v: Value) -> dict[str, Any]:
        t = v.type
        return {"name": v.name, "dtype": str(t.dtype), "shape": list(t.shape),
                "sparsity": None if t.sparsity is None else array(t.sparsity.zero),
                "data": None if v.data is None else array(v.data),
                "range": None if v.range is None else [float(v.range[0]), float(v.range[1])]}

    values: dict[int, dict[str, Any]] = {}
    for v in graph.values():
        values[id(v)] = value(v)
    data = {
        "format": FORMAT,
        "name": graph.name,
        "values": list(values.values()),
        "inputs": [v.name for v in graph.inputs],
        "outputs": [v.name for v in graph.outputs],
        "output_batch_axes": graph.output_batch_axes,
        "nodes": [{"op": n.op.value, "name": n.name,
                   "inputs": [None if v is None else v.name for v in n.inputs],
                   "outputs": [v.name for v in n.outputs], "attrs": attr(n.attrs)} for n in graph.nodes],
    }
    folder = Path(folder)
    (folder / GRAPH_JSON).write_text(json.dumps(data, indent=1) + "\n")
    np.savez_compressed(folder / GRAPH_NPZ, **arrays)


def load_graph(folder: str | Path) -> Graph:
    """The graph ``save_graph`` wrote into ``folder``."""
    folder = Path(folder)
    if not (folder / GRAPH_JSON).exists():
        raise UsageError(f"{folder}: no {GRAPH_JSON} (an output of an older fpgac?): compile the model again")
    try:
        data = json.loads((folder / GRAPH_JSON).read_text())
        with np.load(folder / GRAPH_NPZ) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as e:
        raise UsageError(f"{folder}: cannot read its {GRAPH_JSON}/{GRAPH_NPZ} ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise UsageError(f"{folder / GRAPH_JSON}: not a graph of format {FORMAT} (written by another fpgac?)")

    def array(key: str) -> np.ndarray:
        a = arrays[key]
        a.setflags(write=False)
        return a

    def attr(v: Any) -> Any:
        if isinstance(v, list):
            return [attr(x) for x in v]
        if not isinstance(v, dict):
            return v
        ((tag, body),) = v.items()
        if tag == "enum":
            return _ENUMS[body[0]](body[1])
        if tag == "type":
            return parse_type(body)
        if tag == "array":
            return array(body)
        if tag == "tuple":
            return tuple(attr(x) for x in body)
        if tag == "dict":
            return {k: attr(x) for k, x in body.items()}
        if tag == "table":
            return Table.from_description(body, array(body["values"]))
        raise UsageError(f"{folder / GRAPH_JSON}: unknown attribute form {tag!r}")

    graph = Graph(data["name"])
    values: dict[str, Value] = {}
    for v in data["values"]:
        sparsity = None if v["sparsity"] is None else Sparsity(array(v["sparsity"]))
        value = Value(v["name"], TensorType(parse_type(v["dtype"]), tuple(v["shape"]), sparsity),
                      None if v["data"] is None else array(v["data"]))
        value.range = None if v["range"] is None else tuple(v["range"])
        values[value.name] = value
        graph.unique_name(value.name)  # registers the name
    for n in data["nodes"]:
        name = n["name"] if n["name"] in values else graph.unique_name(n["name"])  # a node may share its output's name
        node = Node(Op(n["op"]), name, [None if k is None else values[k] for k in n["inputs"]],
                    [values[k] for k in n["outputs"]], attr(n["attrs"]))
        for out in node.outputs:
            out.producer = node
        graph.nodes.append(node)
    graph.inputs = [values[k] for k in data["inputs"]]
    graph.outputs = [values[k] for k in data["outputs"]]
    graph.output_batch_axes = {k: int(a) for k, a in data["output_batch_axes"].items()}
    return graph
