"""Structured pruning and dead-unit elimination: whole neurons and channels leave the graph.

``StructuredPrune`` removes, in each Dense/Conv layer, the fraction of its output units (Dense
neurons, Conv output channels) whose incoming weights have the smallest L1 or L2 norm. The pruned
network computes exactly what the original computes with those units' weights and bias set to
zero, but the graph is smaller: the layer loses those weight columns (Dense) or filters (Conv) and
bias entries, and every layer reading them loses the matching inputs.

``DeadUnits`` removes units that cannot matter, leaving the function unchanged: a unit whose
outgoing weights are all zero, and a unit whose incoming weights are all zero (it is the constant
``bias``; after a Relu with ``bias <= 0``, always zero).

The rewrite follows each unit from the layer's output through ops that keep it on its own index:
elementwise activations, ScaleShift (its per-channel scale and shift lose the same entries), Pool
and GlobalPool (Conv channels), a Reshape that flattens ``[C, *rest]`` into ``[C * rest]`` (unit
``c`` becomes a block of ``prod(rest)`` inputs) or only reshapes the axes after the units'; down to
the layers that read it: a Dense reading it along its input axis (weight rows go) or a Conv with
``groups=1`` reading it as an input channel (weight input channels go). A removed unit is a
constant (0 for a pruned one, its bias for one with no incoming weights); whatever that constant
still adds downstream (``sigmoid(0) * w``, a ScaleShift's shift) is folded into the reading layer's
bias, so nothing changes but the size. Where the mapping is not clear (the unit reaches an Add,
Concat, Softmax, Transpose, a graph output, a grouped Conv, or a zero-padded Conv or averaging
pool that a non-zero constant would make position-dependent) the layer is left as it is, with a
log message saying why.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from fpgac.ir import Act, FloatType, Graph, Node, Op, PoolKind, TensorType, Value
from fpgac.passes.layer_weights import WEIGHT_OPS, set_const, unit_axis, weight_layers
from fpgac.ir.semantics import activation_function

__all__ = ["DeadUnits", "Norm", "StructuredPrune", "remove_units"]

log = logging.getLogger(__name__)


class Norm(enum.Enum):
    L1 = "l1"
    L2 = "l2"


@dataclass(frozen=True)
class StructuredPrune:
    """Remove ``fraction`` of each selected layer's units (at least one stays), smallest norm first."""

    fraction: float
    norm: Norm = Norm.L1
    layers: frozenset[str] | None = None  # None: every Dense/Conv
    exclude: frozenset[str] = frozenset()

    def run(self, graph: Graph) -> bool:
        changed = False
        for node in weight_layers(graph, self.layers, self.exclude):
            w = np.moveaxis(node.inputs[1].data, unit_axis(node), 0)
            n = w.shape[0]
            count = min(n - 1, math.floor(self.fraction * n + 0.5))
            if count <= 0:
                continue
            flat = np.abs(w.reshape(n, -1))
            norms = flat.sum(axis=1) if self.norm is Norm.L1 else np.sqrt((flat * flat).sum(axis=1))
            drop = np.sort(np.argsort(norms, kind="stable")[:count])
            changed |= remove_units(graph, node, drop, np.zeros(count))
        return changed


@dataclass(frozen=True)
class DeadUnits:
    """Remove units with all-zero outgoing or all-zero incoming weights, until none is left."""

    def run(self, graph: Graph) -> bool:
        changed = False
        while True:  # removing units of one layer can leave units of another dead
            layers = [n for n in graph.nodes if n.op in WEIGHT_OPS and isinstance(n.inputs[1].type.dtype, FloatType)]
            removed = [self._eliminate(graph, node) for node in layers]
            if not any(removed):
                return changed
            changed = True

    def _eliminate(self, graph: Graph, node: Node) -> bool:
        if node.op is Op.CONV and node.attrs["groups"] != 1:
            return False
        w = np.moveaxis(node.inputs[1].data, unit_axis(node), 0)
        n = w.shape[0]
        bias = node.inputs[2].data if node.input(2) is not None else np.zeros(n)
        incoming_zero = ~np.any(w.reshape(n, -1) != 0, axis=1)
        try:
            uses = _trace(graph, node.output, _out_axis(node), np.arange(n))
        except _Refuse:
            return False
        dead = incoming_zero | _silent(uses, n)
        if dead.all():
            dead[0] = False  # a layer keeps at least one unit
        if not dead.any():
            return False
        units = np.flatnonzero(dead)
        # a silent unit's value never reaches anything: 0 stands for it
        consts = np.where(incoming_zero[units], bias[units], 0.0)
        log.info("layer %r (%s): %d dead unit(s) removed", node.name, node.op.value, len(units))
        return remove_units(graph, node, units, consts)


def remove_units(graph: Graph, node: Node, units: np.ndarray, consts: np.ndarray) -> bool:
    """Remove output ``units`` of Dense/Conv ``node``, each standing for the constant ``consts[i]``.

    Says whether it did; when the consumers cannot be rewritten it logs why and changes nothing.
    """
    where = f"layer {node.name!r} ({node.op.value})"
    try:
        if node.op is Op.CONV and node.attrs["groups"] != 1:
            raise _Refuse("a grouped convolution's channels cannot be removed one by one")
        n = node.inputs[1].type.shape[unit_axis(node)]
        axis = _out_axis(node)
        uses = _trace(graph, node.output, axis, np.arange(n))
        values = np.zeros(n)
        values[units] = consts
        edits = _source_edits(graph, node, units, n) + _plan(graph, uses, units, values)
    except _Refuse as why:
        log.info("%s: units not removed: %s", where, why)
        return False
    for edit in edits:
        edit()
    return True


# -- tracing the units downstream -----------------------------------------------------------------


class _Refuse(Exception):
    """The rewrite is not clear here; the message says why."""


@dataclass
class _Use:
    """A node reading the units: ``owner[i]`` is the unit at index ``i`` of ``axis`` of its input."""

    node: Node
    axis: int
    owner: np.ndarray
    next: list[_Use]


def _out_axis(node: Node) -> int:
    return len(node.output.shape) - 1 if node.op is Op.DENSE else 0


def _where(node: Node) -> str:
    return f"{node.name!r} ({node.op.value})"


def _trace(graph: Graph, value: Value, axis: int, owner: np.ndarray) -> list[_Use]:
    if any(v is value for v in graph.outputs):
        raise _Refuse(f"{value.name!r} is a graph output")
    uses = []
    for node in graph.consumers(value):
        if node.inputs[0] is not value or sum(v is value for v in node.inputs) != 1:
            raise _Refuse(f"{_where(node)} reads it as more than its data input")
        follow = _FOLLOW.get(node.op)
        if follow is None:
            raise _Refuse(f"{_where(node)} reads it")
        out = follow(node, axis, owner)
        uses.append(_Use(node, axis, owner, [] if out is None else _trace(graph, node.output, *out)))
    return uses


Follow = Callable[[Node, int, np.ndarray], "tuple[int, np.ndarray] | None"]


def _follow_same(node: Node, axis: int, owner: np.ndarray) -> tuple[int, np.ndarray]:
    return axis, owner


def _follow_channels(node: Node, axis: int, owner: np.ndarray) -> tuple[int, np.ndarray]:
    if axis != 0:
        raise _Refuse(f"{_where(node)} pools across the units' axis")
    return axis, owner


def _follow_reshape(node: Node, axis: int, owner: np.ndarray) -> tuple[int, np.ndarray]:
    s, t = node.inputs[0].shape, tuple(node.attrs["shape"])
    if t == s[:axis] + (math.prod(s[axis:]),):  # flattens the units' axis with the ones after it
        return axis, np.repeat(owner, math.prod(s[axis + 1:]))
    if t[: axis + 1] == s[: axis + 1]:  # reshapes only the axes after the units'
        return axis, owner
    raise _Refuse(f"{_where(node)} {s} -> {t} mixes the units' axis with others")


def _follow_layer(node: Node, axis: int, owner: np.ndarray) -> None:
    if not isinstance(node.inputs[1].type.dtype, FloatType):
        raise _Refuse(f"{_where(node)} has fixed-point weights")
    if node.op is Op.DENSE and axis != len(node.inputs[0].shape) - 1:
        raise _Refuse(f"{_where(node)} reads the units along another axis than its input axis")
    if node.op is Op.CONV and (axis != 0 or node.attrs["groups"] != 1):
        raise _Refuse(f"{_where(node)} is a grouped convolution" if axis == 0 else
                      f"{_where(node)} reads the units along a spatial axis")


_FOLLOW: dict[Op, Follow] = {
    Op.ACTIVATION: _follow_same,
    Op.SCALE_SHIFT: _follow_same,
    Op.POOL: _follow_channels,
    Op.GLOBAL_POOL: _follow_channels,
    Op.RESHAPE: _follow_reshape,
    Op.DENSE: _follow_layer,
    Op.CONV: _follow_layer,
}


def _silent(uses: list[_Use], n: int) -> np.ndarray:
    """Per unit: no weight of any layer downstream reads it (every such weight is zero)."""
    silent = np.ones(n, dtype=bool)
    for use in uses:
        if use.node.op in WEIGHT_OPS:
            w = use.node.inputs[1].data
            reads = np.any(w != 0, axis=tuple(i for i in range(w.ndim) if i != (0 if use.node.op is Op.DENSE else 1)))
            loud = np.zeros(n, dtype=bool)
            np.logical_or.at(loud, use.owner, reads)
            silent &= ~loud
        else:
            silent &= _silent(use.next, n)
    return silent


# -- planning the edits (nothing changes until every one is known to be possible) -----------------

Edit = Callable[[], None]


def _resize(value: Value, axis: int, size: int) -> Edit:
    shape = list(value.shape)
    shape[axis] = size

    def edit() -> None:
        value.type = TensorType(value.type.dtype, tuple(shape))

    return edit


def _replace(graph: Graph, node: Node, index: int, data: np.ndarray) -> Edit:
    sparse = node.inputs[index].type.sparsity is not None if node.input(index) is not None else False
    return lambda: set_const(graph, node, index, data, sparse=sparse)


def _source_edits(graph: Graph, node: Node, units: np.ndarray, n: int) -> list[Edit]:
    keep = np.setdiff1d(np.arange(n), units)
    edits = [_replace(graph, node, 1, np.take(node.inputs[1].data, keep, axis=unit_axis(node)))]
    if node.input(2) is not None:
        edits.append(_replace(graph, node, 2, node.inputs[2].data[keep]))
    return edits + [_resize(node.output, _out_axis(node), len(keep))]


def _plan(graph: Graph, uses: list[_Use], units: np.ndarray, consts: np.ndarray) -> list[Edit]:
    """Edits for every use; ``consts[i]`` is the constant at index ``i`` of the uses' input if removed."""
    edits: list[Edit] = []
    for use in uses:
        drop = np.isin(use.owner, units)
        out = _PLAN[use.node.op](graph, use, drop, consts, edits)
        if use.next:
            edits += _plan(graph, use.next, units, out)
    return edits


def _along(node: Node, index: int, axis: int) -> tuple[np.ndarray, int | None]:
    """Constant input ``index`` as one number per index of ``axis`` of the data input, and the axis
    of the constant itself that runs along it (None when the constant is broadcast along it)."""
    value = node.inputs[index]
    if not isinstance(value.type.dtype, FloatType):
        raise _Refuse(f"{_where(node)} has fixed-point constants")
    x_shape = node.inputs[0].shape
    data = value.data
    full = np.moveaxis(np.broadcast_to(data, x_shape), axis, 0).reshape(x_shape[axis], -1)
    if not np.all(full == full[:, :1]):
        raise _Refuse(f"{_where(node)}: {value.name!r} varies along other axes than the units'")
    own = axis - (len(x_shape) - data.ndim)
    return full[:, 0], (own if own >= 0 and data.shape[own] != 1 else None)


def _plan_activation(graph: Graph, use: _Use, drop: np.ndarray, consts: np.ndarray, edits: list[Edit]) -> np.ndarray:
    node = use.node
    kind = node.attrs["kind"]
    if kind is Act.PRELU:
        slope, own = _along(node, 1, use.axis)
        if own is not None:
            edits.append(_replace(graph, node, 1, np.compress(~drop, node.inputs[1].data, axis=own)))
        out = np.where(consts >= 0, consts, slope * consts)
    else:
        out = activation_function(kind, node.attrs)(consts)
    edits.append(_resize(node.output, use.axis, int((~drop).sum())))
    return out


def _plan_scale_shift(graph: Graph, use: _Use, drop: np.ndarray, consts: np.ndarray, edits: list[Edit]) -> np.ndarray:
    node = use.node
    (scale, own_s), (shift, own_t) = _along(node, 1, use.axis), _along(node, 2, use.axis)
    for index, own in ((1, own_s), (2, own_t)):
        if own is not None:
            edits.append(_replace(graph, node, index, np.compress(~drop, node.inputs[index].data, axis=own)))
    edits.append(_resize(node.output, use.axis, int((~drop).sum())))
    return consts * scale + shift


def _plan_pool(graph: Graph, use: _Use, drop: np.ndarray, consts: np.ndarray, edits: list[Edit]) -> np.ndarray:
    node = use.node
    padded_avg = (node.op is Op.POOL and node.attrs["kind"] is PoolKind.AVG and node.attrs["count_include_pad"]
                  and any(node.attrs["pads"]))
    if padded_avg and np.any(consts[drop] != 0):
        raise _Refuse(f"{_where(node)} averages zero padding into a removed unit's non-zero constant")
    edits.append(_resize(node.output, use.axis, int((~drop).sum())))
    return consts


def _plan_reshape(graph: Graph, use: _Use, drop: np.ndarray, consts: np.ndarray, edits: list[Edit]) -> np.ndarray:
    node = use.node
    out_axis, out_owner = _follow_reshape(node, use.axis, use.owner)
    repeat = len(out_owner) // len(use.owner)
    size = int((~drop).sum()) * repeat
    shape = list(node.attrs["shape"])
    shape[out_axis] = size

    def edit() -> None:
        node.attrs["shape"] = tuple(shape)

    edits += [edit, _resize(node.output, out_axis, size)]
    return np.repeat(consts, repeat)


def _plan_dense(graph: Graph, use: _Use, drop: np.ndarray, consts: np.ndarray, edits: list[Edit]) -> None:
    node = use.node
    w = node.inputs[1].data
    added = consts[drop] @ w[drop]
    edits.append(_replace(graph, node, 1, w[~drop]))
    _fold_into_bias(graph, node, added, edits)


def _plan_conv(graph: Graph, use: _Use, drop: np.ndarray, consts: np.ndarray, edits: list[Edit]) -> None:
    node = use.node
    w = node.inputs[1].data
    removed = w[:, drop]  # [M, D, *kernel]
    reads = np.any(removed != 0, axis=tuple(i for i in range(removed.ndim) if i != 1))
    if any(node.attrs["pads"]) and np.any((consts[drop] != 0) & reads):
        raise _Refuse(f"{_where(node)} pads with zeros around a removed channel's non-zero constant")
    added = removed.reshape(removed.shape[0], removed.shape[1], -1).sum(axis=2) @ consts[drop]
    edits.append(_replace(graph, node, 1, w[:, ~drop]))
    _fold_into_bias(graph, node, added, edits)


def _fold_into_bias(graph: Graph, node: Node, added: np.ndarray, edits: list[Edit]) -> None:
    if not np.any(added != 0):
        return
    bias = node.input(2)
    if bias is not None and not isinstance(bias.type.dtype, FloatType):
        raise _Refuse(f"{_where(node)} has a fixed-point bias")
    edits.append(lambda: set_const(graph, node, 2, (bias.data if bias is not None else 0.0) + added, sparse=False))


_PLAN: dict[Op, Callable[..., np.ndarray | None]] = {
    Op.ACTIVATION: _plan_activation,
    Op.SCALE_SHIFT: _plan_scale_shift,
    Op.POOL: _plan_pool,
    Op.GLOBAL_POOL: _plan_pool,
    Op.RESHAPE: _plan_reshape,
    Op.DENSE: _plan_dense,
    Op.CONV: _plan_conv,
}
