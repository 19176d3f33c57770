"""Write golden_baseline.npz: the golden model's outputs on every bundled example, saved before the
semantics layer (issue 15) moved each op's fixed-point meaning; tests/sim/test_golden_baseline.py
checks that they stay byte-identical. Run from the repository root: python tests/data/make_golden_baseline.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fpgac import api
from fpgac.sim import run_fixed

ROOT = Path(__file__).resolve().parents[2]
CASES = [(name, bits, prune) for name in ("mlp", "cnn2d", "cnn1d", "lstm", "gru", "digits", "qmlp")
         for bits, prune in ((8, None), (16, None))] + [("mlp", 8, "magnitude:0.8"), ("digits", 6, "structured:0.25")]


def case_name(name: str, bits: int, prune: str | None) -> str:
    return f"{name}-{bits}" + (f"-{prune.replace(':', '_').replace('.', '_')}" if prune else "")


def compile_case(name: str, bits: int, prune: str | None):
    calibration = ROOT / "examples" / "digits_test.npz" if name == "digits" else None
    return api.compile(ROOT / "examples" / f"{name}.onnx", bits=bits, prune=prune, calibration=calibration,
                       input_range=None if calibration else (-1, 1))


def main() -> None:
    arrays = {}
    for name, bits, prune in CASES:
        compiled = compile_case(name, bits, prune)
        key = case_name(name, bits, prune)
        x = compiled.vectors(300).inputs
        arrays[f"{key}/inputs"] = x[0]
        for i, m in enumerate(run_fixed(compiled.graph, x, mantissas=True)):
            arrays[f"{key}/golden{i}"] = m
    np.savez_compressed(Path(__file__).with_name("golden_baseline.npz"), **arrays)


if __name__ == "__main__":
    main()
