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
from fpgac.sim.reference import evaluate_float

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
        arrays = evaluate_float(graph, dict(self.inputs))
        for value in graph.values():
            if not value.is_const:
                array = arrays[value.name]
                if array.size == 0:
                    raise UsageError("the calibration batch is empty")
                value.range = (float(array.min()), float(array.max()))
        return False  # types and structure are untouched


def sample_input_range(
    graph: Graph, lo: float, hi: float, *, samples: int = DEFAULT_SAMPLES, seed: int = 0
) -> dict[str, np.ndarray]:
    """``samples`` inputs per graph input, uniform in ``[lo, hi]``, from a fixed seed."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo >= hi:
        raise UsageError(f"input range {lo},{hi} must be two finite numbers LO,HI with LO < HI")
    rng = np.random.default_rng(seed)
    return {v.name: rng.uniform(lo, hi, size=(samples, *v.type.shape)) for v in graph.inputs}
