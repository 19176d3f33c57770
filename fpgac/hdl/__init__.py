"""fpgac.hdl: the Amaranth component library the amaranth backend wires a network from.

It knows nothing of the IR: every component is built from plain integers and numpy arrays
(weight and bias mantissas, shifts, table values) and a :class:`Lanes` input format, and is an
``amaranth.lib.wiring.Component`` with ``amaranth.lib.stream`` valid/ready ports: ``i`` and
``o`` (``a``/``b`` for Binary, ``i0``.. for Concat). A payload is ``count`` lanes of ``width``
bits, lane 0 in the low bits (:mod:`fpgac.hdl.lanes`). Every component exposes ``in_lanes``,
``out_lanes`` and ``latency`` (cycles from the accepting clock edge to the output transfer with
no stalls); all take one word a cycle except where the docstring gives an interval.

The arithmetic is the golden model's (``fpgac.ir.semantics``), bit for bit: Dense/Conv/Pool
sums are exact; :class:`Requant` rounds and saturates as ``fpgac.ir.fixed.requantize``;
:class:`Lookup` and :class:`Softmax` index tables as ``fpgac.ir.tables.Table.lookup``.
"""

from fpgac.hdl.activation import Abs, Clip, PReLU, ReLU, ScaleShift, const_mul
from fpgac.hdl.arith import csd
from fpgac.hdl.combine import Argmax, Binary, BinaryOp, Concat
from fpgac.hdl.conv import Conv, Pool, PoolKind, Window
from fpgac.hdl.dense import Dense, Timing
from fpgac.hdl.dense_reuse import DenseReuse
from fpgac.hdl.fold import FoldedMatrix, lut_product
from fpgac.hdl.lanemap import Groups, MaxWindows, Select
from fpgac.hdl.lanes import Lanes, Pipeline, shape_for
from fpgac.hdl.lookup import Lookup, TableSpec
from fpgac.hdl.recurrent import Fixed, Recurrent
from fpgac.hdl.recurrent_stack import RecurrentStack
from fpgac.hdl.requant import Overflow, Requant, Requantize, Rounding
from fpgac.hdl.simulate import ProtocolError, StreamRun, run_streams, run_vectors
from fpgac.hdl.softmax import Softmax
from fpgac.hdl.streams import Chain, Collect, Fork, Metered, Serialize, StreamBuffer
from fpgac.hdl.tiled import GlobalPool, TiledPool

__all__ = [
    "Abs",
    "Argmax",
    "Binary",
    "BinaryOp",
    "Chain",
    "Clip",
    "Collect",
    "Concat",
    "Conv",
    "Dense",
    "DenseReuse",
    "Fixed",
    "FoldedMatrix",
    "Timing",
    "Fork",
    "Groups",
    "GlobalPool",
    "Lanes",
    "Lookup",
    "MaxWindows",
    "Metered",
    "Overflow",
    "PReLU",
    "Pipeline",
    "Pool",
    "PoolKind",
    "ProtocolError",
    "ReLU",
    "Recurrent",
    "RecurrentStack",
    "Requant",
    "Requantize",
    "Rounding",
    "ScaleShift",
    "Select",
    "Serialize",
    "Softmax",
    "StreamBuffer",
    "StreamRun",
    "TableSpec",
    "TiledPool",
    "Window",
    "const_mul",
    "csd",
    "lut_product",
    "run_streams",
    "run_vectors",
    "shape_for",
]
