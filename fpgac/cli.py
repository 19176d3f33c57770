"""The ``fpgac`` command: parses options, calls ``fpgac.api``, prints results.

Every user error becomes one line on stderr and exit code 2; an internal error (a bug) exits 1
with a one-line summary, and ``--debug`` shows its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fpgac import __version__, api, backends
from fpgac import progress as fpgac_progress
from fpgac.errors import FpgacError, UsageError
from fpgac.ir import Graph
from fpgac.sim import run_fixed

__all__ = ["main"]

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line and exit 2, like every other user error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fpgac",
        description=(
            "Compile a trained neural network (ONNX) into FPGA hardware and integer C kernels, "
            "checked bit for bit against one golden model."
        ),
        epilog="Run 'fpgac COMMAND --help' for a command's options. Errors exit with code 2.",
    )
    parser.add_argument("--version", action="version", version=f"fpgac {__version__}")
    _add_common_options(parser, default=True)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    compile_ = commands.add_parser(
        "compile",
        help="quantize a model and write a design for a target, with its testbench and test vectors",
        description="Quantize MODEL.onnx (see the quantization options) and write OUT: for --target "
        "xilinx a Vitis HLS project (C-simulation checked here with g++), for amaranth Amaranth HDL "
        "and its Verilog with a cocotb testbench, for cpu an integer-only C99 kernel. OUT also holds "
        "the test vectors (input-type extremes, calibration rows, uniform inputs) with the golden "
        "model's outputs; 'fpgac verify OUT' runs them.",
    )
    _add_common_options(compile_)
    compile_.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    compile_.add_argument("--target", "-t", choices=sorted(backends.TARGETS), default="xilinx",
                          help="what to generate (default xilinx)")
    compile_.add_argument("--output", "-o", required=True, metavar="OUT",
                          help="output directory (replaced if it is an earlier fpgac output)")
    compile_.add_argument("--vectors", type=int, default=1000, metavar="N",
                          help="test vectors to store for verify (default 1000)")
    _add_outputs_option(compile_)
    _add_quant_options(compile_)
    _add_target_options(compile_)
    compile_.set_defaults(func=_cmd_compile)

    verify = commands.add_parser(
        "verify",
        help="build and run a compiled design's testbench: mismatching bits against the golden model",
        description="Build the design in OUT (written by 'fpgac compile') and run its own testbench "
        "on the stored test vectors: g++ C-simulation for xilinx, Verilator (or Icarus) with cocotb "
        "for amaranth, gcc for cpu. Prints the vectors run, the mismatching output bits against the "
        "golden model (must be 0), and the distance to the float network (and to the unpruned float "
        "network, for a pruned design) on the same vectors; saves the report in OUT/verify.json. "
        "Exits 0 when every bit of every output matches, 1 when any differs (or no vector ran), 2 on bad input.",
    )
    _add_common_options(verify)
    verify.add_argument("out", metavar="OUT", help="a directory written by 'fpgac compile'")
    verify.add_argument("--vectors", type=int, metavar="N", help="run the first N stored vectors (default all)")
    verify.add_argument("--simulator", choices=("verilator", "icarus"),
                        help="amaranth designs only: the HDL simulator (default verilator)")
    verify.add_argument("--keep-build", action="store_true",
                        help="keep the whole build (simulator or compiler files) in OUT/build, for debugging; by "
                        "default builds happen outside OUT (amaranth: the executable is cached in ~/.cache/fpgac, "
                        "see FPGAC_CACHE_DIR)")
    verify.set_defaults(func=_cmd_verify)

    inspect = commands.add_parser(
        "inspect",
        help="list a model's layers: op, output shape, parameters, fixed-point types",
        description="Load MODEL.onnx, quantize it (see the quantization options) and print one row "
        "per IR layer: name, op, output shape (per sample, channels-first), parameter count, and the "
        "fixed-point types chosen for its weights and output; then the types of every narrowed "
        "tensor and the total weight and activation bits. --float skips quantization. Given OUT, the "
        "output directory of `fpgac compile`, it lists that design's layers and types as built.",
    )
    _add_common_options(inspect)
    inspect.add_argument("model", metavar="MODEL.onnx|OUT",
                         help="the ONNX model, or the output directory of `fpgac compile` (its quantized graph)")
    _add_outputs_option(inspect)
    inspect.add_argument("--ir", action="store_true", help="print the full IR text instead of the table")
    inspect.add_argument("--dump-ir", action="store_true", help="print the IR after the frontend and every pass")
    inspect.add_argument("--float", action="store_true", help="show the float model, before quantization")
    _add_quant_options(inspect)
    inspect.set_defaults(func=_cmd_inspect)

    run = commands.add_parser(
        "run",
        help="run a model on input arrays (bit-exact golden model, or --float) and save its outputs",
        description="Quantize MODEL.onnx and run the bit-exact fixed-point golden model (what the "
        "hardware computes) on the arrays in X (.npy, or .npz holding one array, an array named "
        "'x', or one array per input name); save the outputs to Y (.npy for one output, .npz by "
        "output name for several) as float64 values. Inputs are batch-first, shaped like the "
        "model's inputs. --float runs the float network instead. Given OUT, the output directory of "
        "`fpgac compile`, it runs the golden model of that design (the graph it keeps), no options needed.",
    )
    _add_common_options(run)
    run.add_argument("model", metavar="MODEL.onnx|OUT",
                     help="the ONNX model, or the output directory of `fpgac compile` (runs the golden model of "
                     "that design, without the model or the quantization options)")
    run.add_argument("--input", "-i", required=True, metavar="X", help="input arrays (.npy or .npz)")
    run.add_argument("--output", "-o", required=True, metavar="Y", help="where to write the outputs (.npy/.npz)")
    run.add_argument("--float", action="store_true", help="run the float network as trained, not the golden model")
    run.add_argument("--mantissas", action="store_true",
                     help="write the golden model's integer mantissas (int64) instead of their values")
    _add_outputs_option(run)
    _add_quant_options(run)
    run.set_defaults(func=_cmd_run)
    return parser




def _add_quant_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "quantization",
        "Precision is chosen from data: integer bits from each tensor's calibrated range, "
        "accumulators from exact bounds (they never wrap).",
    )
    group.add_argument("--calibration", metavar="X", help="calibration inputs (.npy/.npz, like --input) "
                       "that set every tensor's range")
    group.add_argument("--input-range", metavar="LO,HI", type=_range, help="without --calibration: "
                       "calibrate on 1,000 inputs uniform in [LO, HI] (default: --input-range=-1,1)")
    group.add_argument("--bits", type=int, metavar="N",
                       help=f"width of weights and activations (default {api.DEFAULT_BITS})")
    group.add_argument("--precision", metavar="P",
                       help="'auto' (from data, the default), one type for every weight, bias and "
                       "activation ('fixed<16,6>', 'ufixed<8,0,RND,SAT>'), or an hls4ml-style JSON "
                       "config of per-layer overrides (see README)")
    group.add_argument("--accuracy-budget", type=float, metavar="E", help="search the narrowest per-layer "
                       "widths (up to --bits) whose argmax agrees with float on >= 1-E of the calibration data")
    group.add_argument("--table-size", type=int, metavar="N", help="entries per lookup table "
                       "(sigmoid, tanh, exp, reciprocal; default 1024)")
    group.add_argument("--prune", action="append", metavar="SPEC",
                       help="prune, clip or binarize the Dense/Conv weights before calibration; steps "
                       "run in order, separated by commas or given as repeated --prune: magnitude:F "
                       "(per layer, F like 0.8 or 80%%), magnitude:global:F, threshold:T, structured[:l1|:l2]:F "
                       "(whole neurons/channels), dead, refit (least squares on the calibration data), "
                       "clip:T, clip[:global]:std:K, binary[:channel], ternary[:channel][:D]; per-layer "
                       "\"Prune\" in the --precision JSON (see README)")


#: target-specific compile options: option dest -> the targets it applies to
_TARGET_OPTIONS = {
    "io": ("xilinx",),
    "part": ("xilinx",),
    "clock_period": ("xilinx",),
    "reuse": ("xilinx", "amaranth"),
    "axi": ("amaranth",),
}


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target options")
    group.add_argument("--io", choices=("parallel", "stream"),
                       help="xilinx: arrays, fully unrolled, lowest latency (parallel, the default) or "
                       "hls::stream with dataflow, for CNNs that do not fit unrolled (stream)")
    group.add_argument("--part", metavar="PART", help="xilinx: the FPGA part (default xcvu13p-flga2577-2-e)")
    group.add_argument("--clock-period", type=float, metavar="NS", help="xilinx: target clock period in ns (default 5)")
    group.add_argument("--reuse", type=int, metavar="R", help="xilinx, amaranth: multiplications each "
                       "multiplier does per inference (default 1: fully unrolled)")
    group.add_argument("--axi", action="store_true", default=None,
                       help="amaranth: AXI4-Stream port names (tdata/tvalid/tready)")


def _target_options(args: argparse.Namespace) -> dict[str, Any]:
    options = {}
    for dest, targets in _TARGET_OPTIONS.items():
        value = getattr(args, dest)
        if value is None:
            continue
        if args.target not in targets:
            flag = "--" + dest.replace("_", "-")
            raise UsageError(f"{flag} applies to --target {' or '.join(targets)}, not {args.target}")
        options[dest] = value
    if options.get("reuse") is not None and options["reuse"] < 1:
        raise UsageError(f"--reuse must be at least 1, not {options['reuse']}")
    if options.get("clock_period") is not None and not options["clock_period"] > 0:
        raise UsageError(f"--clock-period must be a positive number of ns, not {options['clock_period']}")
    return options


def _cmd_compile(args: argparse.Namespace) -> int:
    options = _target_options(args)
    if args.vectors < 1:
        raise UsageError(f"--vectors must be at least 1, not {args.vectors}")
    backends.resolve_options(args.target, options)  # a bad value is refused before any work
    _check_files(args)
    compiled = _compile(args)
    out = compiled.write(args.output, args.target, vectors=args.vectors, command=["fpgac", *_argv(args)], **options)
    if not args.quiet:
        if compiled.search is not None:
            _print_search(compiled.search)
        print(f"wrote {out} (target {args.target}, {args.vectors} test vectors); check it with: fpgac verify {out}")
        report = api.golden_report(out)
        print("the golden model (what the design must compute) on those vectors:")
        print(f"  {'vs pruned float' if report.unpruned else 'vs float':<18} {report.float.line(report.vectors)}")
        if report.unpruned is not None:
            print(f"  {'vs unpruned float':<18} {report.unpruned.line(report.vectors)}")
        labels = api.read_labels(args.calibration) if args.calibration else None
        if labels is not None:
            _print_label_accuracy(compiled, args.calibration, labels)
    return 0


def _print_label_accuracy(compiled: api.CompiledModel, path: str, labels) -> None:
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


def _print_search(search) -> None:
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


def _cmd_verify(args: argparse.Namespace) -> int:
    options = {"simulator": args.simulator} if args.simulator else {}
    backends.check_verify_options(args.out, options)  # before any build
    progress = None
    if fpgac_progress.enabled():
        def progress(done: int, total: int) -> None:
            fpgac_progress.counter("simulating under back-pressure", done, total)
    report = api.verify(args.out, args.vectors, progress, keep_build=args.keep_build, **options)
    print("\n".join(report.lines()))
    if not args.quiet:
        print(f"saved {Path(args.out) / 'verify.json'}")
    return 0 if report.ok else 1


def _check_files(args: argparse.Namespace) -> None:
    """Files named by options must exist before any work starts."""
    for flag, path in (("--calibration", args.calibration),):
        if path is not None and not Path(path).is_file():
            raise UsageError(f"{flag} {path}: no such file")


def _argv(args: argparse.Namespace) -> list[str]:
    return list(getattr(args, "argv", []) or [])


def _range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LO,HI (two numbers, e.g. -1,1)") from None
    return lo, hi


def _compile(args: argparse.Namespace, dump=None) -> api.CompiledModel:
    return api.compile(
        args.model,
        calibration=args.calibration,
        input_range=args.input_range,
        bits=args.bits,
        precision=args.precision,
        accuracy_budget=args.accuracy_budget,
        table_size=args.table_size,
        prune=args.prune,
        outputs=_outputs(args),
        dump=dump,
    )


def _add_common_options(parser: argparse.ArgumentParser, default: bool = False) -> None:
    """-v/-q/--debug, accepted before or after the command (the command's copy keeps the main
    parser's value unless given)."""
    keep = {} if default else {"default": argparse.SUPPRESS}
    parser.add_argument("-v", "--verbose", action="count", help="more log output (-vv: debug)",
                        **({"default": 0} if default else keep))
    parser.add_argument("-q", "--quiet", action="store_true", help="only errors", **keep)
    parser.add_argument("--debug", action="store_true", help="show a traceback on internal errors", **keep)


def _add_outputs_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--outputs",
        metavar="NAME[,NAME]",
        help="which model outputs to keep (default: every output the hardware can compute)",
    )


def _outputs(args: argparse.Namespace) -> list[str] | None:
    if not args.outputs:
        return None
    return [name.strip() for name in args.outputs.split(",") if name.strip()]


#: the options that only mean something for an ONNX model, at their defaults
_QUANT_DEFAULTS = {"calibration": None, "input_range": None, "bits": None, "precision": None,
                   "accuracy_budget": None, "table_size": None, "prune": None, "outputs": None, "float": False,
                   "dump_ir": False}


def _design(args: argparse.Namespace) -> tuple[Graph, dict[str, Any]] | None:
    """The quantized graph and manifest when MODEL is a compiled output directory (None for an ONNX file).

    Its precision is fixed, so quantization options (and --float: the float model is not kept)
    are refused rather than silently ignored."""
    if not Path(args.model).is_dir():
        return None
    given = [name for name, default in _QUANT_DEFAULTS.items() if getattr(args, name, default) != default]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise UsageError(f"{flag} does not apply to {args.model}, a compiled design (its precision is fixed, and "
                         "it keeps no float model): give the ONNX model instead")
    return api.load_design(args.model, manifest=True)


def _cmd_inspect(args: argparse.Namespace) -> int:
    design = _design(args)
    if design is not None:
        return _print_design(args, *design)
    dump = None
    if args.dump_ir:
        def dump(step: str, graph: Graph) -> None:
            print(f"// after {step}\n{graph}\n")

    compiled = None
    if args.float:
        graph = api.load(args.model, outputs=_outputs(args), dump=dump)
        api.prune(graph, args.prune, precision=args.precision, calibration=args.calibration,
                  input_range=args.input_range, dump=dump)
    else:
        compiled = _compile(args, dump)
        graph = compiled.graph
    if args.dump_ir:
        return 0
    if args.ir:
        print(graph)
        return 0
    _print_layers(graph, Path(args.model).name, types=compiled is not None)
    _print_pruning(args, compiled.float_graph if compiled is not None else graph)
    if compiled is not None:
        _print_quantization(compiled)
    return 0


def _print_layers(graph: Graph, source: str, types: bool) -> None:
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


def _print_design(args: argparse.Namespace, graph: Graph, manifest: dict[str, Any]) -> int:
    """``inspect OUT``: the compiled design's graph, as built."""
    if args.ir:
        print(graph)
        return 0
    _print_layers(graph, f"{args.model} (target {manifest['target']}, written by fpgac {manifest['fpgac']})", types=True)
    return 0


def _print_pruning(args: argparse.Namespace, pruned: Graph) -> None:
    """Per layer with weights: parameters, non-zeros and multiplies, before -> after pruning."""
    before = {r.name: r for r in api.layer_table(api.load(args.model, outputs=_outputs(args)))}
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


def _print_quantization(compiled: api.CompiledModel) -> None:
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


def _cmd_run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix not in (".npy", ".npz"):
        raise UsageError(f"--output {out}: name a .npy or .npz file")
    if not out.parent.is_dir():
        raise UsageError(f"--output {out}: folder {out.parent} does not exist")
    design = _design(args)
    if design is not None:
        graph, _ = design
        inputs = api.read_input(args.input, graph)
        results = run_fixed(graph, inputs, mantissas=args.mantissas)
    elif args.float:
        graph = api.load(args.model, outputs=_outputs(args))
        api.prune(graph, args.prune, precision=args.precision, calibration=args.calibration,
                  input_range=args.input_range)
        inputs = api.read_input(args.input, graph)
        results = api.run(graph, inputs, float=True)
    else:
        compiled = _compile(args)
        graph = compiled.graph
        inputs = api.read_input(args.input, graph)
        results = compiled.predict(inputs, mantissas=args.mantissas)
        results = results if isinstance(results, list) else [results]
    names = [v.name for v in graph.outputs]
    if len(results) > 1 and out.suffix == ".npy":
        raise UsageError(f"the model has {len(results)} outputs ({', '.join(names)}): name an .npz file for --output")
    _atomic_save(out, dict(zip(names, results)))
    batch = next(iter(inputs.values())).shape[0]
    what = "float reference" if args.float else "bit-exact golden model"
    logging.getLogger("fpgac").info("ran %d samples (%s), wrote %s", batch, what, out)
    return 0


def _atomic_save(path: Path, arrays: dict[str, np.ndarray]) -> None:
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        argv = list(argv if argv is not None else sys.argv[1:])
        args = parser.parse_args(argv)
        args.argv = argv
        level = logging.WARNING - 10 * args.verbose if not args.quiet else logging.ERROR
        logging.basicConfig(level=max(level, logging.DEBUG), format="fpgac: %(message)s", stream=sys.stderr)
        if not args.quiet and (args.verbose or sys.stderr.isatty()):
            fpgac_progress.enable(sys.stderr)
        else:
            fpgac_progress.disable()
        if args.command is None:
            parser.print_help()
            return EXIT_USER_ERROR
        return args.func(args)
    except FpgacError as err:
        print(f"fpgac: error: {err}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("fpgac: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # a bug in fpgac, not the user's fault
        if debug:
            raise
        print(
            f"fpgac: internal error: {type(err).__name__}: {err} (a bug in fpgac: rerun with --debug "
            "for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL_ERROR
    finally:
        fpgac_progress.disable()  # the stream was this run's (a caller's captured stderr, say)


if __name__ == "__main__":
    sys.exit(main())
