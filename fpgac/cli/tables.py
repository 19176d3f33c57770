"""The tables ``fpgac compile``, ``inspect`` and ``sweep`` print: layers, pruning before and after,
quantization types, the accuracy budget's widths, accuracy against labels, the sweep's points."""

from __future__ import annotations

import argparse
from typing import Any

from fpgac import api
from fpgac.ir import Graph


def print_label_accuracy(compiled: api.CompiledModel, path: str, labels) -> None:
    """Accuracy on the labels of the calibration file (``y``): a figure against labels, not float."""
    accuracy = compiled.label_accuracy(api.read_input(path, compiled.float_graph), labels)
    if accuracy is None:
        return
    parts = [f"golden model {accuracy['golden']:.2%}", f"float {accuracy['float']:.2%}"]
    if "unpruned float" in accuracy:
        parts[1] = f"pruned float {accuracy['float']:.2%}"
        parts.append(f"unpruned float {accuracy['unpruned float']:.2%}")
    print(f"  {'vs labels':<18} accuracy {', '.join(parts)} on the {len(labels)} rows of {path} (labels "
          "y; calibration used these rows too)")


def print_search(search) -> None:
    """What --accuracy-budget chose: per layer, the widths it lowered below the uniform one."""
    print(f"accuracy budget {search.budget}: {search.agreement:.2%} argmax agreement with float on the "
          f"{search.samples:,} calibration samples, {search.total_bits:,} weight and activation bits; uniform "
          f"{search.uniform_bits} bits would need {search.uniform_total_bits:,} ({search.evaluations} candidates tried)")
    widths = search.widths()
    if not widths:
        print(f"  every layer at {search.uniform_bits} bits")
        return
    name_width = max(len(n) for n in widths)
    print(f"  {'layer':<{name_width}}  weight bits  result bits")
    for name, w in widths.items():
        print(f"  {name:<{name_width}}  {w.get('weight_bits', search.uniform_bits):>11}  "
              f"{w.get('result_bits', search.uniform_bits):>11}")
    print(f"  (other layers: {search.uniform_bits} bits)")


def print_layers(graph: Graph, source: str, types: bool) -> None:
    """The model's ports, then one row per layer: op, output shape, parameters (and types)."""
    rows = api.layer_table(graph)
    shape = lambda s: "[" + ",".join(map(str, s)) + "]"  # noqa: E731
    header = ("layer", "op", "output shape", "params") + (("weight type", "output type") if types else ())
    table = [header]
    table += [(r.name, r.op, shape(r.shape), f"{r.params:,}") + ((r.weight_type, r.output_type) if types else ())
              for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(f"model {graph.name}: {source}")
    for value in graph.inputs:
        print(f"  input  {value.name}: {value.type} (batch first: [N,{','.join(map(str, value.shape))}])")
    for value in graph.outputs:
        print(f"  output {value.name}: {value.type}")
    print()
    for i, row in enumerate(table):
        print("  ".join(c.rjust(w) if j == 3 else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    total = sum(r.params for r in rows)
    nonzero = sum(r.nonzeros for r in rows)
    zeros = f" ({total - nonzero:,} of them zero)" if nonzero != total else ""
    print(f"\n{len(rows)} layers, {total:,} parameters{zeros}")


def print_design(args: argparse.Namespace, graph: Graph, manifest: dict[str, Any]) -> int:
    """``inspect OUT``: the compiled design's graph, as built."""
    if args.ir:
        print(graph)
        return 0
    print_layers(graph, f"{args.model} (target {manifest['target']}, written by fpgac {manifest['fpgac']})", types=True)
    return 0


def print_pruning(args: argparse.Namespace, unpruned: Graph, pruned: Graph) -> None:
    """Per layer with weights: parameters, non-zeros and multiplies, before -> after pruning."""
    before = {r.name: r for r in api.layer_table(unpruned)}
    after = {r.name: r for r in api.layer_table(pruned)}
    names = [n for n in before if before[n].params] + [n for n in after if after[n].params and n not in before]
    counts = lambda rows, n, f: getattr(rows[n], f) if n in rows else 0  # noqa: E731
    fields = ("params", "nonzeros", "multiplies")
    if not args.prune and all(counts(before, n, f) == counts(after, n, f) for n in names for f in fields):
        return
    totals = {f: (sum(counts(before, n, f) for n in names), sum(counts(after, n, f) for n in names)) for f in fields}
    table = [("layer", "op", "params", "non-zeros", "multiplies")]
    table += [(n, (before.get(n) or after[n]).op) + tuple(f"{counts(before, n, f):,} -> {counts(after, n, f):,}"
                                                         for f in fields) for n in names]
    table.append(("total", "") + tuple(f"{totals[f][0]:,} -> {totals[f][1]:,}" for f in fields))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    rule = "  ".join("-" * w for w in widths)
    print(f"\npruning {','.join(args.prune or ['(from --precision config)'])}: before -> after "
          "(multiplies: non-zero weights x output positions, fully unrolled)")
    for i, row in enumerate(table):
        if i == len(table) - 1:
            print(rule)
        print("  ".join(c.rjust(w) if j >= 2 else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print(rule)
    ratio = {f: totals[f][0] / totals[f][1] if totals[f][1] else float("inf") for f in fields}
    print(f"non-zero parameters {ratio['nonzeros']:.1f}x fewer, multiplies {ratio['multiplies']:.1f}x fewer")


def print_quantization(compiled: api.CompiledModel) -> None:
    print("\nquantization (role: tensor type x elements):")
    for r in compiled.records:
        print(f"  {r.layer:<24} {r.role:<7} {r.value:<28} {r.type} x {r.elements:,}")
    print(f"\n{compiled.total_bits:,} weight and activation bits")
    search = compiled.search
    if search is not None:
        print(
            f"accuracy budget {search.budget}: per-layer widths agree with float on {search.agreement:.2%} of the "
            f"calibration data with {search.total_bits:,} bits; the smallest uniform width meeting it, "
            f"{search.uniform_bits} bits, needs {search.uniform_total_bits:,} ({search.evaluations} candidates tried)"
        )



def print_sweep(result) -> None:
    """One row per point (its options, verification, figures), the Pareto front marked with *."""
    def pct(v) -> str:
        return "-" if v is None else f"{v:.2%}"

    labels = any(r.get("label_accuracy") is not None for r in result.results)
    synth = any(r.get("luts") is not None for r in result.results)
    head = ["", "bits", "prune", "reuse", "result", "vs float", "vs labels" if labels else "",
            "bit-ops", "bit-ops/cycle", "latency", "interval"] + (["LUT", "FF", "DSP", "BRAM"] if synth else [])
    rows = []
    for r in result.results:
        status = {"ok": "bit-exact", "mismatch": f"{r.get('mismatching_bits')} bits differ"}.get(
            r.get("status"), f"failed: {r.get('error')}")
        rows.append(["*" if r.get("pareto") else "", str(r["bits"]), r.get("prune") or "none", str(r["reuse"]), status,
                     pct(r.get("agreement_vs_float")), pct(r.get("label_accuracy")) if labels else "",
                     "-" if r.get("bit_operations") is None else f"{r['bit_operations']:,}",
                     "-" if r.get("bit_operations_per_cycle") is None else f"{r['bit_operations_per_cycle']:,.0f}",
                     "-" if r.get("latency_cycles") is None else f"{r['latency_cycles']}",
                     "-" if r.get("interval_cycles") is None else f"{r['interval_cycles']:g}"]
                    + ([("-" if r.get(k) is None else f"{r[k]:,g}") for k in ("luts", "ffs", "dsps", "brams")]
                       if synth else []))
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    for line in [head, *rows]:
        print("  ".join(x.ljust(w) if k < 5 else x.rjust(w) for k, (x, w) in enumerate(zip(line, widths))).rstrip())
    hardware = "LUTs (yosys, --synth)" if synth else "bit-operations per cycle"
    print("* the Pareto front: no other bit-exact point is more accurate"
          f"{' (vs labels)' if labels else ' (argmax agreement with float)'} with no more {hardware} "
          "and no more latency; bit-operations are counted from the graph (weight x input bits "
          "per kept multiply), per cycle divided by the interval: an estimate of the arithmetic hardware, "
          "not a synthesis; latency and interval are measured in simulation (cycles)")


def print_distillation(compiled) -> None:
    """Before and after each distillation, on the rows it held out: agreement with the teacher
    (the unpruned float network) and accuracy against the labels."""
    resolved = compiled.options["resolved"]
    runs = [("float training", r) for r in (resolved.get("prune") or {}).get("distilled", [])]
    if (resolved.get("distill") or {}).get("record"):
        runs.append(("through the fixed-point types", resolved["distill"]["record"]))
    for what, r in runs:
        parts = []
        before, after = r.get("before", {}), r.get("after", {})
        if "agreement_with_teacher" in after:
            parts.append(f"agreement with the teacher {before['agreement_with_teacher']:.2%} -> "
                         f"{after['agreement_with_teacher']:.2%}")
        if "accuracy_vs_labels" in after:
            parts.append(f"accuracy vs labels {before['accuracy_vs_labels']:.2%} -> {after['accuracy_vs_labels']:.2%}")
        parts.append(f"teacher loss {r['held_out_loss_before']:.4g} -> {r['held_out_loss_after']:.4g}")
        print(f"  {'distilled':<18} {what}: on the {r['held_out']} held-out calibration rows, {', '.join(parts)} "
              f"({r['epochs']} epochs, {r['seconds']:.1f} s; "
              f"{'through the types, as the hardware computes' if r.get('quantization_aware') else 'the float network'})")


def print_folds(design: dict[str, Any]) -> None:
    """amaranth ``--io stream``: how each Conv and Dense was folded, and the interval planned."""
    folds = design.get("folds")
    if not folds:
        return
    table = [("layer", "inputs x outputs a cycle", "multipliers (DSP)", "cycles/word", "words", "cycles/inference")]
    for f in folds:
        shape = f"{f['simd']} x {f['pe']}" if f["multipliers"] else "unrolled, constant weights"
        mults = f"{f['multipliers']:,} ({f['dsp_multipliers']:,})" if f["multipliers"] else "-"
        table.append((f["node"], shape, mults, f"{f['cycles_per_word']:,}", f"{f['words']:,}", f"{f['cycles']:,}"))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    print(f"\nfolding (--io stream): {design['interval_cycles']:,} cycles per inference planned "
          f"(device {design.get('device')}, --dsp {design.get('dsp')})")
    for row in table:
        print("  ".join(c.rjust(w) if j >= 2 else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip())
    e = design.get("estimate")
    if e:
        print(f"estimated resources (fpgac's model of the components, not measured; fpgac report measures): "
              f"LUT4-eq {e['luts']:,}, FF {e['ffs']:,}, MULT18X18D {e['dsps']:,}, DP16KD {e['brams']:,} "
              f"(on {e['device']})")
