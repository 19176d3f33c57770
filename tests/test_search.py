"""--accuracy-budget's search: the confidence rule worked by hand, and a search on the bundled MLP
checked with the golden model and the float network, independently of the search's own numbers."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from fpgac import api
from fpgac.errors import UsageError
from fpgac.search import argmax_agreement, lower_bound, meets, samples_needed

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_wilson_lower_bound_hand_worked() -> None:
    # p = 0.9 on n = 100, z = 2: (0.9 + 0.02 - 2 * sqrt(0.0009 + 0.0001)) / 1.04 = (0.92 - 0.06325) / 1.04
    assert lower_bound(0.9, 100) == pytest.approx((0.92 - 2 * math.sqrt(0.001)) / 1.04, rel=1e-12)
    # every argmax agreeing on 450 samples proves 1 / (1 + 4/450) = 0.99115
    assert lower_bound(1.0, 450) == pytest.approx(1 / (1 + 4 / 450))
    assert meets(1.0, 450, 0.01) and not meets(1.0, 300, 0.01)


def test_samples_needed_is_the_smallest_that_meets() -> None:
    n = samples_needed(448 / 450, 0.01)
    assert meets(448 / 450, n, 0.01) and not meets(448 / 450, n - 1, 0.01)
    assert samples_needed(0.98, 0.01) is None  # below 99%: no sample count helps


def test_argmax_agreement() -> None:
    a = np.array([[0.1, 0.9], [0.8, 0.2], [0.5, 0.6]])
    b = np.array([[0.2, 0.7], [0.1, 0.3], [0.9, 0.1]])
    assert argmax_agreement(a, b) == pytest.approx(1 / 3)


def test_a_budget_is_met_on_its_data_with_fewer_bits() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (2000, 16))
    compiled = api.compile(EXAMPLES / "mlp.onnx", calibration=x, bits=12, accuracy_budget=0.02)
    search = compiled.search
    # recomputed outside the search: the golden model against the float network on the same data
    agreement = argmax_agreement(compiled.predict(x, float=True), compiled.predict(x))
    assert agreement == pytest.approx(search.agreement)
    assert meets(agreement, len(x), 0.02)
    assert search.uniform_bits <= 12 and search.total_bits <= search.uniform_total_bits
    assert compiled.total_bits == search.total_bits


def test_an_unmeetable_budget_says_what_it_reached() -> None:
    x = np.random.default_rng(0).uniform(-1, 1, (200, 16))
    with pytest.raises(UsageError, match=r"^--accuracy-budget 0\.0 cannot be met at --bits 3: the best, 3 bits "
                                         r"everywhere, agrees with the float argmax on [\d.]+% of the 200 calibration "
                                         r"samples \(\d+ differ\), below the 100\.00% the budget asks for: give more "
                                         r"--bits or a larger budget$"):
        api.compile(EXAMPLES / "mlp.onnx", calibration=x, bits=3, accuracy_budget=0.0)
