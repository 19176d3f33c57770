"""Backends: a quantized graph in, a design with its own testbench out (see ``common``).

``resolve_options(target, options)`` checks a target's options and fills in its defaults (before
any work is done); ``write(graph, out, target)`` writes the design atomically (a temporary
directory renamed into place, so a failure leaves no half-written output); ``verify(out)`` builds
and runs the design's testbench, compares it bit for bit with the golden model, and saves the
report in ``OUT/verify.json``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..ir import Graph, load_graph, save_graph
from ..provenance import now
from .common import (
    MANIFEST,
    VECTORS,
    VERIFY_REPORT,
    BackendError,
    Report,
    Vectors,
    compare,
    json_default,
    load_vectors,
    make_vectors,
    read_manifest,
    save_vectors,
    write_manifest,
)

__all__ = ["TARGETS", "BackendError", "Report", "Vectors", "make_vectors", "resolve_options", "verify", "write"]

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


def resolve_options(target: str, options: dict[str, Any]) -> dict[str, Any]:
    """``target``'s options as its design will use them: checked (a UsageError names the bad
    one), defaults filled in. Cheap: call it before calibration and the rest."""
    return _backend(target).options(**options)


def write(graph: Graph, out: str | Path, target: str, vectors: Vectors, *, record: dict[str, Any] | None = None,
          provenance: dict[str, Any] | None = None, **options: Any) -> Path:
    """Write ``graph`` as a ``target`` design with ``vectors`` into ``out`` (replacing an old output).

    A directory that exists and is not an fpgac output (no manifest), and is not empty, is
    refused rather than overwritten. ``record`` (options as given and resolved, including the
    quantization's) and ``provenance`` (the model and data with their hashes, the command) go
    into the manifest beside the tool versions.
    """
    backend = _backend(target)
    resolved = backend.options(**options)
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).exists())):
        raise UsageError(f"{out} exists and is not an fpgac output directory: give a new or empty -o directory")
    record = record or {"given": dict(options), "resolved": resolved}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:12]}"
    tmp.mkdir()  # not mkdtemp: the output gets the usual permissions (umask), not private ones
    try:
        extra = backend.write(graph, tmp, vectors, **resolved) or {}
        save_graph(graph, tmp)  # the quantized graph: `fpgac run OUT` and `fpgac inspect OUT` read it
        save_vectors(tmp / VECTORS, vectors)
        write_manifest(tmp, target, graph, record, extra, provenance)
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


def check_verify_options(out: str | Path, options: dict[str, Any]) -> str:
    """Refuse a verify option ``OUT``'s target does not take (``--simulator`` on a xilinx design);
    returns the target. Reads only the manifest: call it before any work."""
    manifest = read_manifest(Path(out))
    target = manifest["target"]
    accepted = getattr(_backend(target), "VERIFY_OPTIONS", ())
    for key in options:
        if key not in accepted:
            flag = "--" + key.replace("_", "-")
            takers = [t for t in TARGETS if key in getattr(_backend_or_none(t), "VERIFY_OPTIONS", ())]
            raise UsageError(f"{flag} applies to {' or '.join(takers) or 'no'} designs; {out} is a {target} design")
    return target


def _backend_or_none(target: str):
    try:
        return _backend(target)
    except UsageError:
        return None


def verify(out: str | Path, vectors: int | None = None,
           progress: Callable[[int, int], None] | None = None, *, keep_build: bool = False, **options: Any) -> Report:
    """Build and run the testbench in ``out`` on its first ``vectors`` test vectors (all by default).

    The report is also saved as ``OUT/verify.json``. Builds happen outside ``out`` (a temporary
    folder, or the simulator cache of the amaranth target) unless ``keep_build`` keeps them in
    ``OUT/build``.
    """
    out = Path(out)
    check_verify_options(out, options)
    manifest = read_manifest(out)
    backend = _backend(manifest["target"])
    stored = load_vectors(out / VECTORS)
    n = stored.n if vectors is None else vectors
    if n < 1:
        raise UsageError(f"--vectors must be at least 1, not {n}")
    if n > stored.n:
        raise UsageError(f"{out} holds {stored.n} test vectors, not {n}: compile again with --vectors {n}")
    date, start = now(), time.perf_counter()
    with _build_dir(out, keep_build) as build_dir:
        produced, extra = backend.run(out, manifest, stored.head(n), n, progress=progress, build_dir=build_dir,
                                      **options)
    if len(produced) != len(manifest["outputs"]):
        raise BackendError(f"the testbench produced {len(produced)} outputs, the design has {len(manifest['outputs'])}")
    report = compare(manifest["target"], manifest["outputs"], stored.head(n), produced, extra)
    report.seconds, report.date = time.perf_counter() - start, date
    _save_report(out / VERIFY_REPORT, report)
    return report


@contextlib.contextmanager
def _build_dir(out: Path, keep: bool) -> Iterator[Path]:
    """Where a testbench is built: ``OUT/build`` (emptied first) when kept, else a temporary folder."""
    if keep:
        build = out / "build"
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir()
        yield build.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="fpgac-build-") as tmp:
        yield Path(tmp)


def _save_report(path: Path, report: Report) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps(report.to_json(), indent=2, default=json_default) + "\n")
    tmp.replace(path)
