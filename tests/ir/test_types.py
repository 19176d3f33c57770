"""Element and tensor types: parsing precision strings, their text form, and fixed-point ranges.

Every expected number here is worked by hand from the ap_fixed definition (a ``width``-bit
mantissa ``m`` stands for ``m * 2**(int_bits - width)``), not computed by the code under test.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from fpgac.errors import UsageError
from fpgac.ir import FixedType, FloatType, Overflow, Rounding, Sparsity, TensorType, parse_type

ROUNDINGS = ", ".join(r.value for r in Rounding)
OVERFLOWS = ", ".join(o.value for o in Overflow)


# -- parse_type ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("fixed<16,6>", FixedType(16, 6)),
        ("ufixed<8,0,RND,SAT>", FixedType(8, 0, signed=False, rounding=Rounding.RND, overflow=Overflow.SAT)),
        ("int<8>", FixedType(8, 8)),
        ("uint<4>", FixedType(4, 4, signed=False)),
        ("ap_fixed<18,8,RND_CONV,SAT_SYM>", FixedType(18, 8, rounding=Rounding.RND_CONV, overflow=Overflow.SAT_SYM)),
        ("ap_ufixed<6,2>", FixedType(6, 2, signed=False)),
        ("ap_int<3>", FixedType(3, 3)),
        ("ap_uint<1>", FixedType(1, 1, signed=False)),
        ("fixed<8,3,RND>", FixedType(8, 3, rounding=Rounding.RND)),  # overflow defaults to WRAP
        ("fixed<4,-2>", FixedType(4, -2)),
        ("fixed<4,6>", FixedType(4, 6)),
        ("fixed<64,0>", FixedType(64, 0)),
        ("float", FloatType(32)),
        ("float<32>", FloatType(32)),
        ("float<16>", FloatType(16)),
        ("float<64>", FloatType(64)),
    ],
)
def test_parse_type(text, expected):
    assert parse_type(text) == expected


@pytest.mark.parametrize(
    "text",
    ["  fixed<16,6>  ", "fixed < 16 , 6 >", "fixed<\t16,6\t>", "\nfixed<16, 6>\n", "ap_fixed <16,6>"],
)
def test_parse_type_ignores_whitespace(text):
    assert parse_type(text) == FixedType(16, 6)


def test_parse_type_whitespace_around_modes():
    assert parse_type("ufixed< 8 , 0 , RND , SAT >") == FixedType(
        8, 0, signed=False, rounding=Rounding.RND, overflow=Overflow.SAT
    )


@pytest.mark.parametrize(
    ("text", "rounding", "overflow"),
    [
        ("fixed<8,2,rnd,sat>", Rounding.RND, Overflow.SAT),
        ("fixed<8,2,Rnd_Conv,Sat_Sym>", Rounding.RND_CONV, Overflow.SAT_SYM),
        ("fixed<8,2,trn_zero,sat_zero>", Rounding.TRN_ZERO, Overflow.SAT_ZERO),
        ("fixed<8,2,rnd_min_inf>", Rounding.RND_MIN_INF, Overflow.WRAP),
    ],
)
def test_parse_type_modes_are_case_insensitive(text, rounding, overflow):
    assert parse_type(text) == FixedType(8, 2, rounding=rounding, overflow=overflow)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "fixed<16>",
            f"cannot parse precision 'fixed<16>': expected fixed<W,I[,ROUNDING[,OVERFLOW]]> with rounding one of "
            f"{ROUNDINGS} and overflow one of {OVERFLOWS}",
        ),
        (
            "fixed<a,b>",
            f"cannot parse precision 'fixed<a,b>': expected fixed<W,I[,ROUNDING[,OVERFLOW]]> with rounding one of "
            f"{ROUNDINGS} and overflow one of {OVERFLOWS}",
        ),
        (
            "fixed<8,2,FOO>",
            f"cannot parse precision 'fixed<8,2,FOO>': expected fixed<W,I[,ROUNDING[,OVERFLOW]]> with rounding one "
            f"of {ROUNDINGS} and overflow one of {OVERFLOWS}",
        ),
        (
            "ufixed<8,2,RND,BAR>",
            f"cannot parse precision 'ufixed<8,2,RND,BAR>': expected ufixed<W,I[,ROUNDING[,OVERFLOW]]> with rounding "
            f"one of {ROUNDINGS} and overflow one of {OVERFLOWS}",
        ),
        (
            "fixed<8,2,RND,SAT,X>",
            f"cannot parse precision 'fixed<8,2,RND,SAT,X>': expected fixed<W,I[,ROUNDING[,OVERFLOW]]> with rounding "
            f"one of {ROUNDINGS} and overflow one of {OVERFLOWS}",
        ),
        ("int<8,2>", "cannot parse precision 'int<8,2>': expected int<W>"),
        ("uint<x>", "cannot parse precision 'uint<x>': expected uint<W>"),
        ("int", "cannot parse precision 'int': expected int<W>"),
        (
            "bogus",
            "cannot parse precision 'bogus': expected e.g. 'fixed<16,6>', 'ufixed<8,0,RND,SAT>', 'int<8>' or 'float'",
        ),
        (
            "FIXED<16,6>",
            "cannot parse precision 'FIXED<16,6>': expected e.g. 'fixed<16,6>', 'ufixed<8,0,RND,SAT>', 'int<8>' "
            "or 'float'",
        ),
        (
            "fixed<16,6",
            "cannot parse precision 'fixed<16,6': expected e.g. 'fixed<16,6>', 'ufixed<8,0,RND,SAT>', 'int<8>' "
            "or 'float'",
        ),
        ("", "cannot parse precision '': expected e.g. 'fixed<16,6>', 'ufixed<8,0,RND,SAT>', 'int<8>' or 'float'"),
        ("float<32,1>", "cannot parse precision 'float<32,1>': float takes at most one width"),
        ("float<x>", "cannot parse precision 'float<x>': float takes at most one width"),
        ("float<8>", "FloatType bits must be 16, 32 or 64, not 8"),
        ("int<0>", "fixed-point width must be an integer from 1 to 64, not 0"),
        ("fixed<0,0>", "fixed-point width must be an integer from 1 to 64, not 0"),
        ("fixed<65,10>", "fixed-point width must be an integer from 1 to 64, not 65"),
        ("uint<65>", "fixed-point width must be an integer from 1 to 64, not 65"),
    ],
)
def test_parse_type_errors(text, message):
    with pytest.raises(UsageError, match="^" + re.escape(message) + "$"):
        parse_type(text)


def test_parse_type_rejects_non_strings():
    with pytest.raises(UsageError, match=r"^a precision must be a string such as 'fixed<16,6>', not 16$"):
        parse_type(16)


# -- str() and round trips -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "text"),
    [
        (FixedType(16, 6), "fixed<16,6>"),
        (FixedType(8, 0, signed=False), "ufixed<8,0>"),
        (FixedType(8, 8), "int<8>"),
        (FixedType(4, 4, signed=False), "uint<4>"),
        (FixedType(8, 8, rounding=Rounding.RND), "fixed<8,8,RND,WRAP>"),  # int<> form only with defaults
        (FixedType(8, 3, overflow=Overflow.SAT), "fixed<8,3,TRN,SAT>"),
        (FixedType(18, 8, rounding=Rounding.RND_CONV, overflow=Overflow.SAT_SYM), "fixed<18,8,RND_CONV,SAT_SYM>"),
        (FixedType(4, -2), "fixed<4,-2>"),
        (FixedType(4, 6), "fixed<4,6>"),
        (FloatType(32), "float32"),
        (FloatType(16), "float16"),
    ],
)
def test_str(dtype, text):
    assert str(dtype) == text


FIXED_ROUND_TRIP = [
    *(FixedType(12, 4, rounding=r, overflow=o) for r in Rounding for o in Overflow),
    *(FixedType(7, 2, signed=False, rounding=r, overflow=o) for r in Rounding for o in Overflow),
    FixedType(1, 1),
    FixedType(1, 1, signed=False),
    FixedType(1, 0),
    FixedType(64, 64),
    FixedType(64, 64, signed=False),
    FixedType(64, 32, rounding=Rounding.RND),
    FixedType(5, -3),
    FixedType(5, 9, signed=False, overflow=Overflow.SAT),
    FixedType(8, 8, rounding=Rounding.RND_INF, overflow=Overflow.WRAP),
    FixedType(8, 8, signed=False, rounding=Rounding.TRN, overflow=Overflow.SAT_ZERO),
]


@pytest.mark.parametrize("dtype", FIXED_ROUND_TRIP, ids=str)
def test_fixed_str_round_trips(dtype):
    assert parse_type(str(dtype)) == dtype


@pytest.mark.parametrize("bits", [16, 32, 64])
def test_float_str_round_trips(bits):
    assert parse_type(str(FloatType(bits))) == FloatType(bits)


# -- FixedType -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dtype", "frac_bits", "lsb", "min_mantissa", "max_mantissa", "min_value", "max_value"),
    [
        # fixed<8,3>: 5 fraction bits; mantissas -128..127 -> -128/32 .. 127/32
        (FixedType(8, 3), 5, 1 / 32, -128, 127, -4.0, 3.96875),
        # ufixed<8,0>: 8 fraction bits; mantissas 0..255 -> 0 .. 255/256
        (FixedType(8, 0, signed=False), 8, 1 / 256, 0, 255, 0.0, 0.99609375),
        # int<8>: no fraction bits
        (FixedType(8, 8), 0, 1.0, -128, 127, -128.0, 127.0),
        # uint<4>: 0..15
        (FixedType(4, 4, signed=False), 0, 1.0, 0, 15, 0.0, 15.0),
        # fixed<4,-2>: 6 fraction bits, the point two places left of the word; -8/64 .. 7/64
        (FixedType(4, -2), 6, 1 / 64, -8, 7, -0.125, 0.109375),
        # fixed<4,6>: -2 fraction bits, lsb 4; -8*4 .. 7*4
        (FixedType(4, 6), -2, 4.0, -8, 7, -32.0, 28.0),
        # ufixed<4,6>: 0..15 times 4
        (FixedType(4, 6, signed=False), -2, 4.0, 0, 15, 0.0, 60.0),
        # fixed<1,1>: a lone sign bit, -1..0
        (FixedType(1, 1), 0, 1.0, -1, 0, -1.0, 0.0),
        # fixed<64,0>: the widest
        (FixedType(64, 0), 64, 2.0**-64, -(2**63), 2**63 - 1, -0.5, (2**63 - 1) * 2.0**-64),
    ],
    ids=str,
)
def test_fixed_properties(dtype, frac_bits, lsb, min_mantissa, max_mantissa, min_value, max_value):
    assert dtype.frac_bits == frac_bits
    assert dtype.lsb == lsb
    assert dtype.min_mantissa == min_mantissa
    assert dtype.max_mantissa == max_mantissa
    assert dtype.min_value == min_value
    assert dtype.max_value == max_value


def test_fixed_defaults():
    t = FixedType(16, 6)
    assert (t.signed, t.rounding, t.overflow) == (True, Rounding.TRN, Overflow.WRAP)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(width=0, int_bits=0), "fixed-point width must be an integer from 1 to 64, not 0"),
        (dict(width=65, int_bits=0), "fixed-point width must be an integer from 1 to 64, not 65"),
        (dict(width=8.0, int_bits=0), "fixed-point width must be an integer from 1 to 64, not 8.0"),
        (dict(width=True, int_bits=0), "fixed-point width must be an integer from 1 to 64, not True"),
        (dict(width=8, int_bits=2.5), "fixed-point integer bits must be an integer, not 2.5"),
        (dict(width=8, int_bits=False), "fixed-point integer bits must be an integer, not False"),
        (dict(width=8, int_bits=2, rounding="RND"), "rounding must be a Rounding, not 'RND'"),
        (dict(width=8, int_bits=2, overflow="SAT"), "overflow must be an Overflow, not 'SAT'"),
    ],
)
def test_fixed_rejects_bad_fields(kwargs, message):
    with pytest.raises(UsageError, match="^" + re.escape(message) + "$"):
        FixedType(**kwargs)


@pytest.mark.parametrize("bits", [0, 8, 31, 128])
def test_float_rejects_bad_bits(bits):
    with pytest.raises(UsageError, match=rf"^FloatType bits must be 16, 32 or 64, not {bits}$"):
        FloatType(bits)


def test_types_are_hashable_and_compare_by_value():
    assert len({FixedType(8, 3), FixedType(8, 3), parse_type("fixed<8,3>")}) == 1
    assert FixedType(8, 3) != FixedType(8, 3, signed=False)
    assert FixedType(8, 3) != FixedType(8, 3, rounding=Rounding.RND)
    assert FixedType(8, 3) != FixedType(8, 3, overflow=Overflow.SAT)
    assert len({FloatType(), FloatType(32), FloatType(16)}) == 2
    assert FloatType(32) != FixedType(32, 32)
    t = TensorType(FixedType(8, 3), (2, 3))
    assert hash(t) == hash(TensorType(FixedType(8, 3), [2, 3]))
    assert {t: 1}[TensorType(FixedType(8, 3), (2, 3))] == 1


@pytest.mark.parametrize(
    ("obj", "field"),
    [
        (FixedType(8, 3), "width"),
        (FixedType(8, 3), "rounding"),
        (FloatType(), "bits"),
        (TensorType(FloatType(), (2,)), "shape"),
        (Sparsity(np.zeros(2, bool)), "zero"),
    ],
)
def test_types_are_frozen(obj, field):
    with pytest.raises(dataclasses.FrozenInstanceError, match=f"^cannot assign to field '{field}'$"):
        setattr(obj, field, getattr(obj, field))


# -- Sparsity ------------------------------------------------------------------------------------


def test_sparsity_counts():
    s = Sparsity(np.array([[True, False, False], [True, True, False]]))
    assert s.nnz == 3
    assert s.density == 0.5
    assert s.zero.dtype == np.bool_
    assert repr(s) == "Sparsity(nnz=3/6)"


def test_sparsity_of_all_zero_and_empty_masks():
    assert Sparsity(np.ones((2, 2), bool)).nnz == 0
    assert Sparsity(np.ones((2, 2), bool)).density == 0.0
    assert Sparsity(np.zeros((0,), bool)).density == 1.0  # nothing to prune: dense by convention


def test_sparsity_converts_the_mask_to_bool():
    s = Sparsity([0, 1, 2, 0])
    assert s.zero.dtype == np.bool_
    np.testing.assert_array_equal(s.zero, [False, True, True, False])
    assert s.nnz == 2


def test_sparsity_equality_and_hash():
    a = Sparsity(np.array([True, False, True]))
    b = Sparsity([1, 0, 1])
    assert a == b and hash(a) == hash(b)
    assert a != Sparsity(np.array([True, True, False]))
    assert Sparsity(np.zeros((2, 3), bool)) != Sparsity(np.zeros((3, 2), bool))
    assert Sparsity(np.zeros((2, 3), bool)) != Sparsity(np.zeros((6,), bool))
    assert a != "not a sparsity"
    assert len({a, b}) == 1


def test_sparsity_mask_is_an_immutable_copy():
    mask = np.array([True, False])
    s = Sparsity(mask)
    mask[1] = True  # the caller's array changing later must not change the type
    assert s.nnz == 1
    assert not s.zero.flags.writeable
    with pytest.raises(ValueError, match="^assignment destination is read-only$"):
        s.zero[0] = False


# -- TensorType ----------------------------------------------------------------------------------


def test_tensor_type_normalizes_shape():
    t = TensorType(FloatType(), [np.int64(3), 4])
    assert t.shape == (3, 4)
    assert all(type(d) is int for d in t.shape)
    assert t.rank == 2 and t.size == 12
    assert TensorType(FloatType(), ()).size == 1
    assert TensorType(FloatType(), (3, 0)).size == 0


@pytest.mark.parametrize("shape", [(3, -1), (2.0,), (True, 2), ("a",), (None,)])
def test_tensor_type_rejects_bad_shapes(shape):
    message = f"a tensor shape must be a tuple of non-negative integers, not {shape!r}"
    with pytest.raises(UsageError, match="^" + re.escape(message) + "$"):
        TensorType(FloatType(), shape)


def test_tensor_type_rejects_mismatched_sparsity():
    with pytest.raises(UsageError, match=r"^sparsity mask shape \(3, 2\) does not match tensor shape \(2, 3\)$"):
        TensorType(FloatType(), (2, 3), Sparsity(np.zeros((3, 2), bool)))


def test_tensor_type_with_shape_drops_sparsity():
    t = TensorType(FixedType(8, 3), (2, 3), Sparsity(np.eye(2, 3, dtype=bool)))
    assert t.with_shape((6,)) == TensorType(FixedType(8, 3), (6,))


def test_tensor_type_equality_includes_sparsity():
    mask = np.array([True, False])
    assert TensorType(FloatType(), (2,), Sparsity(mask)) == TensorType(FloatType(), (2,), Sparsity(mask.copy()))
    assert TensorType(FloatType(), (2,), Sparsity(mask)) != TensorType(FloatType(), (2,))


@pytest.mark.parametrize(
    ("tensor_type", "text"),
    [
        (TensorType(FloatType(), (3, 4)), "float32[3,4]"),
        (TensorType(FloatType(64), ()), "float64[]"),
        (TensorType(FixedType(16, 6), (10,)), "fixed<16,6>[10]"),
        (TensorType(FixedType(8, 8, signed=False), (1, 2, 3)), "uint<8>[1,2,3]"),
        (TensorType(FixedType(8, 2, rounding=Rounding.RND, overflow=Overflow.SAT), (2,)), "fixed<8,2,RND,SAT>[2]"),
        (TensorType(FloatType(), (2, 2), Sparsity(np.array([[True, False], [False, False]]))), "float32[2,2]{nnz=3}"),
    ],
)
def test_tensor_type_str(tensor_type, text):
    assert str(tensor_type) == text
