"""The report's data model: one dictionary (``report.json``, schema ``fpgac-report-1``) gathered
from a compiled design, its test vectors and verify results, and the open toolchain.

Every hardware figure carries where it came from (``sources``): measured by yosys/nextpnr on the
emitted Verilog (amaranth), estimated by synthesizing fpgac's own RTL of the same quantized graph
(xilinx: Vitis HLS is not run here and will differ), or measured on this machine (cpu).
"""

from __future__ import annotations

import datetime
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__, api, devices
from ..backends.common import VECTORS, load_vectors, read_manifest
from ..devices import ECP5_DEVICES
from ..errors import UsageError
from ..inputs import read_input
from ..ir import FixedType, Op
from ..ir.fixed import to_float
from ..ir.semantics.interpret import evaluate_fixed
from ..layers import layer_table
from ..sim import run_fixed
from .synth import Resources, nextpnr, pnr_netlist, synthesize, xilinx_family

__all__ = ["SCHEMA", "collect"]

SCHEMA = "fpgac-report-1"
#: above this many LUT4-equivalents, place and route runs only when asked for (--pnr)
AUTO_PNR_LUTS = 20_000
WEIGHTED = (Op.DENSE, Op.CONV, Op.LSTM, Op.GRU)
BINS = 21


def _dtype(v) -> FixedType | None:
    t = getattr(getattr(v, "type", None), "dtype", None)
    return t if isinstance(t, FixedType) else None


def _type_text(v) -> str | None:
    return None if v is None else str(v.type.dtype)


def _layers(graph) -> list[dict[str, Any]]:
    """Per IR node: op, shapes, types, parameters, non-zeros, multiplies, bit-operations."""
    rows = {r.name: r for r in layer_table(graph)}
    out = []
    for node in graph.nodes:
        row = rows.get(node.name)
        data_in = next((v for v in node.inputs if v is not None and not v.is_const), None)
        consts = [v for v in node.inputs[1:] if v is not None and v.is_const]
        weight = consts[0] if consts and node.op in WEIGHTED else None
        bias = consts[1] if len(consts) > 1 and node.op in WEIGHTED else None
        multiplies = row.multiplies if row else 0
        out.append({
            "name": node.name,
            "op": row.op if row else node.op.value,
            "input_shape": list(data_in.type.shape) if data_in is not None else [],
            "output_shape": list(node.output.type.shape),
            "types": {"input": _type_text(data_in), "weight": _type_text(weight), "bias": _type_text(bias),
                      "accumulator": str(node.output.type.dtype) if node.op in WEIGHTED else None,
                      "output": str(node.output.type.dtype)},
            "params": row.params if row else 0,
            "nonzeros": row.nonzeros if row else 0,
            "multiplies": multiplies,
            "bit_operations": row.bit_operations if row else 0,
            "hardware": None,
        })
    return out


def _verify(out: Path) -> dict[str, Any] | None:
    import json

    path = out / "verify.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except ValueError:
        return None


def _amaranth_units(out: Path, manifest: dict[str, Any], graph=None):
    """The design's components with their module names, rebuilt from the stored stages."""
    from ..backends.amaranth import design_from
    from ..backends.amaranth.build import units
    from ..backends.amaranth.lower import lower
    from ..backends.amaranth.stagefile import load_stages

    facts = manifest.get("design", {})
    stages = load_stages(out) if (out / "stages.json").is_file() else lower(graph)
    design = design_from(stages, facts)
    _built_only(design)
    return design, units(design, facts["toplevel"])


def _built_only(component, depth: int = 0) -> None:
    """Components built for their structure alone are never elaborated: say so to Amaranth
    (its warning about an unused elaboratable would be noise here)."""
    from amaranth.hdl import Elaboratable

    if depth > 6 or not isinstance(component, Elaboratable):
        return
    component._MustUse__silence = True
    for value in vars(component).values():
        for item in value if isinstance(value, list | tuple) else [value]:
            if isinstance(item, Elaboratable):
                _built_only(item, depth + 1)


def _hardware(graph, layers: list[dict], synthesis, unit_list, total_latency, interval) -> dict[str, Any]:
    """Each unit's modules summed onto the row of its first IR node; the rest is the glue."""
    by_name = {row["name"]: row for row in layers}
    assigned: set[str] = set()
    for path, nodes, comp in unit_list:
        res = Resources()
        for module, r in synthesis.modules.items():
            if module == path or module.startswith(path + "."):
                res = res + r
                assigned.add(module)
        head = next((n for n in nodes if n in by_name), None)
        if head is None:
            continue
        by_name[head]["hardware"] = {**res.to_json(), "latency_cycles": getattr(comp, "latency", 0),
                                     "interval_cycles": getattr(comp, "interval", 1), "unit": nodes}
        for other in nodes:
            if other != head and other in by_name:
                by_name[other]["hardware"] = {"in": head}
    # a node with no hardware of its own whose one reader has (a ReLU folded into the cast after
    # it) is in that reader's unit
    for node in reversed(graph.nodes):
        readers = [n for n in graph.nodes if any(v is node.output for v in n.inputs)]
        row = by_name.get(node.name)
        if row is None or row["hardware"] is not None or len(readers) != 1:
            continue
        h = by_name[readers[0].name]["hardware"]
        if h is not None and node.op in (Op.ACTIVATION,):
            row["hardware"] = {"in": h.get("in", readers[0].name)}
    glue = Resources()
    for module, r in synthesis.modules.items():
        if module not in assigned:
            glue = glue + r
    return {"glue": glue.to_json(), "total": {**synthesis.total.to_json(), "latency_cycles": total_latency,
                                              "interval_cycles": interval}}


def _xilinx_estimate_verilog(graph, manifest: dict[str, Any], folder: Path) -> tuple[Path, str, list]:
    """fpgac's own RTL of the quantized graph (the amaranth target's), at the design's reuse."""
    from amaranth.back import verilog as amaranth_verilog

    from ..backends.amaranth.build import top, units
    from ..backends.amaranth.lower import lower

    reuse = manifest.get("options", {}).get("resolved", {}).get("reuse") or 1
    stages = lower(graph)
    design = top(stages, reuse=int(reuse), clock_period=manifest.get("options", {}).get("resolved", {}).get(
        "clock_period"))
    name = "estimate"
    text = amaranth_verilog.convert(design, name=name, emit_src=False)
    path = folder / f"{name}.v"
    path.write_text(text)
    return path, name, units(design, name)


def collect(out: str | Path, *, data: str | Path | None = None, labels: str | Path | None = None,
            family: str | None = None, device: str = "LFE5U-85F", package: str = "CABGA381",
            pnr: bool | None = None, pnr_timeout: float = 300.0, synth_timeout: float | None = 1800.0,
            router: str = "auto", jobs: int | None = None, step: Callable[[str], Any] | None = None, graph=None,
            values: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Gather the report of the design in ``out``. ``step(text)`` is a context manager per slow step;
    ``graph`` (the design's, loaded) and ``values`` (the golden model's mantissas of every value on
    the report's inputs) when the caller has them already."""
    import contextlib

    step = step or (lambda text: contextlib.nullcontext())
    out = Path(out)
    manifest = read_manifest(out)
    target = manifest["target"]
    if labels is not None and data is None:
        raise UsageError("--labels needs --data X.npz: the inputs the labels belong to")
    graph = graph if graph is not None else api.load_design(out)
    x_data = read_input(data, graph) if data is not None else None
    y = _labels(data, labels, x_data)
    layers = _layers(graph)
    verified = _verify(out)
    measured = (verified or {}).get("measurements", {})
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "design": {"name": out.resolve().name, "target": target, "folder": str(out), "fpgac": __version__,
                   "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                   "model": manifest.get("provenance", {}).get("model"),
                   "options": manifest.get("options", {}).get("resolved", {})},
        "layers": layers,
        "sources": {},
    }
    facts = manifest.get("design", {})
    latency = measured.get("latency_cycles", facts.get("latency_cycles"))
    interval = measured.get("interval_cycles", facts.get("interval_cycles"))
    report["sources"]["latency"] = ("measured: Verilator simulation (verify.json)" if "latency_cycles" in measured
                                    else "from the design: fpgac's pipeline (run fpgac verify to measure it)"
                                    if latency is not None else "not known for this target")
    hardware: dict[str, Any] | None = None
    if target == "amaranth":
        family = family or "ecp5"
        verilog = out / facts["verilog"]
        with step("finding each layer's modules"):
            _, unit_list = _amaranth_units(out, manifest, graph)
        with step(f"synthesizing {verilog.name} with yosys ({family})"):
            synthesis = synthesize(verilog, facts["toplevel"], family, parts=[u[0] for u in unit_list],
                                   timeout=synth_timeout, jobs=jobs)
        hardware = _hardware(graph, layers, synthesis, unit_list, latency, interval)
        report["sources"]["resources"] = (f"measured: {synthesis.tool}, synth_{'ecp5 -noflatten' if family == 'ecp5' else 'xilinx'}"
                                          f" on {verilog.name}" + (", each layer's modules by its own process"
                                                                   if synthesis.command.endswith("in parallel)") else "")
                                          + (" (cached)" if synthesis.cached else ""))
        hardware["total"].update(_clock(synthesis, family, device, package, pnr, pnr_timeout, latency, step, report,
                                        verilog, synth_timeout, [u[0] for u in unit_list], jobs, router, facts))
    elif target == "xilinx":
        part = report["design"]["options"].get("part") or "xcvu13p-flga2577-2-e"
        family = family or xilinx_family(part)
        with tempfile.TemporaryDirectory(prefix="fpgac-estimate-") as tmp:
            with step("building fpgac's own RTL of the same graph, for the estimate"):
                verilog, name, unit_list = _xilinx_estimate_verilog(graph, manifest, Path(tmp))
            with step(f"synthesizing it with yosys ({'synth_ecp5' if family == 'ecp5' else 'synth_xilinx -family ' + family})"):
                synthesis = synthesize(verilog, name, family, parts=[u[0] for u in unit_list], timeout=synth_timeout,
                                       jobs=jobs)
        hardware = _hardware(graph, layers, synthesis, unit_list, latency, interval)
        report["sources"]["resources"] = (
            f"estimated, not measured: fpgac's own RTL of the same quantized graph (its amaranth target, at the "
            f"same reuse) synthesized by {synthesis.tool} synth_xilinx -family {family} (hierarchy kept); Vitis HLS builds other "
            "hardware from the C++ project and its figures will differ")
        report["sources"]["latency"] = ("estimated: the cycles of fpgac's own RTL above, not of the HLS design"
                                        if latency is None else report["sources"]["latency"])
        if latency is None:
            hardware["total"]["latency_cycles"] = sum(getattr(u[2], "latency", 0) for u in unit_list)
        report["sources"]["clock"] = "not measured: Vitis and Vivado do not run here"
    else:
        memory = facts.get("memory_bytes") or manifest.get("memory_bytes") or {}
        hardware = {"total": {"flash_bytes": measured.get("flash_bytes", memory.get("flash")),
                              "ram_bytes": measured.get("ram_bytes", memory.get("ram"))}}
        runs = measured.get("run_seconds")
        vectors = (verified or {}).get("vectors")
        hardware["total"]["operations_per_inference"] = sum(r["multiplies"] for r in layers)
        if runs and vectors:
            hardware["total"]["inferences_per_second"] = round(vectors / runs, 1)
            hardware["total"]["latency_us"] = round(1e6 * runs / vectors, 3)
        report["sources"]["resources"] = (
            "code and data size: fpgac's count of the kernel's tables and constants (fpgac.json); speed: measured, "
            "verify's run on this machine (verify.json; the time includes reading the vectors)" if runs else
            "code and data size: fpgac's count of the kernel's tables and constants (fpgac.json); speed: not "
            "measured (run fpgac verify first)")
    report["hardware"] = hardware
    report["totals"] = {k: sum(r[k] for r in layers) for k in ("params", "nonzeros", "multiplies", "bit_operations")}
    with step("accuracy and calibration statistics"):
        report["accuracy"] = _accuracy(out, manifest, graph, x_data, y)
        if values is None:
            values = evaluate_fixed(graph, x_data if x_data is not None else load_vectors(out / VECTORS).inputs)
        report["calibration"] = _calibration(graph, values)
    return report


def _labels(data, labels, x_data) -> np.ndarray | None:
    if labels is not None:
        y = np.load(labels) if str(labels).endswith(".npy") else None
        if y is None:
            raise UsageError(f"--labels {labels}: give a .npy array of integer labels")
    else:
        y = api.read_labels(data) if data is not None else None
    if y is None:
        return None
    y = np.asarray(y).reshape(-1)
    rows = len(next(iter(x_data.values()))) if isinstance(x_data, dict) else len(x_data)
    if len(y) != rows:
        raise UsageError(f"{labels or data}: {len(y)} labels for {rows} input rows")
    return y


def _clock(synthesis, family, device, package, pnr, timeout, cycles, step, report, verilog, synth_timeout,
           parts, jobs, router, facts) -> dict[str, Any]:
    """The clock nextpnr reaches, and ``cycles`` (the latency the report gives: measured by
    ``verify`` when it ran, else the design's own) in ns at that clock."""
    if family != "ecp5" or pnr is False:
        report["sources"]["clock"] = "not measured: " + ("no place and route (--no-pnr)" if family == "ecp5" else
                                                         "nextpnr places ECP5 devices only")
        return {"clock_mhz": None, "latency_ns": None}
    if pnr is None and synthesis.total.luts > AUTO_PNR_LUTS:
        report["sources"]["clock"] = (f"not measured: place and route is left out by default above {AUTO_PNR_LUTS:,} "
                                      f"LUT4-eq (this design: {synthesis.total.luts:,}; it takes from many minutes "
                                      "to hours here); --pnr runs it")
        return {"clock_mhz": None, "latency_ns": None}
    part = devices.device(device) if device.upper() in ECP5_DEVICES else None
    over = []
    if part is not None:
        luts, ffs, dsps, brams = part.luts, part.ffs, part.dsps, part.brams
        t = synthesis.total
        over = [f"{name} {used:,} of {have:,}" for name, used, have in
                (("LUT4-eq", t.luts, luts), ("FF", t.ffs, ffs), ("MULT18X18D", t.dsps, dsps), ("DP16KD", t.brams, brams))
                if used > have]
    if over:
        report["sources"]["clock"] = f"not measured: the design does not fit {device} ({', '.join(over)})"
        report["fits"] = {"device": device, "fits": False, "over": over}
        return {"clock_mhz": None, "latency_ns": None}
    target_mhz = 1000.0 / facts["clock_period_ns"] if facts.get("clock_period_ns") else 100.0
    with step("synthesizing it inside a four-pin wrapper, for place and route"):
        netlist = pnr_netlist(verilog, facts["toplevel"], synth_timeout, parts=parts, jobs=jobs)
    if router == "auto":  # router1 times better; router2 finishes on large designs where router1 does not
        router = "router1" if synthesis.total.luts <= AUTO_PNR_LUTS else "router2"
    with step(f"placing and routing on {device} with nextpnr-ecp5 --router {router} (at most {timeout:.0f} s)"):
        placed = nextpnr(netlist, device, package, target_mhz=target_mhz, timeout=timeout, router=router)
    import shutil

    shutil.rmtree(netlist.parent, ignore_errors=True)
    report["sources"]["clock"] = placed.note + (" (the design inside a wrapper of two shift registers, so that it "
                                                "needs four pins)" if placed.mhz else "")
    report["placement"] = {k: {"used": u, "available": a} for k, (u, a) in placed.utilisation.items()}
    if placed.critical_path:
        report["critical_path"] = placed.critical_path
    return {"clock_mhz": placed.mhz,
            "latency_ns": round(cycles * 1000.0 / placed.mhz, 1) if placed.mhz and cycles is not None else None}


def _accuracy(out: Path, manifest, graph, x_data, y) -> dict[str, Any]:
    vectors = load_vectors(out / VECTORS)
    golden = api.golden_report(out)
    result: dict[str, Any] = {
        "test_vectors": {"vectors": golden.vectors, "float": _distance(golden.float),
                         "unpruned_float": _distance(golden.unpruned) if golden.unpruned else None},
        "histograms": {},
    }
    for port, g, ref in zip(manifest["outputs"], vectors.golden, vectors.reference):
        err = to_float(np.asarray(g), port.type).reshape(len(g), -1) - np.asarray(ref, dtype=np.float64).reshape(len(g), -1)
        lim = max(float(np.abs(err).max()), port.type.lsb)
        counts, edges = np.histogram(err, bins=BINS, range=(-lim, lim))
        result["histograms"][port.name] = {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts],
                                           "lsb": port.type.lsb, "against": "float network, on the test vectors"}
    if x_data is not None:
        outs = run_fixed(graph, x_data)
        first = np.asarray(outs[0])
        entry: dict[str, Any] = {"rows": int(len(first))}
        if y is not None and first.ndim == 2 and first.shape[1] > 1:
            entry["golden_vs_labels"] = float(np.mean(first.argmax(axis=1) == y))
            model = _float_model(manifest)
            if model is not None:
                (ref, *_) = api.run(model, x_data)
                entry["float_vs_labels"] = float(np.mean(np.asarray(ref).argmax(axis=1) == y))
                entry["float_source"] = "the model file recorded in fpgac.json (same sha256)"
        result["data"] = entry
    return result


def _distance(d) -> dict[str, Any]:
    return {"agreement": d.agreement, "max_error": d.max_error, "max_error_lsb": d.max_error_lsb,
            "in_range_vectors": d.in_range_vectors, "in_range_agreement": d.in_range_agreement,
            "in_range_max_error": d.in_range_max_error}


def _float_model(manifest):
    """The float network, when the model file the design was compiled from is still there, unchanged."""
    import hashlib

    model = manifest.get("provenance", {}).get("model") or {}
    path, digest = model.get("absolute") or model.get("path"), model.get("sha256")
    if not path or not Path(path).is_file() or not digest:
        return None
    found = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    if digest not in (found, f"sha256:{found}"):
        return None
    return api.load(path)


def _calibration(graph, values: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per value: the range calibration saw, its type's range, and (at saturating casts) how many
    of the golden model's ``values`` fell outside the cast's type and were saturated."""
    rows = []
    for node in graph.nodes:
        v = node.output
        t = _dtype(v)
        if t is None:
            continue
        entry = {"value": v.name, "node": node.name, "type": str(t), "type_range": [t.min_value, t.max_value],
                 "range_seen": list(v.range) if v.range is not None else None, "saturated": None, "of": None}
        if node.op is Op.QUANT and t.overflow.name.startswith("SAT"):
            src = node.inputs[0]
            st = _dtype(src)
            if st is not None and src.name in values:
                vals = to_float(np.asarray(values[src.name]), st)
                entry["saturated"] = int(np.sum((vals > t.max_value) | (vals < t.min_value)))
                entry["of"] = int(vals.size)
        rows.append(entry)
    return rows

