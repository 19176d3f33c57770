"""The shared backend machinery: vectors, bit comparison, manifest, atomic output, verify."""

from __future__ import annotations

import re

import numpy as np
import pytest

from fpgac import api
from fpgac.backends.common import (
    MANIFEST,
    VECTORS,
    Port,
    Vectors,
    compare,
    load_vectors,
    mismatched_bits,
    read_manifest,
)
from fpgac.errors import UsageError
from fpgac.ir import FixedType

MLP = "examples/mlp.onnx"


@pytest.fixture(scope="module")
def mlp():
    return api.compile(MLP, bits=8, input_range=(-1, 1))


def test_mismatched_bits_hand_worked() -> None:
    t = FixedType(4, 2, signed=True)
    golden = np.array([[-8, 7], [0, -1]])
    produced = np.array([[-8, 6], [3, 7]])  # 7^6 = 0b0001; 0^3 = 0b0011; -1^7 = 0b1000 (in 4 bits)
    assert mismatched_bits(produced, golden, t).tolist() == [1, 3]


def test_vectors_start_with_the_input_extremes(mlp) -> None:
    v = mlp.vectors(10)
    t = mlp.graph.inputs[0].type.dtype
    m = v.input_mantissas[0]
    assert m.shape == (10, 16)
    assert (m[0] == t.min_mantissa).all() and (m[1] == t.max_mantissa).all() and (m[2] == 0).all()
    assert set(np.unique(m[3:6])) == {t.min_mantissa, t.max_mantissa}
    assert m.min() >= t.min_mantissa and m.max() <= t.max_mantissa
    # the golden outputs are the golden model's on exactly these inputs
    assert np.array_equal(v.golden[0], mlp.predict(v.inputs[0], mantissas=True))
    assert np.allclose(v.reference[0], mlp.predict(v.inputs[0], float=True))


def test_vectors_take_calibration_rows_after_the_extremes() -> None:
    rows = np.random.default_rng(1).uniform(-1, 1, (50, 16))
    compiled = api.compile(MLP, bits=8, calibration=rows)
    v = compiled.vectors(20)
    t = compiled.graph.inputs[0].type.dtype
    assert np.allclose(v.inputs[0][6:20], rows[:14], atol=t.lsb / 2 + 1e-12)


def test_compare_counts_bits_and_reports_float_distance(mlp) -> None:
    v = mlp.vectors(30)
    port = Port("y", (5,), mlp.graph.outputs[0].type.dtype)
    assert compare("cpu", [port], v, v.golden).ok
    bad = v.golden[0].copy()
    bad[7, 2] ^= 0b101
    bad[9, 0] ^= 1
    report = compare("cpu", [port], v, [bad])
    assert (report.mismatched_bits, report.mismatched_vectors, report.first_mismatch) == (3, 2, 7)
    assert not report.ok and "FAIL" in report.lines()[-1]
    assert 0.9 <= report.agreement <= 1.0


def test_max_error_in_output_lsbs_hand_worked() -> None:
    """One output of type fixed<8,4> (LSB 1/16); float says 0.5, the design gives mantissa 11
    (0.6875): the error is 0.1875, 3 LSB."""
    t = FixedType(8, 4)
    port = Port("y", (1,), t)
    vectors = Vectors(inputs=[np.zeros((1, 1))], input_mantissas=[np.zeros((1, 1), dtype=np.int64)],
                      golden=[np.array([[11]])], reference=[np.array([[0.5]])])
    report = compare("cpu", [port], vectors, [np.array([[11]])])
    assert report.ok and report.max_error == 0.1875 and report.max_error_lsb == 3.0
    assert "vs float          largest error 0.1875 (3 LSB) on all 1 vectors" in report.lines()


@pytest.fixture()
def fake(fake_backend):
    return fake_backend("fake")


def test_write_then_verify(tmp_path, mlp, fake) -> None:
    out = mlp.write(tmp_path / "out", "fake", vectors=40)
    assert (out / "design.txt").exists() and (out / VECTORS).exists()
    manifest = read_manifest(out)
    assert manifest["target"] == "fake" and manifest["latency"] == 3
    assert manifest["inputs"][0].shape == (16,)
    assert load_vectors(out / VECTORS).n == 40
    report = api.verify(out)
    assert report.ok and report.vectors == 40
    assert api.verify(out, 12).vectors == 12
    fake.flip = True
    assert api.verify(out).mismatched_bits == 1
    with pytest.raises(UsageError, match=rf"^{re.escape(str(out))} holds 40 test vectors, not 41: compile again with "
                                         r"--vectors 41$"):
        api.verify(out, 41)


def test_failed_write_leaves_nothing(tmp_path, mlp, fake) -> None:
    fake.fail_write = True
    with pytest.raises(UsageError, match="^cannot build this$"):
        mlp.write(tmp_path / "out", "fake")
    assert list(tmp_path.iterdir()) == []


def test_rewrite_replaces_an_old_output_but_not_a_users_folder(tmp_path, mlp, fake) -> None:
    out = tmp_path / "out"
    mlp.write(out, "fake", vectors=8)
    (out / "stale.txt").write_text("old")
    mlp.write(out, "fake", vectors=8)
    assert not (out / "stale.txt").exists() and (out / MANIFEST).exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match=rf"^{re.escape(str(mine))} exists and is not an fpgac output directory: give a "
                                         "new or empty -o directory$"):
        mlp.write(mine, "fake")
    assert (mine / "notes.txt").read_text() == "keep me"


def test_verify_refuses_what_is_not_an_output(tmp_path) -> None:
    where = re.escape(str(tmp_path))
    with pytest.raises(UsageError, match=rf"^{where}/missing: no such directory \(give the -o directory of `fpgac "
                                         r"compile`\)$"):
        api.verify(tmp_path / "missing")
    with pytest.raises(UsageError, match=rf"^{where}: no fpgac.json: not an output directory of `fpgac compile`$"):
        api.verify(tmp_path)
    (tmp_path / MANIFEST).write_text("{not json")
    with pytest.raises(UsageError, match=rf"^{where}/fpgac.json: unreadable manifest \(JSONDecodeError: Expecting "
                                         r"property name enclosed in double quotes: line 1 column 2 \(char 1\)\)$"):
        api.verify(tmp_path)
