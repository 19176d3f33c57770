"""``fpgac verify OUT --junit FILE.xml``: the verify report as JUnit XML, the format CI systems read.

One ``testsuite`` per verify; its test cases are the phases (building and simulating the design,
running the vectors) and then one per output (bit-exact against the golden model). A failing
output's case carries its first mismatching vectors, produced against golden mantissas. Written
with the standard library's ElementTree; any JUnit reader (Jenkins, GitLab, junitparser) takes it.
"""

from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

from ..backends.verification import Report
from .baseline import Moved

__all__ = ["junit_xml", "write_junit"]


def junit_xml(design: str, report: Report | None, error: str | None = None, moved: Moved | None = None) -> str:
    """The JUnit XML of one verify of ``design`` (a name): its ``report``, or the ``error`` that
    stopped it before there was one (the build case then fails with it); with ``moved`` (from
    ``--against``), one more case per output: unchanged from the baseline."""
    suite = ET.Element("testsuite", name=f"fpgac verify {design}")
    cls = f"fpgac.verify.{design}"
    cases: list[ET.Element] = []

    def case(name: str, seconds: float | None = None) -> ET.Element:
        el = ET.SubElement(suite, "testcase", classname=cls, name=name, time=f"{seconds or 0.0:.3f}")
        cases.append(el)
        return el

    if report is None:
        build = case("build and simulate")
        ET.SubElement(build, "error", message=error or "verify stopped", type="error").text = error or ""
    else:
        props = ET.SubElement(suite, "properties")
        facts = {"target": report.target, "vectors": report.vectors, "date": report.date,
                 "agreement_with_float": report.float.agreement, "max_error_vs_float": report.float.max_error}
        facts.update({k: v for k, v in report.extra.items() if isinstance(v, int | float | str)})
        for key, value in facts.items():
            if value is not None:
                ET.SubElement(props, "property", name=key, value=str(value))
        case("build and simulate", report.extra.get("build_seconds"))
        run = case(f"run {report.vectors} vectors", report.extra.get("run_seconds"))
        if report.vectors == 0:
            ET.SubElement(run, "failure", message="no vector was run", type="no-vectors")
        for check in report.outputs:
            el = case(f"output {check.name} bit-exact with the golden model")
            if check.ok:
                continue
            lines = [f"vector {k}: produced {list(got)}, golden {list(want)}" for k, got, want in check.first]
            more = check.mismatched_vectors - len(check.first)
            if more > 0:
                lines.append(f"... and {more} more vectors")
            ET.SubElement(el, "failure", type="mismatch",
                          message=f"{check.mismatched_bits} bits differ in {check.mismatched_vectors} of "
                                  f"{report.vectors} vectors").text = "\n".join(lines)
        for name, rows in (moved.outputs.items() if moved is not None else ()):
            el = case(f"output {name} unchanged from the baseline")
            if rows:
                ET.SubElement(el, "failure", type="moved",
                              message=f"{len(rows)} of {moved.vectors} vectors moved"
                                      + (f" ({moved.notes[name]})" if name in moved.notes else "")
                              ).text = "\n".join(moved.examples[name])
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    seconds = report.seconds if report is not None and report.seconds is not None else 0.0
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(failures))
    suite.set("errors", str(errors))
    suite.set("time", f"{seconds:.3f}")
    if report is not None and report.date:
        suite.set("timestamp", report.date)
    root = ET.Element("testsuites", name="fpgac verify", tests=str(len(cases)), failures=str(failures),
                      errors=str(errors), time=f"{seconds:.3f}")
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_junit(path: str | os.PathLike, design: str, report: Report | None, error: str | None = None,
                moved: Moved | None = None) -> None:
    """Write :func:`junit_xml` to ``path`` whole or not at all (a temporary file, then renamed)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(junit_xml(design, report, error, moved))
    tmp.replace(path)
