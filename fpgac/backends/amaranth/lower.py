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
read two or more. One graph input and one output; several, and LSTM/GRU, raise
:class:`~fpgac.errors.UnsupportedError` naming the model or the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ...errors import UnsupportedError
from ...ir import Act, FixedType, Graph, Node, Op, PoolKind
from ...ir.fixed import requantize
from ...ir.ops import OP_SPECS
from ...ir.tables import Table
from ...ir.semantics import apply_fixed, plan

__all__ = [
    "ArgMax",
    "Clip",
    "Linear",
    "Lookup",
    "MaxWindows",
    "Relu",
    "Requant",
    "Select",
    "Softmax",
    "Stage",
    "execute",
    "lower",
]


@dataclass
class Stage:
    """One step on a vector of lanes: ``n_in`` lanes of ``in_type`` to ``n_out`` lanes of ``out_type``."""

    node: str
    in_type: FixedType
    out_type: FixedType
    n_in: int
    n_out: int
    #: the stages whose outputs this one reads (-1: the graph input); () means the stage before
    sources: tuple[int, ...] = ()


@dataclass
class Linear(Stage):
    """``y = x @ matrix + bias``, exact (``out_type`` holds every result)."""

    matrix: np.ndarray = field(default=None)  # int64 [n_in, n_out]
    bias: np.ndarray = field(default=None)  # int64 [n_out]


@dataclass
class Requant(Stage):
    """Each lane cast from ``in_type`` to ``out_type`` with the latter's rounding and overflow."""


@dataclass
class Relu(Stage):
    """``max(x, 0)`` per lane."""


@dataclass
class PReLU(Stage):
    """``x << slope_frac`` where ``x >= 0``, else ``x * slopes[k]`` (lane ``k``): PReLU and LeakyReLU."""

    slopes: np.ndarray = field(default=None)  # int64 [n_in]: mantissas with slope_frac fractional bits
    slope_frac: int = 0


@dataclass
class Clip(Stage):
    """``min(max(x, lo), hi)`` per lane."""

    lo: int = 0
    hi: int = 0


@dataclass
class Lookup(Stage):
    """Each lane through ``table`` (``Table.lookup``: plain or interpolated)."""

    table: Table = field(default=None)


@dataclass
class MaxWindows(Stage):
    """Output lane ``k`` is the maximum of the input lanes ``windows[k]``."""

    windows: list[tuple[int, ...]] = field(default_factory=list)


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


@dataclass
class Select(Stage):
    """Output lane ``k`` is input lane ``indices[k]``, or the constant ``fill`` where the index is -1."""

    indices: np.ndarray = field(default=None)
    fill: int = 0


@dataclass
class Combine(Stage):
    """Lane-wise ``a op b`` of two stages' outputs (same lane count), each shifted left to the
    output's fractional bits first (Add/Sub/Max/Min; Mul needs no shift). ``in_type`` is ``a``'s."""

    op: str = "add"
    b_type: FixedType = field(default=None)
    a_shift: int = 0
    b_shift: int = 0


@dataclass
class Join(Stage):
    """The lanes of several stages' outputs, one after the other, each shifted left by its
    ``shifts`` entry (a Concat, before the :class:`Select` that puts lanes in the output's order)."""

    types: list[FixedType] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    shifts: list[int] = field(default_factory=list)


@dataclass
class ArgMax(Stage):
    """Per group of lanes, the position of the maximum (first, or last with ``select_last``)."""

    groups: list[tuple[int, ...]] = field(default_factory=list)
    select_last: bool = False


_LINEAR_OPS = {Op.DENSE, Op.CONV, Op.SCALE_SHIFT, Op.MUL}
_MOVE_OPS = {Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.PAD}


_BINARY_OPS = {Op.ADD: "add", Op.SUB: "sub", Op.MUL: "mul", Op.MAX: "max", Op.MIN: "min"}


def lower(graph: Graph) -> list[Stage]:
    """The stages computing ``graph`` exactly as the golden model does, in graph order.

    A chain of layers gives stages that each read the one before. A value read by several layers
    (a residual branch) is read by several stages, and Add/Sub/Mul/Max/Min of two run-time tensors
    (:class:`Combine`) and Concat (:class:`Join` then :class:`Select`) read two or more: their
    ``sources`` say which.
    """
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedError(f"the amaranth target builds models with one input and one output; "
                               f"{graph.name!r} has {len(graph.inputs)} and {len(graph.outputs)}")
    index = {id(graph.inputs[0]): -1}  # value -> the stage that computes it
    stages: list[Stage] = []
    for node in graph.nodes:
        data = [v for v in node.inputs if v is not None and not v.is_const]
        sources = tuple(index[id(v)] for v in data)
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
    if index.get(id(graph.outputs[0])) != len(stages) - 1:
        raise UnsupportedError(f"output {graph.outputs[0].name!r} is not the last layer computed")
    for k, stage in enumerate(stages):
        if stage.sources == (k - 1,):
            stage.sources = ()  # the plain chain case, as stages were before sources existed
    return stages


def is_chain(stages: Sequence[Stage]) -> bool:
    return all(not s.sources for s in stages)


def _lower_binary(node: Node, sources: tuple[int, ...]) -> Combine:
    a, b = node.inputs[0], node.inputs[1]
    y = node.outputs[0]
    if a.type.shape != b.type.shape or a.type.shape != y.type.shape:
        raise UnsupportedError(f"node {node.name!r} ({node.op.value}): inputs of shapes {list(a.type.shape)} and "
                               f"{list(b.type.shape)}; the amaranth target combines equal shapes only")
    frac = y.type.dtype.frac_bits
    shifts = (0, 0) if node.op is Op.MUL else (frac - a.type.dtype.frac_bits, frac - b.type.dtype.frac_bits)
    n = int(np.prod(y.type.shape))
    return Combine(node=node.name, in_type=a.type.dtype, out_type=y.type.dtype, n_in=n, n_out=n, sources=sources,
                   op=_BINARY_OPS[node.op], b_type=b.type.dtype, a_shift=shifts[0], b_shift=shifts[1])


def _lower_concat(node: Node, sources: tuple[int, ...], first: int) -> list[Stage]:
    """A Join of the inputs' lanes, then the Select that orders them as the golden Concat does
    (found by probing it with distinct values)."""
    y = node.outputs[0]
    frac = y.type.dtype.frac_bits
    counts = [int(np.prod(v.type.shape)) for v in node.inputs]
    shifts = [frac - v.type.dtype.frac_bits for v in node.inputs]
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


def _lower_node(node: Node) -> Stage:
    x, y = node.inputs[0], node.outputs[0]
    base = dict(node=node.name, in_type=x.type.dtype, out_type=y.type.dtype,
                n_in=int(np.prod(x.type.shape)), n_out=int(np.prod(y.type.shape)))
    if base["n_in"] * base["n_out"] > MAX_LANE_PAIRS:
        raise UnsupportedError(
            f"node {node.name!r} ({node.op.value}): {base['n_in']:,} input and {base['n_out']:,} output lanes are "
            f"too many for the fully parallel amaranth target (at most {MAX_LANE_PAIRS:,} pairs); "
            "use --target xilinx --io stream")
    op, a = node.op, node.attrs
    if op in (Op.LSTM, Op.GRU):
        raise UnsupportedError(f"node {node.name!r} ({op.value}): recurrent layers are not built by the amaranth "
                               "target; use --target xilinx or cpu")
    if op in _LINEAR_OPS or (op in (Op.POOL, Op.GLOBAL_POOL) and a["kind"] is not PoolKind.MAX):
        bias = _probe(node, np.zeros((1, base["n_in"]), dtype=np.int64))[0]
        columns = _probe(node, np.eye(base["n_in"], dtype=np.int64)) - bias
        return Linear(**base, matrix=columns, bias=bias)
    if op in (Op.POOL, Op.GLOBAL_POOL):  # max: window k holds the lanes whose unit vector reaches output k
        hits = _probe(node, np.eye(base["n_in"], dtype=np.int64)) == 1
        return MaxWindows(**base, windows=[tuple(np.flatnonzero(hits[:, k])) for k in range(base["n_out"])])
    if op in _MOVE_OPS:
        fill = plan(node).fill if op is Op.PAD else 0
        return Select(**base, indices=_move_indices(node, base["n_in"]), fill=fill)
    if op is Op.QUANT:
        return Requant(**base)
    if op is Op.LOOKUP:
        return Lookup(**base, table=a["table"])
    if op is Op.ACTIVATION and a["kind"] is Act.RELU:
        return Relu(**base)
    if op is Op.ACTIVATION and a["kind"] is Act.PRELU:  # LeakyReLU too: the quantizer makes it a PReLU
        slope = node.inputs[1]
        slopes = np.broadcast_to(slope.data, x.type.shape).reshape(-1).astype(np.int64)
        return PReLU(**base, slopes=slopes, slope_frac=int(slope.type.dtype.frac_bits))
    if op is Op.ACTIVATION and a["kind"] is Act.CLIP:
        lo, hi = plan(node).clip
        return Clip(**base, lo=lo, hi=hi)
    if op is Op.SOFTMAX:
        p = plan(node)
        return Softmax(**base, groups=_groups(x.type.shape, a["axis"]), exp=p.exp, reciprocal=p.reciprocal, log=p.log,
                       z_shift=p.z_shift, log_shift=p.log_shift)
    if op is Op.ARGMAX:
        return ArgMax(**base, groups=_groups(x.type.shape, a["axis"]), select_last=a["select_last_index"])
    what = f"{op.value}/{a['kind'].value}" if "kind" in a else op.value
    raise UnsupportedError(f"node {node.name!r} ({what}): not built by the amaranth target")


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


def execute(stages: Sequence[Stage], x: np.ndarray) -> np.ndarray:
    """Run the stages on a batch of flattened input mantissas ``(n, n_in)``; ``(n, n_out)`` out."""
    x = np.asarray(x, dtype=np.int64)
    results: list[np.ndarray] = []
    for k, s in enumerate(stages):
        inputs = [x if i < 0 else results[i] for i in (s.sources or (k - 1,))]
        results.append(_execute(s, inputs))
    return results[-1]


def _execute(s: Stage, inputs: list[np.ndarray]) -> np.ndarray:
    m = inputs[0]
    if isinstance(s, Combine):
        a, b = (np.left_shift(v, shift) for v, shift in zip(inputs, (s.a_shift, s.b_shift)))
        return {"add": np.add, "sub": np.subtract, "mul": np.multiply, "max": np.maximum, "min": np.minimum}[s.op](a, b)
    if isinstance(s, Join):
        return np.concatenate([np.left_shift(v, shift) for v, shift in zip(inputs, s.shifts)], axis=1)
    if isinstance(s, Linear):
        m = m @ s.matrix + s.bias
    elif isinstance(s, Requant):
        m = requantize(m, s.in_type, s.out_type)
    elif isinstance(s, Relu):
        m = np.maximum(m, 0)
    elif isinstance(s, Clip):
        m = np.clip(m, s.lo, s.hi)
    elif isinstance(s, PReLU):
        m = np.where(m >= 0, np.left_shift(m, s.slope_frac), m * s.slopes)
    elif isinstance(s, Lookup):
        m = s.table.lookup(m)
    elif isinstance(s, MaxWindows):
        m = np.stack([m[:, list(w)].max(axis=1) for w in s.windows], axis=1)
    elif isinstance(s, Select):
        m = np.where(s.indices >= 0, m[:, np.maximum(s.indices, 0)], s.fill)
    elif isinstance(s, Softmax):
        out = np.zeros_like(m)
        for g in s.groups:
            z = m[:, list(g)] - m[:, list(g)].max(axis=1, keepdims=True)
            e = s.exp.lookup(z)
            total = e.sum(axis=1, keepdims=True)
            if s.log is None:
                out[:, list(g)] = e * s.reciprocal.lookup(total)
            else:
                out[:, list(g)] = np.left_shift(z, s.z_shift) - np.left_shift(s.log.lookup(total), s.log_shift)
        m = out
    elif isinstance(s, ArgMax):
        cols = []
        for g in s.groups:
            v = m[:, list(g)]
            cols.append(len(g) - 1 - v[:, ::-1].argmax(axis=1) if s.select_last else v.argmax(axis=1))
        m = np.stack(cols, axis=1).astype(np.int64)
    else:
        raise TypeError(f"unknown stage {type(s).__name__}")
    return m
