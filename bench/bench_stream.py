"""The bundled CNNs (``examples/cnn2d.onnx``, ``examples/cnn1d.onnx``) at 8 bits, built by the
amaranth target fully unrolled (``--io parallel``, the default) and streaming (``--io stream``,
folded to the input's pixel rate; once with DSP products, once with ``--dsp never``), each verified
bit for bit on Verilator and synthesized by yosys ``synth_ecp5`` (``fpgac report --no-pnr``, the
figures measured). Prints resources, cycles per inference and latency, and each stream design's
LUT4-eq against the unrolled one's (the issue's goal: at most 0.25x).

    python3 bench/bench_stream.py [--model cnn2d cnn1d] [--vectors N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
FORMS = {"unrolled (--io parallel)": [], "stream (--io stream)": ["--io", "stream"],
         "stream, --dsp never": ["--io", "stream", "--dsp", "never"]}


def _run(argv: list[str]) -> tuple[int, float, str]:
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.returncode, time.monotonic() - start, (done.stdout + done.stderr).strip()


def bench(name: str, vectors: int, work: Path) -> list[dict]:
    rows = []
    for form, options in FORMS.items():
        out = work / f"{name}_{len(rows)}"
        row = {"model": name, "form": form}
        rows.append(row)
        done = (out / "report" / "report.json").is_file() and (out / "verify.json").is_file()
        if not done:  # a kept folder's finished runs are read again, not redone
            code, compile_s, text = _run(["fpgac", "compile", str(EXAMPLES / f"{name}.onnx"), "--target", "amaranth",
                                          "--bits", "8", *options, "-o", str(out), "-q"])
            if code != 0:
                row["error"] = text.splitlines()[-1] if text else f"exit {code}"
                continue
            (out / "compile_seconds.txt").write_text(f"{compile_s:.1f}\n")
            _run(["fpgac", "verify", str(out), "--vectors", str(vectors)])
        row["compile_s"] = float((out / "compile_seconds.txt").read_text()) if (out / "compile_seconds.txt").is_file() else 0.0
        verified = json.loads((out / "verify.json").read_text()) if (out / "verify.json").is_file() else {}
        row["check"] = "bit-exact" if verified.get("result") == "pass" else "FAILED"
        row["mismatched_bits"] = verified.get("mismatching_bits")
        measured = verified.get("measurements", {})
        row["latency"], row["interval"] = measured.get("latency_cycles"), measured.get("interval_cycles")
        if not done:
            code, _, text = _run(["fpgac", "report", str(out), "--no-pnr", "-q"])
            if code != 0:
                row["error"] = text.splitlines()[-1] if text else f"report exit {code}"
                continue
        total = json.loads((out / "report" / "report.json").read_text())["hardware"]["total"]
        row.update(luts=total["luts"], ffs=total["ffs"], dsps=total["dsps"], brams=total["brams"])
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["cnn2d", "cnn1d"], choices=["cnn2d", "cnn1d"])
    parser.add_argument("--vectors", type=int, default=200)
    parser.add_argument("--keep", type=Path, help="keep the designs in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="fpgac-bench-stream-"))
    work.mkdir(parents=True, exist_ok=True)
    print("| model | form | check | LUT4-eq | FF | MULT18X18D | DP16KD | LUT4-eq / unrolled | latency (cycles) "
          "| interval (cycles) | compile s |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in args.model:
        rows = bench(name, args.vectors, work)
        base = rows[0].get("luts")
        for r in rows:
            if "error" in r:
                print(f"| {name} | {r['form']} | {r['error']} | | | | | | | | |")
                continue
            ratio = f"{r['luts'] / base:.2f}x" if base else "-"
            print(f"| {name} | {r['form']} | {r['check']} ({r['mismatched_bits']} bits differ) | {r['luts']:,} | "
                  f"{r['ffs']:,} | {r['dsps']} | {r['brams']:g} | {ratio} | {r['latency']} | {r['interval']:g} | "
                  f"{r['compile_s']:.1f} |")


if __name__ == "__main__":
    main()
