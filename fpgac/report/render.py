"""``report.md`` and ``report.html`` from the report's data (``report.json``): the same tables,
the HTML one self-contained (its figures embedded as data URIs)."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

__all__ = ["markdown", "page", "tables"]


def _n(v: Any, fmt: str = "{:,}") -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and v.is_integer() and fmt == "{:,}":
        v = int(v)
    return fmt.format(v)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{v:.2%}"


def _shape(s: list[int]) -> str:
    return "[" + ",".join(map(str, s)) + "]"


def tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]], str]]:
    """The report's tables as (title, header, rows, note), shared by both renderings."""
    hw = report.get("hardware") or {}
    target = report["design"]["target"]
    out = []
    fpga = target in ("amaranth", "xilinx")
    head = ["layer", "op", "in -> out", "input", "weight", "bias", "accumulator", "output", "params", "non-zeros",
            "multiplies", "bit-ops"] + (["LUT", "FF", "DSP", "BRAM", "latency", "II"] if fpga else [])
    rows = []
    for r in report["layers"]:
        t = r["types"]
        row = [r["name"], r["op"], f"{_shape(r['input_shape'])} -> {_shape(r['output_shape'])}",
               t["input"] or "-", t["weight"] or "-", t["bias"] or "-", t["accumulator"] or "-", t["output"] or "-",
               _n(r["params"]), _n(r["nonzeros"]), _n(r["multiplies"]), _n(r["bit_operations"])]
        if fpga:
            h = r.get("hardware")
            if h and "in" in h:
                row += [f"in {h['in']}"] + [""] * 5
            elif h:
                row += [_n(h["luts"]), _n(h["ffs"]), _n(h["dsps"]), _n(h["brams"]), _n(h["latency_cycles"]),
                        _n(h["interval_cycles"], "{:g}")]
            else:
                row += ["-"] * 6
        rows.append(row)
    if fpga and "glue" in hw:
        g = hw["glue"]
        rows.append(["(handshake, queues)", "", "", "", "", "", "", "", "", "", "", "", _n(g["luts"]), _n(g["ffs"]),
                     _n(g["dsps"]), _n(g["brams"]), "", ""])
    tot = report["totals"]
    total = ["total", "", "", "", "", "", "", "", _n(tot["params"]), _n(tot["nonzeros"]), _n(tot["multiplies"]),
             _n(tot["bit_operations"])]
    if fpga:
        h = hw.get("total", {})
        total += [_n(h.get("luts")), _n(h.get("ffs")), _n(h.get("dsps")), _n(h.get("brams")),
                  _n(h.get("latency_cycles")), _n(h.get("interval_cycles"), "{:g}")]
    rows.append(total)
    src = report["sources"]
    note = "; ".join(f"{k}: {v}" for k, v in src.items())
    if fpga and target == "amaranth" and report.get("hardware", {}).get("total", {}).get("cells", {}).get("CCU2C"):
        note += "; LUT counts LUT4-equivalents (LUT4 + 2 per CCU2C carry cell)"
    out.append(("Layers", head, rows, note))
    h = hw.get("total", {})
    design = [["target", target], ["latency", f"{_n(h.get('latency_cycles'))} cycles" if fpga else "-"],
              ["interval", f"{_n(h.get('interval_cycles'), '{:g}')} cycles" if fpga else "-"]]
    if fpga:
        design += [["clock reached", f"{h['clock_mhz']:.1f} MHz" if h.get("clock_mhz") else src.get("clock", "-")],
                   ["latency (ns)", f"{h['latency_ns']} ns" if h.get("latency_ns") else "-"]]
        path = report.get("critical_path")
        if path and path.get("from"):
            split = (f" ({path['logic_ns']:g} ns logic, {path['routing_ns']:g} ns routing)"
                     if path.get("logic_ns") is not None else "")
            design.append(["critical path (nextpnr)", f"`{path['from']}` to `{path['to']}`{split}"])
    else:
        design += [["code (flash)", f"{_n(h.get('flash_bytes'))} bytes"], ["data (ram)", f"{_n(h.get('ram_bytes'))} bytes"],
                   ["operations per inference", _n(h.get("operations_per_inference"))],
                   ["inferences per second", _n(h.get("inferences_per_second"))],
                   ["latency per inference", f"{_n(h.get('latency_us'))} us"]]
    out.append(("Design", ["", ""], design, ""))
    acc = report["accuracy"]
    tv = acc["test_vectors"]
    rows = [["float network", _pct(tv["float"]["agreement"]), _n(tv["float"]["max_error"], "{:.4g}"),
             f"{tv['vectors']} test vectors"]]
    if tv.get("unpruned_float"):
        u = tv["unpruned_float"]
        rows.append(["unpruned float network", _pct(u["agreement"]), _n(u["max_error"], "{:.4g}"),
                     f"{tv['vectors']} test vectors"])
    d = acc.get("data")
    if d and "golden_vs_labels" in d:
        rows.append(["labels (golden model)", _pct(d["golden_vs_labels"]), "", f"{d['rows']} rows of the data"])
        if "float_vs_labels" in d:
            rows.append(["labels (float network)", _pct(d["float_vs_labels"]), "", f"{d['rows']} rows of the data"])
    out.append(("Accuracy", ["against", "agreement / accuracy", "largest error", "on"], rows,
                "agreement: argmax of the golden model (what the hardware computes, bit for bit) against the "
                "reference's"))
    rows = [[c["value"], c["type"], f"[{c['type_range'][0]:.4g}, {c['type_range'][1]:.4g}]",
             "-" if c["range_seen"] is None else f"[{c['range_seen'][0]:.4g}, {c['range_seen'][1]:.4g}]",
             "-" if c["saturated"] is None else f"{c['saturated']:,} of {c['of']:,}"]
            for c in report["calibration"]]
    out.append(("Calibration", ["value", "type", "type's range", "range calibration saw", "saturated"], rows,
                "saturated: values outside a saturating cast's type on the report's inputs (--data, else the design's "
                "test vectors, whose first rows are the input type's extremes)"))
    return out


def markdown(report: dict[str, Any], figures: dict[str, str]) -> str:
    d = report["design"]
    lines = [f"# fpgac report: {d['name']} ({d['target']})", "",
             f"fpgac {d['fpgac']}, {d['date']}; schema {report['schema']}.", ""]
    for title, head, rows, note in tables(report):
        lines += [f"## {title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines += ["", note, ""] if note else [""]
    if figures:
        lines += ["## Figures", ""] + [f"![{k}]({v})" for k, v in figures.items()] + [""]
    return "\n".join(lines)


def page(report: dict[str, Any], figures: dict[str, str], folder: Path) -> str:
    d = report["design"]
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
             f"<title>fpgac report: {html.escape(d['name'])}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;font-size:12px}"
             "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}td:first-child,th:first-child"
             "{text-align:left}caption{text-align:left;font-weight:bold}</style></head><body>",
             f"<h1>fpgac report: {html.escape(d['name'])} ({html.escape(d['target'])})</h1>",
             f"<p>fpgac {html.escape(d['fpgac'])}, {html.escape(d['date'])}; schema {report['schema']}.</p>"]
    for title, head, rows, note in tables(report):
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head)
                     + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>" + (f"<p>{html.escape(note)}</p>" if note else ""))
    if figures:
        parts.append("<h2>Figures</h2>")
        for name, file in figures.items():
            data = base64.b64encode((folder / file).read_bytes()).decode()
            parts.append(f"<p><img alt='{html.escape(name)}' src='data:image/png;base64,{data}'></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
