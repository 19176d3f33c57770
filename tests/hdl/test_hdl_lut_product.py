"""``lut_product``: the product of two operands as partial-product sums, for every sign and width
pairing, checked against Python's integer product (exhaustively for small widths)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from fpgac.hdl.fold import lut_product


def _products(a_shape, b_shape, pairs) -> list[int]:
    m = Module()
    a, b = Signal(a_shape, name="a"), Signal(b_shape, name="b")
    value = lut_product(m, a, b)
    y = Signal(signed(len(a) + len(b) + 1), name="y")
    m.d.comb += y.eq(value)
    got = []

    async def bench(ctx):
        for u, v in pairs:
            ctx.set(a, u)
            ctx.set(b, v)
            got.append(ctx.get(y))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return got


def _range(shape) -> range:
    return range(-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else range(1 << shape.width)


@pytest.mark.parametrize("a_shape, b_shape", [(signed(4), signed(4)), (unsigned(4), signed(5)), (signed(5), unsigned(3)),
                                              (unsigned(4), unsigned(4)), (signed(1), signed(3)), (unsigned(1), signed(3)),
                                              (signed(6), signed(2))], ids=str)
def test_lut_product_exhaustive(a_shape, b_shape) -> None:
    pairs = list(itertools.product(_range(a_shape), _range(b_shape)))
    assert _products(a_shape, b_shape, pairs) == [u * v for u, v in pairs]


@pytest.mark.parametrize("a_shape, b_shape", [(signed(8), signed(8)), (unsigned(8), signed(8)), (signed(8), unsigned(7)),
                                              (signed(9), signed(6))], ids=str)
def test_lut_product_eight_bits(a_shape, b_shape) -> None:
    rng = np.random.default_rng(3)
    ra, rb = _range(a_shape), _range(b_shape)
    corners = list(itertools.product([ra[0], ra[-1], 0, 1], [rb[0], rb[-1], 0, 1]))
    pairs = corners + [(int(rng.integers(ra[0], ra[-1] + 1)), int(rng.integers(rb[0], rb[-1] + 1))) for _ in range(400)]
    assert _products(a_shape, b_shape, pairs) == [u * v for u, v in pairs]
