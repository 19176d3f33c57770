"""A design's stages on disk: ``stages.json`` (kinds, types, scalars, windows) and ``stages.npz``
(matrices, tables), written by ``fpgac compile`` and read by ``design.py`` and ``fpgac report``
to build the same design again."""

from __future__ import annotations

import importlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ...ir import parse_type
from ...ir.tables import Table

# the module, by name: the package's own ``lower`` is the function of that name
L = importlib.import_module(".lower", __package__)

__all__ = ["load_stages", "save_stages"]

_ARRAYS = ("matrix", "bias", "indices", "slopes", "h0", "c0", "weights", "reciprocals")
_TABLES = ("table", "exp", "reciprocal", "log", "sigmoid", "tanh", "tanh_cell")
_TYPES = ("b_type", "gate_type", "state_type", "cell_type")


def save_stages(stages: Sequence[L.Stage], folder: Path) -> None:
    """``stages.json`` (kinds, types, scalars, windows) and ``stages.npz`` (matrices, tables)."""
    described, arrays = [], {}
    for k, s in enumerate(stages):
        entry = {"stage": type(s).__name__, "node": s.node, "in_type": str(s.in_type), "out_type": str(s.out_type),
                 "n_in": s.n_in, "n_out": s.n_out}
        for name, value in vars(s).items():
            if name in entry:
                continue
            if name in _ARRAYS and value is None:
                entry[name] = None
            elif name in _ARRAYS:
                arrays[f"{k}_{name}"] = np.asarray(value)
            elif name in _TABLES and value is None:
                entry[name] = None
            elif name in _TABLES:
                arrays[f"{k}_{name}"] = np.asarray(value.values)
                entry[name] = value.describe()
            elif name in ("windows", "groups") and not isinstance(value, int):  # a Conv's groups is a count
                entry[name] = [list(map(int, w)) for w in value]
            elif name in ("sources", "outputs"):
                entry[name] = [int(i) for i in value]
            elif name in _TYPES:
                entry[name] = None if value is None else str(value)
            elif name == "op":
                entry[name] = value.value  # a BinaryOp
            elif name == "types":
                entry[name] = [str(t) for t in value]
            else:
                entry[name] = value
        described.append(entry)
    (folder / "stages.json").write_text(json.dumps(described, indent=1) + "\n")
    np.savez_compressed(folder / "stages.npz", **arrays)


def load_stages(folder: Path) -> list[L.Stage]:
    described = json.loads((folder / "stages.json").read_text())
    stages = []
    with np.load(folder / "stages.npz") as arrays:
        for k, entry in enumerate(described):
            kind = entry.pop("stage")
            cls = getattr(L, kind, None) or _stream_stage(kind)
            entry["in_type"], entry["out_type"] = parse_type(entry["in_type"]), parse_type(entry["out_type"])
            for name in _ARRAYS:
                if f"{k}_{name}" in arrays.files:
                    entry[name] = arrays[f"{k}_{name}"]
            for name in _TABLES:
                if entry.get(name) is not None:
                    entry[name] = Table.from_description(entry[name], arrays[f"{k}_{name}"])
            for name in ("windows", "groups"):
                if isinstance(entry.get(name), list):
                    entry[name] = [tuple(w) for w in entry[name]]
            entry["sources"] = tuple(entry.get("sources", ()))
            entry["outputs"] = tuple(entry.get("outputs", ()))
            for name in _TYPES:
                if entry.get(name) is not None:
                    entry[name] = parse_type(entry[name])
            if "types" in entry:
                entry["types"] = [parse_type(t) for t in entry["types"]]
            stages.append(cls(**entry))
    return stages


def _stream_stage(kind: str) -> type:
    from . import stream  # a stage of --io stream (that module builds on this one)

    return getattr(stream, kind)
