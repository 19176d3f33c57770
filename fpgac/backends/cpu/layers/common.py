"""What the C layer emitters share: names in messages, constants, sparse rows and loop nests."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from fpgac.errors import UnsupportedError
from fpgac.ir import Node, Value

from ..cgen import CWriter, container, container_bytes, smallest_int, smallest_uint
from ..program import Layer, Program

__all__ = ["Rows", "const_for", "frac", "int_range", "loops", "nested", "product_type", "row_base", "strides",
           "unsupported", "where"]


def where(node: Node) -> str:
    return f"node {node.name!r} ({node.op.value})"


def unsupported(node: Node, why: str) -> UnsupportedError:
    return UnsupportedError(f"{where(node)}: {why}")


def frac(value: Value) -> int:
    return value.type.dtype.frac_bits


def product_type(ct: str, xmax: int, wmax: int) -> str:
    """``int32_t`` if every product ``x * w`` fits it, else the sum's compute type ``ct``."""
    return "int32_t" if xmax * wmax < (1 << 31) else ct


def int_range(data: np.ndarray) -> tuple[int, int]:
    flat = np.asarray(data, dtype=object).reshape(-1)
    return (int(min(flat)), int(max(flat))) if flat.size else (0, 0)


def const_for(p: Program, node: Node, what: str, data: np.ndarray, role: str, comment: str) -> str:
    lo, hi = int_range(data)
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


# -- loop nests ------------------------------------------------------------------------------------------


def loops(L: Layer, out_shape: Sequence[int], operands: Sequence[Sequence[int]],
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


def strides(shape: Sequence[int]) -> list[int]:
    return [math.prod(shape[d + 1:]) for d in range(len(shape))]


def nested(L: Layer, shape: Sequence[int], index_of: Callable[[list[str]], str], stmt: Callable[[str], str]) -> None:
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


def row_base(it: str, n: int, inner: int) -> str:
    """Where reduction ``r`` (of ``outer * inner``) starts along an axis of ``n`` with ``inner`` after it."""
    if inner == 1:
        return f"const {it} base = r * {n};"
    return f"const {it} base = (r / {inner}) * {n * inner} + r % {inner};"
