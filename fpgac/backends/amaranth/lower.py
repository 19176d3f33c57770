"""The quantized IR as lane-level stages, the form the fully parallel hardware takes.

In the golden model every op but ``Quant`` is exact integer arithmetic, and most are linear in
their one data input: Dense, Conv, average pools, ScaleShift and a Mul by a constant are all
``y = x @ M + b`` for a constant integer matrix ``M`` over the flattened (C-order) lanes. Conv
becomes a sparse matrix, and a constant-coefficient adder tree gives no hardware to its zeros.
Reshape, Transpose, Slice and Pad only move lanes (:class:`Select`); max pooling takes maxima
over windows of lanes (:class:`MaxWindows`).

The matrices, index maps and windows are *probed* from the golden model's own op functions (one
run on the zero vector and one per unit vector), so the lowering cannot drift from the
specification; :func:`execute` runs the stages in numpy, and the tests check it against
``run_fixed`` before any hardware is built.

A stage reads the stage before it unless its ``sources`` say otherwise: a value read twice (a
residual branch) has several readers, and Add/Sub/Mul/Max/Min of two run-time tensors
(:class:`Combine`) and Concat (:class:`Join`, then a :class:`Select` putting the lanes in order)
read two or more. An LSTM or GRU is one :class:`Recurrent` stage over the whole sequence.
Graph input ``j`` is source ``-1 - j``; a stage whose value is graph output ``k``
lists ``k`` in its ``outputs`` (a single-input, single-output chain leaves both implicit: its
input is -1 and its output the last stage).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...errors import UnsupportedError
from ...hdl import BinaryOp
from ...ir import Act, FixedType, Graph, Node, Op, Overflow, PoolKind
from ...ir.fixed import requantize
from ...ir.ops import OP_SPECS
from ...ir.semantics import apply_fixed, plan
from ...ir.semantics.shape import argmax_index
from ...ir.semantics.softmax import mantissas as softmax_mantissas
from ...ir.tables import Table
from .lower_recurrent import Recurrent, _recurrent
from .stage import Stage

__all__ = [
    "LOWERINGS",
    "REFUSED",
    "ArgMax",
    "Clip",
    "Linear",
    "Lookup",
    "MaxWindows",
    "Relu",
    "Recurrent",
    "Requant",
    "Select",
    "Softmax",
    "Stage",
    "execute",
    "graph_inputs",
    "graph_outputs",
    "lower",
]


@dataclass
class Linear(Stage):
    """``y = x @ matrix + bias``, exact (``out_type`` holds every result)."""

    matrix: np.ndarray = field(default=None)  # int64 [n_in, n_out]
    bias: np.ndarray = field(default=None)  # int64 [n_out]
    #: (input, output) positions of the weights whose products a fully parallel Dense makes on
    #: multipliers (DSP blocks) instead of adders (``--dsp``; see ``build.assign_products``)
    products: list = field(default_factory=list)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return inputs[0] @ self.matrix + self.bias


@dataclass
class Requant(Stage):
    """Each lane cast from ``in_type`` to ``out_type`` with the latter's rounding and overflow."""

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return requantize(inputs[0], self.in_type, self.out_type)


@dataclass
class Relu(Stage):
    """``max(x, 0)`` per lane."""

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.maximum(inputs[0], 0)


@dataclass
class PReLU(Stage):
    """``x << slope_frac`` where ``x >= 0``, else ``x * slopes[k]`` (lane ``k``): PReLU and LeakyReLU."""

    slopes: np.ndarray = field(default=None)  # int64 [n_in]: mantissas with slope_frac fractional bits
    slope_frac: int = 0

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        m = inputs[0]
        return np.where(m >= 0, np.left_shift(m, self.slope_frac), m * self.slopes)


@dataclass
class Clip(Stage):
    """``min(max(x, lo), hi)`` per lane."""

    lo: int = 0
    hi: int = 0

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.clip(inputs[0], self.lo, self.hi)


@dataclass
class Lookup(Stage):
    """Each lane through ``table`` (``Table.lookup``: plain or interpolated)."""

    table: Table = field(default=None)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return self.table.lookup(inputs[0])


@dataclass
class MaxWindows(Stage):
    """Output lane ``k`` is the maximum of the input lanes ``windows[k]``."""

    windows: list[tuple[int, ...]] = field(default_factory=list)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack([inputs[0][:, list(w)].max(axis=1) for w in self.windows], axis=1)


@dataclass
class Softmax(Stage):
    """Per group of lanes: ``z = x - max``, ``e = exp(z)``, ``y = e * reciprocal(sum e)``; with a
    ``log`` table (log-softmax) ``y = (z << z_shift) - (log(sum e) << log_shift)``."""

    groups: list[tuple[int, ...]] = field(default_factory=list)
    exp: Table = field(default=None)
    reciprocal: Table | None = field(default=None)
    log: Table | None = field(default=None)
    z_shift: int = 0
    log_shift: int = 0

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        m, out = inputs[0], np.zeros_like(inputs[0])
        for g in self.groups:
            out[:, list(g)] = softmax_mantissas(m[:, list(g)], 1, self.exp, self.reciprocal, self.log, self.z_shift,
                                                self.log_shift)
        return out


@dataclass
class Select(Stage):
    """Output lane ``k`` is input lane ``indices[k]``, or the constant ``fill`` where the index is -1."""

    indices: np.ndarray = field(default=None)
    fill: int = 0

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.where(self.indices >= 0, inputs[0][:, np.maximum(self.indices, 0)], self.fill)


@dataclass
class Combine(Stage):
    """Lane-wise ``a op b`` of two stages' outputs (same lane count), each shifted left to the
    output's fractional bits first (Add/Sub/Max/Min; Mul needs no shift). ``in_type`` is ``a``'s."""

    op: BinaryOp = BinaryOp.ADD
    b_type: FixedType = field(default=None)
    a_shift: int = 0
    b_shift: int = 0

    def __post_init__(self) -> None:
        self.op = BinaryOp.cast(self.op)  # stages.json spells it "add"

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        a, b = (np.left_shift(v, shift) for v, shift in zip(inputs, (self.a_shift, self.b_shift)))
        return _COMBINE[self.op](a, b)


@dataclass
class Join(Stage):
    """The lanes of several stages' outputs, one after the other, each shifted left by its
    ``shifts`` entry (a Concat, before the :class:`Select` that puts lanes in the output's order)."""

    types: list[FixedType] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    shifts: list[int] = field(default_factory=list)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.left_shift(v, shift) for v, shift in zip(inputs, self.shifts)], axis=1)


@dataclass
class ArgMax(Stage):
    """Per group of lanes, the position of the maximum (first, or last with ``select_last``)."""

    groups: list[tuple[int, ...]] = field(default_factory=list)
    select_last: bool = False

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        m = inputs[0]
        return np.stack([argmax_index(m[:, list(g)], 1, self.select_last) for g in self.groups], axis=1).astype(np.int64)


_COMBINE = {BinaryOp.ADD: np.add, BinaryOp.SUB: np.subtract, BinaryOp.MUL: np.multiply, BinaryOp.MAX: np.maximum,
            BinaryOp.MIN: np.minimum}
_BINARY_OPS = {Op.ADD, Op.SUB, Op.MUL, Op.MAX, Op.MIN}


def lower(graph: Graph) -> list[Stage]:
    """The stages computing ``graph`` exactly as the golden model does, in graph order.

    A chain of layers gives stages that each read the one before. A value read by several layers
    (a residual branch) is read by several stages, and Add/Sub/Mul/Max/Min of two run-time tensors
    (:class:`Combine`) and Concat (:class:`Join` then :class:`Select`) read two or more: their
    ``sources`` say which. With several graph inputs or outputs every stage names its sources, and
    the stages computing the outputs name them in ``outputs``.
    """
    index = {id(v): -1 - j for j, v in enumerate(graph.inputs)}  # value -> the stage that computes it
    read = {id(v) for node in graph.nodes for v in node.inputs if v is not None} | {id(v) for v in graph.outputs}
    stages: list[Stage] = []
    for node in graph.nodes:
        if node.op in REFUSED:
            raise UnsupportedError(f"node {node.name!r} ({node.op.value}): {REFUSED[node.op]}")
        data = [v for v in node.inputs if v is not None and not v.is_const]
        sources = tuple(index[id(v)] for v in data)
        if node.op in (Op.LSTM, Op.GRU) and len(data) == 1:
            # one stage per output read (Y, Y_h, Y_c): each its own recurrence, computed alike
            for output in [k for k, v in enumerate(node.outputs) if id(v) in read] or [0]:
                stages.append(_recurrent(node, output))
                stages[-1].sources = sources
                index[id(node.outputs[output])] = len(stages) - 1
            continue
        if node.op in _BINARY_OPS and len(data) == 2:
            stages.append(_lower_binary(node, sources))
        elif node.op is Op.CONCAT and len(data) > 1:
            stages.extend(_lower_concat(node, sources, len(stages)))
        elif len(data) == 1:
            stage = _lower_node(node)
            stage.sources = sources
            stages.append(stage)
        else:
            raise UnsupportedError(f"node {node.name!r} ({node.op.value}): {len(data)} run-time inputs; the amaranth "
                                   "target builds this op on one")
        index[id(node.outputs[0])] = len(stages) - 1
    for k, value in enumerate(graph.outputs):
        at = index.get(id(value), -1)
        if at < 0:
            raise UnsupportedError(f"output {value.name!r} is a graph input, not computed by any layer; the amaranth "
                                   "target builds outputs that layers compute")
        stages[at].outputs += (k,)
    if len(graph.inputs) == 1 and len(graph.outputs) == 1:
        if index[id(graph.outputs[0])] != len(stages) - 1:
            raise UnsupportedError(f"output {graph.outputs[0].name!r} is not the last layer computed")
        stages[-1].outputs = ()
        for k, stage in enumerate(stages):
            if stage.sources == (k - 1,):
                stage.sources = ()  # the plain chain case, as stages were before sources existed
    return _fuse_relu_requant(stages) if is_chain(stages) else stages


def _fuse_relu_requant(stages: list[Stage]) -> list[Stage]:
    """A ReLU followed by a cast to an unsigned type that saturates is that cast alone: the cast
    of a negative value rounds to at most 0 and saturates to 0, as the ReLU would have made it
    (the ReLU keeps the fractional bits, so the cast sees the same scale). One component and one
    cycle less per hidden layer of an MLP."""
    out: list[Stage] = []
    for stage in stages:
        prev = out[-1] if out else None
        if (isinstance(stage, Requant) and isinstance(prev, Relu) and not stage.out_type.signed
                and stage.out_type.overflow is Overflow.SAT and prev.in_type.frac_bits == prev.out_type.frac_bits):
            out[-1] = Requant(node=stage.node, in_type=prev.in_type, out_type=stage.out_type,
                              n_in=prev.n_in, n_out=stage.n_out)
            continue
        out.append(stage)
    return out


def is_chain(stages: Sequence[Stage]) -> bool:
    """One input, one output, each stage reading the one before."""
    return all(not s.sources and not s.outputs for s in stages)


def graph_outputs(stages: Sequence[Stage]) -> list[int]:
    """The stage computing each graph output, in the graph's order."""
    if is_chain(stages) or not any(s.outputs for s in stages):
        return [len(stages) - 1]
    found = {k: i for i, s in enumerate(stages) for k in s.outputs}
    return [found[k] for k in range(len(found))]


def graph_inputs(stages: Sequence[Stage]) -> int:
    """How many graph inputs the stages read."""
    return max([1] + [-i for s in stages for i in s.sources if i < 0])


def _lower_binary(node: Node, sources: tuple[int, ...]) -> Combine:
    a, b = node.inputs[0], node.inputs[1]
    y = node.outputs[0]
    if a.type.shape != b.type.shape or a.type.shape != y.type.shape:
        raise UnsupportedError(f"node {node.name!r} ({node.op.value}): inputs of shapes {list(a.type.shape)} and "
                               f"{list(b.type.shape)}; the amaranth target combines equal shapes only")
    shifts = plan(node).shifts
    n = int(np.prod(y.type.shape))
    return Combine(node=node.name, in_type=a.type.dtype, out_type=y.type.dtype, n_in=n, n_out=n, sources=sources,
                   op=BinaryOp.cast(node.op), b_type=b.type.dtype, a_shift=shifts[0], b_shift=shifts[1])


def _lower_concat(node: Node, sources: tuple[int, ...], first: int) -> list[Stage]:
    """A Join of the inputs' lanes, then the Select that orders them as the golden Concat does
    (found by probing it with distinct values)."""
    y = node.outputs[0]
    counts = [int(np.prod(v.type.shape)) for v in node.inputs]
    shifts = list(plan(node).shifts)
    n = sum(counts)
    join = Join(node=node.name, in_type=node.inputs[0].type.dtype, out_type=y.type.dtype, n_in=n, n_out=n,
                sources=sources, types=[v.type.dtype for v in node.inputs], counts=counts, shifts=shifts)
    starts = np.cumsum([0, *counts])
    indices = np.full(n, -1, dtype=np.int64)
    for j, (v, count, shift) in enumerate(zip(node.inputs, counts, shifts)):  # one input at a time, others 0
        args = [np.arange(1, c + 1, dtype=np.int64).reshape(1, *u.type.shape) if i == j
                else np.zeros((1, *u.type.shape), dtype=np.int64) for i, (u, c) in enumerate(zip(node.inputs, counts))]
        (out,) = apply_fixed(node, args)[:1]
        out = np.asarray(out).reshape(-1) >> shift
        hit = out > 0
        indices[hit] = starts[j] + out[hit] - 1
    if np.any(indices < 0):
        raise AssertionError(f"node {node.name!r}: Concat lanes not found by probing")
    select = Select(node=f"{node.name}_order", in_type=y.type.dtype, out_type=y.type.dtype, n_in=n, n_out=n,
                    sources=(first,), indices=indices)
    return [join, select]


#: the largest layer (input lanes x output lanes) the fully parallel target lowers: its matrix is
#: probed whole, and a layer past this is far beyond any FPGA unrolled
MAX_LANE_PAIRS = 1 << 26


def _linear(node: Node, base: dict[str, Any]) -> Stage:
    """``y = x @ M + b`` probed from the golden model: one run on the zero vector (b), one per unit vector."""
    bias = _probe(node, np.zeros((1, base["n_in"]), dtype=np.int64))[0]
    columns = _probe(node, np.eye(base["n_in"], dtype=np.int64)) - bias
    return Linear(**base, matrix=columns, bias=bias)


def _pool(node: Node, base: dict[str, Any]) -> Stage:
    """Average pools are linear; a max pool's window k holds the lanes whose unit vector reaches output k."""
    if node.attrs["kind"] is not PoolKind.MAX:
        return _linear(node, base)
    hits = _probe(node, np.eye(base["n_in"], dtype=np.int64)) == 1
    return MaxWindows(**base, windows=[tuple(np.flatnonzero(hits[:, k])) for k in range(base["n_out"])])


def _move(node: Node, base: dict[str, Any]) -> Stage:
    fill = plan(node).fill if node.op is Op.PAD else 0
    return Select(**base, indices=_move_indices(node, base["n_in"]), fill=fill)


def _activation(node: Node, base: dict[str, Any]) -> Stage:
    kind = node.attrs["kind"]
    if kind is Act.RELU:
        return Relu(**base)
    if kind is Act.PRELU:  # LeakyReLU too: the quantizer makes it a PReLU
        slope = node.inputs[1]
        slopes = np.broadcast_to(slope.data, node.inputs[0].type.shape).reshape(-1).astype(np.int64)
        return PReLU(**base, slopes=slopes, slope_frac=plan(node).slope_frac)
    if kind is Act.CLIP:
        lo, hi = plan(node).clip
        return Clip(**base, lo=lo, hi=hi)
    raise UnsupportedError(f"node {node.name!r} ({node.op.value}/{kind.value}): not built by the amaranth target")


def _softmax(node: Node, base: dict[str, Any]) -> Stage:
    p = plan(node)
    return Softmax(**base, groups=_groups(node.inputs[0].type.shape, p.axis), exp=p.exp, reciprocal=p.reciprocal,
                   log=p.log, z_shift=p.z_shift, log_shift=p.log_shift)


def _argmax(node: Node, base: dict[str, Any]) -> Stage:
    return ArgMax(**base, groups=_groups(node.inputs[0].type.shape, node.attrs["axis"]),
                  select_last=node.attrs["select_last_index"])


#: IR op -> the stage of a node with one run-time input (two-input Add/Sub/Mul/Max/Min become a
#: :class:`Combine`, Concat of several a :class:`Join`: see :func:`lower`)
LOWERINGS: dict[Op, Callable[[Node, dict[str, Any]], Stage]] = {
    Op.DENSE: _linear,
    Op.CONV: _linear,
    Op.SCALE_SHIFT: _linear,
    Op.MUL: _linear,  # by a constant
    Op.POOL: _pool,
    Op.GLOBAL_POOL: _pool,
    Op.RESHAPE: _move,
    Op.TRANSPOSE: _move,
    Op.SLICE: _move,
    Op.PAD: _move,
    Op.QUANT: lambda node, base: Requant(**base),
    Op.LOOKUP: lambda node, base: Lookup(**base, table=plan(node).table),
    Op.ACTIVATION: _activation,
    Op.SOFTMAX: _softmax,
    Op.ARGMAX: _argmax,
    Op.ADD: _linear,  # of a constant (two run-time tensors: a Combine)
    Op.SUB: _linear,
    Op.MAX: lambda node, base: _refuse(node, "the maximum of a tensor and a constant"),
    Op.MIN: lambda node, base: _refuse(node, "the minimum of a tensor and a constant"),
    Op.CONCAT: lambda node, base: _refuse(node, "a Concat of one run-time tensor and constants"),
    Op.LSTM: lambda node, base: _recurrent(node, 0),  # lower() makes one per output read
    Op.GRU: lambda node, base: _recurrent(node, 0),
}


def _refuse(node: Node, what: str) -> Stage:
    raise UnsupportedError(f"node {node.name!r} ({node.op.value}): {what} is not built by the amaranth target")

#: IR op -> why the amaranth target does not build it (every other op has a lowering)
REFUSED: dict[Op, str] = {
    Op.DIV: "a division has no fixed-point form (quantization turns a division by a constant into a multiplication)",
}


def _lower_node(node: Node) -> Stage:
    x, y = node.inputs[0], node.outputs[0]
    base = dict(node=node.name, in_type=x.type.dtype, out_type=y.type.dtype,
                n_in=int(np.prod(x.type.shape)), n_out=int(np.prod(y.type.shape)))
    if base["n_in"] * base["n_out"] > MAX_LANE_PAIRS:
        raise UnsupportedError(
            f"node {node.name!r} ({node.op.value}): {base['n_in']:,} input and {base['n_out']:,} output lanes are "
            f"too many for the fully parallel amaranth target (at most {MAX_LANE_PAIRS:,} pairs); "
            "use --target xilinx --io stream")
    return LOWERINGS[node.op](node, base)


def _probe(node: Node, rows: np.ndarray) -> np.ndarray:
    """The golden op function of ``node`` on a batch of flattened input mantissas; flattened output."""
    const_inputs = OP_SPECS[node.op].const_inputs
    shape = node.inputs[0].type.shape
    args = [None if v is None
            else v.data if i in const_inputs  # a weight: per-sample data
            else v.data[None] if v.is_const  # a constant operand of Mul: batched, as the golden model has it
            else rows.reshape(len(rows), *shape)
            for i, v in enumerate(node.inputs)]
    (out,) = apply_fixed(node, args)[:1]
    return np.broadcast_to(out, (len(rows), *node.outputs[0].type.shape)).reshape(len(rows), -1).astype(np.int64)


def _move_indices(node: Node, n_in: int) -> np.ndarray:
    """Where each output lane comes from (-1: a padding constant), from two probes one apart."""
    a = _probe(node, np.arange(1, n_in + 1, dtype=np.int64)[None])[0]
    b = _probe(node, np.arange(2, n_in + 2, dtype=np.int64)[None])[0]
    return np.where(b - a == 1, a - 1, -1)


def _groups(shape: Sequence[int], axis: int) -> list[tuple[int, ...]]:
    """Flattened lane indices of each 1-D line along ``axis`` of a C-order tensor."""
    index = np.moveaxis(np.arange(int(np.prod(shape))).reshape(shape), axis, -1)
    return [tuple(int(i) for i in line) for line in index.reshape(-1, shape[axis])]


def execute(stages: Sequence[Stage], x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """Run the stages on a batch of flattened input mantissas ``(n, n_in)`` (a list of them, one
    per graph input, with several); ``(n, n_out)`` out (a list, one per graph output, with several).

    Each stage's :meth:`Stage.run` computes what its component does; the tests check the result
    against the golden model before any hardware is built."""
    xs = [np.asarray(v, dtype=np.int64) for v in (x if isinstance(x, (list, tuple)) else [x])]
    results: list[np.ndarray] = []
    for k, s in enumerate(stages):
        results.append(s.run([xs[-1 - i] if i < 0 else results[i] for i in (s.sources or (k - 1,))]))
    outputs = [results[i] for i in graph_outputs(stages)]
    return outputs[0] if len(outputs) == 1 and not isinstance(x, (list, tuple)) else outputs
