"""The CPU target (``--target cpu``): the quantized network as one integer-only C99 header and source.

``write`` emits ``model.h`` and ``model.c`` (no malloc, no float on the hot path, weights
``static const``), a testbench ``tb.c`` with its input file, a ``Makefile`` and a README with
the API and the memory every buffer takes. ``run`` compiles the testbench with gcc
(``-std=c99 -O2 -Wall -Wextra -Werror -pedantic``) in a temporary directory and returns the
output mantissas it prints; ``fpgac verify`` compares them bit for bit with the golden model.

How the C is organized is in :mod:`.program` (buffers, entry points), :mod:`.layers` (one
emitter per op) and :mod:`.arith` (requantization and lookup tables); ``runtime.h`` is the
hand-written part copied into every ``model.c``.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir import Graph
from fpgac.provenance import program_version

from ..common import BackendError, Vectors, ports
from .layers import EMITTERS, REFUSED
from .program import PREFIX, Program
from .readme import readme
from .testbench import (
    CFLAGS,
    INPUTS,
    build,
    makefile,
    parse_outputs,
    tb_source,
    write_inputs,
)

__all__ = ["write", "run", "generate", "options", "CFLAGS", "VERIFY_OPTIONS"]


def runtime_source() -> str:
    """The hand-written runtime (``runtime.h``) that every model.c starts with."""
    return resources.files(__package__).joinpath("runtime.h").read_text()


def generate(graph: Graph) -> Program:
    """The C program for a quantized ``graph`` (raises UnsupportedError naming the node it cannot build)."""
    ports(graph)  # refuses an unquantized graph with a clear message
    program = Program(graph)
    program.build(EMITTERS, REFUSED)
    return program


#: what verify takes for this target besides the vector count: the compiler and extra flags
#: (``api.verify(out, cc="clang", cflags="-m32")``; the command line uses the defaults)
VERIFY_OPTIONS = ("cc", "cflags")


def options(**given: Any) -> dict[str, Any]:
    """The cpu target has no options: anything given is refused before any work is done."""
    if given:
        raise UsageError(f"the cpu target takes no option {sorted(given)[0]!r}")
    return {}


def write(graph: Graph, out: Path, vectors: Vectors | None, **given: Any) -> dict[str, Any]:
    """Write model.h, model.c, tb.c, the testbench inputs, a Makefile and README.md into ``out``."""
    options(**given)
    program = generate(graph)
    out = Path(out)
    inputs, outputs = ports(graph)
    (out / f"{PREFIX}.h").write_text(program.header())
    (out / f"{PREFIX}.c").write_text(program.source(runtime_source()))
    (out / "tb.c").write_text(tb_source(inputs, outputs))
    (out / "Makefile").write_text(makefile())
    if vectors is not None:
        write_inputs(out / INPUTS, vectors.input_mantissas)
    memory = program.memory()
    (out / "README.md").write_text(readme(program, inputs, outputs, memory))
    return {"memory_bytes": memory}


def run(out: Path, manifest: dict[str, Any], vectors: Vectors, n: int,
        progress: Callable[[int, int], None] | None = None, *, build_dir: Path | None = None, cc: str = "gcc",
        cflags: str | Sequence[str] = ()) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Build the testbench with ``cc`` (``cflags`` added to the usual ones) in ``build_dir`` (a
    temporary folder when None) and run the first ``n`` vectors."""
    out = Path(out)
    if not (out / INPUTS).exists():
        raise UsageError(f"{out}: no {INPUTS}: write the design again with test vectors")
    with contextlib.ExitStack() as stack:
        if build_dir is None:
            build_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="fpgac-cpu-")))
        start = time.perf_counter()
        exe = build(out, Path(build_dir), cc=cc, cflags=cflags)
        built = time.perf_counter() - start
        start = time.perf_counter()
        proc = subprocess.run([str(exe), str(out / INPUTS), str(n)], capture_output=True, text=True)
        ran = time.perf_counter() - start
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-10:])
        raise BackendError(f"the CPU testbench in {out} failed (exit {proc.returncode}):\n{tail}")
    produced = parse_outputs(proc.stdout, manifest["outputs"], n)
    if progress is not None:
        progress(n, n)
    memory = manifest.get("memory_bytes", {})
    extra = {"simulator": f"native build ({cc} {' '.join(CFLAGS)})", "simulator_version": program_version(cc),
             "build_seconds": round(built, 2), "run_seconds": round(ran, 3)}
    if memory:
        extra["flash_bytes"] = memory.get("flash")
        extra["ram_bytes"] = memory.get("ram")
    return produced, extra
