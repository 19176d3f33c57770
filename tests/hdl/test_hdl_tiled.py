"""TiledPool: max and average over non-overlapping tiles of a pixel stream, against numpy on the
same images (tiles reshaped out of the image), at full rate and under random back-pressure."""

from __future__ import annotations

import numpy as np
import pytest

from fpgac.hdl import Lanes, TiledPool, run_vectors

RNG = np.random.default_rng(41)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("size, kernel, signed", [((4, 6), (2, 2), False), ((6, 6), (3, 2), True),
                                                  ((1, 8), (1, 4), True), ((2, 2), (2, 2), False)],
                         ids=["2x2", "3x2 signed", "1-D", "one tile"])
def test_tiled_pool_matches_numpy(kind, size, kernel, signed) -> None:
    C, (H, W), (kh, kw) = 3, size, kernel
    x = Lanes(C, 6, signed)
    recip = 37
    dut = TiledPool(x, size, kernel, kind=kind, reciprocal=recip if kind == "avg" else None)
    n = 5
    images = RNG.integers(x.min, x.max + 1, (n, C, H, W))
    images[0], images[1] = x.min, x.max
    tiles = images.reshape(n, C, H // kh, kh, W // kw, kw)
    expect = tiles.max(axis=(3, 5)) if kind == "max" else tiles.sum(axis=(3, 5)) * recip
    pixels = images.transpose(0, 2, 3, 1).reshape(-1, C)  # a pixel a word, row-major
    words = expect.transpose(0, 2, 3, 1).reshape(-1, C)
    for p in (1.0, 0.6):
        out, _ = run_vectors(dut, pixels, count=len(words), valid_prob=p, ready_prob=p, seed=2)
        np.testing.assert_array_equal(out, words)
    with pytest.raises(ValueError, match="whole number"):
        TiledPool(x, (H, W + 1), kernel, kind="max")
