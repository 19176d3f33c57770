"""Input arrays from files (``--input``, ``--calibration``) and labels, checked against a graph's inputs."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fpgac.errors import ShapeError, UsageError
from fpgac.ir import Graph

__all__ = ["Inputs", "as_mapping", "check_inputs", "read_input", "read_labels"]

#: arrays by input name, in ``graph.inputs`` order, or one array
Inputs = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]


def read_input(path: str | os.PathLike, graph: Graph) -> dict[str, np.ndarray]:
    """Read input arrays from ``.npy`` (one input) or ``.npz`` (by input name, ``x``, or the only array)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such input file")
    names = [v.name for v in graph.inputs]
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
        else:
            arrays = {"": np.load(p, allow_pickle=False)}
    except (OSError, ValueError, EOFError) as err:
        raise UsageError(f"{p}: not a readable .npy/.npz array file ({err})") from None
    if len(names) == 1:
        if len(arrays) == 1:
            (array,) = arrays.values()
        elif names[0] in arrays or "x" in arrays:
            array = arrays.get(names[0], arrays.get("x"))
        else:
            wanted = repr(names[0]) + (" or 'x'" if names[0] != "x" else "")
            raise UsageError(f"{p}: holds arrays {', '.join(sorted(arrays))}; name the one to use {wanted}")
        result = {names[0]: _as_float(array, names[0], p)}
    else:
        missing = [n for n in names if n not in arrays]
        if missing:
            raise UsageError(f"{p}: the model has inputs {', '.join(names)}; an .npz with those names is needed "
                             f"(missing {missing[0]!r})")
        result = {n: _as_float(arrays[n], n, p) for n in names}
    check_inputs(result, graph, str(p))
    return result


def check_inputs(inputs: Mapping[str, np.ndarray], graph: Graph, where: str) -> None:
    """Each array must be a batch of the model's per-sample input shape, ``(N, *shape)``, and all
    inputs must have the same batch: a ShapeError naming ``where`` (a file) and the shapes."""
    batch = None
    for value in graph.inputs:
        if value.name not in inputs:
            raise ShapeError(f"{where}: no array for input {value.name!r}")
        shape = np.shape(inputs[value.name])
        if len(shape) != value.type.rank + 1 or tuple(shape[1:]) != tuple(value.type.shape):
            wanted = ", ".join(["N", *map(str, value.type.shape)])
            raise ShapeError(f"{where}: input {value.name!r} has shape {tuple(shape)}, expected ({wanted}): a batch "
                             f"of N samples of the model's per-sample shape {list(value.type.shape)}")
        if batch is not None and shape[0] != batch[1]:
            raise ShapeError(f"{where}: input {value.name!r} has {shape[0]} samples, input {batch[0]!r} has {batch[1]}")
        batch = batch or (value.name, shape[0])


def _as_float(array: np.ndarray, name: str, path: Path) -> np.ndarray:
    if array.dtype.kind not in "fiub":
        raise ShapeError(f"{path}: input {name!r} has dtype {array.dtype}, not numbers")
    return np.asarray(array, dtype=np.float64)


def as_mapping(inputs: Inputs, graph: Graph) -> dict[str, np.ndarray]:
    names = [v.name for v in graph.inputs]
    if isinstance(inputs, Mapping):
        return {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return {n: np.asarray(a, dtype=np.float64) for n, a in zip(names, inputs)}
    if len(names) != 1:
        raise ShapeError(f"the model has {len(names)} inputs ({', '.join(names)}): give calibration arrays by name")
    return {names[0]: np.asarray(inputs, dtype=np.float64)}


def read_labels(path: str | os.PathLike) -> np.ndarray | None:
    """The labels an .npz keeps beside its inputs (an array named ``y`` or ``labels``), or None."""
    p = Path(path)
    if p.suffix != ".npz" or not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as archive:
            for name in ("y", "labels"):
                if name in archive.files:
                    return np.asarray(archive[name])
    except (OSError, ValueError, EOFError):
        return None
    return None

