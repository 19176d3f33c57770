"""``fpgac verify`` in a CI job (issue 19): JUnit XML that a JUnit library reads, the failure of a
corrupted output carried in it, and ``--against`` a baseline compile. A fake backend stands in
for the simulators (``conftest.FakeBackend``: it returns the golden outputs, or flips one bit)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cli_helpers import error as _error
from cli_helpers import run as _run

junitparser = pytest.importorskip("junitparser")

MLP = Path(__file__).resolve().parents[2] / "examples" / "mlp.onnx"


@pytest.fixture()
def fake(fake_backend):
    return fake_backend("xilinx")


def _compile(capsys, out: Path, *extra) -> None:
    code, _, err = _run(capsys, "compile", MLP, "-o", out, "--vectors", "12", "--input-range=-1,1", *extra)
    assert code == 0, err


def _cases(path: Path) -> dict[str, object]:
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    assert len(suites) == 1
    return {case.name: case for case in suites[0]}


def test_junit_of_a_passing_design(fake, tmp_path: Path, capsys) -> None:
    _compile(capsys, tmp_path / "prj", "--bits", "8")
    code, out, err = _run(capsys, "verify", tmp_path / "prj", "--junit", tmp_path / "r.xml")
    assert code == 0, err
    cases = _cases(tmp_path / "r.xml")
    assert list(cases) == ["build and simulate", "run 12 vectors", "output y bit-exact with the golden model"]
    assert all(case.is_passed for case in cases.values())


def test_junit_carries_a_mismatching_output(fake, tmp_path: Path, capsys) -> None:
    """The testbench's output differs from golden in one bit (the fake backend flips the lowest
    bit of vector 0's first word): the output's test case fails with the count and the vector,
    produced against golden mantissas."""
    from fpgac.backends.common import load_vectors

    _compile(capsys, tmp_path / "prj", "--bits", "8")
    fake.flip = True
    code, out, _ = _run(capsys, "verify", tmp_path / "prj", "--junit", tmp_path / "r.xml")
    assert code == 1 and "FAIL" in out
    case = _cases(tmp_path / "r.xml")["output y bit-exact with the golden model"]
    (failure,) = case.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message == "1 bits differ in 1 of 12 vectors"
    golden = load_vectors(tmp_path / "prj" / "vectors.npz").golden[0][0].ravel()
    produced = golden.copy()
    produced[0] ^= 1
    assert failure.text == f"vector 0: produced {produced.tolist()}, golden {golden.tolist()}"


def test_junit_when_the_build_fails(fake, tmp_path: Path, capsys, monkeypatch) -> None:
    from fpgac.backends.common import BackendError

    _compile(capsys, tmp_path / "prj", "--bits", "8")

    def broken(*args, **kwargs):
        raise BackendError("g++ failed: syntax error in firmware/layer.h")

    monkeypatch.setattr(fake, "run", broken)
    message = _error(capsys, "verify", tmp_path / "prj", "--junit", tmp_path / "r.xml")
    assert "g++ failed" in message
    (case,) = _cases(tmp_path / "r.xml").values()
    (err,) = case.result
    assert isinstance(err, junitparser.Error) and err.message == "g++ failed: syntax error in firmware/layer.h"


def test_junit_in_a_missing_folder_is_refused_before_any_build(fake, tmp_path: Path, capsys) -> None:
    _compile(capsys, tmp_path / "prj", "--bits", "8")
    message = _error(capsys, "verify", tmp_path / "prj", "--junit", tmp_path / "nowhere" / "r.xml")
    assert message.startswith(f"--junit {tmp_path / 'nowhere' / 'r.xml'}: no such directory")


def test_against_a_baseline(fake, tmp_path: Path, capsys) -> None:
    """The same compile twice moves nothing; another bit-width moves outputs, listed with the
    type change; a baseline that is not a compile output is bad input."""
    _compile(capsys, tmp_path / "old", "--bits", "8")
    _compile(capsys, tmp_path / "same", "--bits", "8")
    _compile(capsys, tmp_path / "new", "--bits", "6")
    code, out, err = _run(capsys, "verify", tmp_path / "same", "--against", tmp_path / "old")
    assert code == 0, err
    assert "output y: unchanged on all 12 vectors" in out and "against baseline  PASS" in out
    code, out, _ = _run(capsys, "verify", tmp_path / "new", "--against", tmp_path / "old",
                        "--junit", tmp_path / "r.xml")
    assert code == 1 and "against baseline  FAIL: outputs moved from the baseline" in out
    line = next(li for li in out.splitlines() if li.startswith("output y:"))
    assert "vectors moved (type ufixed<8,0,RND,SAT> -> ufixed<6,0,RND,SAT>)" in line, line
    case = _cases(tmp_path / "r.xml")["output y unchanged from the baseline"]
    assert isinstance(case.result[0], junitparser.Failure)
    assert _error(capsys, "verify", tmp_path / "new", "--against", tmp_path) .endswith(
        "not an output directory of `fpgac compile`")


def test_a_changed_weight_moves_the_vectors_it_changes(fake, tmp_path: Path, capsys) -> None:
    """Same types, one weight of the baseline's graph changed: exactly the vectors whose golden
    output differs between the two graphs (computed here with the golden model) have moved."""
    from fpgac import api
    from fpgac.backends.common import load_vectors

    _compile(capsys, tmp_path / "old", "--bits", "8")
    _compile(capsys, tmp_path / "new", "--bits", "8")
    graph_npz = tmp_path / "old" / "graph.npz"
    with np.load(graph_npz) as data:
        arrays = {k: data[k] for k in data.files}
    key = next(k for k, v in arrays.items() if v.ndim == 2 and v.dtype.kind in "iu" and v.size > 100)
    arrays[key].flat[7] += 9
    np.savez(graph_npz, **arrays)
    vectors = load_vectors(tmp_path / "new" / "vectors.npz")
    (old,) = api.run(api.load_design(tmp_path / "old"), vectors.inputs, float=False)
    (new,) = api.run(api.load_design(tmp_path / "new"), vectors.inputs, float=False)
    expected = int((old != new).reshape(len(old), -1).any(axis=1).sum())
    code, out, _ = _run(capsys, "verify", tmp_path / "new", "--against", tmp_path / "old")
    assert expected > 0  # the weight matters on these vectors (else the check below proves nothing)
    assert code == 1 and f"output y: {expected} of 12 vectors moved" in out
