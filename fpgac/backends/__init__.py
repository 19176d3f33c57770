"""Backends: a quantized graph in, a design with its own testbench out (see ``common``).

``write(graph, out, target)`` writes the design atomically (a temporary directory renamed into
place, so a failure leaves no half-written output); ``verify(out)`` builds and runs the design's
testbench and compares it bit for bit with the golden model.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..ir import Graph, load_graph, save_graph
from .common import (
    MANIFEST,
    VECTORS,
    BackendError,
    Report,
    Vectors,
    compare,
    load_vectors,
    make_vectors,
    read_manifest,
    save_vectors,
    write_manifest,
)

__all__ = ["TARGETS", "BackendError", "Report", "Vectors", "make_vectors", "verify", "write"]

log = logging.getLogger("fpgac")

#: ``--target`` name -> backend module
TARGETS = {
    "xilinx": "fpgac.backends.hls",
    "amaranth": "fpgac.backends.amaranth",
    "cpu": "fpgac.backends.cpu",
}


def _backend(target: str):
    if target not in TARGETS:
        raise UsageError(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")
    try:
        module = importlib.import_module(TARGETS[target])
    except ModuleNotFoundError as err:
        if err.name and err.name.startswith("fpgac.backends."):
            module = None
        else:
            raise UsageError(f"target {target!r} needs the Python package {err.name!r}: pip install {err.name}") from None
    if not (hasattr(module, "write") and hasattr(module, "run")):
        raise UsageError(f"target {target!r} is not available in this version of fpgac")
    return module


def write(graph: Graph, out: str | Path, target: str, vectors: Vectors, **options: Any) -> Path:
    """Write ``graph`` as a ``target`` design with ``vectors`` into ``out`` (replacing an old output).

    A directory that exists and is not an fpgac output (no manifest), and is not empty, is
    refused rather than overwritten.
    """
    backend = _backend(target)
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).exists())):
        raise UsageError(f"{out} exists and is not an fpgac output directory: give a new or empty -o directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:12]}"
    tmp.mkdir()  # not mkdtemp: the output gets the usual permissions (umask), not private ones
    try:
        extra = backend.write(graph, tmp, vectors, **options) or {}
        save_graph(graph, tmp)  # the quantized graph: `fpgac run OUT` and `fpgac inspect OUT` read it
        save_vectors(tmp / VECTORS, vectors)
        write_manifest(tmp, target, graph, options, extra)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            out.rename(old / "out")
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def load_design(out: str | Path) -> tuple[Graph, dict[str, Any]]:
    """The quantized graph an output directory was built from, and its manifest."""
    manifest = read_manifest(Path(out))
    return load_graph(out), manifest


def verify(out: str | Path, vectors: int | None = None,
           progress: Callable[[int, int], None] | None = None, **options: Any) -> Report:
    """Build and run the testbench in ``out`` on its first ``vectors`` test vectors (all by default)."""
    out = Path(out)
    manifest = read_manifest(out)
    backend = _backend(manifest["target"])
    stored = load_vectors(out / VECTORS)
    n = stored.n if vectors is None else vectors
    if n < 1:
        raise UsageError(f"--vectors must be at least 1, not {n}")
    if n > stored.n:
        raise UsageError(f"{out} holds {stored.n} test vectors, not {n}: compile again with --vectors {n}")
    start = time.perf_counter()
    produced, extra = backend.run(out, manifest, stored.head(n), n, progress=progress, **options)
    extra = {**extra, "seconds": f"{time.perf_counter() - start:.1f}"}
    if len(produced) != len(manifest["outputs"]):
        raise BackendError(f"the testbench produced {len(produced)} outputs, the design has {len(manifest['outputs'])}")
    return compare(manifest["target"], manifest["outputs"], stored.head(n), produced, extra)
