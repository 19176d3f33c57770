"""The ``fpgac`` command: parses options, calls ``fpgac.api``, prints results.

Every user error becomes one line on stderr and exit code 2; an internal error (a bug) exits 1
with a one-line summary, and ``--debug`` shows its traceback.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from fpgac import __version__, api, backends
from fpgac import progress as fpgac_progress
from fpgac.errors import FpgacError, UsageError

from .commands import cmd_compile, cmd_inspect, cmd_report, cmd_run, cmd_sweep, cmd_verify, int_list, range_

__all__ = ["main"]

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 3


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
    compile_.add_argument("--report", action="store_true",
                          help="then write the design-review report into OUT/report (as 'fpgac report OUT', defaults)")
    _add_outputs_option(compile_)
    _add_quant_options(compile_)
    _add_target_options(compile_)
    compile_.set_defaults(func=cmd_compile)

    verify = commands.add_parser(
        "verify",
        help="build and run a compiled design's testbench: mismatching bits against the golden model",
        description="Build the design in OUT (written by 'fpgac compile') and run its own testbench "
        "on the stored test vectors: g++ C-simulation for xilinx, Verilator (or Icarus) with cocotb "
        "for amaranth, gcc for cpu. Prints the vectors run, the mismatching output bits against the "
        "golden model (must be 0), and the distance to the float network (and to the unpruned float "
        "network, for a pruned design) on the same vectors; saves the report in OUT/verify.json. "
        "With --junit, also writes the result as JUnit XML for CI; with --against OLD_OUT, also checks "
        "that no output moved from a baseline design. Exits 0 when every bit of every output matches "
        "(and nothing moved), 1 when any differs (or no vector ran, or an output moved), 2 on bad input, "
        "3 on an internal error.",
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
    verify.add_argument("--junit", metavar="FILE.xml",
                        help="also write the result as JUnit XML: a test case per phase and per output, a failing "
                        "output carrying its first mismatching vectors (written even when the build fails)")
    verify.add_argument("--against", metavar="OLD_OUT",
                        help="also run a baseline design's golden model (an earlier 'fpgac compile' output) on "
                        "OUT's test inputs and fail if any output bit moved, listing the vectors that moved")
    verify.set_defaults(func=cmd_verify)

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
    inspect.set_defaults(func=cmd_inspect)

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
    run.set_defaults(func=cmd_run)

    report = commands.add_parser(
        "report",
        help="the design-review report: resources, latency, clock, accuracy, per layer (json, md, html)",
        description="Write the design-review report of OUT (written by 'fpgac compile') into REPORT_DIR "
        "(default OUT/report): report.json (schema fpgac-report-1), report.md and a self-contained "
        "report.html, with figures. Per layer: op, shapes, the fixed-point types of input, weights, bias, "
        "accumulator and output, parameters, non-zeros, multiplies and bit-operations, and for FPGA targets "
        "LUT, FF, DSP, BRAM, latency and interval; for the design the clock reached and the latency in ns. "
        "amaranth: resources measured by synthesizing the Verilog with yosys (per layer from the hierarchy), "
        "the clock by nextpnr-ecp5 place and route; xilinx: an estimate, said as one, from fpgac's own RTL "
        "of the same graph synthesized with yosys synth_xilinx (--vitis-report puts Vitis's own figures "
        "beside it); cpu: the kernel's size and speed on this machine. Then accuracy against float, the "
        "unpruned float network and labels, error histograms and calibration statistics per layer. With "
        "--baseline, exits 1 when a figure got worse than its tolerance; 2 on bad input.",
    )
    _add_common_options(report)
    report.add_argument("out", metavar="OUT", help="a directory written by 'fpgac compile'")
    report.add_argument("--output", "-o", metavar="REPORT_DIR", help="where the report goes (default OUT/report)")
    report.add_argument("--data", metavar="X.npz",
                        help="inputs for accuracy and calibration statistics (labels 'y' in the npz give accuracy)")
    report.add_argument("--labels", metavar="Y.npy", help="integer labels of the rows of --data")
    report.add_argument("--family", choices=("ecp5", "xc7", "xcu", "xcup"),
                        help="the FPGA family yosys synthesizes for (default: ecp5 for amaranth, the --part's for xilinx)")
    report.add_argument("--device", default="LFE5U-85F", help="ECP5 device for place and route (default LFE5U-85F)")
    report.add_argument("--package", default="CABGA381", help="its package (default CABGA381)")
    pnr = report.add_mutually_exclusive_group()
    pnr.add_argument("--pnr", dest="pnr", action="store_const", const=True,
                     help="place and route whatever the size (by default only designs up to 20,000 LUT4-eq)")
    pnr.add_argument("--no-pnr", dest="pnr", action="store_const", const=False,
                     help="skip place and route (no clock figure)")
    report.add_argument("--pnr-timeout", type=float, default=300.0, metavar="S",
                        help="give up place and route after S seconds (default 300; the clock is then not measured)")
    report.add_argument("--router", choices=("auto", "router1", "router2"), default="auto",
                        help="nextpnr's router (default auto: router1 up to 20,000 LUT4-eq, where it reaches a "
                        "faster clock (157 against 120 MHz on an 8x8 layer), router2 above: it routed the "
                        "founding CNN, 66k logic cells, in 10 minutes, where router1 had not finished after 2 hours)")
    report.add_argument("--jobs", "-j", type=int, metavar="N",
                        help="yosys processes at once (default: one per core); with more than one, each layer's "
                        "modules are synthesized on their own, which can differ from one whole-design run by a few "
                        "LUTs; -j 1 runs the design README's command exactly")
    report.add_argument("--vitis-report", metavar="DIR", help="xilinx: a Vitis HLS run's folder (its csynth.xml)")
    report.add_argument("--baseline", metavar="OLD/report.json", help="compare with an earlier report")
    report.add_argument("--tolerance", metavar="SPEC",
                        help="with --baseline: NAME=VALUE[%%],... over luts=10%%,ffs=10%%,dsps=10%%,brams=10%%,"
                        "latency=2%%,clock=1%%,accuracy=0 (accuracy in percentage points)")
    report.set_defaults(func=cmd_report)

    sweep = commands.add_parser(
        "sweep",
        help="compile, verify and measure many design points (bits x pruning x reuse), on Dask",
        description="Compile MODEL.onnx at every combination of --bits, --prune and --reuse for one "
        "target, verify each design bit-exact on its testbench, and measure it: argmax agreement and "
        "largest error against the float network, accuracy against labels (when --data has y), latency "
        "and interval in cycles, non-zero weights, weight bits and bit-operations (weight x input bits "
        "per kept multiply, counted from the graph). Points run as tasks on dask.distributed: a "
        "LocalCluster on this machine by default, or an existing cluster with --scheduler. Results go to "
        "SWEEP_DIR/results.json and results.csv, the Pareto front (accuracy vs bit-operations vs "
        "latency) is printed and drawn in SWEEP_DIR/pareto.png. Each finished point is saved at once "
        "(SWEEP_DIR/points/), keyed by a hash of the model, data, options and fpgac version: a rerun "
        "computes only new points, and an interrupted sweep keeps what finished. A point that fails is "
        "recorded with its error and the sweep goes on. Exits 0 when every point verified bit-exact, 1 "
        "when any failed or mismatched, 2 on bad input.",
    )
    _add_common_options(sweep)
    sweep.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    sweep.add_argument("--target", "-t", choices=sorted(backends.TARGETS), default="cpu",
                       help="the target every point is built for (default cpu, the fastest to verify)")
    sweep.add_argument("--output", "-o", required=True, metavar="SWEEP_DIR", help="where results and points go")
    sweep.add_argument("--bits", type=int_list, default=[8], metavar="N[,N...]",
                       help="weight and activation widths, e.g. 4,6,8,12 (default 8)")
    sweep.add_argument("--prune", nargs="+", metavar="SPEC", default=None,
                       help="pruning specs, one point each, as for compile --prune (e.g. magnitude:0.5 "
                       "magnitude:global:0.8,refit); 'none' for the unpruned model (default: none only)")
    sweep.add_argument("--reuse", type=int_list, default=[1], metavar="R[,R...]",
                       help="reuse factors (xilinx, amaranth; default 1)")
    sweep.add_argument("--data", metavar="X.npz",
                       help="calibration data for every point (.npy/.npz); labels 'y' in the npz give accuracy")
    sweep.add_argument("--input-range", metavar="LO,HI", type=range_,
                       help="without --data: calibrate on 1,000 inputs uniform in [LO, HI] (default -1,1)")
    sweep.add_argument("--vectors", type=int, default=200, metavar="N", help="test vectors per point (default 200)")
    sweep.add_argument("--synth", action="store_true",
                       help="amaranth, xilinx: also synthesize each point with yosys (the report's figures: LUTs, "
                       "FFs, DSPs, BRAMs; xilinx: estimated from fpgac's own RTL) and rank by LUTs")
    sweep.add_argument("--scheduler", metavar="tcp://HOST:PORT",
                       help="run on an existing Dask cluster (start one with 'dask scheduler' and 'dask worker "
                       "tcp://HOST:PORT'); default: a LocalCluster on this machine")
    sweep.add_argument("--workers", type=int, metavar="N",
                       help="LocalCluster worker processes (default: one per core, at most one per point)")
    sweep.set_defaults(func=cmd_sweep)
    return parser


def _add_quant_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "quantization",
        "Precision is chosen from data: integer bits from each tensor's calibrated range, "
        "accumulators from exact bounds (they never wrap).",
    )
    group.add_argument("--calibration", metavar="X", help="calibration inputs (.npy/.npz, like --input) "
                       "that set every tensor's range")
    group.add_argument("--input-range", metavar="LO,HI", type=range_, help="without --calibration: "
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
                       "distill[:EPOCHS|:key=value...] (train the survivors from the unpruned network; needs "
                       "the train extra), clip:T, clip[:global]:std:K, binary[:channel], ternary[:channel][:D]; "
                       "per-layer \"Prune\" in the --precision JSON (see README)")
    group.add_argument("--distill", nargs="?", const=True, metavar="OPTIONS",
                       help="quantization-aware distillation: after quantizing, train the weights from the float "
                       "(unpruned) network through the chosen fixed-point types, then quantize again; OPTIONS as "
                       "a distill step's (epochs=E:t=T:alpha=A:lr=L:mix=M:seed=S); needs the train extra")


def _reuse(text: str) -> int | str:
    """``--reuse``: an integer, or ``auto``."""
    if text == "auto":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an integer or auto, not {text!r}") from None


def _add_target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("target options")
    group.add_argument("--io", choices=("parallel", "stream"),
                       help="xilinx, amaranth: a whole tensor a word, fully unrolled, lowest latency (parallel, the "
                       "default) or a feature map a pixel a word through line buffers, each Conv and Dense folded "
                       "onto a few multipliers, for CNNs that do not fit unrolled (stream: hls::stream with dataflow "
                       "for xilinx)")
    group.add_argument("--interval", type=int, metavar="N", help="amaranth --io stream: cycles per inference every "
                       "Conv and Dense is folded to (default: the input's pixels, the rate it streams in)")
    group.add_argument("--part", metavar="PART", help="xilinx: the FPGA part (default xcvu13p-flga2577-2-e)")
    group.add_argument("--clock-period", type=float, metavar="NS", help="xilinx, amaranth: target clock period in ns "
                       "(default 5 for xilinx, 7 for amaranth, which places its pipeline registers for it by a "
                       "delay model of ECP5 carry chains)")
    group.add_argument("--reuse", type=_reuse, metavar="R", help="xilinx, amaranth: multiplications each "
                       "multiplier does per inference (default 1: fully unrolled; amaranth --io stream: cycles each "
                       "Conv and Dense takes per output pixel or vector, or auto: the shortest interval whose design "
                       "fits the --device by fpgac's resource estimate)")
    group.add_argument("--dsp", choices=("auto", "always", "never"),
                       help="amaranth: which products are written as multiplies a synthesis tool puts on DSP "
                       "blocks. --io stream: the folded multipliers, up to the device's DSP count (auto, the "
                       "default), all (always), none (never: LUTs and carry chains). Fully parallel: auto uses DSP "
                       "blocks only when fpgac's LUT estimate does not fit the --device, then up to its DSP count "
                       "for the weights with the most digits; always every weight that is not a power of two; "
                       "never none (adders only)")
    group.add_argument("--device", metavar="PART", help="amaranth: the ECP5 part the design is planned for "
                       "(default LFE5U-85F; its DSP blocks bound --dsp auto)")
    group.add_argument("--axi", action="store_true", default=None,
                       help="amaranth: AXI4-Stream port names (tdata/tvalid/tready)")


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
    parser.add_argument(
        "--seq-len",
        type=int,
        metavar="N",
        help="the size of a symbolic input dimension other than the batch (a sequence length exported as "
             "dynamic); fpgac builds hardware for fixed shapes",
    )


#: options whose value may start with a minus sign (argparse would take ``-1,1`` for an option)
_SIGNED_VALUES = ("--input-range",)


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--input-range -1,1`` as ``--input-range=-1,1``, so both spellings work."""
    out: list[str] = []
    for tok in argv:
        if out and out[-1] in _SIGNED_VALUES and re.match(r"-[0-9.]", tok):
            out[-1] = f"{out[-1]}={tok}"
        else:
            out.append(tok)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        argv = _join_negative_values(list(argv if argv is not None else sys.argv[1:]))
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
