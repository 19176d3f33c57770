"""``fpgac report OUT --baseline OLD/report.json [--tolerance luts=10%,latency=0,accuracy=0.1]``:
what moved against an earlier report, and whether any figure is worse than its tolerance.

A tolerance is relative with ``%`` (of the baseline's figure) or absolute without: cycles for
``latency``, MHz for ``clock``, percentage points for ``accuracy``. The defaults follow the
convention hls4ml adopted for its own synthesis regressions: 10% for resources, 2% latency,
1% clock; accuracy may not drop.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UsageError

__all__ = ["DEFAULT_TOLERANCES", "compare", "figures", "parse_tolerances"]

DEFAULT_TOLERANCES = {"luts": "10%", "ffs": "10%", "dsps": "10%", "brams": "10%", "latency": "2%", "clock": "1%",
                      "accuracy": "0"}
#: figure -> True when higher is worse
HIGHER_IS_WORSE = {"luts": True, "ffs": True, "dsps": True, "brams": True, "latency": True, "clock": False,
                   "accuracy": False}


def parse_tolerances(text: str | None) -> dict[str, tuple[float, bool]]:
    """``name=VALUE[%],...`` over the defaults: name -> (value, relative)."""
    spec = dict(DEFAULT_TOLERANCES)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in DEFAULT_TOLERANCES:
            raise UsageError(f"--tolerance {part.strip()!r}: give NAME=VALUE[%] with NAME one of "
                             f"{', '.join(DEFAULT_TOLERANCES)}")
        spec[name] = value.strip()
    out = {}
    for name, value in spec.items():
        relative = value.endswith("%")
        try:
            number = float(value.rstrip("%"))
        except ValueError:
            raise UsageError(f"--tolerance {name}={value}: not a number") from None
        if number < 0:
            raise UsageError(f"--tolerance {name}={value}: must not be negative")
        out[name] = (number, relative)
    return out


def figures(report: dict[str, Any]) -> dict[str, float | None]:
    """The figures a baseline compares (accuracy in percent)."""
    total = (report.get("hardware") or {}).get("total", {})
    agreement = report["accuracy"]["test_vectors"]["float"]["agreement"]
    return {"luts": total.get("luts"), "ffs": total.get("ffs"), "dsps": total.get("dsps"), "brams": total.get("brams"),
            "latency": total.get("latency_cycles"), "clock": total.get("clock_mhz"),
            "accuracy": None if agreement is None else 100.0 * agreement}


def load(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UsageError(f"--baseline {path}: no such file") from None
    except (OSError, ValueError) as err:
        raise UsageError(f"--baseline {path}: not a readable report.json ({err})") from None
    if not isinstance(data, dict) or not str(data.get("schema", "")).startswith("fpgac-report-"):
        raise UsageError(f"--baseline {path}: not an fpgac report.json")
    return data


def compare(new: dict[str, Any], old: dict[str, Any], tolerances: dict[str, tuple[float, bool]]
            ) -> tuple[list[str], bool]:
    """Lines saying what moved, and whether any figure got worse than its tolerance."""
    now, then = figures(new), figures(old)
    lines, worse = [], False
    for name, (limit, relative) in tolerances.items():
        a, b = then.get(name), now.get(name)
        if a is None or b is None:
            continue
        change = b - a
        bad_direction = change > 0 if HIGHER_IS_WORSE[name] else change < 0
        allowed = abs(a) * limit / 100.0 if relative else limit
        fails = bad_direction and abs(change) > allowed + 1e-12
        worse |= fails
        rel = f" ({100.0 * change / a:+.1f}%)" if a else ""
        unit = {"latency": " cycles", "clock": " MHz", "accuracy": " %"}.get(name, "")
        verdict = "WORSE than the tolerance" if fails else "ok"
        lines.append(f"{name:<9} {a:,.4g}{unit} -> {b:,.4g}{unit}{rel if change else ''}: {verdict} "
                     f"(tolerance {limit:g}{'%' if relative else unit})")
    return lines, worse
