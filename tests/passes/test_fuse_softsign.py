"""``x / (1 + |x|)``, as PyTorch exports Softsign, becomes one Softsign; anything else stays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from fpgac import api
from fpgac.errors import UnsupportedError
from fpgac.ir import Act, Op


def softsign_model(one: float = 1.0, extra_output: bool = False, swap: bool = False) -> onnx.ModelProto:
    add_inputs = ["one", "a"] if swap else ["a", "one"]
    nodes = [helper.make_node("Abs", ["x"], ["a"], name="abs"),
             helper.make_node("Add", add_inputs, ["d"], name="add"),
             helper.make_node("Div", ["x", "d"], ["y"], name="div")]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 6])]
    if extra_output:
        outputs.append(helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 6]))
    graph = helper.make_graph(nodes, "softsign", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 6])],
                              outputs, [numpy_helper.from_array(np.array(one, dtype=np.float32), "one")])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def load(tmp_path: Path, m: onnx.ModelProto) -> tuple[Path, object]:
    path = tmp_path / "m.onnx"
    onnx.save(m, path)
    return path, api.load(path)


@pytest.mark.parametrize("swap", [False, True])
def test_abs_add_one_div_is_softsign(tmp_path: Path, swap: bool) -> None:
    path, graph = load(tmp_path, softsign_model(swap=swap))
    (node,) = graph.nodes
    assert node.op is Op.ACTIVATION and node.attrs["kind"] is Act.SOFTSIGN
    x = np.random.default_rng(3).uniform(-20, 20, size=(100, 6)).astype(np.float32)
    (want,) = ort.InferenceSession(str(path)).run(None, {"x": x})
    np.testing.assert_allclose(api.run(graph, [x])[0], want, rtol=1e-6, atol=1e-7)
    compiled = api.compile(path, bits=16, input_range=(-20.0, 20.0))  # a table in fixed point
    assert [n.op for n in compiled.graph.nodes][0] is Op.LOOKUP
    assert np.abs(compiled.predict(x) - want).max() < 4e-3  # the table's error at 16 bits


@pytest.mark.parametrize("model", [softsign_model(one=2.0), softsign_model(extra_output=True)],
                         ids=["not one", "abs also an output"])
def test_other_divisions_stay(tmp_path: Path, model: onnx.ModelProto) -> None:
    path, graph = load(tmp_path, model)
    assert [n.op for n in graph.nodes] == [Op.ACTIVATION, Op.ADD, Op.DIV]
    with pytest.raises(UnsupportedError, match=r"^node 'div' \(Div\): dividing by a run-time tensor has no fixed-point "
                                               "form; only division by a constant is supported$"):
        api.compile(path, bits=16)
