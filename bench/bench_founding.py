"""The networks fpgac was founded on (``bench/founding.py``) as RTL on an LFE5U-85F: built by the
amaranth target at 8 bits, verified bit for bit on Verilator, synthesized by yosys and placed and
routed by nextpnr-ecp5 (``fpgac report --pnr``). Prints, per network: the folding, compile and
verify wall times, LUT4-eq/FF/DSP/BRAM against the device's capacity, the clock nextpnr reaches,
cycles per time step (LSTM) and per inference, and inferences per second at that clock.

No peer builds these from ONNX as RTL (hls4ml builds LSTMs and CNNs from Keras or PyTorch only;
da4ml builds constant matrix products, not recurrences), so the figures stand against the issue's
targets (fits the device; the CNN at least 5,000 images per second) rather than a peer's.

    python3 bench/bench_founding.py [--model lstm|cnn ...] [--reuse R] [--interval N] [--vectors N] [--keep DIR]

The LSTM is built fully parallel between its layers with ``--reuse R`` (default 2048); the CNN with
``--io stream --reuse auto --device LFE5U-85F`` (the shortest interval whose design fpgac's estimate
fits on the part), or ``--interval N`` cycles per image when given.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import founding  # noqa: E402

DEVICE = "LFE5U-85F"
CAPACITY = {"LUT4-eq": 83_640, "FF": 83_640, "DSP": 156, "BRAM": 208}


def _run(argv: list[str]) -> tuple[int, float, str]:
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.returncode, time.monotonic() - start, (done.stdout + done.stderr).strip()


def bench(name: str, reuse: int, interval: int | None, vectors: int, work: Path) -> None:
    model = work / f"{name}.onnx"
    onnx.save(getattr(founding, name)(), model)
    cnn = ["--io", "stream", *(["--interval", str(interval)] if interval else ["--reuse", "auto", "--device", DEVICE])]
    options = cnn if name == "cnn" else ["--reuse", str(reuse)]
    out = work / f"{name}_{('i' + str(interval) if interval else 'auto') if name == 'cnn' else 'r' + str(reuse)}"
    code, compile_s, text = _run(["fpgac", "compile", str(model), "--target", "amaranth", "--bits", "8",
                                  "--input-range", "-1,1", *options, "-o", str(out), "-q"])
    print(f"## {name}, 8 bits, {' '.join(options)}")
    if code != 0:
        print(f"not built (exit {code}, {compile_s:.0f} s): {text.splitlines()[-1] if text else ''}\n")
        return
    facts = json.loads((out / "fpgac.json").read_text())["design"]
    code, verify_s, text = _run(["fpgac", "verify", str(out), "--vectors", str(vectors)])
    verified = json.loads((out / "verify.json").read_text()) if (out / "verify.json").is_file() else {}
    code_r, report_s, text_r = _run(["fpgac", "report", str(out), "--pnr", "--pnr-timeout", "5400", "-q"])
    report = json.loads((out / "report" / "report.json").read_text()) if code_r == 0 else None
    print(f"- compile {compile_s:.1f} s; verify {vectors} vectors on Verilator {verify_s:.0f} s: "
          f"{'bit-exact' if code == 0 else 'FAILED: ' + text.splitlines()[-1]} "
          f"({verified.get('mismatching_bits', '?')} mismatching bits); report {report_s:.0f} s")
    if report is None:
        print(f"- report failed: {text_r.splitlines()[-1] if text_r else ''}\n")
        return
    total = report["hardware"]["total"]
    used = {"LUT4-eq": total["luts"], "FF": total["ffs"], "DSP": total["dsps"], "BRAM": total["brams"]}
    print("- resources (yosys synth_ecp5, measured): " + ", ".join(
        f"{k} {v:,} of {CAPACITY[k]:,} ({v / CAPACITY[k]:.0%})" for k, v in used.items()))
    mhz = total.get("clock_mhz")
    measured = verified.get("measurements", {})
    interval = measured.get("interval_cycles") or facts["interval_cycles"]
    print(f"- clock (nextpnr-ecp5 {DEVICE}, measured): {f'{mhz:.1f} MHz' if mhz else report['sources'].get('clock')}")
    latency = measured.get("latency_cycles") or facts["latency_cycles"]
    print(f"- latency {latency:,} cycles, interval {interval:,.0f} cycles per inference "
          f"(measured by Verilator)" + (f"; {mhz * 1e6 / interval:,.0f} inferences/s at that clock" if mhz else ""))
    for f in facts.get("folds", []):
        print(f"- {f['node']}: " + (f"{f['multipliers']} multipliers ({f['dsp_multipliers']} as DSP products; "
                                   f"{f['simd']} inputs x {f['pe']} outputs a cycle)" if f["multipliers"]
                                   else "unrolled, constant weights")
              + f", {f['cycles_per_word']:,} cycles per word x {f['words']} words = {f['cycles']:,} cycles")
    for layer in facts.get("recurrent", []):
        print(f"- {layer['kind'].upper()} {layer['node']}: {layer['cycles_per_step']:,} cycles per time step "
              f"({layer['form']}, {layer['multipliers'] or 'adder trees'} multipliers, {layer['units_per_pass']} units "
              f"a pass, {layer['inputs_per_cycle']} input(s) a cycle)")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", nargs="+", default=["lstm", "cnn"], choices=["lstm", "cnn"])
    parser.add_argument("--reuse", type=int, default=2048, help="the LSTM's reuse factor")
    parser.add_argument("--interval", type=int, help="the CNN's cycles per image (default: --reuse auto)")
    parser.add_argument("--vectors", type=int, default=100)
    parser.add_argument("--keep", type=Path, help="keep the designs in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="fpgac-bench-founding-"))
    work.mkdir(parents=True, exist_ok=True)
    for name in args.model:
        bench(name, args.reuse, args.interval, args.vectors, work)


if __name__ == "__main__":
    main()
