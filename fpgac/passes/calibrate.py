"""Calibrate: record the range every tensor takes on calibration data.

The float reference runs the graph on the calibration batch and each non-constant value gets
``value.range = (min, max)``, which is what quantization sizes integer bits from. With no data,
:func:`sample_input_range` draws inputs uniformly from the range the user declares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir import Graph
from fpgac.ir.semantics import CHUNK_ELEMENTS, chunk_rows, evaluate_float

__all__ = ["Calibrate", "sample_input_range", "DEFAULT_INPUT_RANGE", "DEFAULT_SAMPLES"]

#: the input range assumed when neither calibration data nor ``--input-range`` is given
DEFAULT_INPUT_RANGE = (-1.0, 1.0)
#: how many samples are drawn from a declared input range
DEFAULT_SAMPLES = 1000


@dataclass(frozen=True)
class Calibrate:
    """Set ``range`` on every non-constant value from a float run on ``inputs`` (by input name)."""

    inputs: Mapping[str, np.ndarray] = field(repr=False)

    def run(self, graph: Graph) -> bool:
        for value in graph.inputs:
            batch = np.asarray(self.inputs[value.name]) if value.name in self.inputs else None
            if batch is not None and batch.size and not np.all(np.isfinite(batch)):
                raise UsageError(f"calibration input {value.name!r} holds NaN or infinite values")
        inputs = {name: np.asarray(batch) for name, batch in self.inputs.items()}
        n = min((len(a) for a in inputs.values() if a.ndim), default=1)
        if n == 0:
            raise UsageError("the calibration batch is empty")
        ranges: dict[str, tuple[float, float]] = {}
        step = chunk_rows(graph)  # a large batch runs in parts, so memory stays bounded
        for start in range(0, n, step):
            part = {name: a[start : start + step] if a.ndim else a for name, a in inputs.items()}
            for name, array in evaluate_float(graph, part).items():
                if array.size == 0:
                    raise UsageError("the calibration batch is empty")
                lo, hi = float(array.min()), float(array.max())
                if name in ranges:
                    lo, hi = min(lo, ranges[name][0]), max(hi, ranges[name][1])
                ranges[name] = (lo, hi)
        for value in graph.values():
            if not value.is_const:
                value.range = ranges[value.name]
        return False  # types and structure are untouched


def sample_input_range(
    graph: Graph, lo: float, hi: float, *, samples: int = DEFAULT_SAMPLES, seed: int = 0
) -> dict[str, np.ndarray]:
    """``samples`` inputs per graph input, uniform in ``[lo, hi]``, from a fixed seed.

    Inputs so large that ``samples`` of them would pass ``CHUNK_ELEMENTS`` get fewer samples (at
    least 16): each sample then draws many elements, and the ranges settle all the same.
    """
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        raise UsageError(f"input range {lo},{hi} must be two finite numbers LO,HI with LO < HI")
    elements = sum(v.type.size for v in graph.inputs)
    samples = min(samples, max(16, CHUNK_ELEMENTS // max(elements, 1)))
    rng = np.random.default_rng(seed)
    return {v.name: rng.uniform(lo, hi, size=(samples, *v.type.shape)) for v in graph.inputs}
