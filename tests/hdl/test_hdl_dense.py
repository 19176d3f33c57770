"""Dense layers in Amaranth's simulator against numpy integer matmul, under random stalls; the CSD
netlist has no adder for a zero weight; latency and interval as documented."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from amaranth.back import verilog

from fpgac.hdl import Dense, DenseReuse, Lanes, csd, run_vectors
from fpgac.hdl.adder_graph import Adder, AdderGraph
from fpgac.hdl.dense import carried_bits
from fpgac.hdl.requant import Requantize
from fpgac.ir import FixedType, Overflow, Rounding
from fpgac.ir.fixed import requantize


def _case(seed: int, n_in: int, n_out: int, x: Lanes, wmax: int = 40, zeros: float = 0.3):
    rng = np.random.default_rng(seed)
    w = rng.integers(-wmax, wmax + 1, size=(n_in, n_out))
    w[rng.random(w.shape) < zeros] = 0
    b = rng.integers(-500, 500, size=n_out)
    xs = rng.integers(x.min, x.max + 1, size=(40, n_in))
    xs[0], xs[1] = x.min, x.max  # the extremes: the exact bounds must hold them
    return w, b, xs


def test_csd_digits_are_exact_and_non_adjacent() -> None:
    for n in [0, 1, -1, 3, 7, -7, 11, 0b1011011, -12345, 2**20 - 1, 127, -128]:
        digits = csd(n)
        assert sum(s << k for k, s in digits) == n
        shifts = [k for k, _ in digits]
        assert all(b - a >= 2 for a, b in itertools.pairwise(shifts))
    assert csd(7) == [(0, -1), (3, 1)]  # 8 - 1
    assert csd(0) == []


@pytest.mark.parametrize("levels", [1, 2, 5])
@pytest.mark.parametrize("x", [Lanes(6, 5, True), Lanes(6, 4, False)])
def test_dense_matches_numpy(levels: int, x: Lanes) -> None:
    w, b, xs = _case(levels, 6, 5, x)
    w[:, 1] = 0  # an output that is only its bias
    w[:, 2] = -np.abs(w[:, 2]) - 1  # an output whose leaves are all negative (needs a negation)
    b[2] = 0
    dut = Dense(w, b, x=x, levels_per_stage=levels)
    got, _ = run_vectors(dut, xs, seed=levels)
    np.testing.assert_array_equal(got, xs @ w + b)


def test_dense_without_bias_and_zero_matrix() -> None:
    x = Lanes(3, 4, True)
    xs = np.array([[1, -2, 3], [-8, 7, 0], [7, 7, 7]])
    got, _ = run_vectors(Dense(np.zeros((3, 2), int), x=x), xs, seed=1)
    np.testing.assert_array_equal(got, np.zeros((3, 2)))
    w = np.array([[1, 0], [0, -3], [2, 5]])
    got, _ = run_vectors(Dense(w, x=x), xs, seed=2)
    # by hand: [1 + 6, 6 + 15], [-8 + 0, -21 + 0], [7 + 14, -21 + 35]
    np.testing.assert_array_equal(got, [[7, 21], [-8, -21], [21, 14]])


def test_dense_latency_and_interval() -> None:
    x = Lanes(8, 8, True)
    w, b, xs = _case(7, 8, 3, x, zeros=0.0)
    for levels in (1, 3):
        dut = Dense(w, b, x=x, levels_per_stage=levels)
        got, run = run_vectors(dut, xs, valid_prob=1.0, ready_prob=1.0)
        np.testing.assert_array_equal(got, xs @ w + b)
        ins, outs = run.in_cycles["i"], run.out_cycles["o"]
        assert np.diff(ins).max() == 1 and np.diff(outs).max() == 1  # one vector a cycle
        assert {o - i for i, o in zip(ins, outs)} == {dut.latency}
        assert dut.latency == max(1, -(-dut.depth // levels))


def test_dense_output_format_override_is_checked() -> None:
    x = Lanes(2, 4, True)
    dut = Dense(np.array([[1], [1]]), x=x, out_width=16, out_signed=True)
    assert dut.out_lanes == Lanes(1, 16, True)
    got, _ = run_vectors(dut, [[-8, -8], [7, 7]], seed=0)
    np.testing.assert_array_equal(got, [[-16], [14]])
    with pytest.raises(ValueError, match=r"^Dense output 1xs4 cannot hold the exact range \[-16, 14\]; it needs 1xs5$"):
        Dense(np.array([[1], [1]]), x=x, out_width=4)
    with pytest.raises(ValueError, match=r"^Dense weights have 3 rows but the input has 2 lanes$"):
        Dense(np.ones((3, 1), int), x=x)


@pytest.mark.parametrize(("levels", "clock_period"), [(1, None), (3, None), (2, 3.5), (2, 7.0), (2, 40.0)])
@pytest.mark.parametrize(("rounding", "overflow"), [("RND_CONV", "SAT"), ("RND_CONV", "WRAP"), ("RND", "SAT")])
def test_dense_with_its_requantization_matches_the_golden_model(levels, clock_period, rounding, overflow) -> None:
    """The requantization inside the Dense (in its last adder stage, or one of its own) gives
    what the golden model's requantize gives on the exact sums, never later than a Requant
    component after the Dense would."""
    x = Lanes(6, 6, True)
    w, b, xs = _case(11, 6, 5, x, wmax=60)
    w[:, 1] = 0  # an output that is its bias alone: a constant, requantized too
    acc = FixedType(24, 12, True)  # 12 fractional bits (any type that holds the exact sums)
    out = FixedType(7, 2, True, Rounding[rounding], Overflow[overflow])  # 5 fractional bits: 7 dropped, fit 7 bits
    spec = Requantize(shift=7, width=7, signed=True, rounding=rounding, overflow=overflow)
    dut = Dense(w, b, x=x, levels_per_stage=levels, clock_period=clock_period, requant=spec)
    plain = Dense(w, b, x=x, levels_per_stage=levels, clock_period=clock_period)
    plain._MustUse__silence = True  # built for its latency alone, never elaborated
    assert dut.out_lanes == Lanes(5, 7, True)
    if rounding == "RND":  # its offset of half an output LSB joins the bias: no rounding adder
        assert dut.sum_bias == [int(v) + 64 for v in b]
    assert dut.latency <= plain.latency + 1  # never slower than a Requant after it
    if clock_period == 40.0:
        assert dut.latency == 1  # everything in one stage at a slow clock
    got, run = run_vectors(dut, xs, seed=3, valid_prob=0.8, ready_prob=0.6)
    np.testing.assert_array_equal(got, requantize(xs @ w + b, acc, out))
    got, run = run_vectors(dut, xs, valid_prob=1.0, ready_prob=1.0)
    assert {o - i for i, o in zip(run.in_cycles["i"], run.out_cycles["o"])} == {dut.latency}
    with pytest.raises(ValueError, match=r"^Dense output format \(8, True\) is not its requantization's \(7, True\)$"):
        Dense(w, b, x=x, requant=spec, out_width=8, out_signed=True)


@pytest.mark.parametrize("reuse", [1, 3, 7, 1000])
def test_dense_reuse_matches_numpy(reuse: int) -> None:
    x = Lanes(5, 6, True)
    w, b, xs = _case(reuse, 5, 4, x)
    w[:, 0] = 0  # an output with no non-zero weight
    dut = DenseReuse(w, b, x=x, reuse=reuse)
    assert dut.nnz == int((w != 0).sum())
    assert dut.units == -(-dut.nnz // reuse) and dut.steps <= reuse
    got, _ = run_vectors(dut, xs, seed=reuse)
    np.testing.assert_array_equal(got, xs @ w + b)


def test_dense_reuse_interval_and_latency() -> None:
    x = Lanes(6, 8, False)
    w, b, xs = _case(3, 6, 4, x, zeros=0.5)
    dut = DenseReuse(w, b, x=x, reuse=4)
    got, run = run_vectors(dut, xs, valid_prob=1.0, ready_prob=1.0)
    np.testing.assert_array_equal(got, xs @ w + b)
    ins, outs = run.in_cycles["i"], run.out_cycles["o"]
    assert set(np.diff(ins)) == {dut.interval} and dut.interval == dut.steps + 2  # two stages to drain
    assert {o - i for i, o in zip(ins, outs)} == {dut.latency}


def test_dense_reuse_all_zero_weights_give_the_bias() -> None:
    x = Lanes(3, 4, True)
    dut = DenseReuse(np.zeros((3, 2), int), np.array([5, -3]), x=x, reuse=2)
    got, _ = run_vectors(dut, [[1, 2, 3], [-8, 0, 7]], seed=4)
    np.testing.assert_array_equal(got, [[5, -3], [5, -3]])


def _adders(component) -> int:
    """Adders and subtractors in the Verilog: every binary + or - Amaranth writes."""
    text = verilog.convert(component, name="top")
    return len(re.findall(r" [+-] \(\* src", text))


def test_zero_weights_cost_no_adders_in_verilog() -> None:
    x = Lanes(8, 8, True)
    rng = np.random.default_rng(5)
    w = rng.integers(-100, 101, size=(8, 4))
    w[w == 0] = 1
    half = w.copy()
    half[rng.permutation(w.size).reshape(w.shape) < w.size // 2] = 0
    full_dut, half_dut = Dense(w, x=x, share=False), Dense(half, x=x, share=False)
    n_full, n_half = _adders(full_dut), _adders(half_dut)
    # without sharing every adder is one CSD digit beyond the first in its output's sum, and nothing else
    digits = lambda m: sum(len(csd(v)) for v in m.ravel())
    assert n_full == full_dut.adders == digits(w) - w.shape[1] + _negations(w)
    assert n_half == half_dut.adders == digits(half) - half.shape[1] + _negations(half)
    assert n_half < n_full
    # shared subexpressions: fewer adders than that, and the Verilog holds exactly the component's count
    shared, shared_half = Dense(w, x=x), Dense(half, x=x)
    assert _adders(shared) == shared.adders < n_full
    assert _adders(shared_half) == shared_half.adders <= n_half


def _negations(w: np.ndarray) -> int:
    """Outputs (without bias) all of whose CSD digits are negative need one negation."""
    return sum(any(w[:, j]) and all(s < 0 for v in w[:, j] for _, s in csd(v)) for j in range(w.shape[1]))


def test_carried_bits_counts_registers_that_only_pass_a_value_on() -> None:
    # x0, x1 in [0, 3] (2 bits); a0 = x0 + x1 in [0, 6] (3 bits); a1 = a0 + x0 is the output
    g = AdderGraph(2, [Adder(0, 0, 1, 1, 0, 1), Adder(2, 0, 1, 0, 0, 1)], [(3, 0, 1)])
    ranges = [(0, 3), (0, 3)]
    # a0 in stage 0, a1 in stage 1: x0 is carried into stage 1 (2 bits); a0's register follows its adder
    assert carried_bits(g, [0, 1], ranges) == 2
    # a1 in stage 2: x0 carried twice (4 bits), a0 registered after its adder and then carried once (3)
    assert carried_bits(g, [0, 2], ranges) == 7
    # one stage: nothing is registered before the output
    assert carried_bits(g, [0, 0], ranges) == 0


@pytest.mark.parametrize("clock_period", [3.0, 7.0, 50.0])
@pytest.mark.parametrize("x", [Lanes(6, 5, True), Lanes(6, 4, False)])
def test_dense_with_products_on_multipliers_matches_numpy(clock_period: float, x: Lanes) -> None:
    w, b, xs = _case(11, 6, 5, x)
    w[:, 1] = 0
    w[3, 1], b[1] = 37, 0  # an output that is one product alone
    w[:, 4] = 0  # an output that is only its bias
    products = [(3, 1)] + [(i, j) for i in range(6) for j in (0, 2) if w[i, j]][:5]
    dut = Dense(w, b, x=x, clock_period=clock_period, products=products)
    assert dut.graph.n_in == 6 + len(products) and dut.latency >= 2  # the products take the first stage
    got, run = run_vectors(dut, xs, valid_prob=1.0, ready_prob=1.0)
    np.testing.assert_array_equal(got, xs @ w + b)
    assert {o - i for i, o in zip(run.in_cycles["i"], run.out_cycles["o"])} == {dut.latency}
    got, _ = run_vectors(dut, xs, seed=3)  # under back-pressure
    np.testing.assert_array_equal(got, xs @ w + b)
    text = verilog.convert(dut, emit_src=False)
    assert len(re.findall(r"^  assign \S+\s+= .+ \* .+;$", text, re.M)) == len(products)  # a multiply each


def test_dense_products_are_checked() -> None:
    x = Lanes(2, 4, True)
    w = np.array([[1, 0], [3, 5]])
    with pytest.raises(ValueError, match=r"\(0, 1\) is not a non-zero weight"):
        Dense(w, x=x, clock_period=7.0, products=[(0, 1)])
    with pytest.raises(ValueError, match="distinct"):
        Dense(w, x=x, clock_period=7.0, products=[(1, 1), (1, 1)])
    with pytest.raises(ValueError, match="need a clock_period"):
        Dense(w, x=x, products=[(1, 1)])
