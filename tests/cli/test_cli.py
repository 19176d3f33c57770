"""The ``fpgac`` command: the happy paths, and every bad input as one line and exit code 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from cli_helpers import error as _error
from cli_helpers import run as _run
from onnx import TensorProto, helper, numpy_helper

from fpgac import api
from fpgac.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _save(tmp_path: Path, model: onnx.ModelProto, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _dense_model(weight: np.ndarray, x_shape=("N", 4), op: str = "MatMul") -> onnx.ModelProto:
    graph = helper.make_graph(
        [helper.make_node(op, ["x", "w"], ["y"], name="fc")],
        "t",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight.astype(np.float32), "w")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


# -- happy paths ----------------------------------------------------------------------------


def test_help_lists_the_commands(capsys) -> None:
    with pytest.raises(SystemExit, match="^0$") as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "inspect" in out and "run" in out and "ONNX" in out


def test_inspect_table(capsys) -> None:
    code, out, _ = _run(capsys, "inspect", EXAMPLES / "mlp.onnx", "--float")
    assert code == 0
    assert "fc1_Gemm         Dense             [64]           1,088" in out
    assert out.strip().endswith("8 layers, 4,389 parameters")  # 16*64+64 + 64*32+32 + 32*32+32 + 32*5+5


def test_inspect_shows_fixed_point_types(capsys) -> None:
    code, out, err = _run(capsys, "inspect", EXAMPLES / "digits.onnx", "--calibration", EXAMPLES / "digits_test.npz",
                          "--bits", "8")
    assert code == 0, err
    # pixels in [0, 1]: unsigned, 1 integer bit (1.25 x the maximum needs it), 8 bits
    assert "input  x: ufixed<8,1,RND,SAT>[64]" in out
    assert "output probabilities: ufixed<8,0,RND,SAT>[10]" in out
    assert "weight type" in out and "output type" in out
    assert "accum" in out and "weight and activation bits" in out
    assert "no calibration data" not in err


def test_inspect_ir_and_dump(capsys) -> None:
    code, out, _ = _run(capsys, "inspect", EXAMPLES / "cnn2d.onnx", "--dump-ir")
    assert code == 0
    assert "// after frontend" in out and "// after FoldBatchNorm" in out and "ScaleShift" in out
    assert "// after Quantize" in out
    code, out, _ = _run(capsys, "inspect", EXAMPLES / "cnn2d.onnx", "--ir", "--float")
    assert out.startswith("graph cnn2d(%x: float32[1,8,8]) -> (%y: float32[10]) {")
    assert "ScaleShift" not in out  # folded into the convolutions
    code, out, _ = _run(capsys, "inspect", EXAMPLES / "cnn2d.onnx", "--ir", "--input-range=-1,1")
    assert out.startswith("graph cnn2d(%x: fixed<16,2,RND,SAT>[1,8,8]) -> (%y: ufixed<16,0,RND,SAT>[10]) {")
    # the value as its own word, as users type it: a range starting with a minus sign still a value
    code, spaced, _ = _run(capsys, "inspect", EXAMPLES / "cnn2d.onnx", "--ir", "--input-range", "-0.5,2")
    assert code == 0 and spaced.startswith("graph cnn2d(%x: fixed<16,3,RND,SAT>[1,8,8])"), spaced[:120]


def test_run_float_matches_onnxruntime(tmp_path: Path, capsys) -> None:
    out = tmp_path / "y.npy"
    code, _, err = _run(capsys, "run", EXAMPLES / "mlp.onnx", "--input", EXAMPLES / "mlp_input.npy", "-o", out, "--float")
    assert code == 0, err
    x = np.load(EXAMPLES / "mlp_input.npy")
    (want,) = ort.InferenceSession(str(EXAMPLES / "mlp.onnx")).run(None, {"x": x})
    np.testing.assert_allclose(np.load(out), want, rtol=1e-4, atol=1e-6)


def test_run_npz_with_x_and_several_outputs(tmp_path: Path, capsys) -> None:
    np.savez(tmp_path / "in.npz", x=np.ones((2, 4), np.float32), y=np.zeros(3))
    model = _dense_model(np.eye(4))
    model.graph.node.append(helper.make_node("Relu", ["y"], ["z"]))
    model.graph.output.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, None))
    path = _save(tmp_path, model)
    message = _error(capsys, "run", path, "-i", tmp_path / "in.npz", "-o", tmp_path / "o.npy", "--float")
    assert message == "the model has 2 outputs (y, z): name an .npz file for --output"
    assert not (tmp_path / "o.npy").exists()
    code, _, err = _run(capsys, "run", path, "-i", tmp_path / "in.npz", "-o", tmp_path / "o.npz", "--float")
    assert code == 0, err
    with np.load(tmp_path / "o.npz") as result:
        assert sorted(result.files) == ["y", "z"]
        np.testing.assert_array_equal(result["z"], np.ones((2, 4)))


def test_console_script_exit_code() -> None:
    result = subprocess.run([sys.executable, "-m", "fpgac.cli", "inspect", "missing.onnx"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr == "fpgac: error: missing.onnx: no such file\n"


# -- bad inputs: one line, exit 2, nothing written ---------------------------------------


def test_missing_file(capsys) -> None:
    assert _error(capsys, "inspect", "nope.onnx") == "nope.onnx: no such file"


def test_not_onnx(tmp_path: Path, capsys) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("these are not the weights you are looking for\n" * 20)
    assert _error(capsys, "inspect", path) == (
        f"{path}: not a readable ONNX model (the protobuf does not parse: is the file truncated or of another format?)"
    )


def test_empty_file(tmp_path: Path, capsys) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    assert _error(capsys, "inspect", path) == f"{path}: the file is empty, not an ONNX model"


def test_truncated_file(tmp_path: Path, capsys) -> None:
    data = (EXAMPLES / "mlp.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    assert _error(capsys, "inspect", path) == (
        f"{path}: not a readable ONNX model (the protobuf does not parse: is the file truncated or of another format?)"
    )


def test_unsupported_op_names_node_and_lists_supported(tmp_path: Path, capsys) -> None:
    model = _dense_model(np.eye(4))
    model.graph.node[0].CopyFrom(helper.make_node("Erf", ["x"], ["y"], name="gelu_erf"))
    message = _error(capsys, "inspect", _save(tmp_path, model))
    assert message.startswith(f"{tmp_path / 'm.onnx'}: node 'gelu_erf' (Erf): op Erf is not supported on run-time "
                              "tensors; fpgac lowers Abs, Add, ArgMax, AveragePool, BatchNormalization,")


def test_symbolic_non_batch_dimension(tmp_path: Path, capsys) -> None:
    path = _save(tmp_path, _dense_model(np.eye(4), x_shape=("N", "features")))
    assert _error(capsys, "inspect", path) == (
        f"{path}: input 'x' dimension 1 ('features') is symbolic; only the first (batch) dimension may be: "
        "give its size with --seq-len N (a sequence length), or export the model with a fixed size for the others"
    )


@pytest.mark.parametrize("bad,kind", [(np.nan, "NaN"), (np.inf, "Inf")])
def test_non_finite_weights(tmp_path: Path, capsys, bad: float, kind: str) -> None:
    weight = np.eye(4)
    weight[1, 2] = bad
    path = _save(tmp_path, _dense_model(weight))
    assert _error(capsys, "inspect", path) == (
        f"{path}: initializer 'w' (used by node 'fc' (MatMul)) holds {kind} in 1 of 16 values: fix or retrain the model"
    )


def test_missing_external_data(tmp_path: Path, capsys) -> None:
    path = tmp_path / "ext.onnx"
    onnx.save(_dense_model(np.eye(4)), path, save_as_external_data=True, location="ext.onnx.data", size_threshold=0)
    (tmp_path / "ext.onnx.data").unlink()
    assert _error(capsys, "inspect", path) == (
        f"{path}: tensor 'w' keeps its data in 'ext.onnx.data', which is missing (expected at "
        f"{tmp_path / 'ext.onnx.data'}): copy it beside the model"
    )


def test_huge_shape(tmp_path: Path, capsys) -> None:
    path = _save(tmp_path, _dense_model(np.eye(4), x_shape=("N", 2048, 1024, 4)))
    assert _error(capsys, "inspect", path) == (
        f"{path}: input 'x' of 8388608 elements per sample [2048, 1024, 4] exceeds the 1048576 fpgac can place in hardware"
    )


def test_wrong_input_shape(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "x.npy", np.zeros((3, 15), np.float32))
    out = tmp_path / "y.npy"
    message = _error(capsys, "run", EXAMPLES / "mlp.onnx", "--input", tmp_path / "x.npy", "-o", out, "--float")
    assert message == (f"{tmp_path / 'x.npy'}: input 'x' has shape (3, 15), expected (N, 16): a batch of N "
                       "samples of the model's per-sample shape [16]")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_missing_input_file(tmp_path: Path, capsys) -> None:
    message = _error(capsys, "run", EXAMPLES / "mlp.onnx", "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--float")
    assert message == f"{tmp_path / 'x.npy'}: no such input file"


def test_npz_without_a_usable_array(tmp_path: Path, capsys) -> None:
    np.savez(tmp_path / "in.npz", a=np.zeros((2, 16)), b=np.zeros((2, 16)))
    message = _error(capsys, "run", EXAMPLES / "mlp.onnx", "-i", tmp_path / "in.npz", "-o", tmp_path / "y.npy", "--float")
    assert message == f"{tmp_path / 'in.npz'}: holds arrays a, b; name the one to use 'x'"


def test_bad_flag(capsys) -> None:
    assert _error(capsys, "inspect", EXAMPLES / "mlp.onnx", "--frobnicate") == (
        "unrecognized arguments: --frobnicate (see 'fpgac --help')"
    )


def test_unknown_command(capsys) -> None:
    message = _error(capsys, "synthesize", "m.onnx")
    assert message.startswith("argument COMMAND: invalid choice: 'synthesize'")


def test_run_golden_is_the_compiled_models_prediction(tmp_path: Path, capsys) -> None:
    """Without --float, run writes the golden model's values; --mantissas its integers."""
    x = np.load(EXAMPLES / "mlp_input.npy")
    common = ("-i", EXAMPLES / "mlp_input.npy", "--calibration", EXAMPLES / "mlp_input.npy", "--bits", "8")
    code, _, err = _run(capsys, "run", EXAMPLES / "mlp.onnx", "-o", tmp_path / "y.npy", *common)
    assert code == 0, err
    code, _, err = _run(capsys, "run", EXAMPLES / "mlp.onnx", "-o", tmp_path / "m.npy", "--mantissas", *common)
    assert code == 0, err
    compiled = api.compile(EXAMPLES / "mlp.onnx", calibration=x, bits=8)
    values, mantissas = np.load(tmp_path / "y.npy"), np.load(tmp_path / "m.npy")
    np.testing.assert_array_equal(values, compiled.predict(x))
    assert mantissas.dtype == np.int64
    np.testing.assert_array_equal(mantissas, values * 2**8)  # ufixed<8,0>: 8 fractional bits
    assert not np.array_equal(values, compiled.predict(x, float=True))  # 8 bits is not float


def test_bad_quantization_options(tmp_path: Path, capsys) -> None:
    run = ("run", EXAMPLES / "mlp.onnx", "-i", EXAMPLES / "mlp_input.npy", "-o", tmp_path / "y.npy")
    assert "is not LO,HI" in _error(capsys, *run, "--input-range", "1")
    assert _error(capsys, *run, "--input-range=1,-1") == "input range 1.0,-1.0 must be two finite numbers LO,HI with LO < HI"
    assert _error(capsys, *run, "--bits", "1") == "bit widths must be integers from 2 to 32, not 1"
    assert _error(capsys, *run, "--precision", "float32") == (
        "--precision: 'float32' is not a fixed-point type (write fixed<W,I> or ufixed<W,I>)")
    assert _error(capsys, *run, "--precision", "nope.json").startswith("--precision nope.json: no such file")
    assert _error(capsys, *run, "--precision", "fixed<7,3").startswith("cannot parse precision 'fixed<7,3'")
    config = tmp_path / "c.json"
    config.write_text('{"LayerName": {"fc9": {"Precision": "fixed<8,3>"}}}')
    assert _error(capsys, *run, "--precision", config).startswith("precision config names unknown layer 'fc9'; layers are:")
    config.write_text('{"LayerName": {"fc1_Gemm": {"Precision": {"accum": "fixed<8,3>"}}}}')
    assert _error(capsys, *run, "--precision", config).startswith("layer 'fc1_Gemm': accum type fixed<8,3> cannot hold")
    config.write_text("{not json")
    assert _error(capsys, *run, "--precision", config).startswith(f"{config}: not a readable JSON precision config")
    assert _error(capsys, *run, "--accuracy-budget", "2") == "--accuracy-budget must be at least 0 and below 1, not 2.0"
    assert not (tmp_path / "y.npy").exists()


def test_unknown_output_name(capsys) -> None:
    assert _error(capsys, "inspect", EXAMPLES / "mlp.onnx", "--outputs", "logits") == (
        f"{EXAMPLES / 'mlp.onnx'}: no output named 'logits'; the model's outputs are y"
    )


def test_output_must_be_npy_or_npz(tmp_path: Path, capsys) -> None:
    message = _error(capsys, "run", EXAMPLES / "mlp.onnx", "-i", EXAMPLES / "mlp_input.npy", "-o", tmp_path / "y.csv", "--float")
    assert message == f"--output {tmp_path / 'y.csv'}: name a .npy or .npz file"
