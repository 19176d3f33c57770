"""SimplifyReshapes: merge Reshape chains, drop identity Reshapes and Transposes.

Graph outputs keep their ``Value`` (and so their name and batch axis): when the last node before
an output is removed, the node before it writes the output instead.
"""

from __future__ import annotations

import numpy as np

from fpgac.ir import Act, FloatType, Graph, Op, TensorType, verify
from fpgac.passes import SimplifyReshapes

F = FloatType()


def f32(*shape: int) -> TensorType:
    return TensorType(F, shape)


def dense6(graph: Graph):
    """x[4] -> Dense fc -> [6]."""
    x = graph.add_input("x", f32(4))
    return graph.add_node(Op.DENSE, [x, graph.constant("w", np.ones((4, 6)))], [f32(6)], name="fc")


def reshape(graph: Graph, value, shape, name):
    return graph.add_node(Op.RESHAPE, [value], [f32(*shape)], {"shape": tuple(shape)}, name=name)


def relu(graph: Graph, value, name="relu"):
    return graph.add_node(Op.ACTIVATION, [value], [value.type], {"kind": Act.RELU}, name=name)


def names(graph: Graph) -> list[str]:
    return [n.name for n in graph.nodes]


def test_reshape_chain_is_merged():
    graph = Graph("g")
    fc = dense6(graph)
    r1 = reshape(graph, fc.output, (2, 3), "r1")
    r2 = reshape(graph, r1.output, (3, 2), "r2")
    r3 = reshape(graph, r2.output, (1, 6), "r3")
    act = relu(graph, r3.output)
    graph.outputs = [act.output]
    verify(graph)
    assert SimplifyReshapes().run(graph) is True
    verify(graph)
    assert names(graph) == ["fc", "r3", "relu"]
    assert graph.node("r3").inputs == [fc.output] and graph.node("r3").attrs == {"shape": (1, 6)}
    assert SimplifyReshapes().run(graph) is False


def test_merge_keeps_the_inner_reshape_when_it_is_read_elsewhere():
    graph = Graph("g")
    fc = dense6(graph)
    r1 = reshape(graph, fc.output, (2, 3), "r1")
    r2 = reshape(graph, r1.output, (3, 2), "r2")
    other = relu(graph, r1.output, "other")
    graph.outputs = [r2.output, other.output]
    assert SimplifyReshapes().run(graph) is True
    verify(graph)
    assert names(graph) == ["fc", "r1", "r2", "other"]
    assert r2.inputs == [fc.output] and other.inputs == [r1.output]


def test_cancelling_reshapes_vanish():
    graph = Graph("g")
    fc = dense6(graph)
    r1 = reshape(graph, fc.output, (2, 3), "r1")
    r2 = reshape(graph, r1.output, (6,), "r2")
    act = relu(graph, r2.output)
    graph.outputs = [act.output]
    assert SimplifyReshapes().run(graph) is True
    verify(graph)
    assert names(graph) == ["fc", "relu"]
    assert act.inputs == [fc.output]


def test_identity_reshape_removed():
    graph = Graph("g")
    fc = dense6(graph)
    r = reshape(graph, fc.output, (6,), "r")
    act = relu(graph, r.output)
    graph.outputs = [act.output]
    assert SimplifyReshapes().run(graph) is True
    verify(graph)
    assert names(graph) == ["fc", "relu"]
    assert act.inputs == [fc.output]


def test_identity_reshape_of_a_graph_input_removed():
    graph = Graph("g")
    x = graph.add_input("x", f32(2, 3))
    r = reshape(graph, x, (2, 3), "r")
    act = relu(graph, r.output)
    graph.outputs = [act.output]
    assert SimplifyReshapes().run(graph) is True
    verify(graph)
    assert names(graph) == ["relu"] and act.inputs == [x]


def conv_graph():
    graph = Graph("g")
    x = graph.add_input("x", f32(2, 5, 5))
    attrs = {"strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1), "groups": 1}
    conv = graph.add_node(Op.CONV, [x, graph.constant("w", np.ones((3, 2, 3, 3)))], [f32(3, 5, 5)], attrs, name="conv")
    return graph, conv


def test_identity_transpose_removed():
    graph, conv = conv_graph()
    t = graph.add_node(Op.TRANSPOSE, [conv.output], [f32(3, 5, 5)], {"perm": (0, 1, 2)}, name="t")
    act = relu(graph, t.output)
    graph.outputs = [act.output]
    assert SimplifyReshapes().run(graph) is True
    verify(graph)
    assert names(graph) == ["conv", "relu"] and act.inputs == [conv.output]


def test_real_transpose_and_reshape_kept():
    graph, conv = conv_graph()
    # swapping two equal-sized axes keeps the shape but is not the identity
    t = graph.add_node(Op.TRANSPOSE, [conv.output], [f32(3, 5, 5)], {"perm": (0, 2, 1)}, name="t")
    r = reshape(graph, t.output, (75,), "r")
    graph.outputs = [r.output]
    before = str(graph)
    assert SimplifyReshapes().run(graph) is False
    assert str(graph) == before


def test_graph_output_reshape_keeps_the_output_name():
    graph = Graph("g")
    fc = dense6(graph)
    r = reshape(graph, fc.output, (6,), "y")
    out = r.output
    graph.outputs = [out]
    graph.output_batch_axes = {"y": 0}
    assert SimplifyReshapes().run(graph) is True
    verify(graph)
    assert names(graph) == ["fc"]
    assert graph.outputs == [out] and out.name == "y" and out.producer is fc and fc.outputs == [out]
    assert graph.output_batch_axes == {"y": 0}


def test_graph_output_transpose_of_a_multi_output_node():
    graph = Graph("g")
    x = graph.add_input("x", f32(5, 3))
    lstm = graph.add_node(
        Op.LSTM, [x, graph.constant("W", np.ones((8, 3))), graph.constant("R", np.ones((8, 2)))],
        [f32(5, 2), f32(2), f32(2)], {"hidden_size": 2}, name="lstm",
    )
    t = graph.add_node(Op.TRANSPOSE, [lstm.outputs[1]], [f32(2)], {"perm": (0,)}, name="h")
    graph.outputs = [lstm.outputs[0], t.output]
    assert SimplifyReshapes().run(graph) is True
    verify(graph)
    assert names(graph) == ["lstm"]
    assert lstm.outputs[1] is t.output and graph.outputs[1].name == "h"


def test_graph_output_reshape_kept_when_it_cannot_be_removed():
    # of a graph input: nothing can write the output instead
    graph = Graph("g")
    x = graph.add_input("x", f32(6))
    graph.outputs = [reshape(graph, x, (6,), "y").output]
    before = str(graph)
    assert SimplifyReshapes().run(graph) is False
    assert str(graph) == before
    # of a value that is itself a graph output
    graph = Graph("g")
    fc = dense6(graph)
    graph.outputs = [fc.output, reshape(graph, fc.output, (6,), "y").output]
    before = str(graph)
    assert SimplifyReshapes().run(graph) is False
    assert str(graph) == before
    # of a value somebody else reads too
    graph = Graph("g")
    fc = dense6(graph)
    graph.outputs = [reshape(graph, fc.output, (6,), "y").output, relu(graph, fc.output).output]
    before = str(graph)
    assert SimplifyReshapes().run(graph) is False
    assert str(graph) == before
    verify(graph)


def test_dead_nodes_are_removed():
    graph = Graph("g")
    fc = dense6(graph)
    relu(graph, fc.output, "dead")
    graph.outputs = [fc.output]
    assert SimplifyReshapes().run(graph) is True
    assert names(graph) == ["fc"]


def test_merge_into_an_identity_at_a_graph_output_reports_the_change():
    graph = Graph("g")
    fc = dense6(graph)
    r1 = reshape(graph, fc.output, (2, 3), "r1")
    r2 = reshape(graph, r1.output, (6,), "r2")
    graph.outputs = [r1.output, r2.output]
    before = str(graph)
    changed = SimplifyReshapes().run(graph)
    verify(graph)
    assert str(graph) != before  # r2 now reads fc directly
    assert changed is True


def test_cancelling_reshapes_at_a_graph_output_vanish_in_one_run():
    graph = Graph("g")
    fc = dense6(graph)
    r1 = reshape(graph, fc.output, (2, 3), "r1")
    r2 = reshape(graph, r1.output, (6,), "y")
    graph.outputs = [r2.output]
    SimplifyReshapes().run(graph)
    verify(graph)
    assert names(graph) == ["fc"] and graph.outputs[0].name == "y"
