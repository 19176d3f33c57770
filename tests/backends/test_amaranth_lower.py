"""The lane-level lowering of the amaranth target, run in numpy, equals the golden model."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fpgac import api
from fpgac.backends.amaranth.lower import Linear, MaxWindows, Select, execute, lower
from fpgac.errors import UnsupportedError

CHAINS = ["mlp", "cnn2d", "cnn1d", "digits", "qmlp"]


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("name", CHAINS)
def test_stages_equal_the_golden_model(name, bits) -> None:
    compiled = api.compile(f"examples/{name}.onnx", bits=bits, input_range=(-1, 1))
    vectors = compiled.vectors(300)
    stages = lower(compiled.graph)
    got = execute(stages, vectors.input_mantissas[0].reshape(300, -1))
    assert np.array_equal(got, vectors.golden[0].reshape(300, -1))


def test_conv_becomes_a_sparse_matrix_and_pools_windows() -> None:
    compiled = api.compile("examples/cnn2d.onnx", bits=8, input_range=(-1, 1))
    stages = lower(compiled.graph)
    conv = next(s for s in stages if isinstance(s, Linear) and "conv" in s.node.lower())
    # every output of a 3x3 conv reads at most 9 * C lanes
    c = compiled.graph.node(conv.node).inputs[0].type.shape[0]
    assert (np.count_nonzero(conv.matrix, axis=0) <= 9 * c).all()
    assert np.count_nonzero(conv.matrix) < conv.matrix.size / 3
    pool = next(s for s in stages if isinstance(s, MaxWindows))
    assert {len(w) for w in pool.windows} <= {4}  # 2x2 windows


@pytest.mark.requires("libpython", "iverilog")
def test_a_hand_made_select(tmp_path) -> None:

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 2])
    model = helper.make_model(helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["y"], perm=[0, 2, 1])], "t", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, tmp_path / "t.onnx")
    compiled = api.compile(tmp_path / "t.onnx", bits=8, input_range=(-1, 1))
    (stage,) = [s for s in lower(compiled.graph) if isinstance(s, Select)]
    # [[a b c] [d e f]] transposed is [[a d] [b e] [c f]]: lanes 0 3 1 4 2 5
    assert stage.indices.tolist() == [0, 3, 1, 4, 2, 5]


@pytest.mark.requires("libpython", "iverilog")
@pytest.mark.parametrize("model, stage", [("test_PReLU_2d_multiparam", "PReLU"), ("test_LeakyReLU_with_negval", "PReLU"),
                                          ("test_Softmin", "Linear")])
def test_conformance_models_lanes(tmp_path, model, stage) -> None:
    """PyTorch's PReLU (a slope per channel), LeakyReLU and Softmin (a Mul by the constant -1, which
    the probe once took for a second run-time input: x * x) conformance models: the stages equal the
    golden model, and the per-channel PReLU is bit-exact on Icarus."""
    from conformance_models import DATA

    compiled = api.compile(DATA / "pytorch-converted" / model / "model.onnx", bits=8, input_range=(-2, 2))
    stages = lower(compiled.graph)
    assert stage in [type(s).__name__ for s in stages]
    vectors = compiled.vectors(300)
    got = execute(stages, vectors.input_mantissas[0].reshape(300, -1))
    assert np.array_equal(got, vectors.golden[0].reshape(300, -1))
    if model.endswith("multiparam"):
        out = compiled.write(tmp_path / "prelu", "amaranth", vectors=100)
        report = api.verify(out, simulator="icarus")
        assert report.mismatched_bits == 0 and report.vectors == 100, report.lines()


def test_a_layer_too_large_to_unroll_is_refused() -> None:
    """A 1,000x1,000 max pool would be probed as a million by a thousand matrix: refused in one line."""
    from conformance_models import DATA

    compiled = api.compile(DATA / "pytorch-converted" / "test_MaxPool2d_stride_padding_dilation" / "model.onnx",
                           bits=8, input_range=(-1, 1))
    with pytest.raises(UnsupportedError, match=r"^node 'Y_1' \(Pool\): 1,000,000 input and 1,075 output lanes are too "
                                               r"many for the fully parallel amaranth target \(at most 67,108,864 pairs\); "
                                               "use --target xilinx --io stream$"):
        lower(compiled.graph)


@pytest.mark.requires("libpython", "iverilog")
@pytest.mark.parametrize("model", ["test_log_softmax_dim3", "test_softmax_functional_dim3"])
def test_softmax_along_an_axis_is_bit_exact(tmp_path, model) -> None:
    """(Log-)softmax along the last axis of a [3, 4, 5] tensor: one hdl Softmax for each of the 12
    positions (``Groups``), bit-exact on Icarus."""
    from conformance_models import DATA

    compiled = api.compile(DATA / "pytorch-converted" / model / "model.onnx", bits=8, input_range=(-2, 2))
    (softmax,) = [s for s in lower(compiled.graph) if type(s).__name__ == "Softmax"]
    assert len(softmax.groups) == 12 and (softmax.log is not None) == ("log" in model)
    out = compiled.write(tmp_path / "softmax", "amaranth", vectors=100)
    report = api.verify(out, simulator="icarus")
    assert report.mismatched_bits == 0 and report.vectors == 100, report.lines()


@pytest.mark.parametrize("out", ["ufixed<5,2,RND,SAT>", "ufixed<6,1,TRN,SAT>", "ufixed<4,5,RND_CONV,SAT>"])
def test_relu_then_saturating_unsigned_cast_is_the_cast_alone(out) -> None:
    # the equivalence the fusion rests on, over every mantissa of a signed 10-bit type
    from fpgac.ir import parse_type
    from fpgac.ir.fixed import requantize

    t_in, t_relu, t_out = parse_type("fixed<10,4>"), parse_type("ufixed<9,3>"), parse_type(out)
    x = np.arange(t_in.min_mantissa, t_in.max_mantissa + 1)
    assert np.array_equal(requantize(np.maximum(x, 0), t_relu, t_out), requantize(x, t_in, t_out))


def test_mlp_hidden_layers_fuse_relu_into_the_cast() -> None:
    stages = lower(api.compile("examples/mlp.onnx", bits=8, input_range=(-1, 1)).graph)
    kinds = [type(s).__name__ for s in stages]
    assert kinds == ["Linear", "Requant"] * 3 + ["Linear", "Softmax", "Requant"]
    assert all(s.in_type.signed and not s.out_type.signed for s in stages[1:7:2])


@pytest.mark.parametrize("reuse", [1, 3])
def test_the_top_builds_each_component_once(reuse: int) -> None:
    """Every component built for the design is in it (a component built and dropped would be
    one Amaranth warns about at exit, as once for designs with --reuse)."""
    import gc
    import warnings

    from amaranth.back import verilog
    from amaranth.hdl import UnusedElaboratable

    from fpgac.backends.amaranth.build import top

    stages = lower(api.compile("examples/qmlp.onnx", input_range=(-1, 1)).graph)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        verilog.convert(top(stages, reuse=reuse, clock_period=7.0), name="t", emit_src=False)
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, UnusedElaboratable)]
