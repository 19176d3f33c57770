"""What every backend shares: the ports, the test vectors and the manifest.

A backend's output directory ``OUT`` always holds, besides the backend's own files:

- ``fpgac.json``, the manifest: target, model name, fpgac version, the input and output ports
  (name, per-sample shape, fixed-point type), the options as given and as resolved, how the
  design was made (``provenance``: model and calibration hashes, command, tool versions, date)
  and the backend's own entries;
- ``vectors.npz``, the test vectors: for every input ``in{i}`` the float values fed and their
  mantissas, for every output ``golden{i}`` the golden model's mantissas, ``float{i}`` the float
  network's outputs on the same inputs and, for a pruned design, ``unpruned{i}`` the unpruned
  network's; ``in_range`` marks the vectors inside the calibrated input range (all batch first);
- ``verify.json`` once ``fpgac verify OUT`` has run (:class:`~.verification.Report`).

``fpgac verify OUT`` loads the manifest and vectors, asks the backend to build and run its own
testbench on the first ``n`` vectors, and compares what comes back with the golden mantissas bit
for bit (:func:`~.verification.compare`). A backend module provides:

``options(**given) -> dict``
    The target's options checked (a UsageError naming a bad one) and with defaults filled in;
    called before any work, and recorded in the manifest as resolved.
``VERIFY_OPTIONS``
    The names of the options its ``run`` takes besides the vector count (``simulator``...);
    verify refuses any other.
``write(graph, out, vectors, **options) -> dict``
    Write the design for the quantized ``graph`` into the (fresh, empty) directory ``out``,
    including its testbench and its own copy of the vectors in whatever format the testbench
    reads. Returns extra manifest entries (JSON-serializable). Raise
    :class:`~fpgac.errors.UnsupportedError` naming the node for anything it cannot build.
``run(out, manifest, vectors, n, progress=None, *, build_dir, **options) -> (outputs, extra)``
    Build the testbench in ``build_dir`` (a temporary folder, or ``OUT/build`` with
    ``--keep-build``) and run it on the first ``n`` vectors; return the output mantissas it
    produced (one int64 array ``(n, *shape)`` per output port) and a dict of measurements
    (``latency_cycles``, ``interval_cycles``, ``simulator``, ``build_seconds``...).
    ``progress(done, total)`` may be called as vectors complete. A testbench that fails to build
    or run raises :class:`BackendError` with the tool's last lines of output.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import FpgacError, UsageError
from ..ir import FixedType, Graph, parse_type
from ..ir.fixed import quantize, to_float
from ..provenance import now, tool_versions
from .verification import Distance, Report, compare, distance, mismatched_bits
from ..ir.semantics import run_fixed, run_float

__all__ = [
    "MANIFEST",
    "VECTORS",
    "VERIFY_REPORT",
    "BackendError",
    "Distance",
    "Port",
    "Report",
    "Vectors",
    "compare",
    "distance",
    "json_default",
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
VERIFY_REPORT = "verify.json"

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
    """Test vectors, batch first: inputs (values and mantissas), golden mantissas, float outputs.

    ``unpruned`` holds the outputs of the float network before pruning (None when the design was
    not pruned); ``in_range`` marks the vectors whose inputs all lie inside the range calibration
    saw (None when unknown), where the distance to float means what the network does on its data
    rather than at saturating extremes.
    """

    inputs: list[np.ndarray]
    input_mantissas: list[np.ndarray]
    golden: list[np.ndarray]
    reference: list[np.ndarray]
    unpruned: list[np.ndarray] | None = None
    in_range: np.ndarray | None = None

    @property
    def n(self) -> int:
        return len(self.input_mantissas[0])

    def head(self, n: int) -> Vectors:
        return Vectors(*([a[:n] for a in arrays] for arrays in
                         (self.inputs, self.input_mantissas, self.golden, self.reference)),
                       unpruned=None if self.unpruned is None else [a[:n] for a in self.unpruned],
                       in_range=None if self.in_range is None else self.in_range[:n])


def make_vectors(
    graph: Graph,
    float_graph: Graph | None = None,
    n: int = 1000,
    calibration: dict[str, np.ndarray] | None = None,
    seed: int = 0,
    unpruned_graph: Graph | None = None,
) -> Vectors:
    """``n`` input vectors and what the golden model (and the float network) make of them.

    The first vectors are the extremes of each input type (all minimum, all maximum, all zero,
    alternating minimum/maximum both ways, one random choice of minimum or maximum per element);
    then calibration rows (quantized to the input type) as far as there are any; the rest are
    uniform mantissas, half of them inside the range calibration recorded for the input (when
    ``float_graph`` carries it: where the network works), the others over every mantissa the
    input type can hold (where its saturation is tested). ``float_graph`` (the network before
    quantization) gives ``reference``; without it ``reference`` is the golden values.
    ``unpruned_graph``, the float network before pruning, gives ``unpruned``; the calibrated
    input ranges of ``float_graph`` give ``in_range``.
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
        calibrated = _calibrated_mantissas(float_graph, port)
        inside = rest // 2 if calibrated is not None and rest > 0 else 0
        if inside:
            parts.append(rng.integers(*calibrated, size=(inside, *port.shape), endpoint=True, dtype=np.int64))
        if rest - inside > 0:
            parts.append(rng.integers(lo, hi, size=(rest - inside, *port.shape), endpoint=True, dtype=np.int64))
        mantissas.append(np.concatenate(parts))
    values = [to_float(m, p.type) for m, p in zip(mantissas, inputs)]
    feed = {p.name: v for p, v in zip(inputs, values)}
    golden = [_batch_first(graph, v, a) for v, a in zip(graph.outputs, run_fixed(graph, feed, mantissas=True))]
    if float_graph is not None:
        reference = _float_outputs(float_graph, feed)
    else:
        reference = [to_float(g, p.type) for g, p in zip(golden, ports(graph)[1])]
    unpruned = _float_outputs(unpruned_graph, feed) if unpruned_graph is not None else None
    return Vectors(values, mantissas, golden, reference, unpruned, _in_range(float_graph, inputs, values))


def _calibrated_mantissas(float_graph: Graph | None, port: Port) -> tuple[int, int] | None:
    """The mantissas of ``port``'s type inside the range calibration recorded for it, if any."""
    value = next((v for v in float_graph.inputs if v.name == port.name), None) if float_graph is not None else None
    if value is None or value.range is None:
        return None
    lo = max(port.type.min_mantissa, math.ceil(value.range[0] / port.type.lsb))
    hi = min(port.type.max_mantissa, math.floor(value.range[1] / port.type.lsb))
    return (lo, hi) if lo < hi else None


def _float_outputs(graph: Graph, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    return [np.asarray(_batch_first(graph, v, a), dtype=np.float64) for v, a in zip(graph.outputs, run_float(graph, feed))]


def _in_range(float_graph: Graph | None, inputs: Sequence[Port], values: list[np.ndarray]) -> np.ndarray | None:
    """Per vector: every input element inside the range calibration recorded (half an LSB of slack
    for the rounding into the input type); None when the graph carries no calibrated ranges."""
    if float_graph is None:
        return None
    ranges = {v.name: v.range for v in float_graph.inputs}
    inside = np.ones(len(values[0]), dtype=bool)
    for port, v in zip(inputs, values):
        if ranges.get(port.name) is None:
            return None
        lo, hi = ranges[port.name]
        slack = port.type.lsb / 2
        inside &= ((v >= lo - slack) & (v <= hi + slack)).reshape(len(v), -1).all(axis=1)
    return inside


def _batch_first(graph: Graph, value, array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(array, graph.output_batch_axes.get(value.name, 0), 0))


def save_vectors(path: Path, vectors: Vectors) -> None:
    arrays = {}
    for i, (v, m) in enumerate(zip(vectors.inputs, vectors.input_mantissas)):
        arrays[f"in{i}"], arrays[f"in{i}_mantissas"] = v, m
    for i, (g, r) in enumerate(zip(vectors.golden, vectors.reference)):
        arrays[f"golden{i}"], arrays[f"float{i}"] = g, r
    for i, u in enumerate(vectors.unpruned or []):
        arrays[f"unpruned{i}"] = u
    if vectors.in_range is not None:
        arrays["in_range"] = vectors.in_range
    np.savez_compressed(path, **arrays)


def load_vectors(path: Path) -> Vectors:
    try:
        with np.load(path) as data:
            k_in = sum(1 for k in data.files if re.fullmatch(r"in\d+", k))
            k_out = sum(1 for k in data.files if k.startswith("golden"))
            return Vectors(
                [data[f"in{i}"] for i in range(k_in)],
                [data[f"in{i}_mantissas"] for i in range(k_in)],
                [data[f"golden{i}"] for i in range(k_out)],
                [data[f"float{i}"] for i in range(k_out)],
                [data[f"unpruned{i}"] for i in range(k_out)] if "unpruned0" in data.files else None,
                data["in_range"] if "in_range" in data.files else None,
            )
    except (OSError, ValueError, KeyError) as err:
        raise UsageError(f"{path}: not a readable fpgac test-vector file ({err})") from None


def write_manifest(out: Path, target: str, graph: Graph, options: dict[str, Any], extra: dict[str, Any],
                   provenance: dict[str, Any] | None = None) -> None:
    """``fpgac.json``: the target, the ports, the options (``{"given": ..., "resolved": ...}``), how
    the design was made (model and calibration data with their hashes, the command line, the
    fpgac version and the tools' versions, the date) and the backend's own entries."""
    inputs, outputs = ports(graph)
    manifest = {
        "target": target,
        "model": graph.name,
        "fpgac": __version__,
        "inputs": [p.to_json() for p in inputs],
        "outputs": [p.to_json() for p in outputs],
        "options": options,
        "provenance": {"fpgac": __version__, "created": now(), **(provenance or {}), "tools": tool_versions()},
        **extra,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, default=json_default) + "\n")


def json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, FixedType)):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


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
