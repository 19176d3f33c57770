"""Quantization benchmarks: golden-model throughput and fidelity, against peers in the same run.

    python bench/bench_quant.py [--samples N] [--seconds S] [--no-hls4ml]

Throughput (inferences/s) of fpgac's bit-exact golden model on the 16-64-32-32-5 MLP, against
onnxruntime's float run and hls4ml's compiled ``predict()`` at the same precision (``fixed<16,6>``
everywhere), same process, same inputs. Fidelity: argmax agreement with the float model at each
width fpgac chooses from data, and fpgac against hls4ml given ``fixed<16,6>`` everywhere and
hls4ml's own ``auto``. Everything is printed as ratios and tables; nothing is asserted.
Needs the ``bench`` extra (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import hls4ml_model, ort_predict, throughput  # noqa: E402

from fpgac import api  # noqa: E402
from fpgac.search import argmax_agreement  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BITS = [16, 12, 10, 8, 6]


def _inputs(name: str, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if name == "digits":
        return np.load(EXAMPLES / "digits_test.npz")["x"].astype(np.float64)
    return rng.uniform(-1, 1, (n, 16))


def _hls4ml(name: str, precision: str, tmp: Path):
    try:
        return hls4ml_model(EXAMPLES / f"{name}.onnx", precision, tmp / f"{name}_{precision.strip('<>,')}")
    except Exception as err:  # a peer failing is a result, not a crash
        print(f"  hls4ml {precision} on {name}: failed: {type(err).__name__}: {str(err).splitlines()[0][:160]}")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per throughput measurement")
    parser.add_argument("--no-hls4ml", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fpgac-bench-"))
    import hls4ml
    import onnxruntime

    import fpgac

    print(f"fpgac {fpgac.__version__}, onnxruntime {onnxruntime.__version__}, hls4ml {hls4ml.__version__}\n")

    # -- throughput -------------------------------------------------------------------------
    x = _inputs("mlp", args.samples, 1).astype(np.float32)
    cal = _inputs("mlp", 1000, 0)
    golden = api.compile(EXAMPLES / "mlp.onnx", calibration=cal, precision="fixed<16,6>")
    auto16 = api.compile(EXAMPLES / "mlp.onnx", calibration=cal, bits=16)
    ort = ort_predict(EXAMPLES / "mlp.onnx")
    rows = [
        ("fpgac golden, fixed<16,6> everywhere", throughput(lambda b: golden.predict(b), x, min_seconds=args.seconds)),
        ("fpgac golden, 16 bits from data", throughput(lambda b: auto16.predict(b), x, min_seconds=args.seconds)),
        ("fpgac float reference", throughput(lambda b: golden.predict(b, float=True), x, min_seconds=args.seconds)),
        ("onnxruntime float", throughput(ort, x, min_seconds=args.seconds)),
    ]
    hls = None if args.no_hls4ml else _hls4ml("mlp", "fixed<16,6>", tmp)
    if hls is not None:
        xc = np.ascontiguousarray(x)
        rows.append(("hls4ml predict(), fixed<16,6>", throughput(hls.predict, xc, min_seconds=args.seconds)))
    base = rows[0][1]
    print(f"## Golden-model throughput, 16-64-32-32-5 MLP, batch {len(x):,}\n")
    print("| engine | inferences/s | fpgac golden (fixed<16,6>) / this |")
    print("|---|---:|---:|")
    for label, rate in rows:
        print(f"| {label} | {rate:,.0f} | {base / rate:.2f}x |")

    # -- fidelity ---------------------------------------------------------------------------
    print("\n## Fidelity: argmax agreement with the float model\n")
    for name in ("mlp", "digits"):
        xs = _inputs(name, args.samples, 1)
        cal = _inputs(name, 1000, 0) if name != "digits" else xs
        reference = ort_predict(EXAMPLES / f"{name}.onnx")(xs.astype(np.float32))
        print(f"### {name} ({len(xs):,} inputs{', the test split, also used for calibration' if name == 'digits' else ''})\n")
        print("| configuration | agreement | total weight+activation bits |")
        print("|---|---:|---:|")
        for bits in BITS:
            c = api.compile(EXAMPLES / f"{name}.onnx", calibration=cal, bits=bits)
            print(f"| fpgac, {bits} bits, integer bits from data | {argmax_agreement(reference, c.predict(xs)):.2%} | {c.total_bits:,} |")
        c = api.compile(EXAMPLES / f"{name}.onnx", calibration=cal, precision="fixed<16,6>")
        print(f"| fpgac, fixed<16,6> everywhere | {argmax_agreement(reference, c.predict(xs)):.2%} | {c.total_bits:,} |")
        c = api.compile(EXAMPLES / f"{name}.onnx", calibration=cal, accuracy_budget=0.01)
        print(f"| fpgac, --accuracy-budget 0.01 | {argmax_agreement(reference, c.predict(xs)):.2%} | {c.total_bits:,} |")
        if not args.no_hls4ml:
            for precision in ("fixed<16,6>", "auto"):
                h = _hls4ml(name, precision, tmp)
                if h is not None:
                    out = h.predict(np.ascontiguousarray(xs.astype(np.float32)))
                    print(f"| hls4ml, {precision} | {argmax_agreement(reference, out.reshape(reference.shape)):.2%} | |")
        print()


if __name__ == "__main__":
    main()
