"""``fpgac compile`` and ``fpgac verify``: option checking, output handling, exit codes.

The backends' own end-to-end runs live in tests/backends; here a fake backend stands in so that
the command line is tested on its own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import error as _error
from cli_helpers import run as _run

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MLP = EXAMPLES / "mlp.onnx"


@pytest.fixture()
def fake(fake_backend):
    return fake_backend("xilinx")


def test_compile_and_verify(tmp_path, capsys, fake) -> None:
    out = tmp_path / "prj"
    code, stdout, _ = _run(capsys, "compile", MLP, "-o", out, "--bits", "8", "--vectors", "25",
                           "--io", "stream", "--reuse", "4")
    assert code == 0 and f"fpgac verify {out}" in stdout
    assert fake.seen == {"io": "stream", "reuse": 4}
    code, stdout, _ = _run(capsys, "verify", out)
    assert code == 0
    assert "vectors           25" in stdout and "mismatching bits  0 in 0 vectors" in stdout
    fake.flip = True
    code, stdout, _ = _run(capsys, "verify", out, "--vectors", "5")
    assert code == 1 and "mismatching bits  1 in 1 vectors (first: vector 0)" in stdout and "FAIL" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target", "cpu", "--io", "stream"], "--io applies to --target xilinx"),
        (["--target", "cpu", "--reuse", "2"], "--reuse applies to --target xilinx or amaranth"),
        (["--target", "xilinx", "--axi"], "--axi applies to --target amaranth"),
        (["--reuse", "0"], "--reuse must be at least 1"),
        (["--clock-period", "-3"], "--clock-period must be a positive"),
        (["--vectors", "0"], "--vectors must be at least 1"),
        (["--target", "vhdl"], "invalid choice: 'vhdl'"),
    ],
)
def test_compile_refuses_bad_options(tmp_path, capsys, fake, args, message) -> None:
    out = tmp_path / "prj"
    assert message in _error(capsys, "compile", MLP, "-o", out, *args)
    assert not out.exists()


def test_compile_keeps_a_users_folder(tmp_path, capsys, fake) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    assert "not an fpgac output directory" in _error(capsys, "compile", MLP, "-o", tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_verify_errors(tmp_path, capsys, fake) -> None:
    assert "no such directory" in _error(capsys, "verify", tmp_path / "nothing")
    assert "not an output directory" in _error(capsys, "verify", tmp_path)
    out = tmp_path / "prj"
    _run(capsys, "compile", MLP, "-o", out, "--vectors", "3")
    assert "holds 3 test vectors" in _error(capsys, "verify", out, "--vectors", "4")


def test_run_and_inspect_a_compiled_design(tmp_path, capsys, fake) -> None:
    """``run OUT`` runs the golden model of the design in OUT: the same outputs as ``run MODEL`` with
    the options OUT was compiled with, bit for bit, without the model or the options."""
    import numpy as np

    out = tmp_path / "prj"
    assert _run(capsys, "compile", MLP, "-o", out, "--bits", "6", "--prune", "magnitude:0.5")[0] == 0
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(2).uniform(-1, 1, size=(40, 16)))
    for source, extra in ((out, []), (MLP, ["--bits", "6", "--prune", "magnitude:0.5"])):
        assert _run(capsys, "run", source, "-i", x, "-o", tmp_path / f"{source.name}.npz", "--mantissas", *extra)[0] == 0
    design, model = (np.load(tmp_path / f"{name}.npz") for name in ("prj", "mlp.onnx"))
    assert design.files == model.files and all(np.array_equal(design[k], model[k]) for k in design.files)
    code, stdout, _ = _run(capsys, "inspect", out)
    assert code == 0 and f"model mlp: {out} (target xilinx" in stdout and "fixed<6," in stdout
    assert "of them zero)" in stdout  # the pruned half of the weights


@pytest.mark.parametrize("args", [["--bits", "8"], ["--float"], ["--prune", "magnitude:0.5"], ["--input-range=-2,2"]])
def test_a_compiled_design_refuses_quantization_options(tmp_path, capsys, fake, args) -> None:
    out = tmp_path / "prj"
    assert _run(capsys, "compile", MLP, "-o", out)[0] == 0
    flag = args[0].split("=")[0]
    assert f"{flag} does not apply to {out}, a compiled design" in _error(capsys, "inspect", out, *args)


def test_run_of_a_folder_that_is_not_a_design(tmp_path, capsys) -> None:
    assert "no fpgac.json: not an output directory" in _error(capsys, "run", tmp_path, "-i", "x.npy", "-o", "y.npy")
