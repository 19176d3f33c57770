"""One emitter per IR op: the layer function that computes it in integer C (the table ``EMITTERS``).

Each emitter renders its op's plan (:mod:`fpgac.ir.semantics`) and follows its fixed-point
evaluation there; the docstrings say where the C differs in form only. Shapes are per sample and
channels-first, flattened row-major, so a buffer index is the numpy flat index. A 1D Conv or Pool
is written as 2D with a height of 1.

Sparse weights: a weight whose type records pruning (``sparsity``), or whose zeros make the
sparse form smaller than the dense array, is stored and iterated as non-zeros only: a Dense or
recurrent matrix as compressed rows (values, column indices, row starts), a Conv as a list of
non-zero taps (value, input offset, kernel row and column). Otherwise the weights are stored
dense; a Conv then still skips its zero weights at run time (one test per tap, not per MAC).
"""

from __future__ import annotations

from collections.abc import Callable

from fpgac.ir import Node, Op

from ..program import Program
from .elementwise import activation, binary, lookup_layer, quant
from .linear import conv, dense, scale_shift
from .pool import global_pool, pool
from .recurrent import gru, lstm
from .shape import concat, pad, reshape, slice_, transpose
from .softmax import argmax, softmax

__all__ = ["EMITTERS", "REFUSED"]

#: IR op -> the emitter writing its layer function (ops not here raise UnsupportedError)
EMITTERS: dict[Op, Callable[[Program, Node], None]] = {
    Op.DENSE: dense,
    Op.CONV: conv,
    Op.POOL: pool,
    Op.GLOBAL_POOL: global_pool,
    Op.ACTIVATION: activation,
    Op.SOFTMAX: softmax,
    Op.SCALE_SHIFT: scale_shift,
    Op.ADD: binary,
    Op.SUB: binary,
    Op.MUL: binary,
    Op.MAX: binary,
    Op.MIN: binary,
    Op.CONCAT: concat,
    Op.RESHAPE: reshape,
    Op.TRANSPOSE: transpose,
    Op.PAD: pad,
    Op.SLICE: slice_,
    Op.ARGMAX: argmax,
    Op.LSTM: lstm,
    Op.GRU: gru,
    Op.QUANT: quant,
    Op.LOOKUP: lookup_layer,
}

#: IR op -> why the cpu target does not build it (every other op has an emitter)
REFUSED: dict[Op, str] = {
    Op.DIV: "a division has no fixed-point form (quantization turns a division by a constant into a multiplication)",
}
