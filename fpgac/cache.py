"""fpgac's cache of build products outside output directories (simulator executables).

A Verilator build of a large design takes a minute and hundreds of megabytes; the executable it
makes is a few megabytes. ``fpgac verify`` keeps that executable here, under a key made from
everything that went into it, so verifying the same design again (or another output holding the
same Verilog) skips the build, and output directories stay small.

Where: ``$FPGAC_CACHE_DIR`` if set (``off`` disables the cache), else ``$XDG_CACHE_HOME/fpgac``,
else ``~/.cache/fpgac``. Size: at most ``$FPGAC_CACHE_MB`` megabytes (default 2048); the entries
used least recently are removed first.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

__all__ = ["cache_root", "key", "lookup", "store"]

log = logging.getLogger(__name__)

DEFAULT_MB = 2048


def cache_root() -> Path | None:
    """The cache folder, or None when ``FPGAC_CACHE_DIR=off``."""
    configured = os.environ.get("FPGAC_CACHE_DIR")
    if configured is not None:
        return None if configured.strip().lower() in ("", "off", "0", "no") else Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fpgac"


def key(*parts: str | bytes | Path) -> str:
    """A hex key over ``parts``: strings and bytes as they are, a Path by its file's bytes."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.read_bytes() if isinstance(part, Path) else part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:24]


def _entry(kind: str, name: str) -> Path | None:
    root = cache_root()
    return None if root is None else root / kind / name


def lookup(kind: str, name: str) -> Path | None:
    """The folder of a cached entry (touched, as it is used), or None."""
    entry = _entry(kind, name)
    if entry is None or not (entry / ".complete").exists():
        return None
    try:
        os.utime(entry / ".complete")
    except OSError:
        pass
    return entry


def store(kind: str, name: str, files: Iterable[Path]) -> Path | None:
    """Copy ``files`` into a new entry (atomically: a half-written entry is never seen); None when
    the cache is off or cannot be written (a warning, never an error: the cache only saves time)."""
    entry = _entry(kind, name)
    if entry is None:
        return None
    tmp = entry.parent / f".{name}.{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        for f in files:
            shutil.copy2(f, tmp / f.name)
        (tmp / ".complete").touch()
        try:
            tmp.rename(entry)
        except OSError:  # another process stored the same entry first: theirs is as good
            shutil.rmtree(tmp, ignore_errors=True)
        _evict(entry.parent.parent)
        return entry if (entry / ".complete").exists() else None
    except OSError as err:
        shutil.rmtree(tmp, ignore_errors=True)
        log.warning("could not write the build cache %s (%s); set FPGAC_CACHE_DIR to another folder, or to "
                    "'off'", entry.parent, err)
        return None


def _evict(root: Path) -> None:
    """Remove the least recently used entries until the cache fits its size limit."""
    try:
        limit = int(os.environ.get("FPGAC_CACHE_MB", DEFAULT_MB)) * (1 << 20)
    except ValueError:
        limit = DEFAULT_MB * (1 << 20)
    entries = []
    for marker in root.glob("*/*/.complete"):
        folder = marker.parent
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        entries.append((marker.stat().st_mtime, size, folder))
    total = sum(size for _, size, _ in entries)
    for _, size, folder in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        if time.time() - folder.stat().st_mtime < 1:
            continue  # just written (perhaps in use by another process)
        shutil.rmtree(folder, ignore_errors=True)
        total -= size
