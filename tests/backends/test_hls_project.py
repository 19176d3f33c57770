"""The xilinx target's project: its top function (snapshots), testbench, build script, options,
refusals, mismatch detection and the command line.

A tiny hand-made model (Dense 3 -> 2 with one zero weight, then Relu) keeps the compiles short.
Set FPGAC_UPDATE_SNAPSHOTS=1 to rewrite the snapshots after a deliberate change (and read the
diff before committing it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fpgac import api
from fpgac.backends.common import VECTORS, load_vectors, save_vectors
from fpgac.backends.hls.csim import compile_testbench
from fpgac.cli import main
from fpgac.errors import UnsupportedError, UsageError
from fpgac.ir import Act, FixedType, FloatType, Graph, Op, TensorType, verify

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
MLP = Path(__file__).resolve().parents[2] / "examples" / "mlp.onnx"
F = FloatType()


def tiny_graph() -> Graph:
    """x[3] -> Dense (3x2, one zero weight) -> Relu."""
    g = Graph("tiny")
    x = g.add_input("x", TensorType(F, (3,)))
    w = g.constant("w", np.array([[0.5, -0.25], [0.125, 0.75], [-1.0, 0.0]]))
    b = g.constant("b", np.array([0.0625, -0.125]))
    dense = g.add_node(Op.DENSE, [x, w, b], [TensorType(F, (2,))], name="fc").output
    g.outputs = [g.add_node(Op.ACTIVATION, [dense], [TensorType(F, (2,))], dict(kind=Act.RELU), name="relu").output]
    verify(g)
    return g


@pytest.fixture(scope="module")
def tiny() -> api.CompiledModel:
    return api.compile(tiny_graph(), bits=8, input_range=(-1, 1))


@pytest.fixture(scope="module")
def tiny_project(tiny, tmp_path_factory) -> Path:
    return tiny.write(tmp_path_factory.mktemp("tiny") / "prj", "xilinx")


@pytest.mark.parametrize("io", ["parallel", "stream"])
def test_top_function_snapshot(tiny, tmp_path, io) -> None:
    out = tiny.write(tmp_path / "prj", "xilinx", vectors=10, io=io)
    text = (out / "firmware" / "tiny.cpp").read_text()
    snapshot = SNAPSHOTS / f"hls_tiny_{io}.cpp"
    if os.environ.get("FPGAC_UPDATE_SNAPSHOTS"):
        snapshot.write_text(text)
    assert text == snapshot.read_text()


def test_project_files_and_manifest(tiny_project) -> None:
    out = tiny_project
    for path in ["firmware/tiny.cpp", "firmware/tiny.h", "firmware/defines.h", "firmware/parameters.h",
                 "firmware/weights/fc.h", "firmware/fpgac/dense.h", "tiny_test.cpp", "build_prj.tcl", "README.md",
                 "tb_data/tb_input_features.dat", "tb_data/tb_output_predictions.dat"]:
        assert (out / path).is_file(), path
    manifest = json.loads((out / "fpgac.json").read_text())
    assert {k: manifest[k] for k in ("io", "part", "clock_period", "reuse", "top")} == {
        "io": "parallel", "part": "xcvu13p-flga2577-2-e", "clock_period": 5.0, "reuse": 1, "top": "tiny"}
    assert (manifest["weights"], manifest["nonzero_weights"]) == (6, 5)
    # the zero weight is in no ROM
    weights = (out / "firmware" / "weights" / "fc.h").read_text()
    assert re.search(r"static const int8_t fc_w\[5\] = \{\s*(-?[1-9]\d*,?\s*){5}\};", weights), weights
    lines = (out / "tb_data" / "tb_input_features.dat").read_text().splitlines()
    assert len(lines) == 1000 and all(len(line.split()) == 3 for line in lines)
    readme = (out / "README.md").read_text()
    assert "Vitis HLS was not run" in readme and "vitis_hls -f build_prj.tcl" in readme


def test_build_script_takes_part_and_clock(tiny, tmp_path) -> None:
    out = tiny.write(tmp_path / "prj", "xilinx", vectors=5, part="xc7z020clg400-1", clock_period=3.3, io="stream")
    tcl = (out / "build_prj.tcl").read_text()
    assert "set part         xc7z020clg400-1" in tcl and "set clock_period 3.3" in tcl
    for step in ("csim_design", "csynth_design", "cosim_design", "export_design", "set_top tiny",
                 "add_files -tb tb_data"):
        assert step in tcl
    manifest = json.loads((out / "fpgac.json").read_text())
    assert (manifest["part"], manifest["clock_period"], manifest["io"]) == ("xc7z020clg400-1", 3.3, "stream")


@pytest.mark.parametrize("options, message", [
    (dict(io="serial"), r"^io must be one of parallel, stream, not 'serial'$"),
    (dict(reuse=0), r"^reuse must be an integer of at least 1, not 0$"),
    (dict(clock_period=-1), r"^clock_period must be a positive number of ns, not -1$"),
    (dict(part="xc vu9p"), r"^part must be a Xilinx part name such as 'xcvu13p-flga2577-2-e' or "
                            r"'xc7z020clg400-1', not 'xc vu9p'$"),
    (dict(part="foo"), r"^part must be a Xilinx part name such as 'xcvu13p-flga2577-2-e' or "
                       r"'xc7z020clg400-1', not 'foo'$"),
    (dict(strategy="latency"), r"^unknown xilinx option 'strategy': the options are io, part, clock_period, reuse$"),
])
def test_bad_options_are_refused(tiny, tmp_path, options, message) -> None:
    with pytest.raises(UsageError, match=message):
        tiny.write(tmp_path / "prj", "xilinx", vectors=5, **options)
    assert not (tmp_path / "prj").exists()


def _quantized_graph_with(op: Op, attrs: dict) -> Graph:
    g = Graph("bad")
    t = FixedType(8, 3)
    x = g.add_input("x", TensorType(t, (4,)))
    g.outputs = [g.add_node(op, [x] * (2 if op is Op.DIV else 1), [TensorType(t, (4,))], attrs, name="odd").output]
    return g


@pytest.mark.parametrize("op, attrs, message", [
    (Op.DIV, {}, r"^node 'odd' \(Div\): a division has no fixed-point form \(quantization turns a division by a "
                 r"constant into a multiplication\)$"),
    (Op.ACTIVATION, dict(kind=Act.SIGMOID),
     r"^node 'odd' \(Activation sigmoid\): no exact fixed-point form; quantization turns it into a Lookup$"),
])
def test_unsupported_op_is_refused(tmp_path, op, attrs, message) -> None:
    from fpgac import backends

    graph = _quantized_graph_with(op, attrs)
    vectors = backends.Vectors([np.zeros((1, 4))], [np.zeros((1, 4), dtype=np.int64)],
                               [np.zeros((1, 4), dtype=np.int64)], [np.zeros((1, 4))])
    with pytest.raises(UnsupportedError, match=message):
        backends.write(graph, tmp_path / "prj", "xilinx", vectors)
    assert not (tmp_path / "prj").exists()


def test_float_graph_is_refused(tmp_path) -> None:
    from fpgac import backends

    vectors = backends.Vectors([np.zeros((1, 3))], [np.zeros((1, 3), dtype=np.int64)], [np.zeros((1, 2))],
                               [np.zeros((1, 2))])
    with pytest.raises(UsageError, match=r"^input 'x' has type float32: backends need a quantized graph$"):
        backends.write(tiny_graph(), tmp_path / "prj", "xilinx", vectors)


def test_testbench_reports_mismatches_itself(tiny_project, tmp_path) -> None:
    """What Vitis's csim_design runs: the testbench alone, on tb_data, exits 0 only when bit-exact."""
    build = compile_testbench(tiny_project, "tiny", tmp_path)
    assert build.warnings == []
    ok = subprocess.run([str(build.exe)], cwd=tiny_project, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "fpgac testbench: 1000 vectors, 0 mismatching bits in 0 output words" in ok.stdout
    assert len((tiny_project / "tb_data" / "csim_results.log").read_text().splitlines()) == 1000
    # one golden value off by one LSB (values are exact decimals of the output type)
    bad = tmp_path / "tb_data"
    shutil.copytree(tiny_project / "tb_data", bad)
    lines = (bad / "tb_output_predictions.dat").read_text().splitlines()
    values = lines[7].split()
    lsb = 2.0 ** -_output_type(tiny_project).frac_bits
    values[1] = repr(float(values[1]) + lsb)
    lines[7] = " ".join(values)
    (bad / "tb_output_predictions.dat").write_text("\n".join(lines) + "\n")
    run = subprocess.run([str(build.exe), str(bad), str(tmp_path / "log"), "20"], capture_output=True, text=True)
    assert run.returncode == 1
    assert "MISMATCH vector 7 relu[1]" in run.stdout
    assert "fpgac testbench: 20 vectors" in run.stdout and "in 1 output words" in run.stdout


def _output_type(out: Path) -> FixedType:
    from fpgac.backends.common import read_manifest

    return read_manifest(out)["outputs"][0].type


def test_verify_counts_a_corrupted_golden_bit(tiny_project, tmp_path) -> None:
    out = tmp_path / "prj"
    shutil.copytree(tiny_project, out)
    vectors = load_vectors(out / VECTORS)
    vectors.golden[0][5, 1] ^= 0b100
    save_vectors(out / VECTORS, vectors)
    report = api.verify(out, vectors=10)
    assert (report.vectors, report.mismatched_bits, report.mismatched_vectors, report.first_mismatch) == (10, 1, 1, 5)
    assert not report.ok


def test_verify_sees_a_corrupted_weight(tiny_project, tmp_path) -> None:
    out = tmp_path / "prj"
    shutil.copytree(tiny_project, out)
    header = out / "firmware" / "weights" / "fc.h"
    text = header.read_text()
    match = re.search(r"(fc_w\[5\] = \{\s*)(-?\d+)", text)
    header.write_text(text[:match.start(2)] + str(-int(match[2])) + text[match.end(2):])  # flip one weight's sign
    report = api.verify(out)
    assert report.mismatched_bits > 0 and report.mismatched_vectors > 100


def test_cli_compile_and_verify(tmp_path, capsys) -> None:
    out = tmp_path / "prj"
    assert main(["compile", str(MLP), "--target", "xilinx", "-o", str(out), "--bits", "8", "--input-range=-1,1",
                 "--io", "stream", "--part", "xcku115-flvb2104-2-e", "--clock-period", "4", "-q"]) == 0
    assert "set part         xcku115-flvb2104-2-e" in (out / "build_prj.tcl").read_text()
    capsys.readouterr()
    assert main(["verify", str(out)]) == 0
    stdout = capsys.readouterr().out
    assert "mismatching bits  0 in 0 vectors" in stdout
    assert "vectors           1000 (5 output words each)" in stdout
    assert "PASS: bit-exact with the golden model" in stdout


def test_cpp_spelling() -> None:
    from fpgac.backends.hls.cpp import Namer, fixed, int_literal, rom, rom_type
    from fpgac.ir import Overflow, Rounding

    assert fixed(FixedType(8, 3, True, Rounding.RND, Overflow.SAT)) == "ap_fixed<8, 3, AP_RND, AP_SAT>"
    assert fixed(FixedType(9, -3, False)) == "ap_ufixed<9, -3>"
    sym = FixedType(5, 7, True, Rounding.RND_CONV, Overflow.SAT_SYM)
    assert fixed(sym) == "ap_fixed<5, 7, AP_RND_CONV, AP_SAT_SYM>"
    assert [rom_type(*r) for r in [(-128, 127), (-129, 0), (0, 255), (0, 256), (-1, 1 << 31), (0, (1 << 62))]] == [
        "int8_t", "int16_t", "uint8_t", "uint16_t", "int64_t", "uint64_t"]
    assert (int_literal(5), int_literal(-(1 << 40))) == ("5", "-1099511627776LL")
    assert rom("int8_t", "w", []) == "static const int8_t w[1] = {\n    0};\n"  # C++ has no empty arrays
    names = Namer()
    assert [names.fresh(n) for n in ["fc1/Gemm:0", "fc1_Gemm_0", "int", "2x", "_Bad", "fc1/Gemm:0"]] == [
        "fc1_Gemm_0", "fc1_Gemm_0_2", "int_2", "v2x", "v_Bad", "fc1_Gemm_0_3"]


def test_every_op_with_a_fixed_point_form_has_a_kernel() -> None:
    from fpgac.backends.hls import STREAMED, SUPPORTED

    # Div has no fixed-point form: quantization turns a division by a constant into a Mul
    assert set(SUPPORTED) == {op.value for op in Op} - {"Div"}
    assert {"Conv", "Pool", "GlobalPool", "Quant", "Lookup"} <= set(STREAMED) <= set(SUPPORTED)


def test_cast_dropping_more_bits_than_its_source_has(tmp_path) -> None:
    """fixed<4,2> -> fixed<8,12,RND,SAT> drops 6 bits of a 4-bit value: a plain ap_fixed cast asserts
    there in debug builds (no -DNDEBUG here, as in Vitis C-simulation); fpgac's requantize does not."""
    from fpgac import backends
    from fpgac.ir import Overflow, Rounding

    g = Graph("coarse")
    x = g.add_input("x", TensorType(FixedType(4, 2, True, Rounding.RND, Overflow.SAT), (4,)))
    coarse = FixedType(8, 12, True, Rounding.RND, Overflow.SAT)
    quant = g.add_node(Op.QUANT, [x], [TensorType(coarse, (4,))], name="q")
    g.outputs = [quant.output]
    backends.write(g, tmp_path / "prj", "xilinx", backends.make_vectors(g, n=64))
    report = api.verify(tmp_path / "prj")
    assert report.mismatched_bits == 0 and report.vectors == 64
