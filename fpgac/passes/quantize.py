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

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from fpgac.errors import UnsupportedError, UsageError
from fpgac.ir import MAX_EXACT_WIDTH, Act, FixedType, Graph, Node, Op, Overflow, PoolKind, Rounding, TensorType, Value, quantize
from fpgac.ir.tables import DEFAULT_TABLE_SIZE

from .quantize_rules import RULES, rule_exact
from .quantize_types import MARGIN, activation_type, bound_type, mantissa_range, weight_type

__all__ = ["MARGIN", "LayerConfig", "QuantConfig", "QuantRecord", "Quantize", "Quantizer", "activation_type",
           "bound_type", "weight_type"]

#: ops that neither grow nor combine values: their output keeps the input's (exact) type
_PASS_THROUGH = {Op.RESHAPE, Op.TRANSPOSE, Op.SLICE, Op.PAD}

#: ops whose data inputs are narrowed first (their cost grows with the input width)
_NARROWS_INPUTS = {Op.DENSE, Op.CONV, Op.SCALE_SHIFT, Op.MUL, Op.ADD, Op.SUB, Op.LSTM, Op.GRU}

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
        Quantizer(graph, self.config, self.records).run()
        return True


# -- the quantizer --------------------------------------------------------------------------------


class Quantizer:
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

    def layer(self, names: list[str]) -> LayerConfig:
        for name in names:
            if name in self.config.layers:
                return self.config.layers[name]
        return LayerConfig()

    def bits(self, layer: LayerConfig, role: str) -> int:
        specific = layer.weight_bits if role == "weight" else layer.result_bits
        return specific or layer.bits or self.config.bits

    def owners(self, value: Value) -> list[str]:
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

    def record(self, layer: str, role: str, value: Value, t: FixedType) -> None:
        self.records.append(QuantRecord(layer, role, value.name, t, value.type.size))

    def target(self, value: Value) -> FixedType:
        """The type a value is narrowed to: the override, or its calibrated range at the layer's bits."""
        owners = self.owners(value)
        layer = self.layer(owners)
        if layer.result is not None:
            return layer.result
        if owners[-1] in self.model_quants:  # the model chose this width: only a per-layer override changes it
            return value.type.dtype
        if self.config.precision is not None:
            return self.config.precision
        if value.range is None:
            raise UsageError(f"value {value.name!r} has no calibrated range: run Calibrate before Quantize")
        lo, hi = value.range
        bits = self.bits(layer, "result")
        producer = value.producer
        if producer is not None and producer.op is Op.SOFTMAX and not producer.attrs["log"]:
            return activation_type(0.0, 1.0, bits, int_bits=0)  # probabilities: ufixed<bits,0>, 1.0 saturates
        return activation_type(lo, hi, bits)

    # -- constants --------------------------------------------------------------------------

    def set_const(self, node: Node, index: int, t: FixedType, role: str) -> Value:
        """Replace constant input ``index`` by its mantissas in ``t`` (shared if another node asked the same)."""
        value = node.inputs[index]
        key = (id(value), t)
        if key not in self.consts:
            data = quantize(value.data, t)
            data.setflags(write=False)
            name = value.name if not any(k[0] == id(value) for k in self.consts) else self.graph.unique_name(value.name)
            self.consts[key] = Value(name, TensorType(t, value.type.shape, value.type.sparsity), data)
        new = node.inputs[index] = self.consts[key]
        self.record(node.name, role, new, t)
        return new

    def weight(self, node: Node, index: int) -> FixedType:
        value = node.inputs[index]
        if isinstance(value.type.dtype, FixedType):  # already quantized by the model (QONNX)
            self.record(node.name, "weight", value, value.type.dtype)
            return value.type.dtype
        layer = self.layer([node.name])
        t = layer.weight or self.config.precision or weight_type(value.data, self.bits(layer, "weight"))
        self.set_const(node, index, t, "weight")
        return t

    def finer_weight(self, node: Node, w: FixedType, x_frac: int) -> FixedType:
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

    def bias(self, node: Node, index: int, frac: int) -> np.ndarray:
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
            self.record(node.name, "bias", value, t)
        else:
            layer = self.layer([node.name])
            t = layer.bias or self.config.precision
            if t is None:  # at the accumulator's precision: adding it is exact
                t = weight_type(value.data, 32)
                width = min(MAX_EXACT_WIDTH, max(1, t.int_bits + frac))
                t = FixedType(width, width - min(frac, width - t.int_bits), t.signed, Rounding.RND, Overflow.SAT)
            if t.frac_bits > frac:  # finer than the accumulator: the extra bits could never count
                width = max(1, t.int_bits + frac)
                t = FixedType(width, width - frac, t.signed, Rounding.RND, Overflow.SAT)
            value = self.set_const(node, index, t, "bias")
        return value.data.astype(object) * (1 << (frac - t.frac_bits))

    # -- outputs ----------------------------------------------------------------------------

    def set_output(self, node: Node, t: FixedType, index: int = 0, role: str = "accum") -> None:
        value = node.outputs[index]
        if role == "accum":
            layer = self.layer([node.name])
            if layer.accum is not None:
                lo, hi = mantissa_range(t)
                a = layer.accum
                if a.frac_bits != t.frac_bits or a.min_mantissa > lo or a.max_mantissa < hi:
                    raise UsageError(
                        f"layer {node.name!r}: accum type {a} cannot hold every sum exactly; it needs {t} "
                        "(fpgac never lets an accumulator wrap)"
                    )
                t = a
        value.type = TensorType(t, value.type.shape, value.type.sparsity)
        if role in ("accum", "table"):
            self.record(node.name, role, value, t)

    def narrow(self, node: Node, index: int) -> FixedType:
        """Narrow data input ``index`` of ``node`` to its target type with a Quant (shared per value)."""
        value = node.inputs[index]
        if value.is_const:
            return value.type.dtype
        if id(value) in self.narrowed:
            q = self.narrowed[id(value)]
        else:
            target = self.target(value)
            if value.type.dtype == target or value.type.dtype.width <= target.width:
                return value.type.dtype  # already as narrow (a model's own Quant, a Relu of a narrowed value)
            q = self.insert_quant(value, target)
        node.inputs[index] = q
        return q.type.dtype

    def insert_quant(self, value: Value, target: FixedType) -> Value:
        quant = self.graph.add_node(Op.QUANT, [value], [TensorType(target, value.type.shape)], name=f"{value.name}_q")
        q = quant.output
        q.range = value.range
        self.narrowed[id(value)] = q
        self.record(self.owners(value)[-1], "result", q, target)
        return q

    # -- driver -----------------------------------------------------------------------------

    def run(self) -> None:
        graph = self.graph
        for value in graph.inputs:
            layer = self.layer([value.name])
            t = layer.result or self.config.precision
            users = graph.consumers(value)
            if t is None and len(users) == 1 and users[0].op is Op.QUANT and isinstance(users[0].output.type.dtype, FixedType):
                t = users[0].output.type.dtype  # the model quantizes its input itself: take that type as is
            if t is None:
                if value.range is None:
                    raise UsageError(f"input {value.name!r} has no calibrated range: run Calibrate before Quantize")
                t = activation_type(*value.range, self.bits(layer, "result"))
            value.type = TensorType(t, value.type.shape)
            self.record(value.name, "input", value, t)
        for node in list(graph.nodes):
            if node.op in _NARROWS_INPUTS:
                data = [i for i, v in enumerate(node.inputs) if v is not None and not v.is_const]
                for i in data:
                    self.narrow(node, i)
            RULES.get(node.op, rule_exact)(self, node)
        for i, value in enumerate(graph.outputs):
            if value.is_const or not isinstance(value.type.dtype, FixedType):
                continue
            if value.producer is not None and value.producer.op is Op.ARGMAX:
                continue
            target = self.target(value)
            if value.type.dtype != target and value.type.dtype.width > target.width:
                name = value.name
                graph.rename(value, f"{name}_exact")
                q = self.insert_quant(value, target)
                graph.rename(q, name)
                graph.outputs[i] = q
                if value.name in graph.output_batch_axes:
                    graph.output_batch_axes[name] = graph.output_batch_axes.pop(value.name)
        graph.toposort()

