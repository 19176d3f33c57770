"""The Python API: what the command line calls, and what users script against.

``load`` reads a model and runs the canonicalization pipeline (named, in order, in
``CANONICALIZE``), so that the IR every later step sees has BatchNorm folded, biases fused and
no-op reshapes gone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from fpgac.errors import ShapeError, UsageError
from fpgac.frontend import load_onnx
from fpgac.ir import Graph, Op, verify
from fpgac.passes import FoldBatchNorm, FuseBias, Pass, PassManager, SimplifyReshapes
from fpgac.sim import run_float

__all__ = ["CANONICALIZE", "load", "run", "read_input", "layer_table", "LayerRow"]

log = logging.getLogger(__name__)

#: the passes every loaded model goes through, in order
CANONICALIZE: tuple[Pass, ...] = (SimplifyReshapes(), FoldBatchNorm(), FuseBias(), SimplifyReshapes())


def load(
    model: str | os.PathLike,
    *,
    outputs: Sequence[str] | None = None,
    dump: Callable[[str, Graph], None] | None = None,
) -> Graph:
    """Read an ONNX model into canonical float IR. ``dump(step, graph)`` sees every step."""
    graph = load_onnx(model, outputs=outputs)
    verify(graph)
    if dump is not None:
        dump("frontend", graph)
    PassManager(CANONICALIZE, verify_each=True, dump=dump).run(graph)
    return graph


def run(graph: Graph, inputs: np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray], *,
        float: bool = True) -> list[np.ndarray]:
    """Run the model on a batch: one array per graph output, batch first (or where ONNX had it)."""
    if not float:
        raise UsageError(
            "the bit-exact fixed-point golden model arrives with quantization (not in this version): "
            "run with float=True (--float on the command line)"
        )
    return run_float(graph, inputs)


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
        return {names[0]: _as_float(array, names[0], p)}
    missing = [n for n in names if n not in arrays]
    if missing:
        raise UsageError(f"{p}: the model has inputs {', '.join(names)}; an .npz with those names is needed "
                         f"(missing {missing[0]!r})")
    return {n: _as_float(arrays[n], n, p) for n in names}


def _as_float(array: np.ndarray, name: str, path: Path) -> np.ndarray:
    if array.dtype.kind not in "fiub":
        raise ShapeError(f"{path}: input {name!r} has dtype {array.dtype}, not numbers")
    return np.asarray(array, dtype=np.float64)


@dataclass(frozen=True)
class LayerRow:
    """One row of ``fpgac inspect``: a layer, its op, its output shape and its parameter count."""

    name: str
    op: str
    shape: tuple[int, ...]
    params: int


def layer_table(graph: Graph) -> list[LayerRow]:
    rows = []
    for node in graph.nodes:
        op = node.op.value
        if node.op is Op.ACTIVATION or node.op is Op.POOL or node.op is Op.GLOBAL_POOL:
            op = f"{op}({node.attrs['kind'].value})"
        params = sum(v.type.size for v in node.inputs if v is not None and v.is_const)
        rows.append(LayerRow(node.name, op, node.output.type.shape, params))
    return rows
