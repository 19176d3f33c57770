"""LSTM and GRU on the amaranth target (``fpgac.hdl.Recurrent``): the bundled LSTM and GRU
classifiers, a two-layer LSTM (the first layer's whole sequence ``Y`` into the second) and a GRU
whose whole sequence feeds the classifier, fully parallel and folded (``--reuse``). Each is
bit-exact with the golden model on Verilator, at full rate and under random back-pressure, and
its latency is the one the design declares; the stages equal the golden model first.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fpgac import api
from fpgac.backends.amaranth.lower import Recurrent, execute, lower
from fpgac.errors import UnsupportedError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RNG = np.random.default_rng(29)


def _u(*shape: int, hidden: int) -> np.ndarray:
    k = 1.0 / np.sqrt(hidden)
    return RNG.uniform(-k, k, size=shape).astype(np.float32)


def _save(path: Path, nodes, x_shape, y_shape, weights: dict[str, np.ndarray]) -> Path:
    graph = helper.make_graph(
        nodes, "rnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *y_shape])],
        [numpy_helper.from_array(w, name) for name, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def two_layer_lstm(path: Path) -> Path:
    """x [N, 5, 3] -> LSTM(3 -> 6) -> its Y -> LSTM(6 -> 4) -> its Y_h -> Gemm 3."""
    T, I, H1, H2 = 5, 3, 6, 4
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("LSTM", ["xt", "W1", "R1", "B1"], ["y1", "", ""], hidden_size=H1),
             helper.make_node("Squeeze", ["y1", "axis1"], ["s1"]),
             helper.make_node("LSTM", ["s1", "W2", "R2", "B2"], ["", "h2", ""], hidden_size=H2),
             helper.make_node("Squeeze", ["h2", "axis0"], ["s2"]),
             helper.make_node("Gemm", ["s2", "wf", "bf"], ["y"], transB=1)]
    weights = {"W1": _u(1, 4 * H1, I, hidden=H1), "R1": _u(1, 4 * H1, H1, hidden=H1), "B1": _u(1, 8 * H1, hidden=H1),
               "W2": _u(1, 4 * H2, H1, hidden=H2), "R2": _u(1, 4 * H2, H2, hidden=H2), "B2": _u(1, 8 * H2, hidden=H2),
               "axis1": np.array([1], dtype=np.int64), "axis0": np.array([0], dtype=np.int64),
               "wf": RNG.normal(0, 0.5, (3, H2)).astype(np.float32), "bf": RNG.normal(0, 0.1, 3).astype(np.float32)}
    return _save(path, nodes, [T, I], [3], weights)


def gru_sequence(path: Path) -> Path:
    """x [N, 4, 3] -> GRU(3 -> 5) -> its whole Y [4, 5] flattened -> Gemm 2."""
    T, I, H = 4, 3, 5
    nodes = [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]),
             helper.make_node("GRU", ["xt", "W", "R", "B"], ["y1"], hidden_size=H, linear_before_reset=1),
             helper.make_node("Squeeze", ["y1", "axis1"], ["s1"]),
             helper.make_node("Transpose", ["s1"], ["bt"], perm=[1, 0, 2]),
             helper.make_node("Flatten", ["bt"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    weights = {"W": _u(1, 3 * H, I, hidden=H), "R": _u(1, 3 * H, H, hidden=H), "B": _u(1, 6 * H, hidden=H),
               "axis1": np.array([1], dtype=np.int64),
               "wf": RNG.normal(0, 0.5, (2, T * H)).astype(np.float32), "bf": RNG.normal(0, 0.1, 2).astype(np.float32)}
    return _save(path, nodes, [T, I], [2], weights)


def _example(name: str):
    return lambda path: EXAMPLES / f"{name}.onnx"


CASES = {
    "lstm": (_example("lstm"), 8, 1),
    "lstm, reuse 8": (_example("lstm"), 6, 8),
    "gru": (_example("gru"), 8, 1),
    "gru, reuse 4": (_example("gru"), 8, 4),
    "two-layer lstm, reuse 3": (two_layer_lstm, 8, 3),
    "gru sequence": (gru_sequence, 7, 1),
}


@pytest.mark.requires("libpython", "verilator")
@pytest.mark.parametrize("case", CASES)
def test_recurrent_bit_exact_on_verilator(tmp_path, case) -> None:
    make, bits, reuse = CASES[case]
    compiled = api.compile(make(tmp_path / "m.onnx"), bits=bits, input_range=(-1.0, 1.0))
    stages = lower(compiled.graph)
    assert any(isinstance(s, Recurrent) for s in stages)
    vectors = compiled.vectors(120)
    np.testing.assert_array_equal(execute(stages, vectors.input_mantissas[0].reshape(120, -1)),
                                  vectors.golden[0].reshape(120, -1))
    out = compiled.write(tmp_path / "design", "amaranth", vectors=120, reuse=reuse)
    report = api.verify(out)
    assert report.vectors == 120 and report.mismatched_bits == 0, report.lines()
    assert report.extra["latency_cycles"] == report.extra["declared_latency_cycles"]


def test_two_layer_lstm_passes_the_whole_sequence(tmp_path) -> None:
    compiled = api.compile(two_layer_lstm(tmp_path / "m.onnx"), bits=8, input_range=(-1.0, 1.0))
    first, second = [s for s in lower(compiled.graph) if isinstance(s, Recurrent)]
    assert (first.output, first.n_out, second.output, second.n_in) == (0, 5 * 6, 1, 5 * 6)


def test_gru_without_linear_before_reset_is_refused_by_name(tmp_path) -> None:
    model = onnx.load(EXAMPLES / "gru.onnx")
    node = next(n for n in model.graph.node if n.op_type == "GRU")
    next(a for a in node.attribute if a.name == "linear_before_reset").i = 0
    onnx.save(model, tmp_path / "m.onnx")
    compiled = api.compile(tmp_path / "m.onnx", bits=8, input_range=(-1.0, 1.0))
    name = next(n.name for n in compiled.graph.nodes if n.op.value == "GRU")
    with pytest.raises(UnsupportedError, match=rf"^node '{re.escape(name)}' \(GRU\): linear_before_reset=0"):
        lower(compiled.graph)


@pytest.mark.requires("libpython", "verilator")
def test_a_dynamic_sequence_length_asks_for_seq_len(tmp_path, capsys) -> None:
    from fpgac.cli import main

    model = onnx.load(EXAMPLES / "lstm.onnx")
    dim = model.graph.input[0].type.tensor_type.shape.dim[1]
    dim.ClearField("dim_value")
    dim.dim_param = "T"
    onnx.save(model, tmp_path / "dyn.onnx")
    argv = ["compile", str(tmp_path / "dyn.onnx"), "-t", "amaranth", "--bits", "8", "--input-range", "-1,1", "-q"]
    assert main([*argv, "-o", str(tmp_path / "no")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dimension 1 ('T') is symbolic" in err[0] and "--seq-len N" in err[0], err
    assert not (tmp_path / "no").exists()
    assert main([*argv, "--seq-len", "0", "-o", str(tmp_path / "zero")]) == 2
    assert "--seq-len must be a positive integer" in capsys.readouterr().err
    assert main([*argv, "--seq-len", "7", "-o", str(tmp_path / "seven"), "--vectors", "60"]) == 0
    stage = next(s for s in lower(api.load_design(tmp_path / "seven")) if isinstance(s, Recurrent))
    assert stage.steps == 7
    report = api.verify(tmp_path / "seven")
    assert report.vectors == 60 and report.mismatched_bits == 0, report.lines()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_folded_gate_sums_from_rom_banks_equal_the_stage_model(monkeypatch, kind) -> None:
    """Weight ROMs deeper than a bank (here 16 words, so that a small unit has several): each
    bank's word registered, then one picked; the unit still computes what its stage does, at the
    period it declares (two stages more than its words' one)."""
    import functools

    from fpgac.backends.amaranth import build
    from fpgac.hdl import Recurrent as Unit
    from fpgac.hdl.simulate import run_vectors

    compiled = api.compile(EXAMPLES / f"{kind}.onnx", bits=8, input_range=(-1.0, 1.0))
    stages = lower(compiled.graph)
    k = next(j for j, s in enumerate(stages) if isinstance(s, Recurrent))
    x = compiled.vectors(4).input_mantissas[0].reshape(4, -1)
    inputs = execute(stages[:k], x) if k else x
    expected = execute(stages[:k + 1], x)
    plain = build._recurrent_layer(stages[k], build.Pipelining(reuse=64))
    plain._MustUse__silence = True  # only its period is read
    monkeypatch.setattr(build, "Recurrent", functools.partial(Unit, bank_words=16))
    unit = build._recurrent_layer(stages[k], build.Pipelining(reuse=64))
    assert unit.groups * unit.chunks > 16 and unit.fold_extra_stages == 2 and plain.fold_extra_stages == 1
    assert unit.period == plain.period + 1
    words = inputs.reshape(-1, unit.n_x)
    out, _ = run_vectors(unit, words, count=len(x) * unit.out_beats, valid_prob=0.7, ready_prob=0.7, seed=3)
    np.testing.assert_array_equal(out.reshape(len(x), -1), expected)
    full, run = run_vectors(unit, words, count=len(x) * unit.out_beats, valid_prob=1.0, ready_prob=1.0)
    np.testing.assert_array_equal(full, out)
    ends = run.out_cycles["o"]
    assert ends[-1] - ends[-1 - unit.out_beats] == unit.interval
