"""``fpgac sweep`` on Dask: the wall time of one 8-point sweep with 1 worker and with 2 workers.

The points are the bundled MLP (``examples/mlp.onnx``) at 4, 6, 8 and 10 bits, unpruned and
magnitude-pruned 50%, each compiled for ``--target`` (default amaranth: Verilator builds are the
heavy part of a real sweep), verified on its testbench and measured. Each run starts from an empty
sweep folder and an empty simulator cache, so nothing is reused between the two runs; the ratio
is the 1-worker time over the 2-worker time, measured in the same run of this script.

    python3 bench/bench_sweep.py [--target cpu|amaranth|xilinx] [--vectors N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from fpgac.regress.sweep import sweep

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="amaranth", choices=("cpu", "amaranth", "xilinx"))
    parser.add_argument("--vectors", type=int, default=100)
    args = parser.parse_args()
    times = {}
    with tempfile.TemporaryDirectory(prefix="fpgac-bench-sweep-") as tmp:
        for workers in (1, 2):
            os.environ["FPGAC_CACHE_DIR"] = str(Path(tmp) / f"cache{workers}")  # no build reused across runs
            start = time.monotonic()
            result = sweep(REPO / "examples" / "mlp.onnx", Path(tmp) / f"sweep{workers}", target=args.target,
                           bits=[4, 6, 8, 10], prunes=[None, "magnitude:0.5"], reuses=[1], input_range=(-1, 1),
                           vectors=args.vectors, workers=workers)
            times[workers] = time.monotonic() - start
            ok = sum(r["status"] == "ok" for r in result.results)
            print(f"{workers} worker(s): {times[workers]:.1f} s for {len(result.results)} points "
                  f"({ok} bit-exact, {result.computed} computed)", flush=True)
    print(f"speed-up with 2 workers: {times[1] / times[2]:.2f}x (1-worker time / 2-worker time, "
          f"{os.cpu_count()} cores, target {args.target})")


if __name__ == "__main__":
    main()
