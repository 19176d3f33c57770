"""What ``fpgac verify`` finds: mismatching bits against the golden model, and the distance of the
outputs to the float network (and to the unpruned one) over all vectors and over those inside
the calibrated input range."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..ir import FixedType
from ..ir.fixed import to_float

if TYPE_CHECKING:
    from .common import Port, Vectors

__all__ = ["Distance", "OutputCheck", "Report", "compare", "distance", "mismatched_bits"]

#: how many mismatching vectors of an output a report keeps (index, produced and golden mantissas)
KEEP_MISMATCHES = 3


def mismatched_bits(produced: np.ndarray, golden: np.ndarray, t: FixedType) -> np.ndarray:
    """Per vector, how many of the ``t.width`` bits of each element differ (summed over elements)."""
    mask = (1 << t.width) - 1
    diff = (np.asarray(produced, dtype=np.int64) ^ np.asarray(golden, dtype=np.int64)) & mask
    bits = np.zeros(diff.shape, dtype=np.int64)
    for b in range(t.width):
        bits += (diff >> b) & 1
    return bits.reshape(len(bits), math.prod(bits.shape[1:])).sum(axis=1)


@dataclass(frozen=True)
class Distance:
    """How far outputs are from one float reference, over the vectors compared.

    ``agreement`` is the argmax agreement (None when no output is a class vector or index);
    ``max_error`` the largest ``|output - reference|``, also in LSBs of the output type; the
    ``in_range_*`` fields are the same over the vectors whose inputs lie inside the calibrated
    range (``in_range_vectors`` of them; None when the ranges are unknown).
    """

    reference: str  # "float" (the network the design was quantized from) or "unpruned float"
    agreement: float | None
    max_error: float
    max_error_lsb: float | None
    in_range_vectors: int | None = None
    in_range_agreement: float | None = None
    in_range_max_error: float | None = None
    in_range_max_error_lsb: float | None = None

    def line(self, total: int) -> str:
        parts = []
        if self.agreement is not None:
            parts.append(f"argmax agreement {100 * self.agreement:.2f}%")
        lsb = f" ({self.max_error_lsb:.3g} LSB)" if self.max_error_lsb is not None else ""
        parts.append(f"largest error {self.max_error:.4g}{lsb} on all {total} vectors")
        text = ", ".join(parts)
        if self.in_range_vectors == 0:
            return text + "; no vector lies inside the calibrated input range"
        if self.in_range_vectors is not None and self.in_range_max_error is not None:
            inside = []
            if self.in_range_agreement is not None:
                inside.append(f"agreement {100 * self.in_range_agreement:.2f}%")
            lsb = f" ({self.in_range_max_error_lsb:.3g} LSB)" if self.in_range_max_error_lsb is not None else ""
            inside.append(f"largest error {self.in_range_max_error:.4g}{lsb}")
            text += f"; on the {self.in_range_vectors} inside the calibrated input range: {', '.join(inside)}"
        return text


#: how ``Report.lines`` shows a backend's measurements: key -> (label, format); unknown keys print as they are
_MEASUREMENTS = {
    "simulator": ("simulator", "{}"),
    "simulator_version": ("version", "{}"),
    "latency_cycles": ("latency", "{} cycles (measured)"),
    "declared_latency_cycles": ("declared latency", "{} cycles (the design's own figure)"),
    "interval_cycles": ("interval", "{:.2f} cycles per vector at full rate"),
    "runs": ("runs", "{}"),
    "compiler_warnings": ("compiler warnings", "{} in the project's own files"),
    "build_seconds": ("build", "{} s"),
    "run_seconds": ("simulation", "{} s"),
    "flash_bytes": ("flash", "{:,} bytes"),
    "ram_bytes": ("ram", "{:,} bytes"),
    "build_cache": ("build cache", "{}"),
}


@dataclass(frozen=True)
class OutputCheck:
    """One output's comparison: its mismatching bits and vectors, and the first few of those
    (``(vector index, produced mantissas, golden mantissas)``, flattened in C order)."""

    name: str
    mismatched_bits: int
    mismatched_vectors: int
    first: tuple[tuple[int, tuple[int, ...], tuple[int, ...]], ...] = ()

    @property
    def ok(self) -> bool:
        return self.mismatched_bits == 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "mismatching_bits": self.mismatched_bits,
                "mismatching_vectors": self.mismatched_vectors,
                "first_mismatches": [{"vector": k, "produced": list(got), "golden": list(want)}
                                     for k, got, want in self.first]}


@dataclass
class Report:
    """What ``fpgac verify`` found: bit-exactness against the golden model, distance to float.

    ``float`` is the distance of the design's outputs to the float network it was quantized
    from; ``unpruned`` to the float network before pruning (None when nothing was pruned).
    ``extra`` holds the backend's measurements (latency, interval, simulator, build time...).
    """

    target: str
    vectors: int
    words: int  # output elements compared per vector (over all outputs)
    mismatched_bits: int
    mismatched_vectors: int
    first_mismatch: int | None  # index of the first vector that differs
    float: Distance
    unpruned: Distance | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    outputs: list[OutputCheck] = field(default_factory=list)  # per output, in the design's order
    seconds: float | None = None  # wall time of the whole verify
    date: str | None = None  # when it ran (ISO 8601, UTC)

    @property
    def ok(self) -> bool:
        """Bit-exact on at least one vector: zero vectors prove nothing and fail."""
        return self.vectors > 0 and self.mismatched_bits == 0

    @property
    def agreement(self) -> float | None:
        return self.float.agreement

    @property
    def max_error(self) -> float:
        return self.float.max_error

    @property
    def max_error_lsb(self) -> float | None:
        return self.float.max_error_lsb

    def lines(self) -> list[str]:
        float_label = "vs float" if self.unpruned is None else "vs pruned float"
        lines = [
            f"target            {self.target}",
            f"vectors           {self.vectors} ({self.words} output words each)",
            f"mismatching bits  {self.mismatched_bits} in {self.mismatched_vectors} vectors"
            + (f" (first: vector {self.first_mismatch})" if self.first_mismatch is not None else "")
            + ", against the golden model",
            f"{float_label:<17} {self.float.line(self.vectors)}",
        ]
        if self.unpruned is not None:
            lines.append(f"vs unpruned float {self.unpruned.line(self.vectors)}")
        for key, value in self.extra.items():
            label, fmt = _MEASUREMENTS.get(key, (key.replace("_", " "), "{}"))
            lines.append(f"{label:<17} {'n/a' if value is None else fmt.format(value)}")
        if self.seconds is not None:
            lines.append(f"{'wall time':<17} {self.seconds:.1f} s")
        if self.vectors == 0:
            verdict = "FAIL: no vector was run"
        else:
            verdict = "PASS: bit-exact with the golden model" if self.ok else "FAIL: outputs differ from the golden model"
        lines.append(f"result            {verdict}")
        return lines

    def to_json(self) -> dict[str, Any]:
        """The report as plain data (``OUT/verify.json``)."""
        return {
            "result": "pass" if self.ok else "fail",
            "target": self.target,
            "vectors": self.vectors,
            "output_words_per_vector": self.words,
            "mismatching_bits": self.mismatched_bits,
            "mismatching_vectors": self.mismatched_vectors,
            "first_mismatch": self.first_mismatch,
            "against_golden_model": "every output bit of every vector",
            "outputs": [o.to_json() for o in self.outputs],
            "float": dataclasses.asdict(self.float),
            "unpruned_float": None if self.unpruned is None else dataclasses.asdict(self.unpruned),
            "measurements": self.extra,
            "wall_seconds": None if self.seconds is None else round(self.seconds, 2),
            "date": self.date,
        }


def distance(reference: str, outputs: Sequence[Port], values: Sequence[np.ndarray], refs: Sequence[np.ndarray],
             in_range: np.ndarray | None = None) -> Distance:
    """The distance of output ``values`` (one float array ``(n, *shape)`` per port) to ``refs``."""
    n = len(values[0]) if values else 0

    def measure(rows: np.ndarray) -> tuple[float | None, float, float | None]:
        agree: list[np.ndarray] = []
        max_error, max_lsb = 0.0, None
        for port, got, ref in zip(outputs, values, refs):
            got = np.asarray(got, dtype=np.float64).reshape(n, port.size)[rows]
            ref = np.asarray(ref[:n], dtype=np.float64)
            if ref.size != n * port.size:
                continue
            ref = ref.reshape(n, port.size)[rows]
            if ref.shape != got.shape:
                continue
            error = float(np.max(np.abs(got - ref))) if got.size else 0.0
            max_error = max(max_error, error)
            max_lsb = max(max_lsb or 0.0, error / port.type.lsb)
            if got.shape[1] > 1:
                agree.append(got.argmax(axis=1) == ref.argmax(axis=1))
            elif port.type.int_bits == port.type.width and not port.type.signed:  # an ArgMax index
                agree.append(got[:, 0] == ref[:, 0])
        agreement = float(np.mean(agree[0])) if agree and len(agree[0]) else None
        return agreement, max_error, max_lsb

    agreement, max_error, max_lsb = measure(np.ones(n, dtype=bool))
    if in_range is None:
        return Distance(reference, agreement, max_error, max_lsb)
    inside = np.asarray(in_range[:n], dtype=bool)
    if not inside.any():
        return Distance(reference, agreement, max_error, max_lsb, 0)
    a, e, lsb = measure(inside)
    return Distance(reference, agreement, max_error, max_lsb, int(inside.sum()), a, e, lsb)


def compare(target: str, outputs: Sequence[Port], vectors: Vectors, produced: Sequence[np.ndarray],
            extra: dict[str, Any] | None = None) -> Report:
    """Compare a backend's output mantissas with the golden ones, and their values with float
    (and with the unpruned float network, when the vectors hold its outputs)."""
    n = len(produced[0]) if produced else 0
    bad = np.zeros(n, dtype=np.int64)
    values, checks = [], []
    for port, got, golden in zip(outputs, produced, vectors.golden):
        got = np.asarray(got, dtype=np.int64).reshape(n, *port.shape)
        want = np.asarray(golden[:n], dtype=np.int64).reshape(got.shape)
        bits = mismatched_bits(got, want, port.type)
        bad += bits
        values.append(to_float(got, port.type))
        wrong_here = np.flatnonzero(bits)
        first = tuple((int(k), tuple(int(v) for v in got[k].ravel()), tuple(int(v) for v in want[k].ravel()))
                      for k in wrong_here[:KEEP_MISMATCHES])
        checks.append(OutputCheck(port.name, int(bits.sum()), len(wrong_here), first))
    wrong = np.flatnonzero(bad)
    unpruned = (distance("unpruned float", outputs, values, vectors.unpruned, vectors.in_range)
                if vectors.unpruned is not None else None)
    return Report(
        target=target,
        vectors=n,
        words=sum(p.size for p in outputs),
        mismatched_bits=int(bad.sum()),
        mismatched_vectors=len(wrong),
        first_mismatch=int(wrong[0]) if len(wrong) else None,
        float=distance("float", outputs, values, vectors.reference, vectors.in_range),
        unpruned=unpruned,
        extra=dict(extra or {}),
        outputs=checks,
    )
