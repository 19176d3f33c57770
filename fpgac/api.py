"""The Python API: what the command line calls, and what users script against.

``load`` reads a model and runs the canonicalization pipeline (named, in order, in
``CANONICALIZE``), so that the IR every later step sees has BatchNorm folded, biases fused,
PyTorch's ``x / (1 + |x|)`` read as Softsign and
no-op reshapes gone. ``compile`` then calibrates and quantizes it; the ``CompiledModel`` it
returns predicts bit-exactly (the golden model) or in float.
"""

from __future__ import annotations

import copy
import json
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
from fpgac.errors import ShapeError, UsageError
from fpgac.frontend import identifier, load_onnx
from fpgac.ir import FixedType, Graph, Node, Op, parse_type
from fpgac.ir import verify as verify_graph
from fpgac.passes import FoldBatchNorm, FuseBias, FuseSoftsign, Pass, PassManager, SimplifyReshapes
from fpgac.passes.calibrate import DEFAULT_INPUT_RANGE, Calibrate, sample_input_range
from fpgac.passes.prune import prune_passes
from fpgac.passes.quantize import LayerConfig, QuantConfig, QuantRecord, Quantize
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
) -> Graph:
    """Read an ONNX model into canonical float IR. ``dump(step, graph)`` sees every step."""
    graph = load_onnx(model, outputs=outputs)
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


Inputs = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]


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
    outputs: Sequence[str] | None = None,
    dump: Callable[[str, Graph], None] | None = None,
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
    """
    given = {k: v for k, v in dict(calibration=None if calibration is None or not isinstance(calibration, (str, os.PathLike))
                                   else str(calibration), input_range=input_range, bits=bits, precision=precision,
                                   accuracy_budget=accuracy_budget, table_size=table_size, prune=prune,
                                   outputs=outputs).items() if v is not None}
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
        graph = load(model, outputs=outputs, dump=dump)
        sources["model"] = describe_file(model)
    # every option is checked before the work that takes time (pruning, calibration, the search)
    config = _config(precision, bits, table_size, graph)
    if accuracy_budget is not None and config.precision is not None:
        raise UsageError("--accuracy-budget chooses widths itself: it cannot be combined with one fixed --precision type")
    float_graph = copy.deepcopy(graph)
    if calibration is not None:
        if isinstance(calibration, (str, os.PathLike)):
            cal = read_input(calibration, float_graph)
            sources["calibration"] = {**describe_file(calibration), "rows": _rows(cal)}
        else:
            cal = _as_mapping(calibration, float_graph)
            check_inputs(cal, float_graph, "calibration data")
            sources["calibration"] = {"arrays": arrays_digest(cal), "rows": _rows(cal)}
    else:
        if input_range is None:
            log.warning("no calibration data: calibrating on uniform samples of [%g, %g] "
                        "(give --calibration X.npy, or --input-range LO,HI)", *DEFAULT_INPUT_RANGE)
        lo, hi = input_range or DEFAULT_INPUT_RANGE
        cal = sample_input_range(float_graph, lo, hi)
        sources["calibration"] = {"uniform": [lo, hi], "rows": _rows(cal), "seed": 0}
    prune_record = _prune(float_graph, prune, precision, dump, cal)
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
    user_cal = cal if calibration is not None else None
    resolved = {
        "bits": bits,
        "precision": _precision_record(precision),
        "table_size": config.table_size,
        "prune": prune_record,
        "accuracy_budget": None if search is None else search.to_json(),
        "calibration": {k: v for k, v in sources["calibration"].items() if k != "absolute"},
        "outputs": [v.name for v in graph.outputs],
    }
    return CompiledModel(float_graph, graph, config, list(quantize.records), search, user_cal, unpruned_graph,
                         {"given": given, "resolved": resolved}, sources)


def _rows(inputs: Mapping[str, np.ndarray]) -> int:
    return min((len(a) for a in inputs.values() if np.ndim(a)), default=0)


def _precision_record(precision: Any) -> Any:
    """``--precision`` as a design records it: 'auto', a type, or a config (its file's path and hash)."""
    if precision is None or (isinstance(precision, str) and precision.strip() == "auto"):
        return "auto"
    if isinstance(precision, FixedType):
        return str(precision)
    if isinstance(precision, Mapping):
        return {"config": dict(precision)}
    if Path(precision).is_file():
        return {"config": describe_file(precision)}
    return str(parse_type(str(precision)))


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
        calibration = _as_mapping(calibration, graph)
        check_inputs(calibration, graph, "calibration data")
    else:
        calibration = sample_input_range(graph, *(input_range or DEFAULT_INPUT_RANGE))
    _prune(graph, spec, precision, dump, calibration)
    return graph


def _prune(graph: Graph, spec: Any, precision: Any, dump: Callable[[str, Graph], None] | None,
           calibration: Mapping[str, np.ndarray] | None) -> dict[str, Any] | None:
    """Run the pruning steps; what ran (the model-wide spec and each layer's), or None if nothing."""
    model_spec, layer_specs = _prune_specs(precision, graph)
    spec = spec if spec else model_spec
    if not spec and not layer_specs:
        return None
    passes = prune_passes(spec, layer_specs, reference=copy.deepcopy(graph), inputs=calibration)
    text = spec if isinstance(spec, str) or spec is None else ",".join(spec)
    with progress.step(f"pruning ({text or 'per-layer specs'})"):
        PassManager(passes, verify_each=True, dump=dump).run(graph)
    return {"model": text, "layers": dict(layer_specs)}


def _prune_specs(precision: Any, graph: Graph) -> tuple[str | None, dict[str, str]]:
    """The ``Prune`` entries of a precision config: the Model's, and each layer's by IR name."""
    if isinstance(precision, (str, os.PathLike)):
        text = str(precision).strip()
        if text == "auto" or (not text.endswith(".json") and not Path(text).is_file()):
            return None, {}
        p = Path(precision)
        if not p.is_file():
            raise UsageError(f"--precision {p}: no such file (give 'auto', a type like fixed<16,6>, or a JSON config)")
        try:
            precision = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise UsageError(f"{p}: not a readable JSON precision config ({err})") from None
        where = str(p)
    else:
        where = "precision config"
    if not isinstance(precision, Mapping):
        return None, {}
    model = precision.get("Model")
    model_spec = model.get("Prune") if isinstance(model, Mapping) else None
    layers = {n.name: n for n in graph.nodes}
    specs: dict[str, str] = {}
    for name, entry in (precision.get("LayerName") or {}).items():
        if not isinstance(entry, Mapping) or "Prune" not in entry:
            continue
        key = name if name in layers else identifier(name)
        if key not in layers or layers[key].op not in (Op.DENSE, Op.CONV):
            weighted = ", ".join(n.name for n in graph.nodes if n.op in (Op.DENSE, Op.CONV))
            raise UsageError(f"{where}: LayerName {name!r}: Prune applies to Dense and Conv layers; "
                             f"this model's are: {weighted}")
        specs[key] = entry["Prune"]
    return model_spec, specs


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


def read_labels(path: str | os.PathLike) -> np.ndarray | None:
    """The labels an .npz keeps beside its inputs (an array named ``y`` or ``labels``), or None."""
    p = Path(path)
    if p.suffix != ".npz" or not p.is_file():
        return None
    try:
        with np.load(p, allow_pickle=False) as archive:
            for name in ("y", "labels"):
                if name in archive.files:
                    return np.asarray(archive[name])
    except (OSError, ValueError, EOFError):
        return None
    return None


def _as_mapping(inputs: Inputs, graph: Graph) -> dict[str, np.ndarray]:
    names = [v.name for v in graph.inputs]
    if isinstance(inputs, Mapping):
        return {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return {n: np.asarray(a, dtype=np.float64) for n, a in zip(names, inputs)}
    if len(names) != 1:
        raise ShapeError(f"the model has {len(names)} inputs ({', '.join(names)}): give calibration arrays by name")
    return {names[0]: np.asarray(inputs, dtype=np.float64)}


def _config(precision: Any, bits: int, table_size: int | None, graph: Graph) -> QuantConfig:
    extra = {} if table_size is None else {"table_size": table_size}
    if precision is None or (isinstance(precision, str) and precision.strip() == "auto"):
        return QuantConfig(bits=bits, **extra)
    if isinstance(precision, FixedType):
        return QuantConfig(bits=bits, precision=precision, **extra)
    if isinstance(precision, str) and not precision.strip().endswith(".json") and not Path(precision).is_file():
        return QuantConfig(bits=bits, precision=_fixed(precision, "--precision"), **extra)
    if isinstance(precision, (str, os.PathLike)):
        return read_config(precision, bits=bits, graph=graph, **extra)
    return _config_from_dict(precision, bits, graph, "precision config", **extra)


def _fixed(text: Any, where: str) -> FixedType:
    t = parse_type(str(text)) if not isinstance(text, FixedType) else text
    if not isinstance(t, FixedType):
        raise UsageError(f"{where}: {text!r} is not a fixed-point type (write fixed<W,I> or ufixed<W,I>)")
    return t


def read_config(path: str | os.PathLike, *, bits: int = 16, graph: Graph | None = None, **extra: Any) -> QuantConfig:
    """Read an hls4ml-style precision config (JSON) into a QuantConfig.

    ``{"Model": {"Precision": "fixed<16,6>", "Bits": 12}, "LayerName": {"fc1": {"Precision":
    "fixed<8,3>"}, "fc2": {"Precision": {"weight": "fixed<6,1>", "result": "ufixed<8,3>"},
    "Bits": 10}}}``. A layer's ``Precision`` string sets its weight, bias and result types; a dict
    sets any of ``weight``, ``bias``, ``result``, ``accum``. ``Bits``/``WeightBits``/``ResultBits``
    set widths with integer bits still chosen from data. Layer names are those ``fpgac inspect``
    lists (ONNX node names with '/' and ':' made '_'). hls4ml keys fpgac has no use for
    (``ReuseFactor``, ``Strategy``, ``Trace``...) are ignored with a note.
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--precision {p}: no such file (give 'auto', a type like fixed<16,6>, or a JSON config)")
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{p}: not a readable JSON precision config ({err})") from None
    return _config_from_dict(data, bits, graph, str(p), **extra)


_IGNORED_KEYS = {"ReuseFactor", "Strategy", "Trace", "ParallelizationFactor", "TableSize", "table_t", "IOType"}


def _config_from_dict(data: Any, bits: int, graph: Graph | None, where: str, **extra: Any) -> QuantConfig:
    if not isinstance(data, Mapping):
        raise UsageError(f"{where}: a precision config is a JSON object with 'Model' and/or 'LayerName'")
    unknown = set(data) - {"Model", "LayerName"}
    if unknown:
        raise UsageError(f"{where}: unknown top-level key {sorted(unknown)[0]!r} (expected 'Model', 'LayerName')")
    model = _layer_config(data.get("Model", {}), f"{where}: Model")
    precision = model.result
    bits = model.bits or bits
    layers: dict[str, LayerConfig] = {}
    names = {n.name for n in graph.nodes} | {v.name for v in graph.inputs} if graph is not None else None
    for name, entry in (data.get("LayerName") or {}).items():
        key = name if names is None or name in names else identifier(name)  # an ONNX node name
        layers[key] = _layer_config(entry, f"{where}: LayerName {name!r}")
    return QuantConfig(bits=bits, precision=precision, layers=layers, **extra)


def _layer_config(entry: Any, where: str) -> LayerConfig:
    if not isinstance(entry, Mapping):
        raise UsageError(f"{where}: expected an object with 'Precision' and/or 'Bits'")
    fields: dict[str, Any] = {}
    for key, value in entry.items():
        if key == "Precision":
            if isinstance(value, Mapping):
                for role, text in value.items():
                    if role not in ("weight", "bias", "result", "accum"):
                        raise UsageError(f"{where}: Precision key {role!r} is not one of weight, bias, result, accum")
                    fields[role] = _fixed(text, f"{where}: Precision {role}")
            elif str(value).strip() != "auto":
                t = _fixed(value, f"{where}: Precision")
                fields.update(weight=t, bias=t, result=t)
        elif key in ("Bits", "WeightBits", "ResultBits"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise UsageError(f"{where}: {key} must be an integer, not {value!r}")
            fields[{"Bits": "bits", "WeightBits": "weight_bits", "ResultBits": "result_bits"}[key]] = value
        elif key == "Prune":
            pass  # a pruning spec: read by prune() (see _prune_specs)
        elif key in _IGNORED_KEYS:
            log.info("%s: %s has no meaning for fpgac; ignored", where, key)
        else:
            raise UsageError(f"{where}: unknown key {key!r} (expected Precision, Bits, WeightBits, ResultBits, Prune)")
    return LayerConfig(**fields)


def read_input(path: str | os.PathLike, graph: Graph) -> dict[str, np.ndarray]:
    """Read input arrays from ``.npy`` (one input) or ``.npz`` (by input name, ``x``, or the only array)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such input file")
    names = [v.name for v in graph.inputs]
    try:
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
        else:
            arrays = {"": np.load(p, allow_pickle=False)}
    except (OSError, ValueError, EOFError) as err:
        raise UsageError(f"{p}: not a readable .npy/.npz array file ({err})") from None
    if len(names) == 1:
        if len(arrays) == 1:
            (array,) = arrays.values()
        elif names[0] in arrays or "x" in arrays:
            array = arrays.get(names[0], arrays.get("x"))
        else:
            wanted = repr(names[0]) + (" or 'x'" if names[0] != "x" else "")
            raise UsageError(f"{p}: holds arrays {', '.join(sorted(arrays))}; name the one to use {wanted}")
        result = {names[0]: _as_float(array, names[0], p)}
    else:
        missing = [n for n in names if n not in arrays]
        if missing:
            raise UsageError(f"{p}: the model has inputs {', '.join(names)}; an .npz with those names is needed "
                             f"(missing {missing[0]!r})")
        result = {n: _as_float(arrays[n], n, p) for n in names}
    check_inputs(result, graph, str(p))
    return result


def check_inputs(inputs: Mapping[str, np.ndarray], graph: Graph, where: str) -> None:
    """Each array must be a batch of the model's per-sample input shape, ``(N, *shape)``, and all
    inputs must have the same batch: a ShapeError naming ``where`` (a file) and the shapes."""
    batch = None
    for value in graph.inputs:
        if value.name not in inputs:
            raise ShapeError(f"{where}: no array for input {value.name!r}")
        shape = np.shape(inputs[value.name])
        if len(shape) != value.type.rank + 1 or tuple(shape[1:]) != tuple(value.type.shape):
            wanted = ", ".join(["N", *map(str, value.type.shape)])
            raise ShapeError(f"{where}: input {value.name!r} has shape {tuple(shape)}, expected ({wanted}): a batch "
                             f"of N samples of the model's per-sample shape {list(value.type.shape)}")
        if batch is not None and shape[0] != batch[1]:
            raise ShapeError(f"{where}: input {value.name!r} has {shape[0]} samples, input {batch[0]!r} has {batch[1]}")
        batch = batch or (value.name, shape[0])


def _as_float(array: np.ndarray, name: str, path: Path) -> np.ndarray:
    if array.dtype.kind not in "fiub":
        raise ShapeError(f"{path}: input {name!r} has dtype {array.dtype}, not numbers")
    return np.asarray(array, dtype=np.float64)


@dataclass(frozen=True)
class LayerRow:
    """One row of ``fpgac inspect``: a layer, its op, its output shape and its parameter count.

    ``nonzeros`` counts the non-zero parameters; ``multiplies`` is what a fully unrolled design
    needs per inference: non-zero weights times the output positions each is used at (Dense:
    the leading axes; Conv: the output pixels; LSTM/GRU: the time steps), one per non-zero scale
    of a ScaleShift or constant Mul. A zero weight costs nothing.
    """

    name: str
    op: str
    shape: tuple[int, ...]
    params: int
    weight_type: str = ""  # the type of its first constant input (quantized graphs), else ""
    output_type: str = ""
    nonzeros: int = 0
    multiplies: int = 0


def _multiplies(node: Node) -> int:
    out = node.output.type
    if node.op in (Op.DENSE, Op.CONV):
        w = node.inputs[1]
        units = w.type.shape[1 if node.op is Op.DENSE else 0]
        return int(np.count_nonzero(w.data)) * (out.size // units if units else 0)
    if node.op in (Op.LSTM, Op.GRU):
        return (int(np.count_nonzero(node.inputs[1].data)) + int(np.count_nonzero(node.inputs[2].data))) * out.shape[0]
    if node.op in (Op.SCALE_SHIFT, Op.MUL):
        consts = [v for v in node.inputs[:2] if v is not None and v.is_const]
        scale = node.inputs[1].data if node.op is Op.SCALE_SHIFT else consts[0].data if len(consts) == 1 else None
        if scale is not None:
            return int(np.count_nonzero(np.broadcast_to(scale, out.shape)))
    return 0


def layer_table(graph: Graph) -> list[LayerRow]:
    rows = []
    for node in graph.nodes:
        op = node.op.value
        if node.op in (Op.ACTIVATION, Op.POOL, Op.GLOBAL_POOL, Op.LOOKUP):
            op = f"{op}({node.attrs['kind'].value})"
        consts = [v for v in node.inputs if v is not None and v.is_const]
        params = sum(v.type.size for v in consts)
        weight = str(consts[0].type.dtype) if consts else ""
        nonzeros = sum(int(np.count_nonzero(v.data)) for v in consts)
        rows.append(LayerRow(node.name, op, node.output.type.shape, params, weight, str(node.output.type.dtype),
                             nonzeros, _multiplies(node)))
    return rows
