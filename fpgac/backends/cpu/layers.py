"""One emitter per IR op: the layer function that computes it in integer C (the table ``EMITTERS``).

Each emitter follows its op's function in :mod:`fpgac.sim.reference` (``_FIXED_OPS``) and
:mod:`fpgac.sim.recurrent`; the docstrings say where the C differs in form only. Shapes are per
sample and channels-first, flattened row-major, so a buffer index is the numpy flat index. A 1D
Conv or Pool is written as 2D with a height of 1.

Sparse weights: a weight whose type records pruning (``sparsity``), or whose zeros make the
sparse form smaller than the dense array, is stored and iterated as non-zeros only: a Dense or
recurrent matrix as compressed rows (values, column indices, row starts), a Conv as a list of
non-zero taps (value, input offset, kernel row and column). Otherwise the weights are stored
dense; a Conv then still skips its zero weights at run time (one test per tap, not per MAC).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import numpy as np

from fpgac.errors import UnsupportedError
from fpgac.ir import Act, FixedType, Node, Op, PoolKind, Value
from fpgac.ir.semantics import exact_types

from .arith import lookup, requantizer, sigmoid_by_magnitude, tanh_by_magnitude
from .cgen import (
    CWriter,
    compute_type,
    container,
    container_bytes,
    maxabs,
    rng,
    rng_of_container,
    shl,
    smallest_int,
    smallest_uint,
)
from .program import Layer, Program

__all__ = ["EMITTERS"]


def _where(node: Node) -> str:
    return f"node {node.name!r} ({node.op.value})"


def _unsupported(node: Node, why: str) -> UnsupportedError:
    return UnsupportedError(f"{_where(node)}: {why}")


def _frac(value: Value) -> int:
    return value.type.dtype.frac_bits


def _shift_up(node: Node, data: np.ndarray, src: int, dst: int) -> np.ndarray:
    if dst < src:
        raise _unsupported(node, f"cannot align {src} to {dst} fractional bits exactly")
    return np.asarray(data, dtype=object) * (1 << (dst - src))


def product_type(ct: str, xmax: int, wmax: int) -> str:
    """``int32_t`` if every product ``x * w`` fits it, else the sum's compute type ``ct``."""
    return "int32_t" if xmax * wmax < (1 << 31) else ct


def _int_range(data: np.ndarray) -> tuple[int, int]:
    flat = np.asarray(data, dtype=object).reshape(-1)
    return (int(min(flat)), int(max(flat))) if flat.size else (0, 0)


def _const_for(p: Program, node: Node, what: str, data: np.ndarray, role: str, comment: str) -> str:
    lo, hi = _int_range(data)
    return p.const(f"{node.name}_{what}", smallest_int(min(lo, 0), max(hi, 0)), np.asarray(data, dtype=np.int64),
                   role, comment)


# -- sparse storage ----------------------------------------------------------------------------------


class Rows:
    """A constant matrix ``[rows, cols]`` as the layer stores it: dense, or compressed rows of non-zeros."""

    def __init__(self, p: Program, node: Node, weight: Value, matrix: np.ndarray, what: str) -> None:
        self.matrix = np.asarray(matrix, dtype=np.int64)
        rows, cols = self.matrix.shape
        t = weight.type.dtype
        self.wtype = container(t)
        nnz = int(np.count_nonzero(self.matrix))
        wbytes = container_bytes(self.wtype)
        col_t, ptr_t = smallest_uint(max(cols - 1, 0)), smallest_uint(nnz)
        csr_bytes = nnz * (wbytes + container_bytes(col_t)) + (rows + 1) * container_bytes(ptr_t)
        declared = weight.type.sparsity is not None
        self.sparse = nnz < rows * cols and (declared or csr_bytes < rows * cols * wbytes)
        self.rows, self.cols, self.nnz = rows, cols, nnz
        self.wmax = int(np.abs(self.matrix).max()) if self.matrix.size else 0
        name = f"{node.name}_{what}"
        if self.sparse:
            r, c = np.nonzero(self.matrix)
            ptr = np.concatenate([[0], np.cumsum(np.bincount(r, minlength=rows))])
            why = "pruned" if declared else "zeros"
            self.val = p.const(name, self.wtype, self.matrix[r, c], "weights",
                               f"{weight.name}: {t}, {nnz} non-zeros of {rows}x{cols} ({why}), by row")
            self.col = p.const(f"{name}_col", col_t, c, "indices", f"{weight.name}: column of each non-zero")
            self.ptr = p.const(f"{name}_row", ptr_t, ptr, "indices", f"{weight.name}: where each row starts")
        else:
            self.val = p.const(name, self.wtype, self.matrix, "weights", f"{weight.name}: {t}, {rows}x{cols}")

    def dot(self, w: CWriter, ct: str, acc: str, row: str, x: str, index: str, xmax: int) -> None:
        """``acc += sum_k matrix[row, k] * x[k]`` (x an array expression, ``|x| <= xmax``) in ``ct``.

        Each product is computed in ``int32_t`` when it fits, even if the sum needs ``int64_t``:
        a 64-bit multiply is slow on 32-bit CPUs and has no SIMD form on most 64-bit ones.
        """
        pt = product_type(ct, xmax, self.wmax)
        if self.sparse:
            with w.block(f"for ({index} j = {self.ptr}[{row}]; j < {self.ptr}[{row} + 1]; j++)"):
                w(f"{acc} += ({pt}){x}[{self.col}[j]] * {self.val}[j];")
        else:
            first = f"({row})" if " " in row else row
            w(f"const {self.wtype} *wr = {self.val} + {first} * {self.cols};" if self.cols else "")
            with w.block(f"for ({index} k = 0; k < {self.cols}; k++)"):
                w(f"{acc} += ({pt}){x}[k] * wr[k];")

    def row_bound(self, xmax: int) -> np.ndarray:
        """Per row, the largest ``|sum_k matrix[row, k] * x[k]|`` for ``|x| <= xmax``."""
        return np.abs(self.matrix.astype(object)).sum(axis=1) * xmax if self.cols else np.zeros(self.rows, dtype=object)

    def describe(self) -> str:
        return (f"{self.nnz} non-zero weights of {self.rows * self.cols}, stored by row as non-zeros only"
                if self.sparse else f"{self.rows}x{self.cols} weights, dense")


# -- Dense -------------------------------------------------------------------------------------------------


def _dense(p: Program, node: Node) -> None:
    x, weight, bias = node.inputs[0], node.inputs[1], node.input(2)
    tx, ty = x.type.dtype, node.output.type.dtype
    frac = tx.frac_bits + _frac(weight)
    if ty.frac_bits != frac:
        raise _unsupported(node, f"output {ty} does not have the exact product's {frac} fractional bits")
    K, M = weight.type.shape
    rows = x.type.size // K if K else 0
    mat = Rows(p, node, weight, np.asarray(weight.data).T, "w")
    b = _shift_up(node, bias.data, _frac(bias), frac) if bias is not None else np.zeros(M, dtype=object)
    bound = int(max(np.abs(b) + mat.row_bound(maxabs(tx)), default=0))
    ct = compute_type((-bound, bound), rng(ty), where=_where(node))
    B = _const_for(p, node, "bias", b, "biases", f"{bias.name} at {frac} fractional bits") if bias is not None else None
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    outer = w.block(f"for ({it} r = 0; r < {rows}; r++)") if rows > 1 else contextlib.nullcontext()
    with outer:
        xr, yr = (f"{X} + r * {K}", f"{Y} + r * {M}") if rows > 1 else (X, Y)
        w(f"const {p.ctype(x)} *xr = {xr};", f"{p.ctype(node.output)} *yr = {yr};")
        with w.block(f"for ({it} o = 0; o < {M}; o++)"):
            w(f"{ct} acc = {B}[o];" if B else f"{ct} acc = 0;")
            mat.dot(w, ct, "acc", "o", "xr", it, maxabs(tx))
            w(f"yr[o] = ({p.ctype(node.output)})acc;")
    L.finish(f"{K} -> {M}{f' on {rows} rows' if rows > 1 else ''}: {mat.describe()}",
             f"x {tx} ({p.ctype(x)}) times w {weight.type.dtype} ({mat.wtype}), exact sum in {ct} "
             f"(bound {bound})")


# -- Conv ----------------------------------------------------------------------------------------------------


def _as_2d(shape: Sequence[int]) -> tuple[int, int]:
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


def _pairs(values: Sequence[int], nd: int, fill: int) -> tuple[int, int]:
    return (fill, values[0]) if nd == 1 else (values[0], values[1])


def _valid(size: int, out: int, stride: int, pad: int, offset: int) -> tuple[int, int]:
    """The output positions ``[lo, hi)`` whose tap at ``offset`` (dilated) reads inside ``[0, size)``."""
    lo = max(0, -((offset - pad) // stride))  # ceil((pad - offset) / stride)
    hi = min(out, (size - 1 + pad - offset) // stride + 1)
    return lo, max(lo, hi)


def _conv(p: Program, node: Node) -> None:
    """Conv as a sum over the kernel taps: for each output channel, each non-zero tap adds
    ``w * x[shifted window]`` to the whole output plane (the positions where the tap reads padding
    are left out: padding is zero). The accumulator is the output array itself when its C type
    holds every partial sum, so the innermost loop runs along a row and vectorizes."""
    x, weight, bias = node.inputs[0], node.inputs[1], node.input(2)
    tx, ty = x.type.dtype, node.output.type.dtype
    frac = tx.frac_bits + _frac(weight)
    if ty.frac_bits != frac:
        raise _unsupported(node, f"output {ty} does not have the exact product's {frac} fractional bits")
    a = node.attrs
    nd = len(x.type.shape) - 1
    C, (H, W) = x.type.shape[0], _as_2d(x.type.shape[1:])
    M, (OH, OW) = node.output.type.shape[0], _as_2d(node.output.type.shape[1:])
    data = np.asarray(weight.data, dtype=np.int64)
    data = data.reshape(data.shape[0], data.shape[1], *_as_2d(data.shape[2:]))
    Cg, KH, KW = data.shape[1], data.shape[2], data.shape[3]
    groups = a["groups"]
    SH, SW = _pairs(a["strides"], nd, 1)
    DH, DW = _pairs(a["dilations"], nd, 1)
    PT, PL = _pairs(a["pads"][:nd], nd, 0)
    per_group = M // groups
    rows = [_valid(H, OH, SH, PT, ky * DH) for ky in range(KH)]
    cols = [_valid(W, OW, SW, PL, kx * DW) for kx in range(KW)]
    b = _shift_up(node, bias.data, _frac(bias), frac) if bias is not None else np.zeros(M, dtype=object)
    xlo, xhi = rng(tx)
    neg = [sum(min(0, int(v) * xlo, int(v) * xhi) for v in data[m].reshape(-1)) for m in range(M)]
    pos = [sum(max(0, int(v) * xlo, int(v) * xhi) for v in data[m].reshape(-1)) for m in range(M)]
    # every partial sum (the bias first, then the products in any order) lies in [plo, phi]
    plo = min((int(b[m]) + neg[m] for m in range(M)), default=0)
    phi = max((int(b[m]) + pos[m] for m in range(M)), default=0)
    ct = compute_type((plo, phi), (min(neg, default=0), max(pos, default=0)), rng(ty), where=_where(node))
    out_t = p.ctype(node.output)
    in_place = plo >= rng_of_container(out_t)[0] and phi <= rng_of_container(out_t)[1]
    wt = container(weight.type.dtype)
    pt = product_type(ct, maxabs(tx), int(np.abs(data).max()) if data.size else 0)
    nnz = int(np.count_nonzero(data))
    taps = [(m, c, ky, kx) for m in range(M) for c, ky, kx in zip(*np.nonzero(data[m]))]
    offsets = [((m // per_group * Cg + c) * H + ky * DH - PT) * W + kx * DW - PL for m, c, ky, kx in taps]
    off_t = smallest_int(min(offsets, default=0), max(offsets, default=0))
    k_t = smallest_uint(max(KH, KW))
    ptr = np.searchsorted([t[0] for t in taps], np.arange(M + 1)) if taps else np.zeros(M + 1, dtype=np.int64)
    ptr_t = smallest_uint(nnz)
    full_rows = all(r == (0, OH) for r in rows)  # no kernel row ever reads padding
    full_cols = all(c == (0, OW) for c in cols)
    per_tap = container_bytes(wt) + container_bytes(off_t) + (2 - full_rows - full_cols) * container_bytes(k_t)
    tap_bytes = nnz * per_tap + (M + 1) * container_bytes(ptr_t)
    sparse = nnz < data.size and (weight.type.sparsity is not None or tap_bytes < data.size * container_bytes(wt))
    B = _const_for(p, node, "bias", b, "biases", f"{bias.name} at {frac} fractional bits") if bias is not None else None
    if sparse:
        V = p.const(f"{node.name}_w", wt, np.array([data[t] for t in taps], dtype=np.int64), "weights",
                    f"{weight.name}: {weight.type.dtype}, {nnz} non-zero taps of {data.size}, by output channel")
        OFF = p.const(f"{node.name}_off", off_t, np.array(offsets), "indices",
                      f"{weight.name}: input offset of each tap at output (0, 0) (negative: in the padding)")
        KY = None if full_rows else p.const(f"{node.name}_ky", k_t, np.array([t[2] for t in taps]), "indices",
                                            f"{weight.name}: kernel row of each tap")
        KX = None if full_cols else p.const(f"{node.name}_kx", k_t, np.array([t[3] for t in taps]), "indices",
                                            f"{weight.name}: kernel column of each tap")
        PTR = p.const(f"{node.name}_tap", ptr_t, ptr, "indices",
                      f"{weight.name}: where each output channel's taps start")
    else:
        V = p.const(f"{node.name}_w", wt, data, "weights",
                    f"{weight.name}: {weight.type.dtype}, [{M}][{Cg}][{KH}][{KW}]")
    if not full_rows:
        ROWS = p.const(f"{node.name}_rows", smallest_uint(OH), np.array(rows).reshape(-1), "constants",
                       "per kernel row: the output rows [lo, hi) it reads inside the input")
    if not full_cols:
        COLS = p.const(f"{node.name}_cols", smallest_uint(OW), np.array(cols).reshape(-1), "constants",
                       "per kernel column: the output columns [lo, hi) it reads inside the input")
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    plane = OH * OW
    acc = "ym" if in_place else L.local(ct, "acc", plane)
    with w.block(f"for ({it} m = 0; m < {M}; m++)"):
        w(f"{out_t} *ym = {Y} + m * {plane};")
        with w.block(f"for ({it} i = 0; i < {plane}; i++)"):
            w(f"{acc}[i] = {B}[m];" if B else f"{acc}[i] = 0;")

        def tap(wv: str, off: str, ky: str, kx: str) -> None:
            r0, r1 = ("0", str(OH)) if full_rows else (f"{ROWS}[2 * {ky}]", f"{ROWS}[2 * {ky} + 1]")
            c0, c1 = ("0", str(OW)) if full_cols else (f"{COLS}[2 * {kx}]", f"{COLS}[2 * {kx} + 1]")
            with w.block(f"for ({it} oy = {r0}; oy < {r1}; oy++)"):
                store = out_t if in_place else ct
                step = f" * {SW}" if SW != 1 else ""
                w(f"const {it} at = {off} + oy * {SH * W};", f"{store} *ar = {acc} + oy * {OW};")
                w(f"for ({it} ox = {c0}; ox < {c1}; ox++)",
                  f"    ar[ox] = ({store})(ar[ox] + wv * {X}[at + ox{step}]);")

        if sparse:
            with w.block(f"for ({it} j = {PTR}[m]; j < {PTR}[m + 1]; j++)"):
                w(f"const {pt} wv = {V}[j];")
                tap("wv", f"{OFF}[j]", f"{KY}[j]", f"{KX}[j]")
        else:
            w(f"const {wt} *wm = {V} + m * {Cg * KH * KW};",
              f"const {it} first = (m / {per_group}) * {Cg * H * W} - {PT * W + PL};" if groups > 1
              else f"const {it} first = -{PT * W + PL};")
            w(f"for ({it} c = 0; c < {Cg}; c++)", f"    for ({it} ky = 0; ky < {KH}; ky++)")
            with w.indent(), w.indent():
                with w.block(f"for ({it} kx = 0; kx < {KW}; kx++)"):
                    w(f"const {pt} wv = wm[(c * {KH} + ky) * {KW} + kx];",
                      "if (wv == 0)", "    continue; /* zero weights are skipped */")
                    tap("wv", f"first + (c * {H} + ky * {DH}) * {W} + kx * {DW}", "ky", "kx")
        if not in_place:
            with w.block(f"for ({it} i = 0; i < {plane}; i++)"):
                w(f"ym[i] = ({out_t})acc[i];")
    how = (f"{nnz} non-zero taps of {data.size}, stored and iterated as non-zeros only" if sparse
           else f"{data.size} weights stored dense (fewer bytes than a tap list), zero ones skipped")
    L.finish(f"{C}x{H}x{W} -> {M}x{OH}x{OW}, kernel {KH}x{KW}, stride {SH}x{SW}, dilation {DH}x{DW}, "
             f"pads {list(a['pads'])}, groups {groups}",
             f"{how}; exact sums in {ct}, accumulated {'in the output' if in_place else 'in a local array'} "
             f"(partial sums {plo}..{phi})")


# -- pooling ------------------------------------------------------------------------------------------------


def _round_half_up_reciprocal(count: int, bits: int) -> int:
    return ((1 << (bits + 1)) // max(count, 1) + 1) >> 1


def _pool(p: Program, node: Node) -> None:
    """Pool, as fpgac.sim.reference._pool_fixed: padding never wins a max; an average is
    ``sum * round_half_up(2**K / count)`` with count the window's taps inside the input (or its
    explicit pads, with count_include_pad; never the extension ceil_mode adds)."""
    x = node.inputs[0]
    tx, ty = x.type.dtype, node.output.type.dtype
    a = node.attrs
    nd = len(x.type.shape) - 1
    C, (H, W) = x.type.shape[0], _as_2d(x.type.shape[1:])
    OH, OW = _as_2d(node.output.type.shape[1:])
    KH, KW = _pairs(a["kernel"], nd, 1)
    SH, SW = _pairs(a["strides"], nd, 1)
    DH, DW = _pairs(a["dilations"], nd, 1)
    PT, PL = _pairs(a["pads"][:nd], nd, 0)
    PB, PR = _pairs(a["pads"][nd:], nd, 0)
    avg = a["kind"] is PoolKind.AVG
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    lo, hi = rng(tx)
    taps = KH * KW
    if avg:
        bits = a["reciprocal_bits"]
        if ty.frac_bits != tx.frac_bits + bits:
            raise _unsupported(node, f"output {ty} does not have {tx.frac_bits} + {bits} fractional bits")
        counts = np.outer(_counts(H, PT, PB, KH, SH, DH, OH, a["count_include_pad"]),
                          _counts(W, PL, PR, KW, SW, DW, OW, a["count_include_pad"]))
        recips = np.vectorize(lambda c: _round_half_up_reciprocal(int(c), bits), otypes=[object])(counts)
        rmax = int(recips.max()) if recips.size else 0
        ct = compute_type((lo * taps, hi * taps), (lo * taps * rmax, hi * taps * rmax), rng(ty), where=_where(node))
        uniform = recips.size == 0 or (recips == recips.flat[0]).all()
        if uniform:
            recip = str(int(recips.flat[0])) if recips.size else "0"
        else:
            R = p.const(f"{node.name}_recip", smallest_uint(rmax), recips.astype(np.int64), "constants",
                        f"round(2^{bits} / taps counted) of each window")
            recip = f"({ct}){R}[oy * {OW} + ox]"
    else:
        ct = compute_type(rng(tx), where=_where(node))
    with w.block(f"for ({it} c = 0; c < {C}; c++)"):
        w(f"const {p.ctype(x)} *xc = {X} + c * {H * W};")
        with w.block(f"for ({it} oy = 0; oy < {OH}; oy++)"):
            with w.block(f"for ({it} ox = 0; ox < {OW}; ox++)"):
                w(f"{ct} v = {0 if avg else lo};")
                with w.block(f"for ({it} ky = 0; ky < {KH}; ky++)"):
                    w(f"const {it} iy = oy * {SH} - {PT} + ky * {DH};")
                    if PT or PB or (OH - 1) * SH + (KH - 1) * DH >= H:
                        w(f"if (iy < 0 || iy >= {H})", "    continue;")
                    with w.block(f"for ({it} kx = 0; kx < {KW}; kx++)"):
                        w(f"const {it} ix = ox * {SW} - {PL} + kx * {DW};")
                        if PL or PR or (OW - 1) * SW + (KW - 1) * DW >= W:
                            w(f"if (ix < 0 || ix >= {W})", "    continue;")
                        w(f"const {ct} t = xc[iy * {W} + ix];")
                        w(*(["v += t;"] if avg else ["if (t > v)", "    v = t;"]))
                result = f"v * {recip}" if avg else "v"
                w(f"{Y}[(c * {OH} + oy) * {OW} + ox] = ({p.ctype(node.output)})({result});")
    L.finish(f"{a['kind'].value} over {KH}x{KW}, stride {SH}x{SW}, dilation {DH}x{DW}, pads {PT},{PL},{PB},{PR}"
             + (", ceil_mode" if a["ceil_mode"] else "")
             + (f", times round(2^{a['reciprocal_bits']} / count)" if avg else ""))


def _counts(size: int, pb: int, pe: int, k: int, s: int, d: int, out: int, include_pad: bool) -> np.ndarray:
    """Per output position along one axis, how many taps an average counts (the reference's mask)."""
    lo, hi = (0, size + pb + pe) if include_pad else (pb, pb + size)
    return np.array([sum(lo <= o * s + t * d < hi for t in range(k)) for o in range(out)], dtype=np.int64)


def _global_pool(p: Program, node: Node) -> None:
    x = node.inputs[0]
    tx, ty = x.type.dtype, node.output.type.dtype
    C = x.type.shape[0]
    n = x.type.size // C if C else 0
    lo, hi = rng(tx)
    avg = node.attrs["kind"] is PoolKind.AVG
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    if avg:
        bits = node.attrs["reciprocal_bits"]
        recip = _round_half_up_reciprocal(n, bits)
        ct = compute_type((lo * n, hi * n), (lo * n * recip, hi * n * recip), rng(ty), where=_where(node))
    else:
        ct = compute_type(rng(tx))
    with w.block(f"for ({it} c = 0; c < {C}; c++)"):
        w(f"{ct} v = {0 if avg else lo};")
        with w.block(f"for ({it} i = 0; i < {n}; i++)"):
            w(f"const {ct} t = {X}[c * {n} + i];")
            w(*(["v += t;"] if avg else ["if (t > v)", "    v = t;"]))
        w(f"{Y}[c] = ({p.ctype(node.output)})({f'v * {recip}' if avg else 'v'});")
    L.finish(f"{node.attrs['kind'].value} over {n} positions"
             + (f", times round(2^{bits} / {n}) = {recip}" if avg else ""))


# -- elementwise -----------------------------------------------------------------------------------------------


def _loops(L: Layer, out_shape: Sequence[int], operands: Sequence[Sequence[int]],
           body: Callable[[str, list[str]], list[str]]) -> None:
    """Loop over ``out_shape``; ``body(out_index, operand_indices)`` gives the statements.

    Operands broadcast as numpy does (trailing axes aligned, size-1 axes repeated).
    """
    w, it = L.w, L.p.index
    n = math.prod(out_shape)
    if all(math.prod(s) in (n, 1) for s in operands):
        with w.block(f"for ({it} i = 0; i < {n}; i++)"):
            w(*body("i", ["i" if math.prod(s) == n and n != 1 else "0" for s in operands]))
        return
    rank = len(out_shape)
    indices = []
    for s in operands:
        padded = (1,) * (rank - len(s)) + tuple(s)
        strides = [math.prod(padded[d + 1:]) for d in range(rank)]
        terms = [f"i{d} * {strides[d]}" if strides[d] != 1 else f"i{d}" for d in range(rank) if padded[d] != 1]
        indices.append(" + ".join(terms) or "0")
    w(f"{it} o = 0;")
    for d in range(rank - 1):
        w(f"for ({it} i{d} = 0; i{d} < {out_shape[d]}; i{d}++)")
        w.level += 1
    with w.block(f"for ({it} i{rank - 1} = 0; i{rank - 1} < {out_shape[rank - 1]}; i{rank - 1}++)"):
        w(*body("o", indices))
        w("o++;")
    w.level -= rank - 1


def _activation(p: Program, node: Node) -> None:
    x = node.inputs[0]
    tx, ty = x.type.dtype, node.output.type.dtype
    kind = node.attrs["kind"]
    L = Layer(p, node)
    X = L.input(0, "x")
    S = L.input(1, "slope") if kind is Act.PRELU else None
    Y = L.output(0, "y")
    out = p.ctype(node.output)
    lo, hi = rng(tx)
    if kind is Act.PRELU:
        slope = node.inputs[1]
        fs = _frac(slope)
        if fs < 0:
            raise _unsupported(node, f"slope type {slope.type.dtype} has negative fractional bits")
        smax = maxabs(slope.type.dtype)
        ct = compute_type((lo * smax, hi * smax), (lo << fs, hi << fs), (-(max(-lo, hi) * smax), max(-lo, hi) * smax),
                          rng(ty), where=_where(node))
        _loops(L, x.type.shape, [x.type.shape, slope.type.shape],
               lambda o, ix: [f"const {ct} v = {X}[{ix[0]}];",
                              f"{Y}[{o}] = ({out})(v >= 0 ? {shl(ct, 'v', fs)} : v * {S}[{ix[1]}]);"])
        L.finish(f"prelu: x << {fs} where x >= 0, else x * slope")
        return
    ct = compute_type((lo, hi), (-hi, -lo), where=_where(node))
    if kind is Act.RELU:
        expr, what = "v > 0 ? v : 0", "relu"
    elif kind is Act.ABS:
        expr, what = "v < 0 ? -v : v", "abs"
    elif kind is Act.CLIP:
        cmin, cmax = node.attrs["min"], node.attrs["max"]
        clo = lo if cmin == -np.inf else max(lo, int(np.ceil(cmin / tx.lsb)))
        chi = hi if cmax == np.inf else min(hi, int(np.floor(cmax / tx.lsb)))
        expr, what = f"v < {clo} ? {clo} : v > {chi} ? {chi} : v", f"clip to mantissas {clo}..{chi}"
    else:
        raise _unsupported(node, f"activation {kind.value} has no exact fixed-point form "
                                 "(quantization makes it a Lookup)")
    with L.w.block(f"for ({p.index} i = 0; i < {x.type.size}; i++)"):
        L.w(f"const {ct} v = {X}[i];", f"{Y}[i] = ({out})({expr});")
    L.finish(what)


def _lookup(p: Program, node: Node) -> None:
    x, table = node.inputs[0], node.attrs["table"]
    if table.in_type.frac_bits != _frac(x) or table.out_type != node.output.type.dtype:
        raise _unsupported(node, f"table {table} does not fit {x.type.dtype} -> {node.output.type.dtype}")
    lut = lookup(p, table, *rng(x.type.dtype))
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    with L.w.block(f"for ({p.index} i = 0; i < {x.type.size}; i++)"):
        L.w(f"{Y}[i] = {lut}({X}[i]);")
    L.finish(f"{node.attrs['kind'].value if 'kind' in node.attrs else table.function}: {table}")


def _quant(p: Program, node: Node) -> None:
    x = node.inputs[0]
    rq = requantizer(p, x.type.dtype, node.output.type.dtype)
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    with L.w.block(f"for ({p.index} i = 0; i < {x.type.size}; i++)"):
        L.w(f"{Y}[i] = {rq}({X}[i]);")
    L.finish(f"requantize {x.type.dtype} -> {node.output.type.dtype}")


def _scale_shift(p: Program, node: Node) -> None:
    x, scale, shift = node.inputs
    tx, ts, ty = x.type.dtype, scale.type.dtype, node.output.type.dtype
    frac = tx.frac_bits + ts.frac_bits
    sh = _shift_up(node, shift.data, _frac(shift), frac)
    SH = _const_for(p, node, "shift", sh, "biases", f"{shift.name} at {frac} fractional bits")
    smax, shmax = maxabs(ts), max(abs(v) for v in np.asarray(sh).reshape(-1)) if sh.size else 0
    bound = maxabs(tx) * smax + shmax
    ct = compute_type((-bound, bound), rng(ty), where=_where(node))
    L = Layer(p, node)
    X, S, Y = L.input(0, "x"), L.input(1, "scale"), L.output(0, "y")
    out = p.ctype(node.output)
    _loops(L, x.type.shape, [x.type.shape, scale.type.shape, shift.type.shape],
           lambda o, ix: [f"{Y}[{o}] = ({out})(({ct}){X}[{ix[0]}] * {S}[{ix[1]}] + {SH}[{ix[2]}]);"])
    L.finish("x * scale + shift")


def _binary(p: Program, node: Node) -> None:
    """Add/Sub/Max/Min with both inputs shifted up to the output's fractional bits; Mul exact."""
    a, b = node.inputs
    ty = node.output.type.dtype
    ra, rb = rng(a.type.dtype), rng(b.type.dtype)
    if node.op is Op.MUL:
        if ty.frac_bits != _frac(a) + _frac(b):
            raise _unsupported(node, f"output {ty} is not the exact product's type")
        sa = sb = 0
        corners = [u * v for u in ra for v in rb]
        ct = compute_type(ra, rb, (min(corners), max(corners)), rng(ty), where=_where(node))
    else:
        sa, sb = ty.frac_bits - _frac(a), ty.frac_bits - _frac(b)
        if min(sa, sb) < 0:
            raise _unsupported(node, f"output {ty} has fewer fractional bits than an input")
        (alo, ahi), (blo, bhi) = (ra[0] << sa, ra[1] << sa), (rb[0] << sb, rb[1] << sb)
        ct = compute_type(ra, rb, (alo, ahi), (blo, bhi), (alo + blo, ahi + bhi), (alo - bhi, ahi - blo), rng(ty),
                          where=_where(node))
    form = {Op.ADD: "u + v", Op.SUB: "u - v", Op.MUL: "u * v", Op.MAX: "u > v ? u : v", Op.MIN: "u < v ? u : v"}
    L = Layer(p, node)
    A, B, Y = L.input(0, "a"), L.input(1, "b"), L.output(0, "y")
    out = p.ctype(node.output)
    _loops(L, node.output.type.shape, [a.type.shape, b.type.shape],
           lambda o, ix: [f"const {ct} u = {shl(ct, f'({ct}){A}[{ix[0]}]', sa)};",
                          f"const {ct} v = {shl(ct, f'({ct}){B}[{ix[1]}]', sb)};",
                          f"{Y}[{o}] = ({out})({form[node.op]});"])
    L.finish(f"{node.op.value.lower()}, exact at {ty.frac_bits} fractional bits (inputs shifted up {sa} and {sb})")


def _softmax(p: Program, node: Node) -> None:
    """z = x - max (exact), e = exp[z], S = sum e (exact), y = e * reciprocal[S] (or z - log[S])."""
    x = node.inputs[0]
    tx, ty = x.type.dtype, node.output.type.dtype
    shape = x.type.shape
    axis = node.attrs["axis"]
    n, inner = shape[axis], math.prod(shape[axis + 1:])
    outer = math.prod(shape[:axis])
    lo, hi = rng(tx)
    exp = node.attrs["exp"]
    zlo = lo - hi
    e_lut = lookup(p, exp, zlo, 0)
    et = exp.out_type
    elo, ehi = rng(et)
    slo, shi = min(0, elo * n), max(0, ehi * n)
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    out = p.ctype(node.output)
    if node.attrs["log"]:
        log = node.attrs["log_table"]
        frac = max(tx.frac_bits, log.out_type.frac_bits)
        s_lut = lookup(p, log, slo, shi)
        sz, sl = frac - tx.frac_bits, frac - log.out_type.frac_bits
        llo, lhi = rng(log.out_type)
        ct = compute_type((zlo, hi - lo), (slo, shi), (zlo << sz, 0), (llo << sl, lhi << sl),
                          ((zlo << sz) - (lhi << sl), -(llo << sl)), rng(ty), where=_where(node))
    else:
        recip = node.attrs["reciprocal"]
        s_lut = lookup(p, recip, slo, shi)
        rlo, rhi = rng(recip.out_type)
        corners = [u * v for u in (elo, ehi) for v in (rlo, rhi)]
        ct = compute_type((zlo, hi - lo), (slo, shi), (min(corners), max(corners)), rng(ty), where=_where(node))
    E = L.local(container(et), "e", n)
    with w.block(f"for ({it} r = 0; r < {outer * inner}; r++)"):
        w(_row_base(it, n, inner))
        step = f" * {inner}" if inner > 1 else ""
        w(f"{ct} mx = {X}[base];", f"{ct} total = 0;")
        with w.block(f"for ({it} k = 1; k < {n}; k++)"):
            w(f"const {ct} v = {X}[base + k{step}];", "if (v > mx)", "    mx = v;")
        with w.block(f"for ({it} k = 0; k < {n}; k++)"):
            w(f"{E}[k] = {e_lut}(({ct}){X}[base + k{step}] - mx);", f"total += {E}[k];")
        if node.attrs["log"]:
            w(f"const {ct} ls = {shl(ct, f'({ct}){s_lut}(total)', sl)};")
            with w.block(f"for ({it} k = 0; k < {n}; k++)"):
                w(f"{Y}[base + k{step}] = ({out})({shl(ct, f'(({ct}){X}[base + k{step}] - mx)', sz)} - ls);")
        else:
            w(f"const {ct} inv = {s_lut}(total);")
            with w.block(f"for ({it} k = 0; k < {n}; k++)"):
                w(f"{Y}[base + k{step}] = ({out})(({ct}){E}[k] * inv);")
    L.finish(f"{'log-' if node.attrs['log'] else ''}softmax over axis {axis} ({n} values), tables "
             + f"{exp} and {node.attrs['log_table'] if node.attrs['log'] else node.attrs['reciprocal']}")


def _row_base(it: str, n: int, inner: int) -> str:
    """Where reduction ``r`` (of ``outer * inner``) starts along an axis of ``n`` with ``inner`` after it."""
    if inner == 1:
        return f"const {it} base = r * {n};"
    return f"const {it} base = (r / {inner}) * {n * inner} + r % {inner};"


# -- data movement -----------------------------------------------------------------------------------------------


def _reshape(p: Program, node: Node) -> None:
    if p.alias(node.output, node.inputs[0]):
        return
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    with L.w.block(f"for ({p.index} i = 0; i < {node.output.type.size}; i++)"):
        L.w(f"{Y}[i] = {X}[i];")
    L.finish("a copy (the layout is unchanged)")


def _strides(shape: Sequence[int]) -> list[int]:
    return [math.prod(shape[d + 1:]) for d in range(len(shape))]


def _nested(L: Layer, shape: Sequence[int], index_of: Callable[[list[str]], str], stmt: Callable[[str], str]) -> None:
    """Nested loops over ``shape`` (flat output counter ``o``); ``stmt(input_index)`` per element."""
    w, it = L.w, L.p.index
    if math.prod(shape) == 0:
        return
    w(f"{it} o = 0;")
    names = [f"i{d}" for d in range(len(shape))]
    for d, size in enumerate(shape):
        w(f"for ({it} {names[d]} = 0; {names[d]} < {size}; {names[d]}++)")
        w.level += 1
    w(stmt(index_of(names)))
    w.level -= len(shape)


def _transpose(p: Program, node: Node) -> None:
    x = node.inputs[0]
    perm = node.attrs["perm"]
    st = _strides(x.type.shape)
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    _nested(L, node.output.type.shape,
            lambda ix: " + ".join(f"{ix[d]} * {st[perm[d]]}" for d in range(len(perm))) or "0",
            lambda i: f"{Y}[o++] = {X}[{i}];")
    L.finish(f"perm {list(perm)}")


def _slice(p: Program, node: Node) -> None:
    x = node.inputs[0]
    a = node.attrs
    st = _strides(x.type.shape)
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    _nested(L, node.output.type.shape,
            lambda ix: " + ".join(_affine(s, ix[d], t, st[d])
                                  for d, (s, t) in enumerate(zip(a["starts"], a["steps"]))) or "0",
            lambda i: f"{Y}[o++] = {X}[{i}];")
    L.finish(f"starts {list(a['starts'])}, steps {list(a['steps'])}")


def _affine(start: int, index: str, step: int, stride: int) -> str:
    """``(start + index * step) * stride`` without the factors that are 1 or terms that are 0."""
    term = index if step == 1 else f"{index} * {step}" if step > 0 else f"- {index} * {-step}"
    inner = (f"{start} {term}" if term.startswith("-") else f"{start} + {term}") if start else term
    if stride == 1:
        return inner if not start else f"({inner})"
    return f"({inner}) * {stride}"


def _pad(p: Program, node: Node) -> None:
    x = node.inputs[0]
    t = node.output.type.dtype
    value = node.attrs["value"] / t.lsb
    if value != int(value) or not t.min_mantissa <= value <= t.max_mantissa:
        raise _unsupported(node, f"value {node.attrs['value']} is not exact in {t}")
    pads = node.attrs["pads"]
    r = len(x.type.shape)
    ost = _strides(node.output.type.shape)
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    with L.w.block(f"for ({p.index} i = 0; i < {node.output.type.size}; i++)"):
        L.w(f"{Y}[i] = {int(value)};")
    names_out = lambda ix: " + ".join(f"({ix[d]} + {pads[d]}) * {ost[d]}" for d in range(r)) or "0"  # noqa: E731
    _nested(L, x.type.shape, names_out, lambda i: f"{Y}[{i}] = {X}[o++];")
    L.finish(f"pads {list(pads)}, value mantissa {int(value)}")


def _concat(p: Program, node: Node) -> None:
    ty = node.output.type.dtype
    axis = node.attrs["axis"]
    shape = node.output.type.shape
    outer, inner = math.prod(shape[:axis]), math.prod(shape[axis + 1:])
    L = Layer(p, node)
    names = [L.input(i, f"x{i}") for i in range(len(node.inputs))]
    Y = L.output(0, "y")
    ranges = [rng(ty)]
    for v in node.inputs:
        s = ty.frac_bits - _frac(v)
        if s < 0:
            raise _unsupported(node, f"output {ty} has fewer fractional bits than input {v.name!r}")
        ranges.append((rng(v.type.dtype)[0] << s, rng(v.type.dtype)[1] << s))
    ct = compute_type(*ranges, where=_where(node))
    out = p.ctype(node.output)
    w, it = L.w, p.index
    offset = 0
    for v, X in zip(node.inputs, names):
        chunk = v.type.shape[axis] * inner
        s = ty.frac_bits - _frac(v)
        with w.block(f"for ({it} r = 0; r < {outer}; r++)"):
            with w.block(f"for ({it} k = 0; k < {chunk}; k++)"):
                value = shl(ct, f"({ct}){X}[r * {chunk} + k]", s)
                w(f"{Y}[r * {shape[axis] * inner} + {offset} + k] = ({out}){value};")
        offset += chunk
    L.finish(f"axis {axis}, inputs shifted to {ty.frac_bits} fractional bits")


def _argmax(p: Program, node: Node) -> None:
    x = node.inputs[0]
    shape = x.type.shape
    axis = node.attrs["axis"]
    n, inner, outer = shape[axis], math.prod(shape[axis + 1:]), math.prod(shape[:axis])
    better = ">=" if node.attrs["select_last_index"] else ">"
    L = Layer(p, node)
    X, Y = L.input(0, "x"), L.output(0, "y")
    w, it = L.w, p.index
    ct = compute_type(rng(x.type.dtype))
    with w.block(f"for ({it} r = 0; r < {outer * inner}; r++)"):
        w(_row_base(it, n, inner))
        step = f" * {inner}" if inner > 1 else ""
        w(f"{ct} best = {X}[base];", f"{it} at = 0;")
        with w.block(f"for ({it} k = 1; k < {n}; k++)"):
            w(f"const {ct} v = {X}[base + k{step}];")
            with w.block(f"if (v {better} best)"):
                w("best = v;", "at = k;")
        w(f"{Y}[r] = ({p.ctype(node.output)})at;")
    L.finish(f"axis {axis}, ties to the {'last' if node.attrs['select_last_index'] else 'first'} index")


# -- recurrent ------------------------------------------------------------------------------------------------


class _Recurrent:
    """What LSTM and GRU share: the weights as rows, the biases, the step-1 shifts, the state types."""

    def __init__(self, p: Program, node: Node, gates: int) -> None:
        a = node.attrs
        self.H = H = a["hidden_size"]
        self.acc, self.gate, self.state = a["accum_type"], a["gate_type"], a["state_type"]
        x = node.inputs[0]
        self.T, self.F = x.type.shape
        F = self.acc.frac_bits
        self.sx = F - _frac(x) - _frac(node.inputs[1])
        self.sh = F - self.state.frac_bits - _frac(node.inputs[2])
        bias = node.input(3)
        sb = F - (_frac(bias) if bias is not None else F)
        if min(self.sx, self.sh, sb) < 0:
            raise _unsupported(node, f"accum_type {self.acc} is coarser than its terms")
        self.W = Rows(p, node, node.inputs[1], node.inputs[1].data, "W")
        self.R = Rows(p, node, node.inputs[2], node.inputs[2].data, "R")
        b = (np.asarray(bias.data, dtype=object) * (1 << sb) if bias is not None
             else np.zeros(2 * gates * H, dtype=object))
        self.bx, self.bh = b[: gates * H], b[gates * H:]
        self.xmax, self.hmax = maxabs(x.type.dtype), maxabs(self.state)
        self.ax_bound = self.W.row_bound(self.xmax) * (1 << self.sx)
        self.ah_bound = self.R.row_bound(self.hmax) * (1 << self.sh)
        for i, t in ((4, self.state), (5, a.get("cell_type"))):
            v = node.input(i)
            if v is not None and v.type.dtype != t:
                raise _unsupported(node, f"initial state {v.name!r} has type {v.type.dtype}, the state is {t}")

    def init_state(self, p: Program, node: Node, L: Layer, index: int, name: str, t: FixedType) -> str:
        arr = L.local(container(t), name, self.H)
        v = node.input(index)
        if v is None:
            L.w(f"for ({p.index} u = 0; u < {self.H}; u++)", f"    {arr}[u] = 0;")
        else:
            c = p.const(f"{node.name}_{name}0", container(t), v.data, "constants", f"{v.name}: initial {name}")
            L.w(f"for ({p.index} u = 0; u < {self.H}; u++)", f"    {arr}[u] = {c}[u];")
        return arr


def _lstm(p: Program, node: Node) -> None:
    """fpgac.sim.recurrent.lstm_fixed, steps 1-6, per sample."""
    a = node.attrs
    r = _Recurrent(p, node, 4)
    H, T, F = r.H, r.T, r.F
    cell, s_t, u_t = a["cell_type"], a["sigmoid"].out_type, a["tanh"].out_type
    for table, t in (("sigmoid", r.gate), ("tanh", r.gate), ("tanh_cell", cell)):
        if a[table].in_type.frac_bits != t.frac_bits:
            raise _unsupported(node, f"table {table} {a[table]} does not index {t}")
    exact = exact_types(node)
    fc, fu = s_t.frac_bits + cell.frac_bits, s_t.frac_bits + u_t.frac_bits
    fsum = max(fc, fu)
    bias = r.bx + r.bh
    sum_bound = int(max(np.abs(bias) + r.ax_bound + r.ah_bound, default=0))
    ct = compute_type((-sum_bound, sum_bound), rng(r.acc), rng(exact["cell_sum"]), rng(exact["output_product"]),
                      where=_where(node))
    B = _const_for(p, node, "bias", bias, "biases", f"Wb + Rb at {r.acc.frac_bits} fractional bits")
    rq_gate = requantizer(p, r.acc, r.gate)
    rq_cell = requantizer(p, exact["cell_sum"], cell)
    rq_state = requantizer(p, exact["output_product"], r.state)
    sig = sigmoid_by_magnitude(p, a["sigmoid"], r.gate)
    th = tanh_by_magnitude(p, a["tanh"], r.gate)
    th_cell = tanh_by_magnitude(p, a["tanh_cell"], cell)
    L = Layer(p, node)
    X = L.input(0, "x")
    Y, YH, YC = (L.output(i, n) for i, n in enumerate(("y", "y_h", "y_c")))
    w, it = L.w, p.index
    h = r.init_state(p, node, L, 4, "h", r.state)
    c = r.init_state(p, node, L, 5, "c", cell)
    g = L.local(container(r.gate), "g", 4 * H)
    with w.block(f"for ({it} t = 0; t < {T}; t++)"):
        w(f"const {p.ctype(node.inputs[0])} *xt = {X} + t * {F};")
        with w.block(f"for ({it} j = 0; j < {4 * H}; j++)"):
            w(f"{ct} ax = 0, ah = 0;")
            with w.block(""):
                r.W.dot(w, ct, "ax", "j", "xt", it, r.xmax)
            with w.block(""):
                r.R.dot(w, ct, "ah", "j", h, it, r.hmax)
            w(f"{g}[j] = {rq_gate}({shl(ct, 'ax', r.sx)} + {shl(ct, 'ah', r.sh)} + {B}[j]);")
        with w.block(f"for ({it} u = 0; u < {H}; u++)"):
            w(f"const {ct} i = {sig}({g}[u]), o = {sig}({g}[{H} + u]), f = {sig}({g}[{2 * H} + u]);",
              f"const {ct} k = {th}({g}[{3 * H} + u]);",
              f"{c}[u] = {rq_cell}({shl(ct, f'f * {c}[u]', fsum - fc)} + {shl(ct, 'i * k', fsum - fu)});",
              f"{h}[u] = {rq_state}(o * {th_cell}({c}[u]));",
              f"{Y}[t * {H} + u] = {h}[u];")
    with w.block(f"for ({it} u = 0; u < {H}; u++)"):
        w(f"{YH}[u] = {h}[u];", f"{YC}[u] = {c}[u];")
    L.finish(f"forward LSTM, {T} steps, {F} inputs, {H} units; W: {r.W.describe()}; R: {r.R.describe()}",
             f"gate sums exact in {ct}, requantized to {r.gate}; c {cell}, h {r.state}")


def _gru(p: Program, node: Node) -> None:
    """fpgac.sim.recurrent.gru_fixed, steps 1-5, per sample."""
    a = node.attrs
    r = _Recurrent(p, node, 3)
    H, T, F = r.H, r.T, r.F
    s_t, u_t = a["sigmoid"].out_type, a["tanh"].out_type
    for table in ("sigmoid", "tanh"):
        if a[table].in_type.frac_bits != r.gate.frac_bits:
            raise _unsupported(node, f"table {table} {a[table]} does not index {r.gate}")
    lbr = bool(a["linear_before_reset"])
    exact = exact_types(node)
    one = 1 << s_t.frac_bits
    fn, fh = s_t.frac_bits + u_t.frac_bits, s_t.frac_bits + r.state.frac_bits
    fsum = max(fn, fh)
    ax_b = int(max(np.abs(r.bx) + r.ax_bound, default=0))
    ah_b = int(max(np.abs(r.bh) + r.ah_bound, default=0))
    extra = [rng(exact["reset_sum"])] if lbr else [rng(exact["reset_product"])]
    ct = compute_type((-ax_b, ax_b), (-ah_b, ah_b), (-ax_b - ah_b, ax_b + ah_b), rng(r.acc), rng(exact["state_sum"]),
                      *extra, where=_where(node))
    BX = _const_for(p, node, "bx", r.bx, "biases", f"Wb at {r.acc.frac_bits} fractional bits")
    BH = _const_for(p, node, "bh", r.bh, "biases", f"Rb at {r.acc.frac_bits} fractional bits")
    rq_gate = requantizer(p, r.acc, r.gate)
    rq_state = requantizer(p, exact["state_sum"], r.state)
    sig = sigmoid_by_magnitude(p, a["sigmoid"], r.gate)
    th = tanh_by_magnitude(p, a["tanh"], r.gate)
    L = Layer(p, node)
    X = L.input(0, "x")
    Y, YH = L.output(0, "y"), L.output(1, "y_h")
    w, it = L.w, p.index
    h = r.init_state(p, node, L, 4, "h", r.state)
    ax = L.local(ct, "ax", 3 * H)
    ah = L.local(ct, "ah", 3 * H)
    z = L.local(ct, "z", H)
    rr = L.local(ct, "rg", H)
    if lbr:
        rq_n = requantizer(p, exact["reset_sum"], r.gate)
    else:
        rq_q = requantizer(p, exact["reset_product"], r.state)
        rq_n = rq_gate
        q = L.local(container(r.state), "q", H)
    with w.block(f"for ({it} t = 0; t < {T}; t++)"):
        w(f"const {p.ctype(node.inputs[0])} *xt = {X} + t * {F};")
        with w.block(f"for ({it} j = 0; j < {3 * H}; j++)"):
            w(f"{ct} acc = 0;")
            with w.block(""):
                r.W.dot(w, ct, "acc", "j", "xt", it, r.xmax)
            w(f"{ax}[j] = {shl(ct, 'acc', r.sx)} + {BX}[j];")
        with w.block(f"for ({it} j = 0; j < {3 * H if lbr else 2 * H}; j++)"):
            w(f"{ct} acc = 0;")
            with w.block(""):
                r.R.dot(w, ct, "acc", "j", h, it, r.hmax)
            w(f"{ah}[j] = {shl(ct, 'acc', r.sh)} + {BH}[j];")
        with w.block(f"for ({it} u = 0; u < {H}; u++)"):
            w(f"{z}[u] = {sig}({rq_gate}({ax}[u] + {ah}[u]));",
              f"{rr}[u] = {sig}({rq_gate}({ax}[{H} + u] + {ah}[{H} + u]));")
        if not lbr:
            with w.block(f"for ({it} u = 0; u < {H}; u++)"):
                w(f"{q}[u] = {rq_q}({rr}[u] * {h}[u]);")
        with w.block(f"for ({it} u = 0; u < {H}; u++)"):
            if lbr:
                pre = f"{shl(ct, f'{ax}[{2 * H} + u]', s_t.frac_bits)} + {rr}[u] * {ah}[{2 * H} + u]"
                w(f"const {ct} n = {th}({rq_n}({pre}));")
            else:
                w(f"{ct} acc = 0;")
                with w.block(""):
                    r.R.dot(w, ct, "acc", f"{2 * H} + u", q, it, r.hmax)
                w(f"const {ct} n = {th}({rq_n}({ax}[{2 * H} + u] + {shl(ct, 'acc', r.sh)} + {BH}[{2 * H} + u]));")
            total = f"{shl(ct, f'({one} - {z}[u]) * n', fsum - fn)} + {shl(ct, f'{z}[u] * {h}[u]', fsum - fh)}"
            w(f"{h}[u] = {rq_state}({total});",
              f"{Y}[t * {H} + u] = {h}[u];")
    w(f"for ({it} u = 0; u < {H}; u++)", f"    {YH}[u] = {h}[u];")
    L.finish(f"forward GRU, {T} steps, {F} inputs, {H} units, linear_before_reset={int(lbr)}; "
             f"W: {r.W.describe()}; R: {r.R.describe()}",
             f"sums exact in {ct}, gates requantized to {r.gate}; h {r.state}")


#: IR op -> the emitter writing its layer function (ops not here raise UnsupportedError)
EMITTERS: dict[Op, Callable[[Program, Node], None]] = {
    Op.DENSE: _dense,
    Op.CONV: _conv,
    Op.POOL: _pool,
    Op.GLOBAL_POOL: _global_pool,
    Op.ACTIVATION: _activation,
    Op.SOFTMAX: _softmax,
    Op.SCALE_SHIFT: _scale_shift,
    Op.ADD: _binary,
    Op.SUB: _binary,
    Op.MUL: _binary,
    Op.MAX: _binary,
    Op.MIN: _binary,
    Op.CONCAT: _concat,
    Op.RESHAPE: _reshape,
    Op.TRANSPOSE: _transpose,
    Op.PAD: _pad,
    Op.SLICE: _slice,
    Op.ARGMAX: _argmax,
    Op.LSTM: _lstm,
    Op.GRU: _gru,
    Op.QUANT: _quant,
    Op.LOOKUP: _lookup,
}
