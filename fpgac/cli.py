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

import numpy as np

from fpgac import __version__, api
from fpgac.errors import FpgacError, UsageError
from fpgac.ir import Graph

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

    inspect = commands.add_parser(
        "inspect",
        help="list a model's layers: op, output shape, parameters",
        description="Load MODEL.onnx and print one row per IR layer: name, op, output shape "
        "(per sample, channels-first) and parameter count.",
    )
    _add_common_options(inspect)
    inspect.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    _add_outputs_option(inspect)
    inspect.add_argument("--ir", action="store_true", help="print the full IR text instead of the table")
    inspect.add_argument("--dump-ir", action="store_true", help="print the IR after the frontend and every pass")
    inspect.set_defaults(func=_cmd_inspect)

    run = commands.add_parser(
        "run",
        help="run a model on input arrays and save its outputs",
        description="Run MODEL.onnx on the arrays in X (.npy, or .npz holding one array, an array "
        "named 'x', or one array per input name) and save the outputs to Y (.npy for one output, "
        ".npz by output name for several). Inputs are batch-first, shaped like the model's inputs.",
    )
    _add_common_options(run)
    run.add_argument("model", metavar="MODEL.onnx", help="the ONNX model")
    run.add_argument("--input", "-i", required=True, metavar="X", help="input arrays (.npy or .npz)")
    run.add_argument("--output", "-o", required=True, metavar="Y", help="where to write the outputs (.npy/.npz)")
    run.add_argument(
        "--float",
        action="store_true",
        help="run the float reference (the network as trained); required until quantization lands",
    )
    _add_outputs_option(run)
    run.set_defaults(func=_cmd_run)
    return parser


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


def _cmd_inspect(args: argparse.Namespace) -> int:
    dump = None
    if args.dump_ir:
        def dump(step: str, graph: Graph) -> None:
            print(f"// after {step}\n{graph}\n")

    graph = api.load(args.model, outputs=_outputs(args), dump=dump)
    if args.dump_ir:
        return 0
    if args.ir:
        print(graph)
        return 0
    rows = api.layer_table(graph)
    shape = lambda s: "[" + ",".join(map(str, s)) + "]"  # noqa: E731
    table = [("layer", "op", "output shape", "params")]
    table += [(r.name, r.op, shape(r.shape), f"{r.params:,}") for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    print(f"model {graph.name}: {Path(args.model).name}")
    for value in graph.inputs:
        print(f"  input  {value.name}: {value.type} (batch first: [N,{','.join(map(str, value.shape))}])")
    for value in graph.outputs:
        print(f"  output {value.name}: {value.type}")
    print()
    for i, row in enumerate(table):
        print("  ".join(c.ljust(w) if j < 3 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    total = sum(r.params for r in rows)
    print(f"\n{len(rows)} layers, {total:,} parameters")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    out = Path(args.output)
    if out.suffix not in (".npy", ".npz"):
        raise UsageError(f"--output {out}: name a .npy or .npz file")
    if not out.parent.is_dir():
        raise UsageError(f"--output {out}: folder {out.parent} does not exist")
    if not args.float:
        raise UsageError(
            "fpgac run without --float needs the fixed-point golden model, which arrives with "
            "quantization (not in this version): pass --float to run the float reference"
        )
    graph = api.load(args.model, outputs=_outputs(args))
    inputs = api.read_input(args.input, graph)
    results = api.run(graph, inputs, float=True)
    names = [v.name for v in graph.outputs]
    if len(results) > 1 and out.suffix == ".npy":
        raise UsageError(f"the model has {len(results)} outputs ({', '.join(names)}): name an .npz file for --output")
    _atomic_save(out, dict(zip(names, results)))
    batch = next(iter(inputs.values())).shape[0]
    logging.getLogger("fpgac").info("ran %d samples (float reference), wrote %s", batch, out)
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
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        args = parser.parse_args(argv)
        level = logging.WARNING - 10 * args.verbose if not args.quiet else logging.ERROR
        logging.basicConfig(level=max(level, logging.DEBUG), format="fpgac: %(message)s", stream=sys.stderr)
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


if __name__ == "__main__":
    sys.exit(main())
