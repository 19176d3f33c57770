"""The precision config: ``--precision`` as a type or an hls4ml-style JSON of per-layer overrides
(with per-layer ``Prune`` specs), read into a :class:`~fpgac.passes.quantize.QuantConfig`."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fpgac.errors import UsageError
from fpgac.frontend import identifier
from fpgac.ir import FixedType, Graph, Op, parse_type
from fpgac.passes.quantize import LayerConfig, QuantConfig
from fpgac.provenance import describe_file

__all__ = ["precision_record", "prune_specs", "quant_config", "read_config"]

log = logging.getLogger(__name__)


def quant_config(precision: Any, bits: int, table_size: int | None, graph: Graph) -> QuantConfig:
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


def prune_specs(precision: Any, graph: Graph) -> tuple[str | None, dict[str, str]]:
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


def precision_record(precision: Any) -> Any:
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

