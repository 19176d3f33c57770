"""What each command does once its options are parsed: checks first, then the API, then the output."""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from fpgac import api, backends
from fpgac import progress as fpgac_progress
from fpgac.errors import FpgacError, UsageError
from fpgac.ir import Graph
from fpgac.regress.baseline import against
from fpgac.regress.junit import write_junit
from fpgac.sim import run_fixed

from .tables import (
    print_design,
    print_distillation,
    print_folds,
    print_label_accuracy,
    print_layers,
    print_pruning,
    print_quantization,
    print_search,
    print_sweep,
)

#: target-specific compile options: option dest -> the targets it applies to
TARGET_OPTIONS = {
    "io": ("xilinx", "amaranth"),
    "interval": ("amaranth",),
    "dsp": ("amaranth",),
    "device": ("amaranth",),
    "part": ("xilinx",),
    "clock_period": ("xilinx", "amaranth"),
    "reuse": ("xilinx", "amaranth"),
    "axi": ("amaranth",),
}


#: the options that only mean something for an ONNX model, at their defaults
QUANT_DEFAULTS = {"calibration": None, "input_range": None, "bits": None, "precision": None,
                   "accuracy_budget": None, "table_size": None, "prune": None, "outputs": None, "float": False,
                   "dump_ir": False}


def target_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {}
    for dest, targets in TARGET_OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if args.target not in targets:
            flag = "--" + dest.replace("_", "-")
            raise UsageError(f"{flag} applies to --target {' or '.join(targets)}, not {args.target}")
        options[dest] = value
    if options.get("reuse") == "auto" and args.target != "amaranth":
        raise UsageError("--reuse auto applies to --target amaranth --io stream")
    if isinstance(options.get("reuse"), int) and options["reuse"] < 1:
        raise UsageError(f"--reuse must be at least 1, not {options['reuse']}")
    if options.get("interval") is not None and options["interval"] < 1:
        raise UsageError(f"--interval must be at least 1 cycle, not {options['interval']}")
    if options.get("clock_period") is not None and not options["clock_period"] > 0:
        raise UsageError(f"--clock-period must be a positive number of ns, not {options['clock_period']}")
    return options


def cmd_compile(args: argparse.Namespace) -> int:
    options = target_options(args)
    if args.vectors < 1:
        raise UsageError(f"--vectors must be at least 1, not {args.vectors}")
    backends.resolve_options(args.target, options)  # a bad value is refused before any work
    check_files(args)
    compiled = compile(args)
    out = compiled.write(args.output, args.target, vectors=args.vectors, command=["fpgac", *argv(args)], **options)
    if not args.quiet:
        if compiled.search is not None:
            print_search(compiled.search)
        print(f"wrote {out} (target {args.target}, {args.vectors} test vectors); check it with: fpgac verify {out}")
        print_folds(api.load_design(out, manifest=True)[1].get("design", {}))
        report = api.golden_report(out)
        print("the golden model (what the design must compute) on those vectors:")
        print(f"  {'vs pruned float' if report.unpruned else 'vs float':<18} {report.float.line(report.vectors)}")
        if report.unpruned is not None:
            print(f"  {'vs unpruned float':<18} {report.unpruned.line(report.vectors)}")
        labels = api.read_labels(args.calibration) if args.calibration else None
        if labels is not None:
            print_label_accuracy(compiled, args.calibration, labels)
        print_distillation(compiled)
    if args.report:
        from fpgac.report import write_report

        folder, _ = write_report(out, step=fpgac_progress.step,
                                 data=args.calibration if args.calibration and str(args.calibration).endswith(".npz")
                                 else None)
        if not args.quiet:
            print(f"wrote the report {folder / 'report.html'} (and report.json, report.md)")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    options = {"simulator": args.simulator} if args.simulator else {}
    backends.check_verify_options(args.out, options)  # before any build
    if args.junit and not Path(args.junit).resolve().parent.is_dir():
        raise UsageError(f"--junit {args.junit}: no such directory {Path(args.junit).resolve().parent}")
    if args.against:
        backends.read_manifest(Path(args.against))  # a compile output, before any build
    progress = None
    if fpgac_progress.enabled():
        def progress(done: int, total: int) -> None:
            fpgac_progress.counter("simulating under back-pressure", done, total)
    design = Path(args.out).resolve().name
    try:
        report = api.verify(args.out, args.vectors, progress, keep_build=args.keep_build, **options)
    except FpgacError as err:
        if args.junit:
            write_junit(args.junit, design, None, error=str(err))
        raise
    print("\n".join(report.lines()))
    moved = None
    if args.against:
        moved = against(args.out, args.against)
        print("\n".join(moved.lines()))
    if args.junit:
        write_junit(args.junit, design, report, moved=moved)
    if not args.quiet:
        print(f"saved {Path(args.out) / 'verify.json'}" + (f" and {args.junit}" if args.junit else ""))
    return 0 if report.ok and (moved is None or moved.ok) else 1


def check_files(args: argparse.Namespace) -> None:
    """Files named by options must exist before any work starts."""
    for flag, path in (("--calibration", args.calibration),):
        if path is not None and not Path(path).is_file():
            raise UsageError(f"{flag} {path}: no such file")


def argv(args: argparse.Namespace) -> list[str]:
    return list(getattr(args, "argv", []) or [])


def range_(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LO,HI (two numbers, e.g. -1,1)") from None
    return lo, hi


def cmd_report(args: argparse.Namespace) -> int:
    from fpgac.report import write_report
    from fpgac.report.baseline import compare, load, parse_tolerances

    backends.read_manifest(Path(args.out))  # an fpgac output, before any work
    tolerances = parse_tolerances(args.tolerance)
    if args.tolerance and not args.baseline:
        raise UsageError("--tolerance needs --baseline OLD/report.json")
    baseline = load(args.baseline) if args.baseline else None
    for flag, path in (("--data", args.data), ("--labels", args.labels)):
        if path is not None and not Path(path).is_file():
            raise UsageError(f"{flag} {path}: no such file")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be at least 1, not {args.jobs}")
    if args.pnr_timeout <= 0:
        raise UsageError(f"--pnr-timeout must be a positive number of seconds, not {args.pnr_timeout:g}")
    folder, report = write_report(args.out, args.output, vitis_report=args.vitis_report, step=fpgac_progress.step,
                                  data=args.data, labels=args.labels, family=args.family, device=args.device,
                                  package=args.package, pnr=args.pnr, pnr_timeout=args.pnr_timeout,
                                  router=args.router, jobs=args.jobs)
    total = (report.get("hardware") or {}).get("total", {})
    if not args.quiet:
        summary = ", ".join(f"{label} {total[key]:,}" for key, label in
                            (("luts", "LUTs"), ("ffs", "FFs"), ("dsps", "DSPs"), ("brams", "BRAMs"),
                             ("latency_cycles", "latency (cycles)")) if total.get(key) is not None)
        if total.get("clock_mhz"):
            summary += f", clock {total['clock_mhz']:.1f} MHz ({total['latency_ns']} ns)"
        print(f"{report['design']['name']} ({report['design']['target']}): {summary or 'no hardware figures'}")
        for key, text in report["sources"].items():
            print(f"  {key}: {text}")
        print(f"wrote {folder / 'report.json'}, report.md, report.html")
    if baseline is None:
        return 0
    lines, worse = compare(report, baseline, tolerances)
    print(f"against {args.baseline}:")
    print("\n".join(f"  {line}" for line in lines))
    return 1 if worse else 0


def int_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of integers (e.g. 4,6,8)") from None
    if not values:
        raise argparse.ArgumentTypeError(f"{text!r} names no value")
    return values


def cmd_sweep(args: argparse.Namespace) -> int:
    from fpgac.regress.sweep import sweep

    prunes = [None if p.lower() == "none" else p for p in (args.prune or ["none"])]
    if args.verbose < 2:  # Dask's own INFO lines (workers starting and closing) only with -vv
        for name in ("distributed", "dask"):
            logging.getLogger(name).setLevel(logging.WARNING)

    def progress(done: int, running: int, failed: int, total: int) -> None:
        fpgac_progress.status(f"points: {done} done ({failed} failed), {running} running, of {total}",
                              final=done == total)

    result = sweep(args.model, args.output, target=args.target, bits=args.bits, prunes=prunes, reuses=args.reuse,
                   data=args.data, input_range=args.input_range, vectors=args.vectors, synth=args.synth,
                   scheduler=args.scheduler,
                   workers=args.workers, progress=progress)
    print_sweep(result)
    if not args.quiet:
        print(f"computed {result.computed} points, {result.cached} from earlier runs; wrote "
              f"{Path(args.output) / 'results.json'}, results.csv and pareto.png")
    return 0 if all(r.get("status") == "ok" for r in result.results) else 1


def compile(args: argparse.Namespace, dump=None) -> api.CompiledModel:
    return api.compile(
        args.model,
        calibration=args.calibration,
        input_range=args.input_range,
        bits=args.bits,
        precision=args.precision,
        accuracy_budget=args.accuracy_budget,
        table_size=args.table_size,
        prune=args.prune,
        distill=getattr(args, "distill", None),
        outputs=outputs(args),
        seq_len=args.seq_len,
        dump=dump,
    )


def outputs(args: argparse.Namespace) -> list[str] | None:
    if not args.outputs:
        return None
    return [name.strip() for name in args.outputs.split(",") if name.strip()]


def compiled_design(args: argparse.Namespace) -> tuple[Graph, dict[str, Any]] | None:
    """The quantized graph and manifest when MODEL is a compiled output directory (None for an ONNX file).

    Its precision is fixed, so quantization options (and --float: the float model is not kept)
    are refused rather than silently ignored."""
    if not Path(args.model).is_dir():
        return None
    given = [name for name, default in QUANT_DEFAULTS.items() if getattr(args, name, default) != default]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise UsageError(f"{flag} does not apply to {args.model}, a compiled design (its precision is fixed, and "
                         "it keeps no float model): give the ONNX model instead")
    return api.load_design(args.model, manifest=True)


def cmd_inspect(args: argparse.Namespace) -> int:
    design = compiled_design(args)
    if design is not None:
        return print_design(args, *design)
    dump = None
    if args.dump_ir:
        def dump(step: str, graph: Graph) -> None:
            print(f"// after {step}\n{graph}\n")

    compiled = None
    if args.float:
        graph = api.load(args.model, outputs=outputs(args), dump=dump, seq_len=args.seq_len)
        api.prune(graph, args.prune, precision=args.precision, calibration=args.calibration,
                  input_range=args.input_range, dump=dump)
    else:
        compiled = compile(args, dump)
        graph = compiled.graph
    if args.dump_ir:
        return 0
    if args.ir:
        print(graph)
        return 0
    print_layers(graph, Path(args.model).name, types=compiled is not None)
    print_pruning(args, api.load(args.model, outputs=outputs(args), seq_len=args.seq_len), compiled.float_graph if compiled is not None else graph)
    if compiled is not None:
        print_quantization(compiled)
        print_distillation(compiled)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix not in (".npy", ".npz"):
        raise UsageError(f"--output {out}: name a .npy or .npz file")
    if not out.parent.is_dir():
        raise UsageError(f"--output {out}: folder {out.parent} does not exist")
    design = compiled_design(args)
    if design is not None:
        graph, _ = design
        inputs = api.read_input(args.input, graph)
        results = run_fixed(graph, inputs, mantissas=args.mantissas)
    elif args.float:
        graph = api.load(args.model, outputs=outputs(args), seq_len=args.seq_len)
        api.prune(graph, args.prune, precision=args.precision, calibration=args.calibration,
                  input_range=args.input_range)
        inputs = api.read_input(args.input, graph)
        results = api.run(graph, inputs, float=True)
    else:
        compiled = compile(args)
        graph = compiled.graph
        inputs = api.read_input(args.input, graph)
        results = compiled.predict(inputs, mantissas=args.mantissas)
        results = results if isinstance(results, list) else [results]
    names = [v.name for v in graph.outputs]
    if len(results) > 1 and out.suffix == ".npy":
        raise UsageError(f"the model has {len(results)} outputs ({', '.join(names)}): name an .npz file for --output")
    atomic_save(out, dict(zip(names, results)))
    batch = next(iter(inputs.values())).shape[0]
    what = "float reference" if args.float else "bit-exact golden model"
    logging.getLogger("fpgac").info("ran %d samples (%s), wrote %s", batch, what, out)
    return 0


def atomic_save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write all or nothing: a temporary file in the same folder, renamed into place."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            if path.suffix == ".npz":
                np.savez(f, **arrays)
            else:
                (array,) = arrays.values()
                np.save(f, array)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

