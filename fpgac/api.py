"""The Python API: what the command line calls, and what users script against.

``load`` reads a model and runs the canonicalization pipeline (named, in order, in
``CANONICALIZE``), so that the IR every later step sees has BatchNorm folded, biases fused,
PyTorch's ``x / (1 + |x|)`` read as Softsign and
no-op reshapes gone. ``compile`` then calibrates and quantizes it; the ``CompiledModel`` it
returns predicts bit-exactly (the golden model) or in float.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fpgac import backends, progress
from fpgac.backends import Report, Vectors, make_vectors
from fpgac.backends.common import VECTORS, compare, load_vectors, read_manifest
from fpgac.config import precision_record, prune_specs, quant_config, read_config
from fpgac.errors import UsageError
from fpgac.frontend import load_onnx
from fpgac.inputs import Inputs, as_mapping, check_inputs, read_input, read_labels
from fpgac.ir import FixedType, Graph
from fpgac.ir import verify as verify_graph
from fpgac.layers import LayerRow, layer_table
from fpgac.passes import FoldBatchNorm, FuseBias, FuseSoftsign, Pass, PassManager, SimplifyReshapes
from fpgac.passes.calibrate import DEFAULT_INPUT_RANGE, Calibrate, sample_input_range
from fpgac.passes.distill import Distill, check_data, qat_types
from fpgac.passes.prune import distill_options, prune_passes
from fpgac.passes.quantize import QuantConfig, Quantize, QuantRecord
from fpgac.provenance import arrays_digest, describe_file
from fpgac.search import SearchResult, search_widths, total_bits
from fpgac.sim import run_fixed, run_float

__all__ = [
    "CANONICALIZE",
    "CompiledModel",
    "LayerRow",
    "compile",
    "layer_table",
    "load",
    "prune",
    "check_inputs",
    "golden_report",
    "read_labels",
    "read_config",
    "read_input",
    "run",
    "verify",
]

log = logging.getLogger(__name__)

#: the width of weights and activations when neither ``bits`` nor a precision says otherwise
DEFAULT_BITS = 16

#: the passes every loaded model goes through, in order
CANONICALIZE: tuple[Pass, ...] = (SimplifyReshapes(), FoldBatchNorm(), FuseBias(), FuseSoftsign(), SimplifyReshapes())


def load(
    model: str | os.PathLike,
    *,
    outputs: Sequence[str] | None = None,
    dump: Callable[[str, Graph], None] | None = None,
    seq_len: int | None = None,
) -> Graph:
    """Read an ONNX model into canonical float IR. ``dump(step, graph)`` sees every step;
    ``seq_len`` fixes a symbolic sequence length (every symbolic input dimension but the batch)."""
    graph = load_onnx(model, outputs=outputs, seq_len=seq_len)
    verify_graph(graph)
    if dump is not None:
        dump("frontend", graph)
    PassManager(CANONICALIZE, verify_each=True, dump=dump).run(graph)
    return graph


def run(graph: Graph, inputs: np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray], *,
        float: bool = True) -> list[np.ndarray]:
    """Run a graph on a batch: one array per graph output, batch first (or where ONNX had it).

    ``float=False`` runs the bit-exact golden model, and needs a quantized graph (``compile``).
    """
    return run_float(graph, inputs) if float else run_fixed(graph, inputs)



def load_design(out: str | os.PathLike, *, manifest: bool = False) -> Graph | tuple[Graph, dict[str, Any]]:
    """The quantized graph a compiled output directory (``fpgac compile -o OUT``) was built from:
    ``run(load_design(out), x, float=False)`` gives what that hardware computes. With
    ``manifest=True``, also the output's manifest (target, ports, options)."""
    graph, facts = backends.load_design(out)
    verify_graph(graph)
    return (graph, facts) if manifest else graph


@dataclass
class CompiledModel:
    """A quantized model: the float graph it came from, the fixed-point graph, and what was chosen.

    ``records`` lists every tensor's chosen type (layer, role, type, elements); ``search`` is the
    accuracy-budget search's result when one ran. ``unpruned_graph`` is the float network before
    pruning (None when nothing was pruned): test vectors carry its outputs too, so the distance
    to it is reported beside the distance to the pruned network. ``options`` records the
    arguments as given and as resolved, ``sources`` the model and calibration data with their
    hashes; a written design's manifest keeps both.
    """

    float_graph: Graph
    graph: Graph
    config: QuantConfig
    records: list[QuantRecord] = field(default_factory=list)
    search: SearchResult | None = None
    calibration: dict[str, np.ndarray] | None = None  # the user's calibration inputs, if any
    unpruned_graph: Graph | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=lambda: {"given": {}, "resolved": {}})
    sources: dict[str, Any] = field(default_factory=dict)

    def predict(self, x: Inputs, *, float: bool = False, mantissas: bool = False) -> np.ndarray | list[np.ndarray]:
        """Outputs on a batch: bit-exact golden values (float64), or the float network's with ``float=True``.

        One output comes back as an array, several as a list. ``mantissas=True`` gives the
        golden model's integer mantissas instead of their values.
        """
        if float:
            results = run_float(self.float_graph, x)
        else:
            results = run_fixed(self.graph, x, mantissas=mantissas)
        return results[0] if len(results) == 1 else results

    def vectors(self, n: int = 1000, seed: int = 0) -> Vectors:
        """``n`` test vectors: input-type extremes, calibration rows, uniform mantissas (see ``make_vectors``)."""
        return make_vectors(self.graph, self.float_graph, n, self.calibration, seed, self.unpruned_graph)

    def write(self, out: str | os.PathLike, target: str = "xilinx", *, vectors: int = 1000,
              command: Sequence[str] | None = None, **options: Any) -> Path:
        """Write the design for ``target`` (xilinx, amaranth, cpu) with ``vectors`` test vectors into ``out``.

        ``options`` are the backend's own (for instance ``io="stream"`` for xilinx), checked
        before anything is computed. The directory is written atomically; ``verify(out)`` then
        runs its testbench. ``command`` (the command line, if any) is recorded with the rest of
        the design's provenance in ``fpgac.json``.
        """
        resolved = backends.resolve_options(target, options)
        record = {
            "given": {**self.options["given"], **options, "vectors": vectors},
            "resolved": {**self.options["resolved"], **resolved, "vectors": vectors},
        }
        provenance = {**self.sources, **({"command": list(command)} if command is not None else {})}
        with progress.step(f"computing {vectors:,} test vectors with the golden model"):
            test_vectors = self.vectors(vectors)
        return backends.write(self.graph, out, target, test_vectors, record=record, provenance=provenance, **options)

    def label_accuracy(self, x: Inputs, labels: np.ndarray) -> dict[str, float] | None:
        """Accuracy against integer ``labels`` of the golden model, the float network and (when
        pruned) the unpruned float network, by the argmax of the first output; None when the
        first output is not a class vector or the labels do not fit it."""
        labels = np.asarray(labels).reshape(-1)
        first = lambda r: np.asarray(r[0] if isinstance(r, list) else r)  # noqa: E731
        golden = first(self.predict(x))
        if golden.ndim != 2 or golden.shape[1] < 2 or len(labels) != len(golden) or labels.dtype.kind not in "iu":
            return None
        result = {"golden": float(np.mean(golden.argmax(axis=1) == labels)),
                  "float": float(np.mean(first(self.predict(x, float=True)).argmax(axis=1) == labels))}
        if self.unpruned_graph is not None:
            result["unpruned float"] = float(np.mean(first(run_float(self.unpruned_graph, x)).argmax(axis=1) == labels))
        return result

    @property
    def total_bits(self) -> int:
        """Weight and activation bits: width times elements over weights, inputs and narrowed results."""
        return total_bits(self.records)


def compile(
    model: str | os.PathLike | Graph,
    *,
    calibration: Inputs | str | os.PathLike | None = None,
    input_range: tuple[float, float] | None = None,
    bits: int | None = None,
    precision: str | FixedType | Mapping[str, Any] | os.PathLike | None = None,
    accuracy_budget: float | None = None,
    table_size: int | None = None,
    prune: str | Sequence[str] | None = None,
    distill: str | bool | None = None,
    outputs: Sequence[str] | None = None,
    dump: Callable[[str, Graph], None] | None = None,
    seq_len: int | None = None,
) -> CompiledModel:
    """Load (unless given a Graph), calibrate and quantize a model.

    ``calibration``: input arrays (or a .npy/.npz path) whose float run sets every tensor's range;
    without it, 1,000 samples uniform in ``input_range`` (default ``DEFAULT_INPUT_RANGE``).
    ``bits``: weight and activation width (default ``DEFAULT_BITS``, 16). ``precision``: ``"auto"``/None (from data), one type
    for everything (``"fixed<16,6>"``), or an hls4ml-style config (a dict, or a JSON file path;
    see ``read_config``). ``accuracy_budget`` E: search per-layer widths (at most ``bits``) whose
    argmax agrees with float on at least ``1 - E`` of the calibration data. ``prune``: a pruning
    spec (``"magnitude:0.8"``, see ``prune``) run on the float graph (with the calibration data,
    for ``refit``) before calibration, so the float graph the result keeps is the pruned one.
    ``distill`` (True, or options as in a ``distill`` step: ``"epochs=50:t=2"``): after a first
    quantization, train the float weights from the unpruned network through the fixed-point
    rounding of the types chosen (quantization-aware, straight-through), then calibrate and
    quantize again; a ``distill`` step in ``prune`` does this too, after its float training.
    ``seq_len``: the size of a symbolic sequence dimension of the inputs (see :func:`load`).
    """
    given = {k: v for k, v in dict(calibration=None if calibration is None or not isinstance(calibration, (str, os.PathLike))
                                   else str(calibration), input_range=input_range, bits=bits, precision=precision,
                                   accuracy_budget=accuracy_budget, table_size=table_size, prune=prune,
                                   distill=distill, outputs=outputs, seq_len=seq_len).items() if v is not None}
    if isinstance(given.get("precision"), (FixedType, os.PathLike)):
        given["precision"] = str(given["precision"])
    if isinstance(precision, Mapping):
        given["precision"] = dict(precision)
    bits = DEFAULT_BITS if bits is None else bits
    if accuracy_budget is not None and not 0 <= accuracy_budget < 1:
        raise UsageError(f"--accuracy-budget must be at least 0 and below 1, not {accuracy_budget}")
    sources: dict[str, Any] = {}
    if isinstance(model, Graph):
        graph = model
        sources["model"] = {"graph": graph.name}
    else:
        graph = load(model, outputs=outputs, dump=dump, seq_len=seq_len)
        sources["model"] = describe_file(model)
    # every option is checked before the work that takes time (pruning, calibration, the search)
    config = quant_config(precision, bits, table_size, graph)
    if accuracy_budget is not None and config.precision is not None:
        raise UsageError("--accuracy-budget chooses widths itself: it cannot be combined with one fixed --precision type")
    qat_given = _distill_options(distill)
    float_graph = copy.deepcopy(graph)
    if calibration is not None:
        if isinstance(calibration, (str, os.PathLike)):
            cal = read_input(calibration, float_graph)
            sources["calibration"] = {**describe_file(calibration), "rows": _rows(cal)}
        else:
            cal = as_mapping(calibration, float_graph)
            check_inputs(cal, float_graph, "calibration data")
            sources["calibration"] = {"arrays": arrays_digest(cal), "rows": _rows(cal)}
    else:
        if input_range is None:
            log.warning("no calibration data: calibrating on uniform samples of [%g, %g] "
                        "(give --calibration X.npy, or --input-range LO,HI)", *DEFAULT_INPUT_RANGE)
        lo, hi = input_range or DEFAULT_INPUT_RANGE
        cal = sample_input_range(float_graph, lo, hi)
        sources["calibration"] = {"uniform": [lo, hi], "rows": _rows(cal), "seed": 0}
    labels = read_labels(calibration) if isinstance(calibration, (str, os.PathLike)) else None
    if qat_given is not None:  # checked before any work; a distill step of --prune checks its own
        if calibration is None:
            raise UsageError("distill trains on calibration data: give --calibration X.npz (the inputs, and the "
                             "labels y if there are any)")
        check_data(cal, labels)
    prune_record = _prune(float_graph, prune, precision, dump, cal, labels, calibrated=calibration is not None)
    unpruned_graph = graph if prune_record else None
    with progress.step(f"calibrating on {_rows(cal):,} samples"):
        Calibrate(cal).run(float_graph)
    search = None
    if accuracy_budget is not None:
        with progress.step(f"searching per-layer widths for --accuracy-budget {accuracy_budget}"):
            search = search_widths(float_graph, cal, accuracy_budget, base=config, max_bits=bits)
        config = search.config
    graph = copy.deepcopy(float_graph)
    quantize = Quantize(config)
    PassManager([quantize], verify_each=True, dump=dump).run(graph)
    qat = qat_given if qat_given is not None else (prune_record or {}).get("qat")
    if qat is not None:  # train through the chosen types, then quantize what was trained
        teacher = unpruned_graph if unpruned_graph is not None else copy.deepcopy(float_graph)
        step = Distill(teacher, cal, labels, types=qat_types(graph), **qat)
        with progress.step("distilling through the fixed-point types (quantization-aware)"):
            PassManager([step], verify_each=True, dump=dump).run(float_graph)
        qat = {**qat, "record": dict(step.record)}
        if unpruned_graph is None:
            unpruned_graph = teacher  # the network before training: what test vectors compare with too
        Calibrate(cal).run(float_graph)
        graph = copy.deepcopy(float_graph)
        quantize = Quantize(config)
        PassManager([quantize], verify_each=True, dump=dump).run(graph)
    user_cal = cal if calibration is not None else None
    resolved = {
        "bits": bits,
        "precision": precision_record(precision),
        "table_size": config.table_size,
        "prune": prune_record,
        "distill": qat,
        "accuracy_budget": None if search is None else search.to_json(),
        "calibration": {k: v for k, v in sources["calibration"].items() if k != "absolute"},
        "outputs": [v.name for v in graph.outputs],
    }
    return CompiledModel(float_graph, graph, config, list(quantize.records), search, user_cal, unpruned_graph,
                         {"given": given, "resolved": resolved}, sources)


def _distill_options(distill: str | bool | None) -> dict[str, Any] | None:
    """``compile(distill=...)`` as training options (True: the defaults), or None."""
    if distill is None or distill is False:
        return None
    text = "" if distill is True else str(distill)
    return distill_options(f"distill:{text}", [a for a in text.split(":") if a])


def _rows(inputs: Mapping[str, np.ndarray]) -> int:
    return min((len(a) for a in inputs.values() if np.ndim(a)), default=0)


def prune(
    graph: Graph,
    spec: str | Sequence[str] | None,
    *,
    precision: str | Mapping[str, Any] | os.PathLike | None = None,
    calibration: Inputs | str | os.PathLike | None = None,
    input_range: tuple[float, float] | None = None,
    dump: Callable[[str, Graph], None] | None = None,
) -> Graph:
    """Prune, clip or binarize a float graph in place (``compile`` does it before calibrating).

    ``spec``: steps such as ``"magnitude:0.8"``, ``"structured:l1:0.5,dead"``, ``"clip:std:3"``,
    ``"ternary"`` (the syntax is in :mod:`fpgac.passes.prune`). A precision config (dict or JSON
    path) adds per-layer ``"Prune"`` overrides, and its ``Model`` ``"Prune"`` stands in for a
    missing ``spec``. Every zero left in a weight is recorded in its type's sparsity. The
    ``refit`` step fits to ``calibration`` inputs (arrays, or a .npy/.npz path; without them,
    samples uniform in ``input_range``, as ``compile`` calibrates).
    """
    if isinstance(calibration, (str, os.PathLike)):
        calibration = read_input(calibration, graph)
    elif calibration is not None:
        calibration = as_mapping(calibration, graph)
        check_inputs(calibration, graph, "calibration data")
    else:
        calibration = sample_input_range(graph, *(input_range or DEFAULT_INPUT_RANGE))
    _prune(graph, spec, precision, dump, calibration)
    return graph


def _prune(graph: Graph, spec: Any, precision: Any, dump: Callable[[str, Graph], None] | None,
           calibration: Mapping[str, np.ndarray] | None, labels: np.ndarray | None = None, *,
           calibrated: bool = True) -> dict[str, Any] | None:
    """Run the pruning steps; what ran (the model-wide spec and each layer's), or None if nothing."""
    model_spec, layer_specs = prune_specs(precision, graph)
    spec = spec if spec else model_spec
    if not spec and not layer_specs:
        return None
    passes = prune_passes(spec, layer_specs, reference=copy.deepcopy(graph), inputs=calibration, labels=labels,
                          calibrated=calibrated)
    text = spec if isinstance(spec, str) or spec is None else ",".join(spec)
    with progress.step(f"pruning ({text or 'per-layer specs'})"):
        PassManager(passes, verify_each=True, dump=dump).run(graph)
    record = {"model": text, "layers": dict(layer_specs)}
    distills = [p for p in passes if isinstance(p, Distill)]
    if any(p.record for p in distills):
        record["distilled"] = [dict(p.record) for p in distills if p.record]
    model_wide = [p for p in distills if p.layers is None]
    if model_wide:  # then trained again through the fixed-point types, with the same options
        record["qat"] = model_wide[-1].options
    return record


def verify(out: str | os.PathLike, vectors: int | None = None,
           progress: Callable[[int, int], None] | None = None, *, keep_build: bool = False, **options: Any) -> Report:
    """Build and run the testbench of a written design on its first ``vectors`` test vectors.

    The ``Report`` counts mismatching bits against the golden model (0 when the design is
    right) and the distance to the float network (and to the unpruned one) on the same vectors;
    it is saved as ``OUT/verify.json`` too. ``keep_build`` keeps the build in ``OUT/build``.
    """
    return backends.verify(out, vectors, progress, keep_build=keep_build, **options)


def golden_report(out: str | os.PathLike) -> Report:
    """The golden model's own distance to float (and unpruned float) on a written design's test
    vectors: what a bit-exact design will show, computed without building it."""
    manifest = read_manifest(Path(out))
    vectors = load_vectors(Path(out) / VECTORS)
    return compare(manifest["target"], manifest["outputs"], vectors, vectors.golden)


