"""The golden model's outputs on every bundled example, byte for byte as they were before the
semantics layer (issue 15) took over each op's fixed-point meaning: ``tests/data/golden_baseline.npz``
was written by ``tests/data/make_golden_baseline.py`` from the code before that change. A refactor
must not move one bit of what the hardware is asked to compute."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from fpgac.sim import run_fixed

DATA = Path(__file__).resolve().parents[1] / "data"
_spec = importlib.util.spec_from_file_location("make_golden_baseline", DATA / "make_golden_baseline.py")
baseline = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(baseline)


@pytest.fixture(scope="module")
def saved():
    with np.load(DATA / "golden_baseline.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("case", baseline.CASES, ids=lambda c: baseline.case_name(*c))
def test_golden_outputs_are_byte_identical_to_the_baseline(saved, case) -> None:
    key = baseline.case_name(*case)
    compiled = baseline.compile_case(*case)
    outputs = run_fixed(compiled.graph, [saved[f"{key}/inputs"]], mantissas=True)
    stored = sorted(k for k in saved if k.startswith(f"{key}/golden"))
    assert len(outputs) == len(stored)
    for i, got in enumerate(outputs):
        want = saved[f"{key}/golden{i}"]
        assert got.dtype == want.dtype and got.shape == want.shape
        assert got.tobytes() == want.tobytes(), f"{key} output {i}: {int(np.sum(got != want))} mantissas moved"
