"""The xilinx target: a Vitis HLS project, checked by g++ C-simulation bit for bit.

``write(graph, out, vectors, io=..., part=..., clock_period=..., reuse=...)`` writes the project
(see :mod:`.project` for its files); ``run(out, manifest, vectors, n)`` compiles its testbench
with g++ against the ap_types headers and returns the output mantissas of the first ``n``
vectors. The kernels are fpgac's own templated headers (``include/``, copied into every project);
Python emits only the types, the configurations, the constant ROMs and the top function
(:mod:`.design`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir import Graph

from ..common import Vectors, ports
from .csim import simulate
from .design import IO_MODES, STREAMED, SUPPORTED, Design
from .project import INCLUDE, Options, write_project

__all__ = ["write", "run", "options", "VERIFY_OPTIONS", "Options", "Design", "INCLUDE", "SUPPORTED", "STREAMED"]

#: what ``fpgac verify`` takes for this target besides the vector count: nothing
VERIFY_OPTIONS: tuple[str, ...] = ()

#: a Xilinx part name: xc, the device, then package/speed-grade fields (xcvu13p-flga2577-2-e,
#: xc7z020clg400-1, xczu9eg-ffvb1156-2-e, xcu250-figd2104-2L-e)
_PART = re.compile(r"^xc[a-z0-9]+(-[a-z0-9]+)+$", re.IGNORECASE)


def options(**given: Any) -> dict[str, Any]:
    """The options as the project will use them: ``given`` checked, defaults filled in.

    Called before any work (calibration can take minutes), so a bad value costs nothing."""
    return dataclasses.asdict(_options(given))


def _options(options: dict[str, Any]) -> Options:
    defaults = Options()
    unknown = sorted(set(options) - {"io", "part", "clock_period", "reuse"})
    if unknown:
        raise UsageError(f"unknown xilinx option {unknown[0]!r}: the options are io, part, clock_period, reuse")
    io = options.get("io", defaults.io)
    if io not in IO_MODES:
        raise UsageError(f"io must be one of {', '.join(IO_MODES)}, not {io!r}")
    part = options.get("part", defaults.part)
    if not isinstance(part, str) or not _PART.match(part.strip()):
        raise UsageError(f"part must be a Xilinx part name such as {defaults.part!r} or 'xc7z020clg400-1', "
                         f"not {part!r}")
    period = options.get("clock_period", defaults.clock_period)
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not math.isfinite(period) or period <= 0:
        raise UsageError(f"clock_period must be a positive number of ns, not {period!r}")
    reuse = options.get("reuse", defaults.reuse)
    if isinstance(reuse, bool) or not isinstance(reuse, (int, np.integer)) or reuse < 1:
        raise UsageError(f"reuse must be an integer of at least 1, not {reuse!r}")
    return Options(io=io, part=part.strip(), clock_period=float(period), reuse=int(reuse))


def write(graph: Graph, out: Path, vectors: Vectors, **options: Any) -> dict[str, Any]:
    """Write the Vitis HLS project for the quantized ``graph`` into the empty directory ``out``."""
    opts = _options(options)
    ports(graph)  # refuses a graph that is not quantized, as every backend does
    design = Design(graph, opts.io, opts.reuse)
    write_project(design, Path(out), vectors, opts)
    return {
        "io": opts.io,
        "part": opts.part,
        "clock_period": opts.clock_period,
        "reuse": opts.reuse,
        "top": design.top,
        "weights": design.weight_count,
        "nonzero_weights": design.nonzero_count,
    }


def run(out: Path, manifest: dict[str, Any], vectors: Vectors, n: int, progress: Callable[[int, int], None] | None = None,
        *, build_dir: Path) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Compile the project's C-simulation with g++ in ``build_dir`` and run it on the first ``n`` vectors."""
    top = manifest.get("top")
    if not isinstance(top, str):
        raise UsageError(f"{out}: the manifest names no top function: not a complete xilinx project")
    produced, extra = simulate(Path(out), top, manifest["outputs"], n, Path(build_dir))
    if progress is not None:
        progress(n, n)
    return produced, extra
