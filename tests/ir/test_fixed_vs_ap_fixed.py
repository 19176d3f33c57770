"""``fpgac.ir.fixed`` against the real ``ap_fixed`` headers, bit for bit.

One C++ program, written and compiled once per module, instantiates ``ap_fixed`` for every type
combination below and converts thousands of values per combination: doubles for ``quantize``
(``T v = d;``) and mantissas for ``requantize`` (``S s; s.setBits(m); T v = s;``). It prints raw
bits, which the test sign-extends and compares with the numpy result.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import pytest

from fpgac.ir import FixedType, Overflow, Rounding
from fpgac.ir.fixed import quantize, requantize
from fpgac.backends.hls.aptypes import ap_types_include

R, O = Rounding, Overflow

# (width, int_bits, signed): cycled so that every overflow mode meets all of them, including
# 1-bit, negative int_bits and int_bits > width.
_SHAPES = [
    (8, 3, True),
    (6, 6, False),
    (5, -2, True),
    (7, 10, True),
    (4, 0, False),
    (12, 5, True),
    (1, 1, True),
]

QUANTIZE_TYPES = [
    FixedType(*_SHAPES[i % len(_SHAPES)], rounding=r, overflow=o)
    for i, (r, o) in enumerate(itertools.product(Rounding, Overflow))
] + [
    FixedType(1, 0, False, R.RND, O.SAT),
    FixedType(3, -1, False, R.RND_CONV, O.SAT_SYM),
    FixedType(32, 16, True, R.RND_CONV, O.SAT),
    FixedType(24, 8, False, R.RND_CONV, O.WRAP),
    FixedType(48, 20, True, R.RND, O.WRAP),
    FixedType(62, 30, True, R.RND_INF, O.SAT_SYM),
    FixedType(16, 40, True, R.TRN_ZERO, O.SAT_ZERO),
]

REQUANTIZE_TYPES = [
    (FixedType(16, 6), FixedType(8, 3, True, R.RND, O.SAT)),
    (FixedType(16, 6), FixedType(8, 4, False, R.RND_CONV, O.WRAP)),
    (FixedType(12, 4, False), FixedType(6, 2, True, R.RND_INF, O.SAT_SYM)),
    (FixedType(10, 2), FixedType(10, 2, True, R.TRN_ZERO, O.SAT_SYM)),
    (FixedType(8, 3), FixedType(16, 6)),
    (FixedType(8, 8), FixedType(6, -2, True, R.RND_ZERO, O.SAT_ZERO)),
    (FixedType(20, -3), FixedType(8, 12, True, R.RND_MIN_INF, O.SAT)),
    (FixedType(9, 9, False), FixedType(4, 2, False, R.RND_CONV, O.SAT)),
    (FixedType(32, 16), FixedType(12, 4, True, R.RND, O.SAT_SYM)),
    (FixedType(6, 2), FixedType(10, 5, False, R.TRN, O.SAT)),
    (FixedType(40, 10), FixedType(60, 40, True, R.TRN, O.WRAP)),
    (FixedType(62, 30), FixedType(16, 8, True, R.RND_CONV, O.SAT)),
    (FixedType(4, 2), FixedType(3, 70, True, R.TRN_ZERO, O.WRAP)),
    (FixedType(4, 2), FixedType(8, -60, True, R.TRN, O.SAT)),
    (FixedType(12, 4), FixedType(12, 4, False, R.TRN_ZERO, O.SAT_ZERO)),
    (FixedType(16, 3), FixedType(5, 1, True, R.TRN_ZERO, O.SAT_ZERO)),
]

N_VALUES = 4000


def cpp_type(t: FixedType) -> str:
    base = "ap_fixed" if t.signed else "ap_ufixed"
    return f"{base}<{t.width},{t.int_bits},AP_{t.rounding.value},AP_{t.overflow.value}>"


PROGRAM_HEAD = r"""
#include <ap_fixed.h>
#include <cstdlib>
#include <iostream>
#include <string>

template <class T> void quantize(std::istream& in) {
  long n; in >> n;
  std::string s;
  for (long i = 0; i < n; ++i) {
    in >> s;
    T v = std::strtod(s.c_str(), 0);
    std::cout << v.bits_to_uint64() << ' ';
  }
  std::cout << '\n';
}

template <class S, class T> void requantize(std::istream& in) {
  long n; in >> n;
  long long m;
  for (long i = 0; i < n; ++i) {
    in >> m;
    S s; s.setBits((ap_ulong)m);
    T v = s;
    std::cout << v.bits_to_uint64() << ' ';
  }
  std::cout << '\n';
}

int main() {
"""


def program() -> str:
    calls = [f"  quantize<{cpp_type(t)} >(std::cin);" for t in QUANTIZE_TYPES]
    calls += [f"  requantize<{cpp_type(s)}, {cpp_type(t)} >(std::cin);" for s, t in REQUANTIZE_TYPES]
    return PROGRAM_HEAD + "\n".join(calls) + "\n  return 0;\n}\n"


@pytest.fixture(scope="module")
def ap_fixed_exe(tmp_path_factory: pytest.TempPathFactory):
    gxx = shutil.which("g++")
    if gxx is None:
        pytest.skip("g++ is not on PATH: cannot compile the ap_fixed reference program")
    folder = tmp_path_factory.mktemp("ap_fixed")
    (folder / "ref.cpp").write_text(program())
    exe = folder / "ref"
    # NDEBUG: ap_fixed's cast reads the bit below the new LSB before checking that it lies inside
    # the source (ap_fixed_base.h, operator=), and ap_private asserts on it when a rounding cast
    # drops more bits than the source has. The value read is then unused, so the result is right.
    cmd = [
        gxx,
        "-std=c++14",
        "-O1",
        "-DNDEBUG",
        "-isystem",
        str(ap_types_include()),
        "ref.cpp",
        "-o",
        str(exe),
    ]
    subprocess.run(cmd, cwd=folder, check=True, capture_output=True, text=True)
    return exe


def sample_doubles(t: FixedType, rng: np.random.Generator) -> np.ndarray:
    """Ties, values on and beyond both ends, random values, huge and tiny magnitudes."""
    lsb = 2.0**-t.frac_bits
    lo, hi = (
        max(t.min_mantissa, -(1 << 50)),
        min(t.max_mantissa, 1 << 50),
    )  # doubles hold the ties
    n = N_VALUES // 8
    span = max(hi - lo, 4)
    ints = rng.integers(lo - span, hi + span, n, endpoint=True).astype(np.float64)
    ties = np.ldexp(ints + 0.5, -t.frac_bits)
    quarters = np.ldexp(
        rng.integers(4 * (lo - span), 4 * (hi + span), n, endpoint=True).astype(np.float64),
        -t.frac_bits - 2,
    )
    near = np.ldexp(rng.integers(-64, 64, n) + 0.0, -t.frac_bits - 4)
    uniform = rng.uniform(2 * (lo - 2) * lsb, 2 * (hi + 2) * lsb, n)
    huge = rng.choice([-1.0, 1.0], n) * 10.0 ** rng.uniform(-300, 300, n)
    scale = rng.choice([-1.0, 1.0], n) * np.ldexp(
        rng.uniform(0.5, 1, n), rng.integers(-t.frac_bits - 70, t.int_bits + 70, n)
    )
    lo, hi = t.min_mantissa, t.max_mantissa
    edges = np.array(
        [
            0.0,
            -0.0,
            np.inf,
            -np.inf,
            lo * lsb,
            hi * lsb,
            (lo - 1) * lsb,
            (hi + 1) * lsb,
            (lo - 0.5) * lsb,
            (hi + 0.5) * lsb,
            (lo + 0.5) * lsb,
            (hi - 0.5) * lsb,
            lsb / 2,
            -lsb / 2,
            lsb / 3,
            -lsb / 3,
            1e300,
            -1e300,
        ]
    )
    pad = N_VALUES - 7 * n - edges.size
    lo, hi = max(lo, -(1 << 50)), min(hi, 1 << 50)
    rest = np.ldexp(
        rng.integers(lo - 3, hi + 3, pad, endpoint=True) + rng.choice([0.0, 0.25, 0.5, 0.75], pad),
        -t.frac_bits,
    )
    return np.concatenate([ints * lsb, ties, quarters, near, uniform, huge, scale, edges, rest])


def sample_mantissas(src: FixedType, dst: FixedType, rng: np.random.Generator) -> np.ndarray:
    """Mantissas of ``src`` covering its whole range, its ends, and ties and ends of ``dst``."""
    lo, hi = src.min_mantissa, src.max_mantissa
    n = N_VALUES // 4
    full = rng.integers(lo, hi, n, endpoint=True)
    d = src.frac_bits - dst.frac_bits
    j = rng.integers(2 * dst.min_mantissa - 2, 2 * dst.max_mantissa + 2, n, endpoint=True)
    if 0 < d < 62:
        half = 1 << (d - 1)
        near = (
            np.concatenate([(j << d) + half, (j << d) + half - 1, (j << d) + half + 1, j << d])
            if d < 40
            else full
        )
    elif d <= 0 and -d < 62:
        near = np.concatenate([j >> -d, (j >> -d) + 1, (j >> -d) - 1, j])
    else:
        near = full
    small = rng.integers(-300, 300, n)
    edges = np.array([lo, hi, lo + 1, hi - 1, 0, 1, -1])
    m = np.concatenate([full, near, small, edges])
    return np.clip(m, lo, hi).astype(np.int64)


def sign_extend(bits: np.ndarray, t: FixedType) -> np.ndarray:
    low = (bits & np.uint64((1 << t.width) - 1)).astype(np.int64)
    if t.signed:
        low = np.where(low >= (1 << (t.width - 1)), low - (1 << t.width), low)
    return low


@dataclass
class Case:
    name: str
    inputs: np.ndarray
    expected: np.ndarray  # ours
    dst: FixedType


@pytest.fixture(scope="module")
def results(ap_fixed_exe) -> list[tuple[Case, np.ndarray]]:
    rng = np.random.default_rng(20261124)
    cases, lines = [], []
    for t in QUANTIZE_TYPES:
        x = sample_doubles(t, rng)
        cases.append(Case(f"quantize to {t}", x, quantize(x, t), t))
        lines.append(f"{x.size} " + " ".join(float(v).hex() for v in x))
    for s, t in REQUANTIZE_TYPES:
        m = sample_mantissas(s, t, rng)
        cases.append(Case(f"requantize {s} -> {t}", m, requantize(m, s, t), t))
        lines.append(f"{m.size} " + " ".join(str(int(v)) for v in m))
    out = subprocess.run(
        [str(ap_fixed_exe)],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    rows = out.stdout.splitlines()
    assert len(rows) == len(cases)
    return [(c, sign_extend(np.array(row.split(), dtype=np.uint64), c.dst)) for c, row in zip(cases, rows)]


@pytest.mark.parametrize("index", range(len(QUANTIZE_TYPES) + len(REQUANTIZE_TYPES)))
def test_bit_exact_with_ap_fixed(results, index: int) -> None:
    case, theirs = results[index]
    bad = np.flatnonzero(case.expected != theirs)
    examples = [(case.inputs[i].item(), int(case.expected[i]), int(theirs[i])) for i in bad[:5]]
    assert bad.size == 0, (
        f"{case.name}: {bad.size} of {theirs.size} differ, (input, ours, ap_fixed): {examples}"
    )


def test_ap_types_include_without_hls4ml(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from fpgac.errors import UsageError

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(UsageError, match=r"^the ap_fixed headers come from .*: pip install hls4ml$"):
        ap_types_include()
