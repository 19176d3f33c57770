"""Progress on long work: named steps with their time, and counters, shown only when asked for.

Library code marks its slow steps (``with progress.step("converting to Verilog"): ...``) and
says nothing unless a front end has called :func:`enable` (the CLI does, on a terminal, unless
``-q``); a step then prints ``fpgac: converting to Verilog ...`` and its time when it ends.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import TextIO

__all__ = ["enable", "disable", "enabled", "step", "counter", "status"]

_stream: TextIO | None = None
_tty = False


def enable(stream: TextIO = sys.stderr) -> None:
    """Show steps on ``stream`` (a terminal gets each step's line rewritten with its time)."""
    global _stream, _tty
    _stream = stream
    _tty = bool(getattr(stream, "isatty", lambda: False)())


def disable() -> None:
    global _stream
    _stream = None


def enabled() -> bool:
    return _stream is not None


@contextlib.contextmanager
def step(what: str) -> Iterator[None]:
    """A named step of a long job: announced when it starts, its time when it ends."""
    stream = _stream
    if stream is None:
        yield
        return
    start = time.perf_counter()
    print(f"fpgac: {what} ...", end="" if _tty else "\n", file=stream, flush=True)
    try:
        yield
    except BaseException:
        if _tty:
            print(file=stream, flush=True)
        raise
    seconds = time.perf_counter() - start
    if _tty:
        print(f" {seconds:.1f} s", file=stream, flush=True)
    else:
        print(f"fpgac: {what}: done in {seconds:.1f} s", file=stream, flush=True)


def counter(what: str, done: int, total: int) -> None:
    """``done`` of ``total`` items of a step (a bar rewritten in place on a terminal, else silent
    until the last item)."""
    stream = _stream
    if stream is None:
        return
    if _tty:
        width = 30
        filled = width * done // max(total, 1)
        end = "\n" if done >= total else ""
        print(f"\rfpgac: {what} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end=end, file=stream,
              flush=True)
    elif done >= total:
        print(f"fpgac: {what}: {done}/{total}", file=stream, flush=True)


def status(text: str, final: bool = False) -> None:
    """A state of a long job that changes (``points: 3 done, 2 running, 0 failed of 8``): one
    line rewritten in place on a terminal, a new line each time elsewhere (a CI log)."""
    stream = _stream
    if stream is None:
        return
    if _tty:
        print(f"\rfpgac: {text}\033[K", end="\n" if final else "", file=stream, flush=True)
    else:
        print(f"fpgac: {text}", file=stream, flush=True)
