"""The HLS emit functions, one table per io mode: each IR op to the function that writes its
kernel call (with its configs and ROMs) into a :class:`~fpgac.backends.hls.design.Design`.

An emit function takes ``(design, node, inputs, outputs)``: the arrays (io_parallel) or streams
(io_stream) the node reads and writes. Ops without a stream form in :data:`STREAM` (or whose
node does not fit it) are wrapped by the design: words -> array -> array kernel -> words.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from fpgac.ir import Node, Op

from .elementwise import (
    BINARY_OPS,
    emit_binary,
    emit_binary_stream,
    emit_lookup,
    emit_map,
    is_mappable,
    same_shape_runtime,
)
from .linear import emit_conv, emit_conv_stream, emit_dense, emit_scale_shift
from .pool import emit_global_pool, emit_global_pool_stream, emit_pool, emit_pool_stream
from .recurrent import emit_recurrent
from .shape import emit_concat, emit_gather, emit_reshape, emit_reshape_stream, same_words
from .softmax import emit_argmax, emit_softmax

if TYPE_CHECKING:
    from ..design import Design

__all__ = ["PARALLEL", "REFUSED", "STREAM", "STREAMED", "SUPPORTED", "Emit"]

Emit = Callable[["Design", Node, list, list], None]

#: IR op -> emit function of its io_parallel (array) form
PARALLEL: dict[Op, Emit] = {
    Op.DENSE: emit_dense,
    Op.CONV: emit_conv,
    Op.POOL: emit_pool,
    Op.GLOBAL_POOL: emit_global_pool,
    Op.ACTIVATION: emit_map,
    Op.QUANT: emit_map,
    Op.LOOKUP: emit_lookup,
    Op.SOFTMAX: emit_softmax,
    Op.SCALE_SHIFT: emit_scale_shift,
    Op.ADD: emit_binary,
    Op.SUB: emit_binary,
    Op.MUL: emit_binary,
    Op.MAX: emit_binary,
    Op.MIN: emit_binary,
    Op.CONCAT: emit_concat,
    Op.RESHAPE: emit_reshape,
    Op.TRANSPOSE: emit_gather,
    Op.SLICE: emit_gather,
    Op.PAD: emit_gather,
    Op.ARGMAX: emit_argmax,
    Op.LSTM: emit_recurrent,
    Op.GRU: emit_recurrent,
}

#: IR op -> why the xilinx target does not build it (every other op has an emit function)
REFUSED: dict[Op, str] = {
    Op.DIV: "a division has no fixed-point form (quantization turns a division by a constant into a multiplication)",
}

#: IR op -> (does this node have a streaming form, its emit function); other nodes are wrapped
STREAM: dict[Op, tuple[Callable[[Node], bool], Emit]] = {
    Op.CONV: (lambda node: True, emit_conv_stream),
    Op.POOL: (lambda node: True, emit_pool_stream),
    Op.GLOBAL_POOL: (lambda node: True, emit_global_pool_stream),
    Op.ACTIVATION: (is_mappable, partial(emit_map, stream=True)),
    Op.QUANT: (lambda node: True, partial(emit_map, stream=True)),
    Op.LOOKUP: (lambda node: True, partial(emit_lookup, stream=True)),
    Op.RESHAPE: (same_words, emit_reshape_stream),
    **{op: (same_shape_runtime, emit_binary_stream) for op in BINARY_OPS},
}

#: which ops each io mode streams natively (for the README and the manifest)
STREAMED = sorted(op.value for op in STREAM)
SUPPORTED = sorted(op.value for op in PARALLEL)
