"""Softmax and LogSoftmax against numpy step by step (tables through ``Table.lookup``), and against
the golden model on the Softmax of a compiled example network, under random stalls."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fpgac import api
from fpgac.hdl import Lanes, Softmax, run_vectors
from fpgac.ir import FixedType, Op, Overflow, Rounding
from fpgac.ir.tables import Table
from fpgac.sim import evaluate_fixed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _tables(x: FixedType, n: int, frac_e: int = 8, size: int = 256, interpolate: bool = True):
    """The exp, reciprocal and log tables as the quantizer builds them (sizes made small)."""
    z = FixedType(x.width + 1, x.int_bits + 1, True)
    exp_t = FixedType(frac_e + 1, 1, False, Rounding.RND, Overflow.SAT)
    settle = (frac_e + 1) * math.log(2.0)
    exp = Table.build("exp", np.exp, z, exp_t, -settle, 0.0, size, interpolate=interpolate)
    grow = max(1, math.ceil(math.log2(n)))
    total = FixedType(exp_t.width + grow, exp_t.int_bits + grow, False)
    recip_t = FixedType(10, 1, False, Rounding.RND, Overflow.SAT)
    recip = Table.build("reciprocal", lambda s: 1.0 / s, total, recip_t, 1.0, float(n), size, interpolate=interpolate)
    log_t = FixedType(10, 2, False, Rounding.RND, Overflow.SAT)
    log = Table.build("log", np.log, total, log_t, 1.0, float(n), size, interpolate=interpolate)
    return exp, recip, log


def _inputs(x: Lanes, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    xs = rng.integers(x.min, x.max + 1, size=(rows, x.count))
    xs[0], xs[1] = x.min, x.max  # all equal: every lane at exp(0)
    xs[2, :] = x.min
    xs[2, 0] = x.max  # one lane far above the others: the others underflow the exp table
    xs[3] = rng.integers(-3, 4, size=x.count)  # close values: the interpolation matters
    return xs


@pytest.mark.parametrize(("n", "interpolate", "levels"), [(5, True, 2), (3, False, 1), (8, True, 3)])
def test_softmax_matches_numpy_steps(n: int, interpolate: bool, levels: int) -> None:
    xt = FixedType(10, 4)
    exp, recip, _ = _tables(xt, n, interpolate=interpolate)
    x = Lanes(n, xt.width, xt.signed)
    dut = Softmax(x, exp=exp, reciprocal=recip, levels_per_stage=levels)
    xs = _inputs(x, 30, n)
    got, _ = run_vectors(dut, xs, seed=n)
    e = exp.lookup(xs - xs.max(axis=1, keepdims=True))
    np.testing.assert_array_equal(got, e * recip.lookup(e.sum(axis=1, keepdims=True)))


def test_log_softmax_matches_numpy_steps() -> None:
    xt, n = FixedType(9, 4), 4
    exp, _, log = _tables(xt, n)
    frac = max(xt.frac_bits, log.out_type.frac_bits)
    z_shift, log_shift = frac - xt.frac_bits, frac - log.out_type.frac_bits
    x = Lanes(n, xt.width, xt.signed)
    dut = Softmax(x, exp=exp, log=log, z_shift=z_shift, log_shift=log_shift)
    xs = _inputs(x, 30, 11)
    got, _ = run_vectors(dut, xs, seed=4)
    z = xs - xs.max(axis=1, keepdims=True)
    total = exp.lookup(z).sum(axis=1, keepdims=True)
    np.testing.assert_array_equal(got, (z << z_shift) - (log.lookup(total) << log_shift))


def test_softmax_of_a_compiled_network_matches_the_golden_model() -> None:
    model = api.compile(EXAMPLES / "mlp.onnx", bits=8)
    node = next(n for n in model.graph.nodes if n.op is Op.SOFTMAX)
    xt, yt = node.inputs[0].type.dtype, node.output.type.dtype
    rng = np.random.default_rng(0)
    values = evaluate_fixed(model.graph, rng.uniform(-1, 1, size=(40, 16)))
    xs, expected = values[node.inputs[0].name], values[node.output.name]
    dut = Softmax(Lanes(xs.shape[1], xt.width, xt.signed), exp=node.attrs["exp"],
                  reciprocal=node.attrs["reciprocal"], out_width=yt.width, out_signed=yt.signed)
    got, _ = run_vectors(dut, xs, seed=5)
    np.testing.assert_array_equal(got, expected)


def test_softmax_latency_and_interval() -> None:
    xt, n = FixedType(8, 3), 4
    exp, recip, _ = _tables(xt, n)
    x = Lanes(n, xt.width, xt.signed)
    dut = Softmax(x, exp=exp, reciprocal=recip)
    _, run = run_vectors(dut, _inputs(x, 12, 1), valid_prob=1.0, ready_prob=1.0)
    ins, outs = run.in_cycles["i"], run.out_cycles["o"]
    assert set(np.diff(ins)) == {1}
    assert {o - i for i, o in zip(ins, outs)} == {dut.latency}


def test_softmax_needs_one_of_reciprocal_and_log() -> None:
    exp, recip, log = _tables(FixedType(8, 3), 2)
    with pytest.raises(ValueError, match=r"^Softmax needs exactly one of reciprocal \(softmax\) and log \(log-softmax\)$"):
        Softmax(Lanes(2, 8), exp=exp, reciprocal=recip, log=log)
