"""``--accuracy-budget E``: the narrowest per-layer widths that keep the float model's argmax.

Agreement is measured on the calibration batch: the fraction of argmaxes (over the last axis of
the first output, at every leading position) on which the golden model equals the float model.

A candidate meets the budget when agreement is at least ``1 - E`` *with confidence*: the lower end
of the Wilson score interval (``z = 2``, about 97.7% one-sided) must reach ``1 - E``. The search
picks among many candidates, and the ones that look best on the calibration batch are partly
lucky; without the margin the chosen widths miss the budget on inputs the search never saw
(measured on the 16-64-32-32-5 MLP: 99.1% on calibration, 98.6% held out).

The search, in two steps, each accepting a change only while the budget is met:

1. the smallest *uniform* width (weights and activations alike), scanning down from ``max_bits``;
2. from there, greedily per knob, where a knob is one layer's weight width or one layer's result
   (activation) width, the knobs holding the most bits first: lower the knob one bit at a time
   until the next step would break the budget, then go to the next knob; repeat the round until
   no knob moves.

Every candidate is quantized from scratch and run through the golden model, so what the search
reports is exactly what ``predict`` computes.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir import Graph
from fpgac.passes.quantize import LayerConfig, QuantConfig, QuantRecord, Quantize
from fpgac.sim import run_fixed, run_float

__all__ = ["SearchResult", "argmax_agreement", "lower_bound", "meets", "samples_needed", "search_widths", "total_bits"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchResult:
    budget: float
    uniform_bits: int
    uniform_agreement: float
    uniform_total_bits: int
    config: QuantConfig
    agreement: float
    total_bits: int
    evaluations: int
    samples: int = 0

    def widths(self) -> dict[str, dict[str, int]]:
        """Per layer, the weight and result widths the search chose (those it did not lower are
        the uniform width)."""
        return {name: {k: v for k, v in (("weight_bits", c.weight_bits), ("result_bits", c.result_bits)) if v is not None}
                for name, c in self.config.layers.items()}

    def to_json(self) -> dict:
        return {"budget": self.budget, "calibration_samples": self.samples, "uniform_bits": self.uniform_bits,
                "uniform_agreement": self.uniform_agreement, "uniform_total_bits": self.uniform_total_bits,
                "agreement": self.agreement, "total_bits": self.total_bits, "candidates": self.evaluations,
                "layers": self.widths()}


def argmax_agreement(reference: np.ndarray, candidate: np.ndarray) -> float:
    """Fraction of positions whose argmax over the last axis agrees."""
    return float(np.mean(np.argmax(reference, axis=-1) == np.argmax(candidate, axis=-1)))


def lower_bound(agreement: float, samples: int, z: float = 2.0) -> float:
    """The Wilson score interval's lower end for ``agreement`` measured on ``samples``."""
    n = max(samples, 1)
    centre = agreement + z * z / (2 * n)
    spread = z * math.sqrt(agreement * (1 - agreement) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n)


def meets(agreement: float, samples: int, budget: float, z: float = 2.0) -> bool:
    """Whether the Wilson lower bound of ``agreement`` over ``samples`` reaches ``1 - budget``."""
    return lower_bound(agreement, samples, z) >= 1.0 - budget - 1e-12


def samples_needed(agreement: float, budget: float, z: float = 2.0, limit: int = 10_000_000) -> int | None:
    """How many samples would let ``agreement`` (if it held) meet ``budget`` with confidence;
    None when no number would (the agreement itself is below ``1 - budget``)."""
    if agreement < 1.0 - budget:
        return None
    n = 1
    while n <= limit and not meets(agreement, n, budget, z):
        n *= 2
    if n > limit:
        return None
    lo = n // 2
    while lo + 1 < n:  # the smallest n that meets it, between lo (fails) and n (meets)
        mid = (lo + n) // 2
        lo, n = (lo, mid) if meets(agreement, mid, budget, z) else (mid, n)
    return n


def total_bits(records: list[QuantRecord]) -> int:
    """Weight and activation storage: width times elements, over weights, inputs and narrowed results."""
    return sum(r.type.width * r.elements for r in records if r.role in ("weight", "input", "result"))


def search_widths(
    graph: Graph,
    inputs: Mapping[str, np.ndarray],
    budget: float,
    *,
    base: QuantConfig = QuantConfig(),
    max_bits: int = 16,
    min_bits: int = 2,
    progress: Callable[[str], None] | None = None,
) -> SearchResult:
    """Search widths for a calibrated float ``graph``; see the module docstring."""
    if not 0 <= budget < 1:
        raise UsageError(f"accuracy budget must be at least 0 and below 1, not {budget}")
    say = progress or (lambda message: log.info("%s", message))
    reference = run_float(graph, dict(inputs))[0]
    evaluations = 0

    def measure(config: QuantConfig) -> tuple[float, list[QuantRecord]]:
        nonlocal evaluations
        evaluations += 1
        g = copy.deepcopy(graph)
        q = Quantize(config)
        q.run(g)
        return argmax_agreement(reference, run_fixed(g, dict(inputs))[0]), q.records

    samples = int(np.prod(np.argmax(reference, axis=-1).shape))
    ok = lambda a: meets(a, samples, budget)  # noqa: E731
    uniform, (agreement, records) = max_bits, measure(replace(base, bits=max_bits))
    if not ok(agreement):
        differ = round((1 - agreement) * samples)
        needed = samples_needed(agreement, budget)
        if needed is None:
            why = f"below the {1 - budget:.2%} the budget asks for: give more --bits or a larger budget"
        else:
            why = (f"which on so few samples proves only {lower_bound(agreement, samples):.2%} (its lower bound at "
                   f"97.7% confidence), not the {1 - budget:.2%} the budget asks for: give more "
                   f"calibration data (about {needed:,} samples at this agreement), more --bits or a larger budget")
        raise UsageError(
            f"--accuracy-budget {budget} cannot be met at --bits {max_bits}: the best, {max_bits} bits everywhere, "
            f"agrees with the float argmax on {agreement:.2%} of the {samples:,} calibration samples ({differ} "
            f"differ), {why}"
        )
    for bits in range(max_bits - 1, min_bits - 1, -1):
        a, r = measure(replace(base, bits=bits))
        if not ok(a):
            break
        uniform, agreement, records = bits, a, r
    say(f"accuracy budget {budget}: smallest uniform width {uniform} bits (agreement {agreement:.2%})")
    uniform_agreement, uniform_total = agreement, total_bits(records)

    # knobs: (layer, role) for every weight tensor and narrowed result, largest first
    sizes: dict[tuple[str, str], int] = {}
    for r in records:
        if r.role in ("weight", "result", "input"):
            key = (r.layer, "weight" if r.role == "weight" else "result")
            sizes[key] = sizes.get(key, 0) + r.elements * r.type.width
    knobs = sorted(sizes, key=lambda k: -sizes[k])
    widths = {k: uniform for k in knobs}

    def config_for(w: dict[tuple[str, str], int]) -> QuantConfig:
        layers: dict[str, LayerConfig] = {}
        for (layer, role), bits in w.items():
            c = layers.get(layer, LayerConfig())
            layers[layer] = replace(c, **{f"{role}_bits": bits})
        return replace(base, bits=uniform, layers=layers)

    moved = True
    while moved:
        moved = False
        for knob in knobs:
            while widths[knob] > min_bits:
                trial = {**widths, knob: widths[knob] - 1}
                a, r = measure(config_for(trial))
                if not ok(a):
                    break
                widths, agreement, records, moved = trial, a, r, True
        say(f"  per-layer round: {total_bits(records):,} bits, agreement {agreement:.2%}")
    return SearchResult(budget, uniform, uniform_agreement, uniform_total, config_for(widths), agreement,
                        total_bits(records), evaluations, samples)
