"""The amaranth target on graphs that are not a chain: a residual Add, a Concat of two branches
(along the last axis, so its lanes interleave), and a channel Concat in a small CNN. Each is
bit-exact on Verilator against the golden model (full rate and back-pressure), with the latency
the design declares; the Combine/Join stages equal the golden model before any hardware is built.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from fpgac import api
from fpgac.backends.amaranth.lower import Combine, Join, execute, lower

RNG = np.random.default_rng(17)


def _model(path: Path, nodes, x_shape, y_shape, weights: dict[str, np.ndarray]) -> Path:
    graph = helper.make_graph(
        nodes, "branches",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x_shape])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", *y_shape])],
        [numpy_helper.from_array(w if w.dtype == np.int64 else w.astype(np.float32), name) for name, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _w(*shape: int) -> np.ndarray:
    return RNG.normal(0, 0.5, size=shape)


def residual(path: Path) -> Path:
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h1"], transB=1),
             helper.make_node("Relu", ["h1"], ["r1"]),
             helper.make_node("Gemm", ["r1", "w2", "b2"], ["h2"], transB=1),
             helper.make_node("Add", ["h2", "x"], ["s"]),  # the skip connection
             helper.make_node("Relu", ["s"], ["r2"]),
             helper.make_node("Gemm", ["r2", "w3", "b3"], ["y"], transB=1)]
    return _model(path, nodes, [8], [4], {"w1": _w(8, 8), "b1": _w(8), "w2": _w(8, 8), "b2": _w(8),
                                          "w3": _w(4, 8), "b3": _w(4)})


def concat_last_axis(path: Path) -> Path:
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["a"], transB=1),
             helper.make_node("Relu", ["a"], ["ra"]),
             helper.make_node("Reshape", ["ra", "s23"], ["a2"]),
             helper.make_node("Gemm", ["x", "w2", "b2"], ["b"], transB=1),
             helper.make_node("Reshape", ["b", "s23"], ["bb"]),
             helper.make_node("Concat", ["a2", "bb"], ["c"], axis=2),  # [N, 2, 6]: lanes interleave
             helper.make_node("Reshape", ["c", "s12"], ["y"])]
    weights = {"w1": _w(6, 8), "b1": _w(6), "w2": _w(6, 8), "b2": _w(6),
               "s23": np.array([-1, 2, 3], dtype=np.int64), "s12": np.array([-1, 12], dtype=np.int64)}
    return _model(path, nodes, [8], [12], weights)


def concat_channels(path: Path) -> Path:
    nodes = [helper.make_node("Conv", ["x", "wc", "bc"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["rc"]),
             helper.make_node("Concat", ["x", "rc"], ["cat"], axis=1),
             helper.make_node("GlobalAveragePool", ["cat"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("Gemm", ["f", "wd", "bd"], ["y"], transB=1)]
    return _model(path, nodes, [2, 5, 5], [3], {"wc": _w(3, 2, 3, 3), "bc": _w(3), "wd": _w(3, 5), "bd": _w(3)})


@pytest.mark.requires("libpython", "verilator")
@pytest.mark.parametrize("make, kind", [(residual, Combine), (concat_last_axis, Join), (concat_channels, Join)],
                         ids=["residual add", "concat last axis", "concat channels"])
def test_branches_bit_exact_on_verilator(tmp_path, make, kind) -> None:
    compiled = api.compile(make(tmp_path / "m.onnx"), bits=8, input_range=(-1.0, 1.0))
    stages = lower(compiled.graph)
    assert any(isinstance(s, kind) for s in stages) and any(s.sources for s in stages)
    vectors = compiled.vectors(300)
    got = execute(stages, vectors.input_mantissas[0].reshape(300, -1))
    np.testing.assert_array_equal(got, vectors.golden[0].reshape(300, -1))
    out = compiled.write(tmp_path / "design", "amaranth", vectors=300)
    report = api.verify(out)
    assert report.vectors == 300 and report.mismatched_bits == 0, report.lines()
    assert report.extra["latency_cycles"] == report.extra["declared_latency_cycles"]
