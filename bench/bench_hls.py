"""HLS benchmark: ONNX to a C-simulated project, fpgac's xilinx target against hls4ml, same run.

    python bench/bench_hls.py [--models mlp,digits,cnn2d] [--io parallel|stream] [--repeat N]

Time: from the ONNX file to C-simulation outputs. fpgac: ``api.compile`` (load, calibrate,
quantize), writing the Vitis HLS project (with its test vectors: golden and float outputs), and
``verify``'s g++ build and C-simulation, which compares every output bit with the golden model.
hls4ml (``bench/peers.py``): qonnx cleaning, config and conversion, ``compile()`` (writes its
project and builds it with g++ into a library), and ``predict()`` on the same inputs.

Fidelity, on the same inputs, at the same precision: fpgac's C-simulation outputs and hls4ml's
``predict()`` against onnxruntime's float outputs (argmax agreement, largest absolute error).
"Same precision" is hls4ml's ``fixed<16,6>`` everywhere, which fpgac also takes
(``precision="fixed<16,6>"``: weights, biases, inputs and narrowed results; fpgac keeps its exact
accumulators and its own softmax tables); fpgac's own choice at 16 bits (``bits=16``, integer bits
from data) and hls4ml's ``auto`` are shown too. Printed as tables with ratios; nothing is asserted.
Needs the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import hls4ml_model, ort_predict, peer_versions  # noqa: E402

from fpgac import api, backends  # noqa: E402
from fpgac.backends import hls  # noqa: E402
from fpgac.backends.common import compare, make_vectors, read_manifest  # noqa: E402
from fpgac.backends.hls.csim import CXXFLAGS  # noqa: E402
from fpgac.ir import to_float  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@dataclass
class Row:
    model: str
    flow: str
    steps: dict[str, float]  # step -> seconds
    agreement: float | None = None
    max_error: float | None = None
    exact: str = ""  # fpgac: mismatching bits against the golden model
    failed: str = ""

    @property
    def total(self) -> float:
        return sum(self.steps.values())


def _inputs(name: str) -> tuple[np.ndarray, dict]:
    """The benchmark inputs and how fpgac calibrates: digits' test split (also its calibration,
    as in bench_quant.py), else 1,000 rows uniform in [-1, 1] with the input range declared."""
    if name == "digits":
        x = np.load(EXAMPLES / "digits_test.npz")["x"].astype(np.float64)
        return x, {"calibration": x}
    shape = {"mlp": (16,), "cnn2d": (1, 8, 8), "cnn1d": (2, 32)}[name]
    return np.random.default_rng(0).uniform(-1, 1, (1000, *shape)), {"input_range": (-1.0, 1.0)}


def _float(name: str, x: np.ndarray) -> np.ndarray:
    """onnxruntime's float outputs (one sample a call where the ONNX batch is fixed at 1)."""
    predict = ort_predict(EXAMPLES / f"{name}.onnx")
    try:
        return predict(x.astype(np.float32))
    except Exception:  # noqa: BLE001 - a fixed batch of 1
        return np.concatenate([predict(row[None].astype(np.float32)) for row in x])


def _fidelity(y: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    y, ref = y.reshape(len(ref), -1), ref.reshape(len(ref), -1)
    return float(np.mean(y.argmax(1) == ref.argmax(1))), float(np.max(np.abs(y - ref)))


def run_fpgac(name: str, x: np.ndarray, ref: np.ndarray, tmp: Path, io: str, **quant) -> Row:
    flow = "fpgac " + (f"precision {quant['precision']}" if "precision" in quant else f"{quant['bits']} bits from data")
    steps: dict[str, float] = {}
    t0 = time.perf_counter()
    model = api.compile(EXAMPLES / f"{name}.onnx", **quant)
    steps["quantize"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    graph = model.graph
    vectors = make_vectors(graph, model.float_graph, len(x) + 6, {graph.inputs[0].name: x})
    out = tmp / f"fpgac-{name}-{time.monotonic_ns()}"
    backends.write(graph, out, "xilinx", vectors, io=io)
    steps["write"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    manifest = read_manifest(out)
    build = out / "build"
    build.mkdir()
    produced, extra = hls.run(out, manifest, vectors, vectors.n, build_dir=build)
    elapsed = time.perf_counter() - t0
    steps["compile"] = float(extra["build_seconds"])
    steps["C-sim"] = elapsed - steps["compile"]
    report = compare("xilinx", manifest["outputs"], vectors, produced)
    values = to_float(produced[0][6:], manifest["outputs"][0].type)  # the 6 input-type extremes left out
    agreement, error = _fidelity(values, ref)
    shutil.rmtree(out, ignore_errors=True)
    return Row(name, flow, steps, agreement, error, f"{report.mismatched_bits} bits")


def run_hls4ml(name: str, x: np.ndarray, ref: np.ndarray, tmp: Path, io: str, precision: str) -> Row:
    flow = f"hls4ml {precision}"
    try:
        model = hls4ml_model(EXAMPLES / f"{name}.onnx", precision, tmp / f"hls4ml-{name}-{time.monotonic_ns()}",
                             io_type=f"io_{io}")
    except Exception as err:  # a peer failing is a result, not a crash
        return Row(name, flow, {}, failed=f"{type(err).__name__}: {str(err).splitlines()[0][:90]}" if str(err)
                   else type(err).__name__)
    t0 = time.perf_counter()
    y = model.predict(x.astype(np.float32))
    csim = time.perf_counter() - t0
    agreement, error = _fidelity(y, ref)
    return Row(name, flow, {"quantize": model.convert_seconds, "write": 0.0, "compile": model.compile_seconds,
                            "C-sim": csim}, agreement, error, "-")


def _table(rows: list[Row], baseline: dict[str, float]) -> str:
    head = ("| model | flow | convert/quantize s | write s | build s | C-sim s | total s | total / fpgac 16 bits "
            "| argmax agreement | max abs error | vs golden |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        if r.failed:
            lines.append(f"| {r.model} | {r.flow} | failed: {r.failed} | | | | | | | | |")
            continue
        s = r.steps
        write = f"{s['write']:.2f}" if "hls4ml" not in r.flow else "(in build)"
        lines.append(
            f"| {r.model} | {r.flow} | {s['quantize']:.2f} | {write} | {s['compile']:.2f} | {s['C-sim']:.2f} | "
            f"{r.total:.2f} | {r.total / baseline[r.model]:.2f}x | {100 * r.agreement:.2f}% | {r.max_error:.3g} | "
            f"{r.exact} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="mlp,digits,cnn2d")
    parser.add_argument("--io", choices=("parallel", "stream"), default="parallel")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each flow; the fastest is reported")
    args = parser.parse_args()
    versions = peer_versions()
    print(", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"io_{args.io}; fpgac builds with {' '.join(CXXFLAGS)} (two units at once), hls4ml with its "
          "own g++ -O3 (one unit)\n")
    rows: list[Row] = []
    baseline: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="fpgac-bench-hls-") as tmp_dir:
        tmp = Path(tmp_dir)
        for name in args.models.split(","):
            x, cal = _inputs(name)
            ref = _float(name, x)
            flows = [
                (run_fpgac, dict(bits=16, **cal)),
                (run_fpgac, dict(bits=16, precision="fixed<16,6>", **cal)),
                (run_hls4ml, dict(precision="fixed<16,6>")),
                (run_hls4ml, dict(precision="auto")),
            ]
            for flow, kwargs in flows:
                best = None
                for _ in range(args.repeat):
                    row = flow(name, x, ref, tmp, args.io, **kwargs)
                    if best is None or (not row.failed and row.total < best.total):
                        best = row
                rows.append(best)
                if best.flow.startswith("fpgac 16 bits"):
                    baseline[name] = best.total
                print(f"  {name:7s} {best.flow:28s} " + (f"failed: {best.failed}" if best.failed else
                      f"total {best.total:6.2f} s  agreement {100 * best.agreement:6.2f}%  max error "
                      f"{best.max_error:.3g}  {best.exact}"), flush=True)
    print()
    print(_table(rows, baseline))
    return 0


if __name__ == "__main__":
    sys.exit(main())
