"""The amaranth target on models with several inputs and outputs: one stream per graph input
and output, named after the ONNX values, each moving on its own handshake. Each model is
bit-exact on Verilator against the golden model on every output (full rate, and under random
back-pressure applied to every stream on its own); the stages equal the golden model first.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from conformance_models import MODELS, data_sets
from test_conformance_backends import SEVERAL_PORTS

from fpgac import api
from fpgac.backends.amaranth.lower import execute, lower

RNG = np.random.default_rng(23)


def _model(path: Path, nodes, inputs: dict[str, list[int]], outputs: dict[str, list[int]],
           weights: dict[str, np.ndarray]) -> Path:
    graph = helper.make_graph(
        nodes, "ports",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *shape]) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.INT64 if name == "label" else TensorProto.FLOAT, ["N", *shape])
         for name, shape in outputs.items()],
        [numpy_helper.from_array(w.astype(np.float32), name) for name, w in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _w(*shape: int) -> np.ndarray:
    return RNG.normal(0, 0.5, size=shape)


def two_in_two_out(path: Path) -> Path:
    """``hidden.out`` is read by a later layer and is a graph output too; ``b`` joins in the middle."""
    nodes = [helper.make_node("Gemm", ["a", "w1", "b1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["hidden.out"]),
             helper.make_node("Gemm", ["side", "w2", "b2"], ["g"], transB=1),
             helper.make_node("Add", ["hidden.out", "g"], ["s"]),
             helper.make_node("Gemm", ["s", "w3", "b3"], ["y"], transB=1)]
    return _model(path, nodes, {"a": [6], "side": [3]}, {"hidden.out": [5], "y": [3]},
                  {"w1": _w(5, 6), "b1": _w(5), "w2": _w(5, 3), "b2": _w(5), "w3": _w(3, 5), "b3": _w(3)})


def label_and_probabilities(path: Path) -> Path:
    """A classifier's two outputs, as scikit-learn's exporters give them: the label and the probabilities."""
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
             helper.make_node("Relu", ["h"], ["r"]),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["logits"], transB=1),
             helper.make_node("ArgMax", ["logits"], ["label"], axis=1, keepdims=0),
             helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1)]
    return _model(path, nodes, {"x": [8]}, {"label": [], "probabilities": [4]},
                  {"w1": _w(6, 8), "b1": _w(6), "w2": _w(4, 6), "b2": _w(4)})


@pytest.mark.requires("libpython", "verilator")
@pytest.mark.parametrize("make", [two_in_two_out, label_and_probabilities], ids=["two in, two out", "label and probabilities"])
def test_several_ports_bit_exact_on_verilator(tmp_path, make) -> None:
    compiled = api.compile(make(tmp_path / "m.onnx"), bits=8, input_range=(-1.0, 1.0))
    graph = compiled.graph
    stages = lower(graph)
    vectors = compiled.vectors(200)
    got = execute(stages, [x.reshape(200, -1) for x in vectors.input_mantissas])
    assert len(got) == len(graph.outputs) > 1
    for mine, golden in zip(got, vectors.golden):
        np.testing.assert_array_equal(mine, golden.reshape(200, -1))

    out = compiled.write(tmp_path / "design", "amaranth", vectors=200)
    verilog = (out / "ports.v").read_text()
    for value in [*graph.inputs, *graph.outputs]:  # one stream per ONNX value, named after it
        kind = "i" if value in graph.inputs else "o"
        port = f"{kind}_{re.sub(r'[^0-9A-Za-z]+', '_', value.name)}"
        for signal in ("payload", "valid", "ready"):
            assert re.search(rf"\b(input|output)\b[^;]*\b{port}__{signal}\b", verilog), (port, signal)
    config = json.loads((out / "tb" / "config.json").read_text())
    assert [p["name"] for p in config["outputs"]] == [v.name for v in graph.outputs]
    report = api.verify(out)
    assert report.vectors == 200 and report.mismatched_bits == 0, report.lines()
    assert report.extra["latency_cycles"] == report.extra["declared_latency_cycles"]


@pytest.mark.requires("libpython", "verilator")
def test_several_ports_with_axi_names(tmp_path) -> None:
    compiled = api.compile(two_in_two_out(tmp_path / "m.onnx"), bits=6, input_range=(-1.0, 1.0))
    out = compiled.write(tmp_path / "design", "amaranth", vectors=60, axi=True)
    verilog = (out / "ports.v").read_text()
    for name in ("s_axis_a_tdata", "s_axis_side_tvalid", "m_axis_hidden_out_tready", "m_axis_y_tdata"):
        assert re.search(rf"\b{name}\b", verilog), name
    report = api.verify(out)
    assert report.vectors == 60 and report.mismatched_bits == 0, report.lines()


@pytest.mark.requires("libpython", "verilator")
@pytest.mark.parametrize("name", sorted(SEVERAL_PORTS))
def test_conformance_models_with_several_ports_on_verilator(tmp_path, name) -> None:
    """The PyTorch-exported conformance models with several inputs or outputs (max, min, concat of
    two inputs; three inputs and three outputs), bit-exact on every output."""
    (model,) = [m for m in MODELS if m.name == name]
    inputs = [x for x, _ in data_sets(model)]
    largest = max(max(float(np.abs(a).max()) for x in inputs for a in x), 1.0)
    compiled = api.compile(model / "model.onnx", bits=8, input_range=(-largest, largest))
    out = compiled.write(tmp_path / "design", "amaranth", vectors=100)
    report = api.verify(out)
    assert len(compiled.graph.inputs) + len(compiled.graph.outputs) > 2
    assert report.vectors == 100 and report.mismatched_bits == 0, report.lines()
