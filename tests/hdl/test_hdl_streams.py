"""Stream plumbing: Binary, Concat, Argmax, StreamBuffer, Collect/Serialize against numpy, under random
stalls on every input and output; and the harness itself catches a component that breaks the protocol."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from fpgac.hdl import (
    Argmax,
    Binary,
    BinaryOp,
    Chain,
    Collect,
    Concat,
    Dense,
    Fork,
    Lanes,
    Metered,
    ProtocolError,
    ReLU,
    Requant,
    Serialize,
    StreamBuffer,
    run_streams,
    run_vectors,
)
from fpgac.ir import Op


def _unpack(lanes: Lanes, words: list[int]) -> np.ndarray:
    return np.array([lanes.unpack(w) for w in words], dtype=np.int64)


@pytest.mark.parametrize(("op", "fn"), [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("max", np.maximum),
    ("min", np.minimum),
])
def test_binary(op: str, fn) -> None:
    a, b = Lanes(3, 6, True), Lanes(3, 4, False)
    shifts = (0, 0) if op == "mul" else (0, 2)  # b aligned to a's fractional bits
    rng = np.random.default_rng(len(op))
    xa = rng.integers(a.min, a.max + 1, size=(30, 3))
    xb = rng.integers(b.min, b.max + 1, size=(30, 3))
    xa[0], xb[0] = a.min, b.max
    dut = Binary(a, b, op=op, a_shift=shifts[0], b_shift=shifts[1])
    run = run_streams(dut, {"a": [a.pack(r) for r in xa], "b": [b.pack(r) for r in xb]}, {"o": 30}, seed=3)
    np.testing.assert_array_equal(_unpack(dut.out_lanes, run.words["o"]), fn(xa << shifts[0], xb << shifts[1]))


def test_binary_op_from_the_ir() -> None:
    assert BinaryOp.cast(Op.ADD) is BinaryOp.ADD and BinaryOp.cast("max") is BinaryOp.MAX


def test_concat_of_three_streams() -> None:
    ins = [Lanes(2, 5, True), Lanes(1, 3, False), Lanes(3, 4, True)]
    shifts = [1, 0, 2]
    rng = np.random.default_rng(7)
    rows = [rng.integers(x.min, x.max + 1, size=(25, x.count)) for x in ins]
    dut = Concat(ins, shifts=shifts)
    run = run_streams(dut, {f"i{k}": [x.pack(r) for r in rs] for k, (x, rs) in enumerate(zip(ins, rows))},
                      {"o": 25}, seed=8, valid_prob=0.5)
    expected = np.concatenate([rs << s for rs, s in zip(rows, shifts)], axis=1)
    np.testing.assert_array_equal(_unpack(dut.out_lanes, run.words["o"]), expected)
    assert [len(p.payload) for p in dut.inputs] == [10, 3, 12]


@pytest.mark.parametrize("select_last", [False, True])
@pytest.mark.parametrize("levels", [1, 2])
def test_argmax_ties(select_last: bool, levels: int) -> None:
    x = Lanes(7, 3, True)
    rng = np.random.default_rng(levels)
    rows = rng.integers(-4, 4, size=(40, 7))  # many ties
    rows[0] = 3  # all equal
    rows[1] = [-4, 3, 0, 3, 3, -4, 1]
    got, _ = run_vectors(Argmax(x, select_last=select_last, levels_per_stage=levels), rows, seed=9)
    expected = 6 - np.argmax(rows[:, ::-1], axis=1) if select_last else np.argmax(rows, axis=1)
    np.testing.assert_array_equal(got[:, 0], expected)
    assert got[1, 0] == (4 if select_last else 1)


def test_argmax_of_one_lane() -> None:
    dut = Argmax(Lanes(1, 4, True))
    assert dut.out_lanes == Lanes(1, 1, False)
    got, _ = run_vectors(dut, [[3], [-2]], seed=1)
    assert got.tolist() == [[0], [0]]


def test_stream_buffer_passes_everything_and_keeps_full_rate() -> None:
    words = list(range(100, 160))
    run = run_streams(StreamBuffer(8), {"i": words}, {"o": len(words)}, seed=2, valid_prob=0.6, ready_prob=0.4)
    assert run.words["o"] == words
    run = run_streams(StreamBuffer(8), {"i": words}, {"o": len(words)}, valid_prob=1.0, ready_prob=1.0)
    assert run.words["o"] == words
    assert set(np.diff(run.out_cycles["o"])) == {1}


@pytest.mark.parametrize("channels_first", [True, False])
def test_collect_and_serialize(channels_first: bool) -> None:
    """A [C=3, P=4] tensor: Serialize gives pixels (each the C channels), Collect gathers them back."""
    x = Lanes(3, 5, True)
    rng = np.random.default_rng(4)
    tensors = rng.integers(x.min, x.max + 1, size=(6, 3, 4))  # [N, C, P]
    flat = tensors.reshape(6, 12) if channels_first else tensors.transpose(0, 2, 1).reshape(6, 12)
    ser = Serialize(x.with_count(12), 4, channels_first=channels_first)
    pixels, _ = run_vectors(ser, flat, count=24, seed=5)
    np.testing.assert_array_equal(pixels, tensors.transpose(0, 2, 1).reshape(24, 3))
    col = Collect(x, 4, channels_first=channels_first)
    back, _ = run_vectors(col, pixels, count=6, seed=6)
    np.testing.assert_array_equal(back, flat)


def test_fork_gives_every_consumer_every_word() -> None:
    words = list(range(40))
    run = run_streams(Fork(6, 3), {"i": words}, {"o0": 40, "o1": 40, "o2": 40}, seed=3, ready_prob=0.4)
    assert run.words == {"o0": words, "o1": words, "o2": words}


def _relu_dense_requant(x: Lanes) -> tuple[ReLU, Dense, Requant]:
    """ReLU, a 3x2 Dense and a rounding, saturating Requant: the parts the chain tests join."""
    relu = ReLU(x)
    dense = Dense(np.array([[1, -2], [3, 0], [0, 5]]), np.array([4, -4]), x=relu.out_lanes)
    return relu, dense, Requant(dense.out_lanes, shift=1, out_width=4, out_signed=True, rounding="RND", overflow="SAT")


def test_chain_of_fork_free_components() -> None:
    """Requant after Dense after ReLU, as one component: the parts' latencies add up."""
    x = Lanes(3, 5, True)
    relu, dense, requant = _relu_dense_requant(x)
    chain = Chain([relu, dense, requant])
    assert chain.latency == relu.latency + dense.latency + requant.latency
    assert (chain.in_lanes, chain.out_lanes) == (x, requant.out_lanes)
    rows = np.random.default_rng(1).integers(-16, 16, size=(30, 3))
    got, _ = run_vectors(chain, rows, seed=2)
    acc = np.maximum(rows, 0) @ np.array([[1, -2], [3, 0], [0, 5]]) + [4, -4]
    np.testing.assert_array_equal(got, np.clip(np.floor(acc / 2 + 0.5), -8, 7))


@pytest.mark.parametrize("ready_prob", [1.0, 0.5, 0.15])
def test_metered_chain_loses_nothing_and_keeps_full_rate(ready_prob: float) -> None:
    """The same chain without stalls inside, fed by the entrance counter: bit-exact under any
    back-pressure, no cycle added, one word a cycle when the consumer is always ready."""
    relu, dense, requant = _relu_dense_requant(Lanes(3, 5, True))
    metered = Metered([relu, dense, requant])
    assert metered.latency == relu.latency + dense.latency + requant.latency
    rows = np.random.default_rng(3).integers(-16, 16, size=(60, 3))
    got, run = run_vectors(metered, rows, seed=4, valid_prob=1.0 if ready_prob == 1.0 else 0.8, ready_prob=ready_prob)
    acc = np.maximum(rows, 0) @ np.array([[1, -2], [3, 0], [0, 5]]) + [4, -4]
    np.testing.assert_array_equal(got, np.clip(np.floor(acc / 2 + 0.5), -8, 7))
    if ready_prob == 1.0:
        assert run.out_cycles["o"][0] - run.in_cycles["i"][0] == metered.latency
        assert set(np.diff(run.out_cycles["o"])) == {1}


def test_metered_parts_are_built_without_load_enables() -> None:
    """Inside a Metered chain nothing stalls, so its parts' pipeline registers load every cycle: no
    enable signal and no ``go`` in their Verilog; the same parts in a plain Chain keep theirs."""
    from amaranth.back import verilog

    metered = verilog.convert(Metered(list(_relu_dense_requant(Lanes(3, 5, True)))), emit_src=False)
    chained = verilog.convert(Chain(list(_relu_dense_requant(Lanes(3, 5, True)))), emit_src=False)
    assert "p_go" in chained and "p_en0" in chained
    assert "p_go" not in metered and "p_en0" not in metered


class _Careless(wiring.Component):
    """A broken register stage: it loads a new word every cycle, whether or not the last was taken."""

    def __init__(self) -> None:
        super().__init__({"i": In(stream.Signature(4)), "o": Out(stream.Signature(4))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        valid = Signal()
        m.d.comb += [self.i.ready.eq(1), self.o.valid.eq(valid)]
        m.d.sync += [valid.eq(self.i.valid), self.o.payload.eq(self.i.payload)]
        return m


def test_harness_catches_a_changed_or_withdrawn_word() -> None:
    with pytest.raises(ProtocolError, match=r"^output 'o' at cycle \d+: a stalled word was changed from 0x2 to 0x3$"):
        run_streams(_Careless(), {"i": list(range(16))}, {"o": 16}, seed=1, valid_prob=1.0, ready_prob=0.5)
    with pytest.raises(ProtocolError, match=r"^output 'o' at cycle \d+: a stalled word was withdrawn$"):
        run_streams(_Careless(), {"i": list(range(16))}, {"o": 16}, seed=1, valid_prob=0.3, ready_prob=0.3)
