"""What every backend shares: the ports, the test vectors, the manifest and the verification report.

A backend's output directory ``OUT`` always holds, besides the backend's own files:

- ``fpgac.json``, the manifest: target, model name, fpgac version, the input and output ports
  (name, per-sample shape, fixed-point type) and the backend's options;
- ``vectors.npz``, the test vectors: for every input ``in{i}`` the float values fed and their
  mantissas, for every output ``golden{i}`` the golden model's mantissas and ``float{i}`` the
  float network's outputs on the same inputs (all batch first, ``(n, *shape)``).

``fpgac verify OUT`` loads both, asks the backend to build and run its own testbench on the first
``n`` vectors, and compares what comes back with the golden mantissas bit for bit
(:func:`compare`). A backend module provides two functions:

``write(graph, out, vectors, **options) -> dict``
    Write the design for the quantized ``graph`` into the (fresh, empty) directory ``out``,
    including its testbench and its own copy of the vectors in whatever format the testbench
    reads. Returns extra manifest entries (JSON-serializable). Raise
    :class:`~fpgac.errors.UnsupportedError` naming the node for anything it cannot build.
``run(out, manifest, vectors, n, progress=None, **options) -> (outputs, extra)``
    Build and run the testbench in ``out`` on the first ``n`` vectors; return the output
    mantissas it produced (one int64 array ``(n, *shape)`` per output port) and a dict of
    measurements to report (``latency_cycles``, ``interval_cycles``, ``build_seconds``...).
    ``progress(done, total)`` may be called as vectors complete. A testbench that fails to build
    or run raises :class:`BackendError` with the tool's last lines of output.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import FpgacError, UsageError
from ..ir import FixedType, Graph, parse_type
from ..ir.fixed import quantize, to_float
from ..sim.reference import run_fixed, run_float

__all__ = [
    "MANIFEST",
    "VECTORS",
    "BackendError",
    "Port",
    "Report",
    "Vectors",
    "compare",
    "load_vectors",
    "make_vectors",
    "mismatched_bits",
    "ports",
    "read_manifest",
    "save_vectors",
    "write_manifest",
]

MANIFEST = "fpgac.json"
VECTORS = "vectors.npz"

#: how many of the first vectors are the extremes of the input types (see ``make_vectors``)
EXTREMES = 6
#: at most this many input and output elements over all test vectors (their files and the
#: testbench's memory grow with it): a model with huge tensors gets fewer vectors, with a warning
MAX_VECTOR_ELEMENTS = 1 << 24

log = logging.getLogger(__name__)


class BackendError(FpgacError):
    """A generated design failed to build or run (compiler or simulator errors)."""


@dataclass(frozen=True)
class Port:
    """A graph input or output as the hardware sees it: per-sample shape and fixed-point type."""

    name: str
    shape: tuple[int, ...]
    type: FixedType

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "type": str(self.type)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Port:
        return cls(data["name"], tuple(data["shape"]), parse_type(data["type"]))


def ports(graph: Graph) -> tuple[list[Port], list[Port]]:
    """The quantized graph's input and output ports; refuses a graph that is not quantized."""

    def port(value, kind: str) -> Port:
        if not isinstance(value.type.dtype, FixedType):
            raise UsageError(f"{kind} {value.name!r} has type {value.type.dtype}: backends need a quantized graph")
        return Port(value.name, tuple(value.type.shape), value.type.dtype)

    return [port(v, "input") for v in graph.inputs], [port(v, "output") for v in graph.outputs]


@dataclass
class Vectors:
    """Test vectors, batch first: inputs (values and mantissas), golden mantissas, float outputs."""

    inputs: list[np.ndarray]
    input_mantissas: list[np.ndarray]
    golden: list[np.ndarray]
    reference: list[np.ndarray]

    @property
    def n(self) -> int:
        return len(self.input_mantissas[0])

    def head(self, n: int) -> Vectors:
        return Vectors(*([a[:n] for a in arrays] for arrays in
                         (self.inputs, self.input_mantissas, self.golden, self.reference)))


def make_vectors(
    graph: Graph,
    float_graph: Graph | None = None,
    n: int = 1000,
    calibration: dict[str, np.ndarray] | None = None,
    seed: int = 0,
) -> Vectors:
    """``n`` input vectors and what the golden model (and the float network) make of them.

    The first vectors are the extremes of each input type (all minimum, all maximum, all zero,
    alternating minimum/maximum both ways, one random choice of minimum or maximum per element);
    then calibration rows (quantized to the input type) as far as there are any; the rest are
    uniform over every mantissa the input type can hold. ``float_graph`` (the network before
    quantization) gives ``reference``; without it ``reference`` is the golden values.
    """
    if n < 1:
        raise UsageError(f"the number of test vectors must be at least 1, not {n}")
    inputs, outputs = ports(graph)
    per_vector = sum(p.size for p in (*inputs, *outputs))
    fit = max(1, MAX_VECTOR_ELEMENTS // max(per_vector, 1))
    if n > fit:
        log.warning(f"{n} test vectors of {per_vector:,} input and output elements each are too many to "
                    f"store; writing {fit}")
        n = fit
    rng = np.random.default_rng(seed)
    mantissas = []
    for port in inputs:
        lo, hi = port.type.min_mantissa, port.type.max_mantissa
        alternating = np.indices(port.shape).sum(axis=0) % 2 == 0 if port.shape else np.array(True)
        extremes = [
            np.full(port.shape, lo),
            np.full(port.shape, hi),
            np.zeros(port.shape, dtype=np.int64),
            np.where(alternating, lo, hi),
            np.where(alternating, hi, lo),
            np.where(rng.integers(0, 2, port.shape) == 1, hi, lo),
        ]
        parts = [np.stack(extremes).astype(np.int64)[:n]]
        if calibration is not None and port.name in calibration and n > EXTREMES:
            rows = np.asarray(calibration[port.name], dtype=np.float64)[: n - EXTREMES]
            rows = rows.reshape(len(rows), *port.shape)
            parts.append(quantize(rows, port.type))
        rest = n - sum(len(p) for p in parts)
        if rest > 0:
            parts.append(rng.integers(lo, hi, size=(rest, *port.shape), endpoint=True, dtype=np.int64))
        mantissas.append(np.concatenate(parts))
    values = [to_float(m, p.type) for m, p in zip(mantissas, inputs)]
    feed = {p.name: v for p, v in zip(inputs, values)}
    golden = [_batch_first(graph, v, a) for v, a in zip(graph.outputs, run_fixed(graph, feed, mantissas=True))]
    if float_graph is not None:
        reference = [_batch_first(float_graph, v, a) for v, a in zip(float_graph.outputs, run_float(float_graph, feed))]
    else:
        reference = [to_float(g, p.type) for g, p in zip(golden, ports(graph)[1])]
    return Vectors(values, mantissas, golden, [np.asarray(r, dtype=np.float64) for r in reference])


def _batch_first(graph: Graph, value, array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(array, graph.output_batch_axes.get(value.name, 0), 0))


def save_vectors(path: Path, vectors: Vectors) -> None:
    arrays = {}
    for i, (v, m) in enumerate(zip(vectors.inputs, vectors.input_mantissas)):
        arrays[f"in{i}"], arrays[f"in{i}_mantissas"] = v, m
    for i, (g, r) in enumerate(zip(vectors.golden, vectors.reference)):
        arrays[f"golden{i}"], arrays[f"float{i}"] = g, r
    np.savez_compressed(path, **arrays)


def load_vectors(path: Path) -> Vectors:
    try:
        with np.load(path) as data:
            k_in = sum(1 for k in data.files if k.startswith("in") and not k.endswith("_mantissas"))
            k_out = sum(1 for k in data.files if k.startswith("golden"))
            return Vectors(
                [data[f"in{i}"] for i in range(k_in)],
                [data[f"in{i}_mantissas"] for i in range(k_in)],
                [data[f"golden{i}"] for i in range(k_out)],
                [data[f"float{i}"] for i in range(k_out)],
            )
    except (OSError, ValueError, KeyError) as err:
        raise UsageError(f"{path}: not a readable fpgac test-vector file ({err})") from None


def write_manifest(out: Path, target: str, graph: Graph, options: dict[str, Any], extra: dict[str, Any]) -> None:
    from .. import __version__

    inputs, outputs = ports(graph)
    manifest = {
        "target": target,
        "model": graph.name,
        "fpgac": __version__,
        "inputs": [p.to_json() for p in inputs],
        "outputs": [p.to_json() for p in outputs],
        "options": options,
        **extra,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def read_manifest(out: Path) -> dict[str, Any]:
    path = Path(out) / MANIFEST
    if not Path(out).is_dir():
        raise UsageError(f"{out}: no such directory (give the -o directory of `fpgac compile`)")
    try:
        manifest = json.loads(path.read_text())
        manifest["inputs"] = [Port.from_json(p) for p in manifest["inputs"]]
        manifest["outputs"] = [Port.from_json(p) for p in manifest["outputs"]]
        manifest["target"]
    except FileNotFoundError:
        raise UsageError(f"{out}: no {MANIFEST}: not an output directory of `fpgac compile`") from None
    except (OSError, ValueError, KeyError, TypeError, FpgacError) as err:
        raise UsageError(f"{path}: unreadable manifest ({type(err).__name__}: {err})") from None
    return manifest


def mismatched_bits(produced: np.ndarray, golden: np.ndarray, t: FixedType) -> np.ndarray:
    """Per vector, how many of the ``t.width`` bits of each element differ (summed over elements)."""
    mask = (1 << t.width) - 1
    diff = (np.asarray(produced, dtype=np.int64) ^ np.asarray(golden, dtype=np.int64)) & mask
    bits = np.zeros(diff.shape, dtype=np.int64)
    for b in range(t.width):
        bits += (diff >> b) & 1
    return bits.reshape(len(bits), -1).sum(axis=1)


@dataclass
class Report:
    """What ``fpgac verify`` found: bit-exactness against the golden model, distance to float."""

    target: str
    vectors: int
    words: int  # output elements compared per vector (over all outputs)
    mismatched_bits: int
    mismatched_vectors: int
    first_mismatch: int | None  # index of the first vector that differs
    agreement: float | None  # argmax agreement with the float network (None: no class output)
    max_error: float  # largest |dequantized output - float output|
    extra: dict[str, Any] = field(default_factory=dict)
    max_error_lsb: float | None = None  # the same, in units of the output type's last bit (largest over outputs)

    @property
    def ok(self) -> bool:
        return self.mismatched_bits == 0

    def lines(self) -> list[str]:
        lines = [
            f"target            {self.target}",
            f"vectors           {self.vectors} ({self.words} output words each)",
            f"mismatching bits  {self.mismatched_bits} in {self.mismatched_vectors} vectors"
            + (f" (first: vector {self.first_mismatch})" if self.first_mismatch is not None else ""),
        ]
        if self.agreement is not None:
            lines.append(f"float agreement   {100 * self.agreement:.2f}% argmax")
        lsb = f" ({self.max_error_lsb:.3g} LSB of the output type)" if self.max_error_lsb is not None else ""
        lines.append(f"float max error   {self.max_error:.6g}{lsb}")
        for key, value in self.extra.items():
            lines.append(f"{key.replace('_', ' '):<17} {value}")
        lines.append("result            " + ("PASS: bit-exact with the golden model" if self.ok else "FAIL"))
        return lines


def compare(target: str, outputs: Sequence[Port], vectors: Vectors, produced: Sequence[np.ndarray],
            extra: dict[str, Any] | None = None) -> Report:
    """Compare a backend's output mantissas with the golden ones, and their values with float."""
    n = len(produced[0]) if produced else 0
    bad = np.zeros(n, dtype=np.int64)
    agree: list[np.ndarray] = []
    max_error, max_lsb = 0.0, None
    for port, got, golden, ref in zip(outputs, produced, vectors.golden, vectors.reference):
        got = np.asarray(got, dtype=np.int64).reshape(n, *port.shape)
        bad += mismatched_bits(got, golden[:n], port.type)
        values = to_float(got, port.type).reshape(n, -1)
        ref = np.asarray(ref[:n], dtype=np.float64).reshape(n, -1)
        if ref.shape == values.shape:
            error = float(np.max(np.abs(values - ref))) if values.size else 0.0
            max_error = max(max_error, error)
            max_lsb = max(max_lsb or 0.0, error / port.type.lsb)
            if values.shape[1] > 1:
                agree.append(values.argmax(axis=1) == ref.argmax(axis=1))
            elif port.type.int_bits == port.type.width and not port.type.signed:  # an ArgMax index
                agree.append(values[:, 0] == ref[:, 0])
    wrong = np.flatnonzero(bad)
    return Report(
        target=target,
        vectors=n,
        words=sum(p.size for p in outputs),
        mismatched_bits=int(bad.sum()),
        mismatched_vectors=len(wrong),
        first_mismatch=int(wrong[0]) if len(wrong) else None,
        agreement=float(np.mean(agree[0])) if agree else None,
        max_error=max_error,
        extra=dict(extra or {}),
        max_error_lsb=max_lsb,
    )
