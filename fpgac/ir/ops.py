"""The IR's ops: what each takes, what its attributes mean, and the shape it gives.

All shapes and axes are per sample (no batch axis), channels-first. Attributes are plain Python
values (ints, floats, bools, tuples of ints) or the enums below; never ONNX objects.

Op reference (inputs in order; ``?`` marks an optional input, ``*`` a constant one):

Dense(x, *weight[in, out], *bias[out]?)
    ``y = x @ weight + bias`` over the last axis of ``x``; leading axes are kept.
Conv(x[C, *spatial], *weight[M, C/groups, *kernel], *bias[M]?)
    ``strides``, ``dilations`` (one per spatial axis), ``pads`` (begins then ends, 2 per spatial
    axis, zero padding), ``groups``. 1 or 2 spatial axes. Output ``[M, *out]`` with
    ``out = (in + pad_begin + pad_end - dilation*(k-1) - 1) // stride + 1``.
Pool(x[C, *spatial])
    ``kind`` (PoolKind), ``kernel``, ``strides``, ``dilations``, ``pads`` (as Conv), ``ceil_mode``
    (output size rounds up; windows that would start in the end padding are dropped, as ONNX does),
    ``count_include_pad`` (for AVG: divide by the number of window elements inside the input or
    its explicit pads, never counting the extension ceil_mode adds; else only those inside the
    input; a window wholly in padding gives 0). MAX pads with -inf.
GlobalPool(x[C, *spatial])
    ``kind`` (PoolKind): max or mean over all spatial axes; output ``[C, 1, ...]`` (same rank).
Activation(x, *slope?)
    ``kind`` (Act) and its parameters, elementwise:
    RELU max(x, 0); LEAKY_RELU (``alpha``) x if x >= 0 else alpha*x; PRELU (input ``slope``,
    broadcast to x) x if x >= 0 else slope*x; SIGMOID 1/(1+e^-x); HARD_SIGMOID (``alpha``,
    ``beta``) clip(alpha*x+beta, 0, 1); TANH; CLIP (``min``, ``max``, either may be +-inf);
    ELU (``alpha``) x if x > 0 else alpha*(e^x-1); SELU (``alpha``, ``gamma``)
    gamma*(x if x > 0 else alpha*(e^x-1)); SOFTPLUS log(1+e^x); SOFTSIGN x/(1+|x|); ABS |x|;
    HARD_SWISH x*clip(x/6+1/2, 0, 1).
Softmax(x)
    ``axis``: softmax along that one axis; ``log``: LogSoftmax instead.
ScaleShift(x, *scale, *shift)
    ``y = x * scale + shift``, scale and shift broadcast to x (a BatchNormalization with no layer
    before it to fold into).
Add/Sub/Mul/Div/Max/Min(a, b)
    elementwise, numpy broadcasting of the per-sample shapes (trailing axes aligned); either input
    may be constant.
Concat(x0, x1, ...)
    ``axis``.
Reshape(x)
    ``shape``: the per-sample output shape, fully resolved (no -1 or 0).
Transpose(x)
    ``perm``: a permutation of the per-sample axes.
Pad(x)
    ``pads`` (begins then ends, one pair per axis of x), ``value`` (constant padding).
Slice(x)
    ``starts``, ``ends``, ``steps``: one each per axis of x, normalized (0 <= start, end may be
    -1 only when stepping backwards past 0); output axis i takes ``range(starts[i], ends[i],
    steps[i])``.
ArgMax(x)
    ``axis``, ``keepdims``, ``select_last_index`` (ties: last instead of first). Output is an
    unsigned integer index, ``FixedType(k, k, signed=False)`` with k the bits of ``size - 1``
    (at least 1).
LSTM(x[T, F], *W[4H, F], *R[4H, H], *B[8H]?, *h0[H]?, *c0[H]?) -> (Y[T, H], h[H], c[H])
    ``hidden_size``; ONNX gate order i, o, f, c with sigmoid/tanh/tanh, forward direction:
    ``g = W x_t + Wb + R h + Rb``; ``c = f*c + i*tanh(g_c)``; ``h = o*tanh(c)``.
GRU(x[T, F], *W[3H, F], *R[3H, H], *B[6H]?, *h0[H]?) -> (Y[T, H], h[H])
    ``hidden_size``, ``linear_before_reset``; ONNX gate order z, r, h, forward direction:
    ``z = sigmoid(W_z x + Wb_z + R_z h + Rb_z)``, r likewise,
    ``n = tanh(W_h x + Wb_h + r*(R_h h + Rb_h))`` when linear_before_reset, else
    ``tanh(W_h x + Wb_h + R_h (r*h) + Rb_h)``; ``h = (1-z)*n + z*h``.
Quant(x)
    requantize to the output's FixedType: the one place where rounding and saturation happen.
Lookup(x)
    ``table`` (:class:`fpgac.ir.tables.Table`): ``y = table.lookup(x)``; a quantized graph's form of
    sigmoid, tanh and the other transcendental activations. ``kind`` (Act) says which.

Fixed-point semantics (a quantized graph; the golden model in :mod:`fpgac.ir.semantics`): values
are integer mantissas of their FixedType. Every op except Quant computes its result exactly: the
output type's fractional bits are those of the exact result (Dense/Conv: ``f_x + f_w``, with the
bias shifted up to them; Mul: ``f_a + f_b``; Add/Sub/Max/Min/Concat: the largest input's, inputs
shifted up) and its integer bits hold every value the inputs' types allow, so nothing rounds or
wraps. The exceptions compute through tables or a fixed reciprocal and are exact given those:
Lookup; Softmax (attrs ``exp`` and ``reciprocal`` tables, or ``log`` for LogSoftmax: ``z = x -
max``, ``e = exp(z)``, ``S = sum e``, ``y = e * reciprocal(S)`` or ``z - log(S)``); average
Pool/GlobalPool (attr ``reciprocal_bits`` K: ``y = sum * round_half_up(2**K / count)``, output frac
bits ``f_x + K``); LSTM/GRU (their internal types and tables as attributes, see the next
paragraph).

Fixed-point LSTM/GRU (the step list is in :mod:`fpgac.ir.semantics.recurrent`): attributes ``accum_type``
(the exact gate sums), ``gate_type``, ``state_type`` (h; the type of Y and Y_h), LSTM's
``cell_type`` (c; the type of Y_c), and tables ``sigmoid``, ``tanh`` and LSTM's ``tanh_cell``,
which hold ``x >= 0`` and are read at ``|g|`` (``sigmoid(-x) = 1 - sigmoid(x)``, ``tanh(-x) =
-tanh(x)``). Each step: ``W x_t + R h`` plus both biases, exact at ``accum_type``'s fractional
bits, requantized to ``gate_type``; the gate functions from the tables; the new state (LSTM ``c =
f*c + i*tanh(g_c)`` then ``h = o*tanh(c)``; GRU ``h = (1-z)*n + z*h``) computed exactly and
requantized once to its type. GRU's ``n`` pre-activation is ``W_h x + Wb_h + r*(R_h h + Rb_h)``,
exact, with linear_before_reset; without, ``r*h`` is first requantized to ``state_type`` and
``W_h x + Wb_h + R_h (r*h) + Rb_h`` is an exact sum like the others. Every requantization uses its
type's rounding and overflow (RND, SAT as quantization sets them); nothing else rounds, and the
exact sums never wrap.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fpgac.ir.graph import Node

__all__ = ["Op", "Act", "PoolKind", "OpSpec", "OP_SPECS", "infer_shapes", "ShapeRuleError"]


class Op(enum.Enum):
    DENSE = "Dense"
    CONV = "Conv"
    POOL = "Pool"
    GLOBAL_POOL = "GlobalPool"
    ACTIVATION = "Activation"
    SOFTMAX = "Softmax"
    SCALE_SHIFT = "ScaleShift"
    ADD = "Add"
    SUB = "Sub"
    MUL = "Mul"
    DIV = "Div"
    MAX = "Max"
    MIN = "Min"
    CONCAT = "Concat"
    RESHAPE = "Reshape"
    TRANSPOSE = "Transpose"
    PAD = "Pad"
    SLICE = "Slice"
    ARGMAX = "ArgMax"
    LSTM = "LSTM"
    GRU = "GRU"
    QUANT = "Quant"
    LOOKUP = "Lookup"


class Act(enum.Enum):
    RELU = "relu"
    LEAKY_RELU = "leaky_relu"
    PRELU = "prelu"
    SIGMOID = "sigmoid"
    HARD_SIGMOID = "hard_sigmoid"
    TANH = "tanh"
    CLIP = "clip"
    ELU = "elu"
    SELU = "selu"
    SOFTPLUS = "softplus"
    SOFTSIGN = "softsign"
    ABS = "abs"
    HARD_SWISH = "hard_swish"


class PoolKind(enum.Enum):
    MAX = "max"
    AVG = "avg"


#: parameters each activation kind carries in its attrs (besides ``kind``)
ACT_PARAMS: dict[Act, tuple[str, ...]] = {
    Act.LEAKY_RELU: ("alpha",),
    Act.HARD_SIGMOID: ("alpha", "beta"),
    Act.CLIP: ("min", "max"),
    Act.ELU: ("alpha",),
    Act.SELU: ("alpha", "gamma"),
}


class ShapeRuleError(ValueError):
    """A node's inputs or attributes do not fit its op: an internal error, caught by verify."""


Shape = tuple[int, ...]


@dataclass(frozen=True)
class OpSpec:
    """What ``verify`` checks of an op: input counts, which inputs must be constant, attrs."""

    min_inputs: int
    max_inputs: int | None  # None: any number
    const_inputs: tuple[int, ...]
    attrs: tuple[str, ...]
    num_outputs: int
    shape_rule: Callable[[Node, list[Shape | None]], list[Shape]]


def _need(cond: bool, message: str) -> None:
    if not cond:
        raise ShapeRuleError(message)


def _window_out(size: int, k: int, stride: int, dilation: int, pb: int, pe: int, ceil: bool) -> int:
    span = size + pb + pe - dilation * (k - 1) - 1
    _need(span >= 0, f"window {k} (dilation {dilation}) larger than padded input {size + pb + pe}")
    out = (-(-span // stride) if ceil else span // stride) + 1
    if ceil and (out - 1) * stride >= size + pb:
        out -= 1  # ONNX/PyTorch: the last window must start inside the input or its begin padding
    return out


def _spatial(attrs: dict[str, Any], nd: int, kernel: Shape, in_spatial: Shape, ceil: bool = False) -> Shape:
    strides, dil, pads = attrs["strides"], attrs["dilations"], attrs["pads"]
    _need(len(strides) == nd and len(dil) == nd and len(pads) == 2 * nd, "strides/dilations/pads lengths")
    _need(all(s >= 1 for s in strides) and all(d >= 1 for d in dil), "strides and dilations must be >= 1")
    _need(all(p >= 0 for p in pads), "pads must be >= 0")
    return tuple(
        _window_out(in_spatial[i], kernel[i], strides[i], dil[i], pads[i], pads[nd + i], ceil) for i in range(nd)
    )


def _dense(node: Node, s: list[Shape | None]) -> list[Shape]:
    x, w, b = s[0], s[1], s[2] if len(s) > 2 else None
    _need(len(x) >= 1 and len(w) == 2 and x[-1] == w[0], f"Dense input {x} does not fit weight {w}")
    _need(b is None or b == (w[1],), f"Dense bias {b} does not fit weight {w}")
    return [x[:-1] + (w[1],)]


def _conv(node: Node, s: list[Shape | None]) -> list[Shape]:
    x, w, b = s[0], s[1], s[2] if len(s) > 2 else None
    nd = len(x) - 1
    g = node.attrs["groups"]
    _need(nd in (1, 2) and len(w) == nd + 2, f"Conv wants [C, *spatial] with 1 or 2 spatial axes, got {x}")
    _need(g >= 1 and x[0] % g == 0 and w[0] % g == 0 and w[1] == x[0] // g, f"Conv groups {g}: {x} vs {w}")
    _need(b is None or b == (w[0],), f"Conv bias {b} does not fit weight {w}")
    return [(w[0],) + _spatial(node.attrs, nd, w[2:], x[1:])]


def _pool(node: Node, s: list[Shape | None]) -> list[Shape]:
    x = s[0]
    nd = len(x) - 1
    kernel = node.attrs["kernel"]
    _need(isinstance(node.attrs["kind"], PoolKind), f"Pool kind must be a PoolKind, not {node.attrs['kind']!r}")
    _need(nd in (1, 2) and len(kernel) == nd, f"Pool wants [C, *spatial] with 1 or 2 spatial axes, got {x}")
    return [(x[0],) + _spatial(node.attrs, nd, kernel, x[1:], node.attrs["ceil_mode"])]


def _global_pool(node: Node, s: list[Shape | None]) -> list[Shape]:
    x = s[0]
    _need(isinstance(node.attrs["kind"], PoolKind), f"GlobalPool kind must be a PoolKind, not {node.attrs['kind']!r}")
    _need(len(x) >= 2, f"GlobalPool wants [C, *spatial], got {x}")
    return [(x[0],) + (1,) * (len(x) - 1)]


def _broadcast(*shapes: Shape) -> Shape:
    rank = max(len(t) for t in shapes)
    out = []
    for i in range(rank):
        dims = {t[i - rank + len(t)] for t in shapes if i - rank + len(t) >= 0} - {1}
        _need(len(dims) <= 1, f"shapes {' and '.join(map(str, shapes))} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _same(node: Node, s: list[Shape | None]) -> list[Shape]:
    return [s[0]]


def _activation(node: Node, s: list[Shape | None]) -> list[Shape]:
    kind = node.attrs["kind"]
    _need(isinstance(kind, Act), f"Activation kind must be an Act, not {kind!r}")
    for param in ACT_PARAMS.get(kind, ()):
        _need(param in node.attrs, f"Activation {kind.value} needs attribute {param!r}")
    if kind is Act.PRELU:
        _need(len(s) == 2 and s[1] is not None, "PRELU needs a slope input")
        _need(_broadcast(s[0], s[1]) == s[0], f"PRELU slope {s[1]} does not broadcast to {s[0]}")
    else:
        _need(len(s) == 1, f"Activation {kind.value} takes one input")
    return [s[0]]


def _axis(node: Node, rank: int) -> int:
    axis = node.attrs["axis"]
    _need(0 <= axis < rank, f"axis {axis} out of range for rank {rank}")
    return axis


def _softmax(node: Node, s: list[Shape | None]) -> list[Shape]:
    _axis(node, len(s[0]))
    return [s[0]]


def _scale_shift(node: Node, s: list[Shape | None]) -> list[Shape]:
    _need(_broadcast(s[0], s[1], s[2]) == s[0], f"ScaleShift {s[1]}, {s[2]} do not broadcast to {s[0]}")
    return [s[0]]


def _binary(node: Node, s: list[Shape | None]) -> list[Shape]:
    return [_broadcast(s[0], s[1])]


def _concat(node: Node, s: list[Shape | None]) -> list[Shape]:
    _need(all(t is not None for t in s), "Concat inputs must all be present")
    axis = _axis(node, len(s[0]))
    for t in s[1:]:
        _need(len(t) == len(s[0]) and all(a == b for i, (a, b) in enumerate(zip(t, s[0])) if i != axis),
              f"Concat inputs {s} differ off axis {axis}")
    return [s[0][:axis] + (sum(t[axis] for t in s),) + s[0][axis + 1:]]


def _reshape(node: Node, s: list[Shape | None]) -> list[Shape]:
    shape = tuple(node.attrs["shape"])
    _need(all(d >= 0 for d in shape), f"Reshape shape {shape} must be resolved")
    _need(math.prod(shape) == math.prod(s[0]), f"Reshape {s[0]} -> {shape} changes the size")
    return [shape]


def _transpose(node: Node, s: list[Shape | None]) -> list[Shape]:
    perm = tuple(node.attrs["perm"])
    _need(sorted(perm) == list(range(len(s[0]))), f"Transpose perm {perm} for rank {len(s[0])}")
    return [tuple(s[0][p] for p in perm)]


def _pad(node: Node, s: list[Shape | None]) -> list[Shape]:
    pads, r = node.attrs["pads"], len(s[0])
    _need(len(pads) == 2 * r and all(p >= 0 for p in pads), f"Pad pads {pads} for rank {r}")
    return [tuple(d + pads[i] + pads[r + i] for i, d in enumerate(s[0]))]


def _slice(node: Node, s: list[Shape | None]) -> list[Shape]:
    starts, ends, steps = node.attrs["starts"], node.attrs["ends"], node.attrs["steps"]
    r = len(s[0])
    _need(len(starts) == len(ends) == len(steps) == r, f"Slice wants one start/end/step per axis of {s[0]}")
    _need(all(st != 0 for st in steps), "Slice steps must be non-zero")
    for a, b, c, size in zip(starts, ends, steps, s[0]):
        ok = (0 <= a <= b <= size) if c > 0 else (-1 <= b <= a < size)
        _need(ok or len(range(a, b, c)) == 0 and 0 <= a <= size, f"Slice range {a}:{b}:{c} is not normalized for size {size}")
    return [tuple(len(range(a, b, c)) for a, b, c in zip(starts, ends, steps))]


def _argmax(node: Node, s: list[Shape | None]) -> list[Shape]:
    axis = _axis(node, len(s[0]))
    keep = node.attrs["keepdims"]
    return [s[0][:axis] + ((1,) if keep else ()) + s[0][axis + 1:]]


def _rnn(gates: int, outputs: int) -> Callable[[Node, list[Shape | None]], list[Shape]]:
    def rule(node: Node, s: list[Shape | None]) -> list[Shape]:
        h = node.attrs["hidden_size"]
        x, w, r = s[0], s[1], s[2]
        _need(len(x) == 2, f"{node.op.value} wants x[T, F], got {x}")
        _need(w == (gates * h, x[1]) and r == (gates * h, h), f"{node.op.value} weights {w}, {r} for H={h}")
        bias = s[3] if len(s) > 3 else None
        _need(bias is None or bias == (2 * gates * h,), f"{node.op.value} bias {bias}, want ({2 * gates * h},)")
        for state in s[4:]:
            _need(state is None or state == (h,), f"{node.op.value} initial state {state}, want ({h},)")
        return [(x[0], h)] + [(h,)] * (outputs - 1)

    return rule


OP_SPECS: dict[Op, OpSpec] = {
    Op.DENSE: OpSpec(2, 3, (1, 2), (), 1, _dense),
    Op.CONV: OpSpec(2, 3, (1, 2), ("strides", "dilations", "pads", "groups"), 1, _conv),
    Op.POOL: OpSpec(1, 1, (), ("kind", "kernel", "strides", "dilations", "pads", "ceil_mode", "count_include_pad"), 1, _pool),
    Op.GLOBAL_POOL: OpSpec(1, 1, (), ("kind",), 1, _global_pool),
    Op.ACTIVATION: OpSpec(1, 2, (1,), ("kind",), 1, _activation),
    Op.SOFTMAX: OpSpec(1, 1, (), ("axis", "log"), 1, _softmax),
    Op.SCALE_SHIFT: OpSpec(3, 3, (1, 2), (), 1, _scale_shift),
    **{op: OpSpec(2, 2, (), (), 1, _binary) for op in (Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAX, Op.MIN)},
    Op.CONCAT: OpSpec(1, None, (), ("axis",), 1, _concat),
    Op.RESHAPE: OpSpec(1, 1, (), ("shape",), 1, _reshape),
    Op.TRANSPOSE: OpSpec(1, 1, (), ("perm",), 1, _transpose),
    Op.PAD: OpSpec(1, 1, (), ("pads", "value"), 1, _pad),
    Op.SLICE: OpSpec(1, 1, (), ("starts", "ends", "steps"), 1, _slice),
    Op.ARGMAX: OpSpec(1, 1, (), ("axis", "keepdims", "select_last_index"), 1, _argmax),
    Op.LSTM: OpSpec(3, 6, (1, 2, 3, 4, 5), ("hidden_size",), 3, _rnn(4, 3)),
    Op.GRU: OpSpec(3, 5, (1, 2, 3, 4), ("hidden_size", "linear_before_reset"), 2, _rnn(3, 2)),
    Op.QUANT: OpSpec(1, 1, (), (), 1, _same),
    Op.LOOKUP: OpSpec(1, 1, (), ("kind", "table"), 1, _same),
}


def infer_shapes(node: Node) -> list[Shape]:
    """The per-sample output shapes of ``node`` from its input shapes and attributes."""
    spec = OP_SPECS[node.op]
    missing = [a for a in spec.attrs if a not in node.attrs]
    if missing:
        raise ShapeRuleError(f"missing attribute(s) {', '.join(missing)}")
    shapes = [v.type.shape if v is not None else None for v in node.inputs]
    if node.inputs[0] is None:
        raise ShapeRuleError("first input is absent")
    return spec.shape_rule(node, shapes)
