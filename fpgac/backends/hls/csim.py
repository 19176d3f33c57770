"""C-simulation with g++: build the project's testbench against the ap_types headers and run it.

Vitis is not needed: the ``ap_fixed`` headers hls4ml ships are the ones Vitis HLS uses, and
``hls_stream.h`` models a stream as a FIFO, so the testbench's outputs are what Vitis's
C-simulation (``csim_design``) gives.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgac import cache, progress
from fpgac.provenance import program_version
from .aptypes import ap_types_include

from ..common import BackendError, Port
from .project import testbench_name

__all__ = ["CXXFLAGS", "Build", "compile_testbench", "run_testbench", "our_warnings", "simulate"]

log = logging.getLogger("fpgac")

#: how the testbench is compiled (plus -isystem <ap_types> -I firmware). Every warning of -Wall
#: -Wextra is on but one: -Wunknown-pragmas would flag each ``#pragma HLS``, which is for Vitis.
CXXFLAGS = ("-std=c++14", "-O2", "-Wall", "-Wextra", "-Wno-unknown-pragmas")

_WARNING = re.compile(r"^(?P<file>[^:\s][^:]*):\d+(:\d+)?: warning: ")


@dataclass
class Build:
    exe: Path
    seconds: float
    stderr: str  # the compiler's diagnostics
    warnings: list[str]  # those located in the project's own files


def our_warnings(stderr: str, out: Path) -> list[str]:
    """The compiler's warnings located in the project's own files (not in the ap_types headers,
    whose warnings surface at -O2 wherever their code is inlined)."""
    out = Path(out).resolve()
    found = []
    for line in stderr.splitlines():
        match = _WARNING.match(line)
        if match and Path(out, match["file"]).resolve().is_relative_to(out):
            found.append(line)
    return found


#: what every C-simulation includes before its own code: precompiled once (see ``precompiled_header``)
_PCH_SOURCE = "".join(f"#include {h}\n" for h in ("<cstdint>", "<cstdlib>", "<fstream>", "<iomanip>", "<iostream>",
                                                  "<string>", "<vector>", '"ap_int.h"', '"ap_fixed.h"',
                                                  '"hls_stream.h"'))


def precompiled_header(gxx: str, flags: list[str]) -> Path | None:
    """The ap_types and standard headers precompiled with exactly ``flags``, in fpgac's cache
    (built once, 3 s; it halves each C-simulation's compile time). Returns the header to pass to
    ``-include`` (its ``.gch`` beside it), or None when the cache is off or the build fails: g++
    then parses the headers as usual, which gives the same program."""
    name = "gxx-" + cache.key(program_version("g++") or "", gxx, " ".join(flags), _PCH_SOURCE,
                              Path(ap_types_include(), "ap_fixed.h"), Path(ap_types_include(), "ap_int.h"))
    entry = cache.lookup("pch", name)
    if entry is None:
        root = cache.cache_root()
        if root is None:
            return None
        with tempfile.TemporaryDirectory(prefix="fpgac-pch-") as tmp:
            header = Path(tmp) / "fpgac_csim.h"
            header.write_text(_PCH_SOURCE)
            built = subprocess.run([gxx, *flags, "-x", "c++-header", str(header), "-o", f"{header}.gch"],
                                   capture_output=True, text=True)
            if built.returncode != 0:
                log.debug("no precompiled header: %s", built.stderr.strip()[-500:])
                return None
            entry = cache.store("pch", name, [header, Path(f"{header}.gch")])
    return None if entry is None else entry / "fpgac_csim.h"


def compile_testbench(out: Path, top: str, build_dir: Path, extra_flags: tuple[str, ...] = ()) -> Build:
    """g++ the testbench and the top function into ``build_dir/csim``; BackendError on failure."""
    gxx = shutil.which("g++")
    if gxx is None:
        raise BackendError("g++ is not on PATH: the xilinx target's C-simulation needs it (apt-get install g++)")
    build_dir = Path(build_dir)
    exe = build_dir / "csim"
    flags = [*CXXFLAGS, *extra_flags, "-isystem", str(ap_types_include())]
    header = precompiled_header(gxx, flags)
    base = [gxx, *flags, *(["-include", str(header)] if header else []), "-Ifirmware"]
    sources = [testbench_name(top), f"firmware/{top}.cpp"]
    start = time.perf_counter()
    # the two translation units compile concurrently (the firmware's is the slow one), then link
    logs = [build_dir / f"unit{i}.log" for i in range(len(sources))]
    procs = []
    for i, src in enumerate(sources):
        with open(logs[i], "w") as log_file:  # files, not pipes: ap_types' warnings would fill a pipe
            procs.append(subprocess.Popen([*base, "-c", src, "-o", str(build_dir / f"unit{i}.o")], cwd=out,
                                          stdout=log_file, stderr=subprocess.STDOUT))
    results = [(p.wait(), log.read_text()) for p, log in zip(procs, logs)]
    stderr = "".join(err for _, err in results)
    failed = next((rc for rc, _ in results if rc != 0), 0)
    if not failed:
        link = subprocess.run([gxx, *[str(build_dir / f"unit{i}.o") for i in range(len(sources))], "-o", str(exe)],
                              capture_output=True, text=True)
        failed, stderr = link.returncode, stderr + link.stderr
    seconds = time.perf_counter() - start
    if failed:
        errors = [line for line in stderr.splitlines() if "error" in line] or stderr.splitlines()
        raise BackendError(f"{out}: the C-simulation does not compile (g++ exit {failed}): "
                           + " | ".join(errors[:5]))
    warnings = our_warnings(stderr, out)
    for line in warnings:
        log.warning("g++: %s", line)
    return Build(exe, seconds, stderr, warnings)


def run_testbench(out: Path, build: Build, outputs: list[Port], n: int) -> tuple[list[np.ndarray], float]:
    """Run the compiled testbench on the first ``n`` vectors of ``out/tb_data``: the output mantissas."""
    work = build.exe.parent
    mantissas = work / "mantissas.txt"
    cmd = [str(build.exe), str(Path(out).resolve() / "tb_data"), str(work / "csim_results.log"), str(n), str(mantissas)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode not in (0, 1) or not mantissas.exists():
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:]
        raise BackendError(f"{out}: the C-simulation failed (exit {proc.returncode}): {' | '.join(tail)}")
    lines = mantissas.read_text().splitlines()
    sizes = [p.size for p in outputs]
    if len(lines) != n:
        raise BackendError(f"{out}: the C-simulation produced {len(lines)} vectors, not {n}")
    flat = np.array([[int(v) for v in line.split()] for line in lines], dtype=np.int64).reshape(n, -1)
    if flat.shape[1] != sum(sizes):
        raise BackendError(f"{out}: the C-simulation produced {flat.shape[1]} output values a vector, not {sum(sizes)}")
    produced, offset = [], 0
    for port, size in zip(outputs, sizes):
        produced.append(flat[:, offset:offset + size].reshape(n, *port.shape))
        offset += size
    return produced, seconds


def simulate(out: Path, top: str, outputs: list[Port], n: int, build_dir: Path) -> tuple[list[np.ndarray], dict]:
    """Compile and run the C-simulation in ``build_dir`` (``out`` is left as it is)."""
    with progress.step("compiling the C-simulation with g++"):
        build = compile_testbench(out, top, build_dir)
    with progress.step(f"running the C-simulation on {n} vectors"):
        produced, seconds = run_testbench(out, build, outputs, n)
    return produced, {"simulator": "g++ C-simulation (" + " ".join(CXXFLAGS) + ")",
                      "simulator_version": program_version("g++"),
                      "compiler_warnings": len(build.warnings),
                      "build_seconds": round(build.seconds, 1), "run_seconds": round(seconds, 2)}
