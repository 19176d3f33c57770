"""``fpgac report``: the design-review report of a compiled design, for every target.

One data model (:func:`~fpgac.report.collect.collect`, saved as ``report.json``, schema
``fpgac-report-1``) rendered as ``report.md`` and a self-contained ``report.html``, with the
figures as PNG files beside them. The report folder is written whole or not at all.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .collect import SCHEMA, collect
from .render import markdown, page

__all__ = ["SCHEMA", "collect", "read_vitis_report", "write_report"]


def _activations(graph, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The golden model's mantissas of every node's result, as values (for the profile)."""
    from ..ir import FixedType
    from ..ir.fixed import to_float

    types = {n.output.name: n.output.type.dtype for n in graph.nodes}
    out = {}
    for name, m in values.items():
        t = types.get(name)
        if isinstance(t, FixedType):
            out[name] = to_float(np.asarray(m), t)
    return out


def read_vitis_report(folder: str | Path) -> dict[str, Any]:
    """The figures of Vitis HLS's ``csynth.xml`` (the first found under ``folder``): resources,
    latency and the estimated clock, as Vitis measured them."""
    import xml.etree.ElementTree as ET

    from ..errors import UsageError

    found = sorted(Path(folder).rglob("csynth.xml"))
    if not found:
        raise UsageError(f"--vitis-report {folder}: no csynth.xml under it (Vitis writes it in "
                         "solution1/syn/report/)")
    try:
        root = ET.parse(found[0]).getroot()
    except ET.ParseError as err:
        raise UsageError(f"--vitis-report {found[0]}: not readable XML ({err})") from None

    def number(path: str) -> float | None:
        el = root.find(path)
        try:
            return float(el.text) if el is not None and el.text else None
        except ValueError:
            return None

    return {"file": str(found[0]),
            "luts": number("AreaEstimates/Resources/LUT"), "ffs": number("AreaEstimates/Resources/FF"),
            "dsps": number("AreaEstimates/Resources/DSP") or number("AreaEstimates/Resources/DSP48E"),
            "brams": (number("AreaEstimates/Resources/BRAM_18K") or 0) / 2.0,
            "latency_cycles": number("PerformanceEstimates/SummaryOfOverallLatency/Worst-caseLatency"),
            "interval_cycles": number("PerformanceEstimates/SummaryOfOverallLatency/Interval-max"),
            "clock_period_ns": number("PerformanceEstimates/SummaryOfTimingAnalysis/EstimatedClockPeriod")}


def write_report(out: str | Path, folder: str | Path | None = None, *, vitis_report: str | Path | None = None,
                 step: Callable[[str], Any] | None = None, **options: Any) -> tuple[Path, dict[str, Any]]:
    """Collect the report of ``out`` and write ``report.json``, ``report.md``, ``report.html``
    and the figures into ``folder`` (default ``OUT/report``), replacing it whole."""
    from .. import api
    from ..backends.common import VECTORS, load_vectors
    from ..inputs import read_input
    from ..ir.semantics.interpret import evaluate_fixed
    from .plots import draw

    from .plots import _pyplot

    out = Path(out)
    folder = Path(folder) if folder is not None else out / "report"
    vitis = read_vitis_report(vitis_report) if vitis_report is not None else None  # before any work
    _pyplot()  # the figures' library, before any synthesis
    graph = api.load_design(out)
    data = options.get("data")
    inputs = read_input(data, graph) if data is not None else load_vectors(out / VECTORS).inputs
    values = evaluate_fixed(graph, inputs)  # once, for the calibration statistics and the activation plots
    report = collect(out, step=step, graph=graph, values=values, **options)
    if vitis is not None:
        report["vitis"] = vitis
        report["sources"]["vitis"] = f"measured by Vitis HLS: {vitis['file']}"
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.parent / f".{folder.name}.{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        figures = draw(tmp, report, graph, _activations(graph, values))
        report["figures"] = figures
        (tmp / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
        (tmp / "report.md").write_text(markdown(report, figures))
        (tmp / "report.html").write_text(page(report, figures, tmp))
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder, report
