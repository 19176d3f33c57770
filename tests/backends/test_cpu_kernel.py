"""The CPU target's pieces: hand-worked numbers, every requantization mode exhaustively, the float
entry point, what the C may not use, failure detection, unsupported ops, and the command line."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fpgac import api, backends
from fpgac.backends import Vectors
from fpgac.backends.cpu import testbench as tb
from fpgac.cli import main
from fpgac.errors import UnsupportedError
from fpgac.ir import Act, FixedType, Graph, Op, Overflow, Rounding, TensorType, to_float
from fpgac.sim import run_fixed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RND_SAT = dict(rounding=Rounding.RND, overflow=Overflow.SAT)


def _vectors(graph: Graph, mantissas: list[np.ndarray]) -> Vectors:
    """Test vectors on exactly these input mantissas, the golden model's outputs for them."""
    values = [to_float(m, v.type.dtype) for m, v in zip(mantissas, graph.inputs)]
    golden = run_fixed(graph, values, mantissas=True)
    reference = [to_float(g, v.type.dtype) for g, v in zip(golden, graph.outputs)]
    return Vectors(values, mantissas, golden, reference)


def _dense_2x2() -> Graph:
    g = Graph("t")
    x = g.add_input("x", TensorType(FixedType(8, 4, **RND_SAT), (2,)))
    w = g.constant("w", np.array([[3, -8], [5, 2]]), FixedType(6, 2))  # 0.1875 -0.5 / 0.3125 0.125
    b = g.constant("b", np.array([16, -1]), FixedType(12, 4))  # 0.0625, -1/256
    g.outputs = [g.add_node(Op.DENSE, [x, w, b], [TensorType(FixedType(20, 12), (2,))], name="fc").output]
    return g


def test_dense_hand_worked(tmp_path: Path) -> None:
    """x = [1.5, -0.25] -> mantissas [24, -4]; y0 = 24*3 - 4*5 + 16 = 68, y1 = 24*-8 - 4*2 - 1 = -201."""
    g = _dense_2x2()
    m = np.array([[24, -4], [-128, 127], [0, 0]])
    v = _vectors(g, [m])
    expected = [[68, -201], [-128 * 3 + 127 * 5 + 16, -128 * -8 + 127 * 2 - 1], [16, -1]]
    np.testing.assert_array_equal(v.golden[0], expected)
    backends.write(g, tmp_path / "out", "cpu", v)
    source = (tmp_path / "out" / "model.c").read_text()
    assert re.search(r"static const int8_t fc_w\[4\] = \{\s*3, 5, -8, 2\s*\};", source)  # by output row
    assert re.search(r"static const int8_t fc_bias\[2\] = \{\s*16, -1\s*\};", source)  # at 8 bits already
    exe = tb.build(tmp_path / "out", tmp_path)
    printed = subprocess.run([exe, tmp_path / "out" / tb.INPUTS], capture_output=True, text=True, check=True)
    assert printed.stdout.split("\n")[0].split() == ["68", "-201"]
    assert api.verify(tmp_path / "out").mismatched_bits == 0


def _requantization_graph() -> tuple[Graph, list[np.ndarray]]:
    """Every rounding x overflow mode, dropping bits and adding them, narrow and 64-bit sources."""
    g = Graph("rq")
    x = g.add_input("x", TensorType(FixedType(9, 3), (1,)))  # mantissas -256..255, 6 fractional bits
    wide = g.add_input("wide", TensorType(FixedType(44, 10), (1,)))
    outputs = []
    for rounding in Rounding:
        for overflow in Overflow:
            mode = dict(rounding=rounding, overflow=overflow)
            for src, dst in ((x, FixedType(5, 2, **mode)),  # drop 3 bits, overflows
                             (x, FixedType(4, 1, signed=False, **mode)),  # unsigned: negatives overflow
                             (x, FixedType(8, 1, **mode)),  # add 1 bit, overflows
                             (x, FixedType(1, -2, **mode)),  # 1-bit SAT_SYM corner
                             (x, FixedType(6, 12, **mode)),  # drop all bits and more
                             (wide, FixedType(12, 3, **mode)),  # 64-bit source, drop 31 bits
                             (wide, FixedType(40, 10, **mode))):  # 64-bit to 64-bit, drop 4 bits
                outputs.append(g.add_node(Op.QUANT, [src], [TensorType(dst, (1,))]).output)
    g.outputs = outputs
    rng = np.random.default_rng(3)
    t = wide.type.dtype
    wide_m = np.concatenate([[t.min_mantissa, t.max_mantissa, 0, -1, 1, 8, -8, 24, -24],
                             rng.integers(t.min_mantissa, t.max_mantissa, 512 - 9, endpoint=True)])
    return g, [np.arange(-256, 256).reshape(512, 1), wide_m.reshape(512, 1)]


def test_every_rounding_and_overflow_mode_exhaustively(tmp_path: Path) -> None:
    g, mantissas = _requantization_graph()
    backends.write(g, tmp_path / "out", "cpu", _vectors(g, mantissas))
    report = api.verify(tmp_path / "out")
    assert report.mismatched_bits == 0, "\n".join(report.lines())
    assert report.words == len(g.outputs) == 7 * 4 * 7


@pytest.fixture(scope="module")
def mlp8(tmp_path_factory) -> tuple[api.CompiledModel, Path]:
    compiled = api.compile(EXAMPLES / "mlp.onnx", bits=8, input_range=(-1, 1))
    out = tmp_path_factory.mktemp("mlp8") / "out"
    compiled.write(out, "cpu", vectors=200)
    return compiled, out


def test_float_entry_quantizes_as_the_input_type_says(mlp8, tmp_path: Path) -> None:
    """model_run_float: inputs rounded (RND: ties up) and saturated like fixed.quantize, outputs exact."""
    compiled, out = mlp8
    t = compiled.graph.inputs[0].type.dtype
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.uniform(-3, 3, (40, 16)),  # beyond the range: saturates
        (rng.integers(-200, 200, (20, 16)) + 0.5) * t.lsb,  # exact ties
        np.full((1, 16), np.inf), np.full((1, 16), -np.inf), np.full((1, 16), 1e-300), np.full((1, 16), -1e-300),
    ])
    tb.write_inputs(tmp_path / "x.txt", [x], fmt="%.17g")
    exe = tb.build(out, tmp_path)
    printed = subprocess.run([exe, tmp_path / "x.txt", "--float"], capture_output=True, text=True, check=True)
    got = np.array(printed.stdout.split(), dtype=np.float64).reshape(len(x), -1)
    np.testing.assert_array_equal(got, compiled.predict(x))


def test_hot_path_has_no_float_malloc_or_library(mlp8, tmp_path: Path) -> None:
    _, out = mlp8
    source = (out / "model.c").read_text()
    hot = source[source.index("---- constants"):source.index("#ifndef MODEL_NO_FLOAT\nvoid model_run_float")]
    assert not re.search(r"\b(float|double|malloc|free|printf)\b", hot)
    obj = tmp_path / "model.o"
    subprocess.run(["gcc", *tb.CFLAGS, "-DMODEL_NO_FLOAT", "-c", "-o", obj, out / "model.c"], check=True)
    undefined = subprocess.run(["nm", "-u", obj], capture_output=True, text=True, check=True).stdout.split()
    assert set(undefined[1::2]) <= {"memcpy", "memset", "memmove"}, undefined


def test_a_corrupted_weight_is_caught(mlp8, tmp_path: Path) -> None:
    """The comparison can fail: one weight changed in model.c gives mismatching bits."""
    _, out = mlp8
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    source = (broken / "model.c").read_text()
    head = re.search(r"static const int8_t fc1_Gemm_w\[\d+\] = \{\s*(-?\d+),", source)
    value = int(head.group(1))
    source = source[:head.start(1)] + str(value + 1 if value < 127 else value - 1) + source[head.end(1):]
    (broken / "model.c").write_text(source)
    report = api.verify(broken)
    assert not report.ok and report.mismatched_bits > 0
    assert api.verify(out).ok


def test_unsupported_op_names_the_node(tmp_path: Path) -> None:
    t = FixedType(8, 4)
    g = Graph("t")
    a = g.add_input("a", TensorType(t, (2,)))
    b = g.add_input("b", TensorType(t, (2,)))
    g.outputs = [g.add_node(Op.DIV, [a, b], [TensorType(FixedType(16, 8), (2,))], name="ratio").output]
    with pytest.raises(UnsupportedError, match=r"^node 'ratio' \(Div\): a division has no fixed-point form \(quantization "
                                               r"turns a division by a constant into a multiplication\)$"):
        backends.write(g, tmp_path / "out", "cpu", None)
    assert not (tmp_path / "out").exists()

    g = Graph("t")
    x = g.add_input("x", TensorType(t, (2,)))
    g.outputs = [g.add_node(Op.ACTIVATION, [x], [TensorType(t, (2,))], {"kind": Act.TANH}, name="th").output]
    with pytest.raises(UnsupportedError, match=r"^node 'th' \(Activation\): activation tanh has no exact "
                                               r"fixed-point form \(quantization makes it a Lookup\)$"):
        backends.write(g, tmp_path / "out", "cpu", None)


def test_cli_compile_and_verify(capsys, tmp_path: Path) -> None:
    out = tmp_path / "c"
    assert main(["compile", str(EXAMPLES / "mlp.onnx"), "--target", "cpu", "-o", str(out), "--bits", "8", "-q"]) == 0
    assert {"model.h", "model.c", "tb.c", "Makefile", "README.md", tb.INPUTS} <= {p.name for p in out.iterdir()}
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "mismatching bits  0 in 0 vectors" in printed and "PASS" in printed


def test_makefile_builds_the_testbench(mlp8, tmp_path: Path) -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    _, out = mlp8
    work = tmp_path / "w"
    shutil.copytree(out, work)
    subprocess.run(["make", "-s", "-C", work], check=True, capture_output=True)
    printed = subprocess.run([work / "tb", work / tb.INPUTS, "3"], capture_output=True, text=True, check=True)
    assert len(printed.stdout.strip().splitlines()) == 3
