"""The synthesis command an amaranth design's README documents, run exactly as written."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from fpgac import api
from fpgac.backends.amaranth import synthesis_command
from fpgac.backends.common import read_manifest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.requires("yosys")
def test_the_documented_synthesis_command_prints_the_resource_counts(tmp_path) -> None:
    out = api.compile(EXAMPLES / "qmlp.onnx", input_range=(-1, 1)).write(tmp_path / "qmlp", "amaranth", vectors=10)
    readme = (out / "README.md").read_text()
    command = re.search(r"## Synthesize.*?```\n(.+?)\n```", readme, re.S).group(1)
    assert command == synthesis_command(read_manifest(out)["design"])
    proc = subprocess.run(command, shell=True, cwd=out, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    hierarchy = proc.stdout.split("=== design hierarchy ===")[1]
    cells = {name: int(count) for count, name in re.findall(r"^\s+(\d+)\s+(LUT4|CCU2C|TRELLIS_FF)$", hierarchy, re.M)}
    assert cells.get("LUT4", 0) > 0 and cells.get("CCU2C", 0) > 0 and cells.get("TRELLIS_FF", 0) > 0, hierarchy
