"""Quantize: give every tensor a FixedType, from calibrated ranges and exact bounds.

The rules (the README's "Precision" section says the same for users):

- **Activations** (graph inputs, and wherever a value is narrowed): ``bits`` wide, integer bits
  the fewest that hold ``MARGIN`` (1.25) times the largest magnitude calibration saw, unsigned
  when calibration saw no negative value; rounding RND (half up), overflow SAT. A value is
  narrowed by an explicit ``Quant`` node, only where it feeds arithmetic whose cost grows with
  its width (Dense, Conv, Mul, Add, averaging, recurrent layers) or leaves the graph; Relu, max
  pooling and reshapes work on the exact value, and tables index any width directly.
- **Weights**: ``bits`` wide, integer bits the fewest that hold the largest weight after rounding
  (no margin: weights are known), fewer fractional bits when the weights are exact with fewer
  (binarized, power-of-two, QONNX). **Biases** take the accumulator's fractional bits.
- **Accumulators and every other exact result** (Dense, Conv, Add, Mul, ...): the exact type,
  from bounds computed on the integer mantissas of the input *types* (so for any input the types
  allow, not just the calibration data): ``sum_i max(w_i * lo, w_i * hi) + b`` per output. No sum
  can wrap; the golden model checks that every value fits its type.
- **Tables**: sigmoid/tanh/exp/reciprocal/log and the other smooth activations become ``Lookup``
  tables of at most ``table_size`` entries over the range where the function has not settled to
  within half an output LSB (see :mod:`fpgac.ir.tables`).

Overrides: ``precision`` (one FixedType for every weight, bias, input and result, as hls4ml's
``Model: Precision``), and per layer (``layers[name]``: ``bits``, ``weight_bits``,
``result_bits``, or explicit ``weight``/``bias``/``result``/``accum`` types). A layer is named by
its node: a result override applies to the value the layer produces, after any Relu or reshape
that follows it. An ``accum`` type too narrow for the exact bounds is refused.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fpgac.errors import UnsupportedError, UsageError
from fpgac.ir import (
    MAX_EXACT_WIDTH,
    Act,
    FixedType,
    Graph,
    Node,
    Op,
    Overflow,
    PoolKind,
    Rounding,
    TensorType,
    Value,
    quantize,
)
from fpgac.ir.tables import DEFAULT_TABLE_SIZE, Table
from fpgac.passes.quantize_rnn import rule_gru, rule_lstm
from fpgac.ir.semantics import activation_function

__all__ = ["Quantize", "QuantConfig", "LayerConfig", "QuantRecord", "MARGIN"]

#: activations get integer bits for this multiple of the largest calibrated magnitude
MARGIN = 1.25

#: ops that neither grow nor combine values: their output keeps the input's (exact) type
_PASS_THROUGH = {Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.PAD}

#: ops whose data inputs are narrowed first (their cost grows with the input width)
_NARROWS_INPUTS = {Op.DENSE, Op.CONV, Op.SCALE_SHIFT, Op.MUL, Op.ADD, Op.SUB, Op.LSTM, Op.GRU}

#: activations that become tables, and the output range each is known to have (None: calibrated)
_TABULATED: dict[Act, tuple[float, float] | None] = {
    Act.SIGMOID: (0.0, 1.0),
    Act.HARD_SIGMOID: (0.0, 1.0),
    Act.TANH: (-1.0, 1.0),
    Act.SOFTSIGN: (-1.0, 1.0),
    Act.ELU: None,
    Act.SELU: None,
    Act.SOFTPLUS: None,
}


@dataclass(frozen=True)
class LayerConfig:
    """Per-layer overrides; any field left ``None`` falls back to the global setting."""

    bits: int | None = None
    weight_bits: int | None = None
    result_bits: int | None = None
    weight: FixedType | None = None
    bias: FixedType | None = None
    result: FixedType | None = None
    accum: FixedType | None = None


@dataclass(frozen=True)
class QuantConfig:
    bits: int = 16
    precision: FixedType | None = None
    layers: Mapping[str, LayerConfig] = field(default_factory=dict)
    table_size: int = DEFAULT_TABLE_SIZE

    def __post_init__(self) -> None:
        for bits in [self.bits] + [b for c in self.layers.values() for b in (c.bits, c.weight_bits, c.result_bits)]:
            if bits is not None and not (isinstance(bits, int) and 2 <= bits <= 32):
                raise UsageError(f"bit widths must be integers from 2 to 32, not {bits!r}")
        if not (isinstance(self.table_size, int) and 2 <= self.table_size <= 1 << 16):
            raise UsageError(f"table size must be from 2 to 65536, not {self.table_size!r}")


@dataclass(frozen=True)
class QuantRecord:
    """What quantization chose for one tensor: shown by ``fpgac inspect``, summed for bit budgets."""

    layer: str
    role: str  # input, weight, bias, result, accum, table
    value: str
    type: FixedType
    elements: int


@dataclass(frozen=True)
class Quantize:
    """The pass. ``records`` (a list, filled in by ``run``) says what it chose, tensor by tensor."""

    config: QuantConfig = QuantConfig()
    records: list[QuantRecord] = field(default_factory=list, compare=False, repr=False)

    def run(self, graph: Graph) -> bool:
        _Quantizer(graph, self.config, self.records).run()
        return True


# -- type arithmetic ------------------------------------------------------------------------------


def activation_type(lo: float, hi: float, bits: int, *, int_bits: int | None = None) -> FixedType:
    """``bits`` wide, integer bits for ``MARGIN`` times the largest magnitude, RND and SAT."""
    signed = lo < 0
    if int_bits is None:
        m = max(abs(lo), abs(hi)) * MARGIN
        int_bits = (math.floor(math.log2(m)) + 1 if m > 0 else 0) + signed
    return FixedType(bits, int_bits, signed, Rounding.RND, Overflow.SAT)


def weight_type(data: np.ndarray, bits: int) -> FixedType:
    """The narrowest-range type of ``bits`` that holds every weight after rounding (RND, SAT)."""
    data = np.asarray(data, dtype=np.float64)
    signed = bool(data.size and data.min() < 0)
    m = float(np.abs(data).max()) if data.size else 0.0
    int_bits = (math.floor(math.log2(m)) + 1 if m > 0 else 0) + signed
    while True:
        t = FixedType(bits, int_bits, signed, Rounding.RND, Overflow.SAT)
        rounded = np.floor(data * 2.0**t.frac_bits + 0.5)
        if not data.size or (rounded.max() <= t.max_mantissa and rounded.min() >= t.min_mantissa):
            break
        int_bits += 1
    def exact(frac: int) -> bool:
        scaled = data * 2.0**frac
        return bool(np.all(scaled == np.round(scaled)))

    if not exact(t.frac_bits - 1):
        return t
    frac = next(f for f in range(t.frac_bits - 64, t.frac_bits) if exact(f))  # binarized, power-of-two...
    width = max(1, int_bits + frac)
    return FixedType(width, width - frac, signed, Rounding.RND, Overflow.SAT)


def bound_type(lo: int, hi: int, frac: int, what: str) -> FixedType:
    """The narrowest type with ``frac`` fractional bits whose mantissas cover ``[lo, hi]``."""
    lo, hi = int(min(lo, 0)), int(max(hi, 0))
    signed = lo < 0
    width = max(hi.bit_length(), (-lo - 1).bit_length()) + 1 if signed else max(hi.bit_length(), 1)
    if width > MAX_EXACT_WIDTH:
        raise UsageError(
            f"{what} needs {width} bits to hold every value exactly (at most {MAX_EXACT_WIDTH}); "
            "use fewer bits (--bits) or narrower overrides"
        )
    return FixedType(width, width - frac, signed)


def _mantissa_range(t: FixedType) -> tuple[int, int]:
    return t.min_mantissa, t.max_mantissa


def _shifted(lo: int, hi: int, by: int) -> tuple[int, int]:
    return lo << by, hi << by


# -- the quantizer --------------------------------------------------------------------------------


class _Quantizer:
    def __init__(self, graph: Graph, config: QuantConfig, records: list[QuantRecord]) -> None:
        self.graph = graph
        self.config = config
        self.records = records
        self.narrowed: dict[int, Value] = {}  # id(value) -> its Quant output
        self.consts: dict[tuple[int, FixedType], Value] = {}  # (id(float constant), type) -> quantized
        # the model's own quantizers (QONNX): their types are the model's, not fpgac's to change
        self.model_quants = {n.name for n in graph.nodes if n.op is Op.QUANT and isinstance(n.output.type.dtype, FixedType)}
        known = {n.name for n in graph.nodes} | {v.name for v in graph.inputs}
        unknown = sorted(set(config.layers) - known)
        if unknown:
            raise UsageError(
                f"precision config names unknown layer {unknown[0]!r}; layers are: "
                + ", ".join(sorted(n.name for n in graph.nodes if n.op is not Op.QUANT))
            )

    # -- settings ---------------------------------------------------------------------------

    def _layer(self, names: list[str]) -> LayerConfig:
        for name in names:
            if name in self.config.layers:
                return self.config.layers[name]
        return LayerConfig()

    def _bits(self, layer: LayerConfig, role: str) -> int:
        specific = layer.weight_bits if role == "weight" else layer.result_bits
        return specific or layer.bits or self.config.bits

    def _owners(self, value: Value) -> list[str]:
        """Config keys for a value's result type: its producer, then the layer it came through."""
        names = []
        node = value.producer
        while node is not None:
            names.append(node.name)
            if not (node.op in _PASS_THROUGH or (node.op is Op.ACTIVATION and node.attrs["kind"] in (Act.RELU, Act.CLIP))
                    or (node.op is Op.POOL and node.attrs["kind"] is PoolKind.MAX)):
                break
            node = node.inputs[0].producer
        return names or [value.name]

    def _record(self, layer: str, role: str, value: Value, t: FixedType) -> None:
        self.records.append(QuantRecord(layer, role, value.name, t, value.type.size))

    def _target(self, value: Value) -> FixedType:
        """The type a value is narrowed to: the override, or its calibrated range at the layer's bits."""
        owners = self._owners(value)
        layer = self._layer(owners)
        if layer.result is not None:
            return layer.result
        if owners[-1] in self.model_quants:  # the model chose this width: only a per-layer override changes it
            return value.type.dtype
        if self.config.precision is not None:
            return self.config.precision
        if value.range is None:
            raise UsageError(f"value {value.name!r} has no calibrated range: run Calibrate before Quantize")
        lo, hi = value.range
        bits = self._bits(layer, "result")
        producer = value.producer
        if producer is not None and producer.op is Op.SOFTMAX and not producer.attrs["log"]:
            return activation_type(0.0, 1.0, bits, int_bits=0)  # probabilities: ufixed<bits,0>, 1.0 saturates
        return activation_type(lo, hi, bits)

    # -- constants --------------------------------------------------------------------------

    def _set_const(self, node: Node, index: int, t: FixedType, role: str) -> Value:
        """Replace constant input ``index`` by its mantissas in ``t`` (shared if another node asked the same)."""
        value = node.inputs[index]
        key = (id(value), t)
        if key not in self.consts:
            data = quantize(value.data, t)
            data.setflags(write=False)
            name = value.name if not any(k[0] == id(value) for k in self.consts) else self.graph.unique_name(value.name)
            self.consts[key] = Value(name, TensorType(t, value.type.shape, value.type.sparsity), data)
        new = node.inputs[index] = self.consts[key]
        self._record(node.name, role, new, t)
        return new

    def _weight(self, node: Node, index: int) -> FixedType:
        value = node.inputs[index]
        if isinstance(value.type.dtype, FixedType):  # already quantized by the model (QONNX)
            self._record(node.name, "weight", value, value.type.dtype)
            return value.type.dtype
        layer = self._layer([node.name])
        t = layer.weight or self.config.precision or weight_type(value.data, self._bits(layer, "weight"))
        self._set_const(node, index, t, "weight")
        return t

    def _finer_weight(self, node: Node, w: FixedType, x_frac: int) -> FixedType:
        """The weight (input 1) restated with more fractional bits, exactly, when the model's own (QONNX)
        bias (input 2) is finer than ``x * w``: the sums then hold the bias exactly. The extra low bits are
        zeros, which cost a constant multiplier nothing."""
        bias = node.input(2)
        if bias is None or not isinstance(bias.type.dtype, FixedType):
            return w
        extra = bias.type.dtype.frac_bits - (x_frac + w.frac_bits)
        if extra <= 0:
            return w
        t = FixedType(w.width + extra, w.int_bits, w.signed, w.rounding, w.overflow)
        value = node.inputs[1]
        data = np.left_shift(value.data.astype(np.int64), extra)
        data.setflags(write=False)
        node.inputs[1] = Value(self.graph.unique_name(value.name), TensorType(t, value.type.shape, value.type.sparsity), data)
        return t

    def _bias(self, node: Node, index: int, frac: int) -> np.ndarray:
        """Quantize the bias at (at most) ``frac`` fractional bits; its mantissas at ``frac`` (Python ints)."""
        value = node.input(index)
        if value is None:
            return np.zeros(0, dtype=object)
        if isinstance(value.type.dtype, FixedType):
            t = value.type.dtype
            if t.frac_bits > frac:
                raise UnsupportedError(
                    f"layer {node.name!r} ({node.op.value}): the model's bias has {t.frac_bits} fractional bits, "
                    f"more than the {frac} of its sums; give the layer's input more fractional bits"
                )
            self._record(node.name, "bias", value, t)
        else:
            layer = self._layer([node.name])
            t = layer.bias or self.config.precision
            if t is None:  # at the accumulator's precision: adding it is exact
                t = weight_type(value.data, 32)
                width = min(MAX_EXACT_WIDTH, max(1, t.int_bits + frac))
                t = FixedType(width, width - min(frac, width - t.int_bits), t.signed, Rounding.RND, Overflow.SAT)
            if t.frac_bits > frac:  # finer than the accumulator: the extra bits could never count
                width = max(1, t.int_bits + frac)
                t = FixedType(width, width - frac, t.signed, Rounding.RND, Overflow.SAT)
            value = self._set_const(node, index, t, "bias")
        return value.data.astype(object) * (1 << (frac - t.frac_bits))

    # -- outputs ----------------------------------------------------------------------------

    def _set_output(self, node: Node, t: FixedType, index: int = 0, role: str = "accum") -> None:
        value = node.outputs[index]
        if role == "accum":
            layer = self._layer([node.name])
            if layer.accum is not None:
                lo, hi = _mantissa_range(t)
                a = layer.accum
                if a.frac_bits != t.frac_bits or a.min_mantissa > lo or a.max_mantissa < hi:
                    raise UsageError(
                        f"layer {node.name!r}: accum type {a} cannot hold every sum exactly; it needs {t} "
                        "(fpgac never lets an accumulator wrap)"
                    )
                t = a
        value.type = TensorType(t, value.type.shape, value.type.sparsity)
        if role in ("accum", "table"):
            self._record(node.name, role, value, t)

    def _narrow(self, node: Node, index: int) -> FixedType:
        """Narrow data input ``index`` of ``node`` to its target type with a Quant (shared per value)."""
        value = node.inputs[index]
        if value.is_const:
            return value.type.dtype
        if id(value) in self.narrowed:
            q = self.narrowed[id(value)]
        else:
            target = self._target(value)
            if value.type.dtype == target or value.type.dtype.width <= target.width:
                return value.type.dtype  # already as narrow (a model's own Quant, a Relu of a narrowed value)
            q = self._insert_quant(value, target)
        node.inputs[index] = q
        return q.type.dtype

    def _insert_quant(self, value: Value, target: FixedType) -> Value:
        quant = self.graph.add_node(Op.QUANT, [value], [TensorType(target, value.type.shape)], name=f"{value.name}_q")
        q = quant.output
        q.range = value.range
        self.narrowed[id(value)] = q
        self._record(self._owners(value)[-1], "result", q, target)
        return q

    # -- driver -----------------------------------------------------------------------------

    def run(self) -> None:
        graph = self.graph
        for value in graph.inputs:
            layer = self._layer([value.name])
            t = layer.result or self.config.precision
            users = graph.consumers(value)
            if t is None and len(users) == 1 and users[0].op is Op.QUANT and isinstance(users[0].output.type.dtype, FixedType):
                t = users[0].output.type.dtype  # the model quantizes its input itself: take that type as is
            if t is None:
                if value.range is None:
                    raise UsageError(f"input {value.name!r} has no calibrated range: run Calibrate before Quantize")
                t = activation_type(*value.range, self._bits(layer, "result"))
            value.type = TensorType(t, value.type.shape)
            self._record(value.name, "input", value, t)
        for node in list(graph.nodes):
            if node.op in _NARROWS_INPUTS:
                data = [i for i, v in enumerate(node.inputs) if v is not None and not v.is_const]
                for i in data:
                    self._narrow(node, i)
            rule = _RULES.get(node.op)
            if rule is None:
                raise UnsupportedError(f"node {node.name!r} ({node.op.value}): no fixed-point form yet")
            rule(self, node)
        for i, value in enumerate(graph.outputs):
            if value.is_const or not isinstance(value.type.dtype, FixedType):
                continue
            if value.producer is not None and value.producer.op is Op.ARGMAX:
                continue
            target = self._target(value)
            if value.type.dtype != target and value.type.dtype.width > target.width:
                name = value.name
                graph.rename(value, f"{name}_exact")
                q = self._insert_quant(value, target)
                graph.rename(q, name)
                graph.outputs[i] = q
                if value.name in graph.output_batch_axes:
                    graph.output_batch_axes[name] = graph.output_batch_axes.pop(value.name)
        graph.toposort()


# -- rules: each sets its node's output types (and quantizes its constants) -----------------------


def _fit(node: Node, lo: int, hi: int, frac: int) -> FixedType:
    return bound_type(lo, hi, frac, f"layer {node.name!r} ({node.op.value})")


def _dot_bounds(w: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Per output column of ``w`` [K, M] (int mantissas): the least and greatest ``x @ w`` over ``x in [lo, hi]^K``."""
    wo = w.astype(object)
    a, b = wo * lo, wo * hi
    return np.minimum(a, b).sum(axis=0), np.maximum(a, b).sum(axis=0)


def _rule_dense(q: _Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    w = q._finer_weight(node, q._weight(node, 1), x.frac_bits)
    frac = x.frac_bits + w.frac_bits
    wm = node.inputs[1].data
    if node.op is Op.CONV:
        wm = wm.reshape(wm.shape[0], -1).T
    lows, highs = _dot_bounds(wm, *_mantissa_range(x))
    bias = q._bias(node, 2, frac)
    if bias.size:
        lows, highs = lows + bias.reshape(-1), highs + bias.reshape(-1)
    q._set_output(node, _fit(node, int(lows.min()), int(highs.max()), frac))


def _rule_scale_shift(q: _Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    s = q._finer_weight(node, q._weight(node, 1), x.frac_bits)
    frac = x.frac_bits + s.frac_bits
    bm = q._bias(node, 2, frac)
    sm = node.inputs[1].data.astype(object)
    lo, hi = _mantissa_range(x)
    a, b = sm * lo, sm * hi
    lows, highs = np.minimum(a, b) + bm, np.maximum(a, b) + bm
    q._set_output(node, _fit(node, int(np.min(lows)), int(np.max(highs)), frac))


def _rule_activation(q: _Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    kind = node.attrs["kind"]
    lo, hi = _mantissa_range(x)
    if kind is Act.RELU:
        q._set_output(node, _fit(node, 0, hi, x.frac_bits), role="exact")
    elif kind is Act.ABS:
        q._set_output(node, _fit(node, 0, max(hi, -lo), x.frac_bits), role="exact")
    elif kind is Act.CLIP:
        q._set_output(node, FixedType(x.width, x.int_bits, x.signed), role="exact")
    elif kind in (Act.PRELU, Act.LEAKY_RELU):
        if kind is Act.LEAKY_RELU:
            node.inputs.append(q.graph.constant(f"{node.name}_alpha", np.array(node.attrs.pop("alpha"))))
            node.attrs["kind"] = Act.PRELU
        s = q._weight(node, 1)
        sm = node.inputs[1].data.astype(object)
        # x >= 0 gives x << fs in [0, hi << fs]; x < 0 gives x * slope, extreme at x = lo
        cands = [max(hi, 0) << s.frac_bits, 0] + ([int(np.min(sm * lo)), int(np.max(sm * lo))] if lo < 0 else [])
        q._set_output(node, _fit(node, min(cands), max(cands), x.frac_bits + s.frac_bits))
    elif kind in _TABULATED:
        _tabulate(q, node)
    else:
        raise UnsupportedError(f"node {node.name!r}: activation {kind.value} has no fixed-point form yet")


def _settle(frac: int, rate: float = 1.0) -> float:
    """Where ``1 - e^(-rate x)`` is within half an LSB of 1 at ``frac`` fractional bits."""
    return (frac + 1) * math.log(2.0) / rate


def _tabulate(q: _Quantizer, node: Node) -> None:
    """Replace a smooth activation by a Lookup over the range where it has not settled."""
    x = node.inputs[0].type.dtype
    kind = node.attrs["kind"]
    known = _TABULATED[kind]
    out = q._target(node.output)
    if known is not None and q._layer(q._owners(node.output)).result is None and q.config.precision is None:
        out = activation_type(*known, out.width, int_bits=0 if known[0] >= 0 else 1)
    if kind is Act.SIGMOID:
        lo, hi = -_settle(out.frac_bits), _settle(out.frac_bits)
    elif kind is Act.TANH:
        lo, hi = -_settle(out.frac_bits + 1, 2.0), _settle(out.frac_bits + 1, 2.0)
    elif kind is Act.HARD_SIGMOID:
        a, b = node.attrs["alpha"], node.attrs["beta"]
        lo, hi = sorted(((0.0 - b) / a, (1.0 - b) / a))
    else:
        rng = node.inputs[0].range or (x.min_value, x.max_value)
        lo, hi = rng[0] * MARGIN, rng[1] * MARGIN
    attrs = {k: v for k, v in node.attrs.items() if k != "kind"}
    table = Table.build(kind.value, activation_function(kind, attrs), x, out, lo, hi, q.config.table_size,
                        interpolate=True)
    node.op = Op.LOOKUP
    node.attrs = {"kind": kind, "table": table}
    q._set_output(node, out, role="table")
    q._record(node.name, "table", node.output, out)


def _rule_softmax(q: _Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    n = node.inputs[0].type.shape[node.attrs["axis"]]
    bits = q._bits(q._layer([node.name]), "result")
    z = FixedType(x.width + 1, x.int_bits + 1, True)  # x - max(x): exact
    frac_e = bits + 2
    exp_t = FixedType(frac_e + 1, 1, False, Rounding.RND, Overflow.SAT)
    exp = Table.build("exp", np.exp, z, exp_t, -_settle(frac_e), 0.0, q.config.table_size, interpolate=True)
    grow = max(1, math.ceil(math.log2(n))) if n > 1 else 0
    total = FixedType(exp_t.width + grow, exp_t.int_bits + grow, False)
    node.attrs["exp"] = exp
    if node.attrs["log"]:
        log_int = max(1, math.floor(math.log2(max(math.log(n), 1e-9))) + 1) if n > 1 else 1
        log_t = FixedType(bits + log_int, log_int, False, Rounding.RND, Overflow.SAT)
        log = Table.build("log", np.log, total, log_t, 1.0, float(n), q.config.table_size, interpolate=True)
        node.attrs["log_table"] = log
        frac = max(x.frac_bits, log_t.frac_bits)
        zlo = z.min_mantissa << (frac - x.frac_bits)
        q._set_output(node, _fit(node, zlo - (log_t.max_mantissa << (frac - log_t.frac_bits)), 0, frac), role="exact")
    else:
        recip_t = FixedType(bits + 3, 1, False, Rounding.RND, Overflow.SAT)
        recip = Table.build("reciprocal", lambda s: 1.0 / s, total, recip_t, 1.0, float(n), q.config.table_size,
                            interpolate=True)
        node.attrs["reciprocal"] = recip
        frac = exp_t.frac_bits + recip_t.frac_bits
        q._set_output(node, _fit(node, 0, exp_t.max_mantissa * recip_t.max_mantissa, frac), role="exact")


def _reciprocal_bits(q: _Quantizer, node: Node, count: int) -> int:
    return q._bits(q._layer([node.name]), "result") + max(0, math.ceil(math.log2(count))) + 1


def _rule_pool(q: _Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    if node.attrs["kind"] is PoolKind.MAX:
        q._set_output(node, FixedType(x.width, x.int_bits, x.signed), role="exact")
        return
    taps = math.prod(node.attrs["kernel"]) if node.op is Op.POOL else math.prod(node.inputs[0].type.shape[1:])
    bits = _reciprocal_bits(q, node, taps)
    node.attrs["reciprocal_bits"] = bits
    lo, hi = _mantissa_range(x)
    # count * round(2**bits / count) over every count a window can have
    worst = max(c * ((((1 << (bits + 1)) // c) + 1) >> 1) for c in range(1, taps + 1))
    q._set_output(node, _fit(node, min(lo, 0) * worst, max(hi, 0) * worst, x.frac_bits + bits))


def _rule_binary(q: _Quantizer, node: Node) -> None:
    types = [q._weight(node, i) if v.is_const else v.type.dtype for i, v in enumerate(node.inputs)]
    (a, b) = types
    ra, rb = _mantissa_range(a), _mantissa_range(b)
    if node.op is Op.MUL:
        corners = [x * y for x in ra for y in rb]
        q._set_output(node, _fit(node, min(corners), max(corners), a.frac_bits + b.frac_bits))
        return
    frac = max(a.frac_bits, b.frac_bits)
    (alo, ahi), (blo, bhi) = _shifted(*ra, frac - a.frac_bits), _shifted(*rb, frac - b.frac_bits)
    lo, hi = {
        Op.ADD: (alo + blo, ahi + bhi),
        Op.SUB: (alo - bhi, ahi - blo),
        Op.MAX: (max(alo, blo), max(ahi, bhi)),
        Op.MIN: (min(alo, blo), min(ahi, bhi)),
    }[node.op]
    q._set_output(node, _fit(node, lo, hi, frac), role="accum" if node.op in (Op.ADD, Op.SUB) else "exact")


def _rule_div(q: _Quantizer, node: Node) -> None:
    divisor = node.inputs[1]
    if not divisor.is_const:
        raise UnsupportedError(f"node {node.name!r} (Div): dividing by a run-time tensor has no fixed-point form; "
                               "only division by a constant is supported")
    if np.any(divisor.data == 0):
        raise UsageError(f"node {node.name!r} (Div): divides by zero")
    node.op = Op.MUL
    node.inputs[1] = q.graph.constant(f"{divisor.name}_reciprocal", 1.0 / divisor.data)
    q._narrow(node, 0)
    _rule_binary(q, node)


def _rule_concat(q: _Quantizer, node: Node) -> None:
    types = [q._weight(node, i) if v.is_const else v.type.dtype for i, v in enumerate(node.inputs)]
    frac = max(t.frac_bits for t in types)
    ranges = [_shifted(*_mantissa_range(t), frac - t.frac_bits) for t in types]
    q._set_output(node, _fit(node, min(r[0] for r in ranges), max(r[1] for r in ranges), frac), role="exact")


def _rule_same(q: _Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    q._set_output(node, FixedType(x.width, x.int_bits, x.signed), role="exact")


def _rule_pad(q: _Quantizer, node: Node) -> None:
    x = node.inputs[0].type.dtype
    p = int(np.floor(node.attrs["value"] / x.lsb + 0.5)) if np.isfinite(node.attrs["value"]) else 0
    node.attrs["value"] = float(p * x.lsb)
    lo, hi = _mantissa_range(x)
    q._set_output(node, _fit(node, min(lo, p), max(hi, p), x.frac_bits), role="exact")


def _rule_argmax(q: _Quantizer, node: Node) -> None:
    return  # the index type is already a FixedType


def _rule_quant(q: _Quantizer, node: Node) -> None:
    if not isinstance(node.output.type.dtype, FixedType):
        node.output.type = TensorType(q._target(node.output), node.output.type.shape)


_RULES: dict[Op, Any] = {
    Op.DENSE: _rule_dense,
    Op.CONV: _rule_dense,
    Op.SCALE_SHIFT: _rule_scale_shift,
    Op.ACTIVATION: _rule_activation,
    Op.SOFTMAX: _rule_softmax,
    Op.POOL: _rule_pool,
    Op.GLOBAL_POOL: _rule_pool,
    Op.ADD: _rule_binary,
    Op.SUB: _rule_binary,
    Op.MUL: _rule_binary,
    Op.MAX: _rule_binary,
    Op.MIN: _rule_binary,
    Op.DIV: _rule_div,
    Op.CONCAT: _rule_concat,
    Op.RESHAPE: _rule_same,
    Op.TRANSPOSE: _rule_same,
    Op.SLICE: _rule_same,
    Op.PAD: _rule_pad,
    Op.ARGMAX: _rule_argmax,
    Op.LSTM: rule_lstm,
    Op.GRU: rule_gru,
    Op.QUANT: _rule_quant,
}
