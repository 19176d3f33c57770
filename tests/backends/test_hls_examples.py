"""The xilinx target on every example model: g++ C-simulation bit-exact with the golden model.

Each project is compiled once (one test per model and io mode, so that pytest-xdist never builds
the same project on two workers), on the 1,000 stored vectors, which start with the extremes of
the input types. The same compile must give no warning located in the project's own files.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from fpgac import api
from fpgac.ir import Op

pytestmark = pytest.mark.requires("g++")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODELS = ["mlp", "cnn2d", "cnn1d", "lstm", "gru", "digits", "qmlp"]
VECTORS = 1000


@pytest.fixture(scope="module")
def compiled():
    cache: dict[tuple[str, int, str | None], api.CompiledModel] = {}

    def get(name: str, bits: int = 8, prune: str | None = None) -> api.CompiledModel:
        key = (name, bits, prune)
        if key not in cache:
            cache[key] = api.compile(EXAMPLES / f"{name}.onnx", bits=bits, input_range=(-1, 1), prune=prune)
        return cache[key]

    return get


def _verify(compiled: api.CompiledModel, out: Path, **options) -> api.Report:
    compiled.write(out, "xilinx", vectors=VECTORS, **options)
    report = api.verify(out)
    assert report.vectors == VECTORS
    assert report.mismatched_bits == 0, "\n".join(report.lines())
    assert report.extra["compiler_warnings"] == 0, "g++ warned about the project's own code (see the log)"
    return report


@pytest.mark.parametrize("io", ["parallel", "stream"])
@pytest.mark.parametrize("name", MODELS)
def test_example_bit_exact_8_bits(compiled, tmp_path, name, io) -> None:
    _verify(compiled(name), tmp_path / name, io=io)


@pytest.mark.parametrize("io", ["parallel", "stream"])
def test_mlp_bit_exact_16_bits(compiled, tmp_path, io) -> None:
    report = _verify(compiled("mlp", 16), tmp_path / "mlp16", io=io)
    assert report.agreement is not None and report.agreement > 0.9


def _roms(header: str) -> dict[str, np.ndarray]:
    """Every ``static const T name[n] = {...};`` of a weights header, as arrays."""
    arrays = {}
    for name, n, body in re.findall(r"static const \w+ (\w+)\[(\d+)\] = \{([^}]*)\};", header):
        values = np.array([int(v.removesuffix("LL")) for v in body.replace("\n", " ").split(",")], dtype=np.int64)
        assert len(values) == int(n)
        arrays[name] = values
    return arrays


@pytest.mark.parametrize("io, reuse", [("parallel", 1), ("stream", 4)])
def test_pruned_mlp_bit_exact_without_its_zero_weights(compiled, tmp_path, io, reuse) -> None:
    model = compiled("mlp", 8, "magnitude:0.8")
    out = tmp_path / "pruned"
    _verify(model, out, io=io, reuse=reuse)
    dense = [n for n in model.graph.nodes if n.op is Op.DENSE]
    total = nonzero = 0
    for node in dense:
        w = node.inputs[1].data
        assert np.count_nonzero(w) <= 0.25 * w.size  # 80% pruned (a few more may round to zero)
        roms = _roms((out / "firmware" / "weights" / f"{node.name}.h").read_text())
        values, rows, cols = roms[f"{node.name}_w"], roms[f"{node.name}_wi"], roms[f"{node.name}_wo"]
        # exactly the non-zero weights, each once, at its place: no zero is stored or multiplied
        assert len(values) == np.count_nonzero(w) and np.all(values != 0)
        rebuilt = np.zeros_like(w)
        rebuilt[rows, cols] = values
        np.testing.assert_array_equal(rebuilt, w)
        config = (out / "firmware" / "parameters.h").read_text()
        assert f"static const unsigned n_nonzero = {len(values)};" in config
        total, nonzero = total + w.size, nonzero + len(values)
    manifest = (out / "fpgac.json").read_text()
    assert f'"weights": {total}' in manifest and f'"nonzero_weights": {nonzero}' in manifest
