"""``--prune`` through the command line: inspect shows the savings, run uses the pruned network,
and a bad spec is one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import error as _error
from cli_helpers import run as _run

from fpgac import api
from fpgac.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DIGITS = EXAMPLES / "digits.onnx"


def test_inspect_shows_parameters_non_zeros_and_multiplies_before_and_after(capsys) -> None:
    code, out, err = _run(capsys, "inspect", DIGITS, "--float", "--prune", "magnitude:0.8")
    assert code == 0, err
    section = out[out.index("pruning magnitude:0.8: before -> after"):].splitlines()
    # MatMul: 64x32 weights (50 already exactly zero in the trained model) + 32 biases; 80% of the
    # 2,048 weights go, 410 stay; each is one multiply (one output position)
    assert section[1:] == [
        "layer    op             params     non-zeros    multiplies",
        "-------  -----  --------------  ------------  ------------",
        "MatMul   Dense  2,080 -> 2,080  2,030 -> 442  1,998 -> 410",
        "MatMul1  Dense      330 -> 330     330 -> 74     320 -> 64",
        "-------  -----  --------------  ------------  ------------",
        "total           2,410 -> 2,410  2,360 -> 516  2,318 -> 474",
        "non-zero parameters 4.6x fewer, multiplies 4.9x fewer",
    ]


def test_inspect_structured_pruning_shrinks_the_layers(capsys) -> None:
    code, out, err = _run(capsys, "inspect", EXAMPLES / "cnn2d.onnx", "--prune", "structured:0.5",
                          "--input-range=-1,1")
    assert code == 0, err
    assert "conv1_Conv  Conv     40 -> 20    40 -> 20  2,304 -> 1,152" in out  # 4 -> 2 channels of 8x8
    assert "conv2_Conv  Conv    296 -> 76   296 -> 76  4,608 -> 1,152" in out  # 8x4 -> 4x2 filters
    assert "fc_Gemm     Dense  330 -> 170  330 -> 170      320 -> 160" in out  # 32 -> 16 inputs
    assert "quantization (role: tensor type x elements):" in out


def test_without_pruning_inspect_has_no_pruning_section(capsys) -> None:
    code, out, _ = _run(capsys, "inspect", DIGITS, "--float")
    assert code == 0 and "pruning" not in out


def test_repeated_and_comma_separated_specs_are_the_same(capsys, tmp_path: Path) -> None:
    x = np.load(EXAMPLES / "digits_test.npz")["x"][:20]
    np.save(tmp_path / "x.npy", x)
    outputs = []
    for flags in (["--prune", "magnitude:0.5,clip:std:3"], ["--prune", "magnitude:0.5", "--prune", "clip:std:3"]):
        out = tmp_path / f"y{len(outputs)}.npy"
        code, _, err = _run(capsys, "run", DIGITS, "-i", tmp_path / "x.npy", "-o", out, "--calibration",
                            tmp_path / "x.npy", "--bits", "8", *flags)
        assert code == 0, err
        outputs.append(np.load(out))
    np.testing.assert_array_equal(outputs[0], outputs[1])
    want = api.compile(DIGITS, calibration=x, bits=8, prune="magnitude:0.5,clip:std:3").predict(x)
    np.testing.assert_array_equal(outputs[0], want)
    unpruned = api.compile(DIGITS, calibration=x, bits=8).predict(x)
    assert not np.array_equal(outputs[0], unpruned)


def test_per_layer_prune_in_the_precision_config(capsys, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"Model": {"Prune": "magnitude:0.5"},
                                  "LayerName": {"MatMul1": {"Prune": "none", "Precision": "fixed<8,2>"}}}))
    code, out, err = _run(capsys, "inspect", DIGITS, "--calibration", EXAMPLES / "digits_test.npz",
                          "--precision", config)
    assert code == 0, err
    assert "pruning (from --precision config): before -> after" in out
    assert "MatMul   Dense  2,080 -> 2,080  2,030 -> 1,056  1,998 -> 1,024" in out
    assert "MatMul1  Dense      330 -> 330      330 -> 330      320 -> 320" in out


@pytest.mark.parametrize("spec, message", [
    ("magnitude:2", "prune spec 'magnitude:2': the fraction must be in [0, 1) (0.8 or 80%), not 2"),
    ("sparse:0.5", "prune spec 'sparse:0.5': unknown kind 'sparse' (expected magnitude, threshold, structured, "
                   "dead, clip, binary, ternary, refit, distill or none)"),
    ("ternary:channel:x", "prune spec 'ternary:channel:x': 'x' is not a number (expected D, the zero threshold as "
                          "a multiple of mean |w|)"),
])
@pytest.mark.parametrize("command", ["inspect", "run"])
def test_bad_spec_is_one_line_and_exit_2(capsys, tmp_path: Path, command: str, spec: str, message: str) -> None:
    extra = ["-i", EXAMPLES / "mlp_input.npy", "-o", tmp_path / "y.npy"] if command == "run" else []
    assert _error(capsys, command, EXAMPLES / "mlp.onnx", "--prune", spec, *extra) == message
    assert not (tmp_path / "y.npy").exists()


def test_config_prune_on_an_unknown_layer(capsys, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"LayerName": {"Softmax": {"Prune": "magnitude:0.5"}}}))
    assert _error(capsys, "inspect", DIGITS, "--float", "--precision", config) == (
        f"{config}: LayerName 'Softmax': Prune applies to Dense and Conv layers; this model's are: MatMul, MatMul1"
    )


def test_help_documents_the_spec(capsys) -> None:
    with pytest.raises(SystemExit, match="^0$"):
        main(["inspect", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--prune SPEC" in out and "magnitude:global:F" in out and "structured[:l1|:l2]:F" in out
