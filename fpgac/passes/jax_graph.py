"""The float IR as a JAX function: what distillation trains.

Built from the IR itself, op by op, as :mod:`fpgac.ir.semantics` evaluates it in float (the same
batching: a run-time tensor is ``(N, *shape)``; a constant that an op reads as data gets a batch
axis of 1), so the weights land back in the IR exactly where they came from. The trainable
parameters are the weights and biases of the Dense and Conv layers; every other constant stays
as it is. With ``types`` (value name -> FixedType), each such value is rounded and saturated to
its type on the way forward, with a straight-through gradient: quantization-aware training of
what the hardware computes.

JAX is an optional dependency (``pip install 'fpgac[train]'``); importing this module without it
fails with the line to run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir import Act, FixedType, Graph, Node, Op, PoolKind
from fpgac.ir.fixed import to_float
from fpgac.ir.ops import OP_SPECS
from fpgac.ir.semantics.windows import window

try:
    import jax
    import jax.numpy as jnp
    from jax import lax
except ImportError as err:  # pragma: no cover - the extra is missing
    raise UsageError("distillation needs JAX: pip install 'fpgac[train]'") from err

__all__ = ["TRAINED", "forward", "parameters", "unsupported"]

#: ops whose constants are trained: input index -> parameter name
TRAINED = {Op.DENSE: {1: "w", 2: "b"}, Op.CONV: {1: "w", 2: "b"},
           Op.LSTM: {1: "w", 2: "r", 3: "b"}, Op.GRU: {1: "w", 2: "r", 3: "b"}}


def _act(kind: Act, x, a: Mapping[str, Any]):
    return {
        Act.RELU: lambda: jnp.maximum(x, 0.0),
        Act.LEAKY_RELU: lambda: jnp.where(x >= 0, x, a.get("alpha", 0.01) * x),
        Act.SIGMOID: lambda: jax.nn.sigmoid(x),
        Act.HARD_SIGMOID: lambda: jnp.clip(a["alpha"] * x + a["beta"], 0.0, 1.0),
        Act.TANH: lambda: jnp.tanh(x),
        Act.CLIP: lambda: jnp.minimum(jnp.maximum(x, a["min"]), a["max"]),
        Act.ELU: lambda: jnp.where(x > 0, x, a["alpha"] * (jnp.exp(jnp.minimum(x, 0.0)) - 1.0)),
        Act.SELU: lambda: a["gamma"] * jnp.where(x > 0, x, a["alpha"] * (jnp.exp(jnp.minimum(x, 0.0)) - 1.0)),
        Act.SOFTPLUS: lambda: jnp.logaddexp(0.0, x),
        Act.SOFTSIGN: lambda: x / (1.0 + jnp.abs(x)),
        Act.ABS: lambda: jnp.abs(x),
        Act.HARD_SWISH: lambda: x * jnp.clip(x / 6.0 + 0.5, 0.0, 1.0),
    }[kind]()


def _lift(x, rank: int):
    missing = rank + 1 - x.ndim
    return x.reshape(x.shape[:1] + (1,) * missing + x.shape[1:])


def _conv(node: Node, x, w, b):
    g = window(node)
    nd = g.nd
    dims = ("NCH", "OIH", "NCH") if nd == 1 else ("NCHW", "OIHW", "NCHW")
    y = lax.conv_general_dilated(x, w, window_strides=g.strides, padding=list(zip(g.begins, g.ends)),
                                 rhs_dilation=g.dilations, feature_group_count=node.attrs["groups"],
                                 dimension_numbers=dims, precision=lax.Precision.HIGHEST)
    y = y[(slice(None), slice(None), *(slice(0, o) for o in g.out))]
    return y if b is None else y + b.reshape(-1, *(1,) * nd)


def _pool(node: Node, x):
    g = window(node)
    pads = [(0, 0), (0, 0), *zip(g.begins, g.ends_ext)]
    dims, strides, dil = (1, 1, *g.kernel), (1, 1, *g.strides), (1, 1, *g.dilations)
    cut = (slice(None), slice(None), *(slice(0, o) for o in g.out))
    if node.attrs["kind"] is PoolKind.MAX:
        return lax.reduce_window(x, -jnp.inf, lax.max, dims, strides, pads, window_dilation=dil)[cut]
    sums = lax.reduce_window(x, 0.0, lax.add, dims, strides, pads, window_dilation=dil)[cut]
    return sums / np.maximum(g.counts(node.attrs["count_include_pad"]), 1.0)


def _state(args: list, index: int, batch: int, hidden: int):
    state = args[index] if len(args) > index else None
    return jnp.broadcast_to(jnp.zeros(hidden) if state is None else state, (batch, hidden))


def _lstm(node: Node, args: list) -> list:
    """ONNX LSTM, forward, gates i, o, f, c (as the float reference)."""
    x, w, r = args[0], args[1], args[2]
    hidden = node.attrs["hidden_size"]
    bias = args[3] if len(args) > 3 else None
    gx = x @ w.T
    if bias is not None:
        gx = gx + bias[: 4 * hidden] + bias[4 * hidden:]
    h, c = _state(args, 4, x.shape[0], hidden), _state(args, 5, x.shape[0], hidden)
    ys = []
    for t in range(x.shape[1]):
        i, o, f, g = jnp.split(gx[:, t] + h @ r.T, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        ys.append(h)
    return [jnp.stack(ys, axis=1), h, c]


def _gru(node: Node, args: list) -> list:
    """ONNX GRU, forward, gates z, r, h; ``linear_before_reset`` as the float reference."""
    x, w, r = args[0], args[1], args[2]
    hidden = node.attrs["hidden_size"]
    bias = args[3] if len(args) > 3 and args[3] is not None else jnp.zeros(6 * hidden)
    wb, rb = bias[: 3 * hidden], bias[3 * hidden:]
    r_h = r[2 * hidden:]
    gx = x @ w.T + wb
    h = _state(args, 4, x.shape[0], hidden)
    ys = []
    for t in range(x.shape[1]):
        xz, xr, xh = jnp.split(gx[:, t], 3, axis=-1)
        hz, hr, hh = jnp.split(h @ r.T + rb, 3, axis=-1)
        z, reset = jax.nn.sigmoid(xz + hz), jax.nn.sigmoid(xr + hr)
        if node.attrs["linear_before_reset"]:
            n = jnp.tanh(xh + reset * hh)
        else:
            n = jnp.tanh(xh + (reset * h) @ r_h.T + rb[2 * hidden:])
        h = (1.0 - z) * n + z * h
        ys.append(h)
    return [jnp.stack(ys, axis=1), h]


def _quantize(x, t: FixedType):
    """Round and saturate to ``t`` on the way forward, the identity on the way back."""
    scaled = x / t.lsb
    mode = t.rounding.name
    q = jnp.floor(scaled) if mode == "TRN" else jnp.round(scaled) if mode == "RND_CONV" else jnp.floor(scaled + 0.5)
    if t.overflow.name.startswith("SAT"):
        q = jnp.clip(q, t.min_mantissa, t.max_mantissa)
    return x + lax.stop_gradient(q * t.lsb - x)


def _eval(node: Node, args: list):
    op, a = node.op, node.attrs
    x = args[0]
    if op is Op.DENSE:
        y = x @ args[1]
        return y if len(args) < 3 or args[2] is None else y + args[2]
    if op is Op.CONV:
        return _conv(node, x, args[1], args[2] if len(args) > 2 else None)
    if op is Op.SCALE_SHIFT:
        return x * args[1] + args[2]
    if op is Op.ACTIVATION:
        if a["kind"] is Act.PRELU:
            return jnp.where(x >= 0, x, args[1] * x)
        return _act(a["kind"], x, a)
    if op is Op.POOL:
        return _pool(node, x)
    if op is Op.GLOBAL_POOL:
        axes = tuple(range(2, x.ndim))
        return jnp.max(x, axis=axes, keepdims=True) if a["kind"] is PoolKind.MAX else jnp.mean(x, axis=axes,
                                                                                              keepdims=True)
    if op is Op.SOFTMAX:
        f = jax.nn.log_softmax if a["log"] else jax.nn.softmax
        return f(x, axis=a["axis"] + 1)
    if op in (Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAX, Op.MIN):
        rank = node.output.type.rank
        p, q = _lift(args[0], rank), _lift(args[1], rank)
        return {Op.ADD: jnp.add, Op.SUB: jnp.subtract, Op.MUL: jnp.multiply, Op.DIV: jnp.divide,
                Op.MAX: jnp.maximum, Op.MIN: jnp.minimum}[op](p, q)
    if op is Op.RESHAPE:
        return x.reshape(x.shape[0], *a["shape"])
    if op is Op.TRANSPOSE:
        return x.transpose(0, *(p + 1 for p in a["perm"]))
    if op is Op.CONCAT:
        n = max(v.shape[0] for v in args)
        return jnp.concatenate([jnp.broadcast_to(v, (n, *v.shape[1:])) for v in args], axis=a["axis"] + 1)
    if op is Op.PAD:
        r = x.ndim - 1
        return jnp.pad(x, [(0, 0)] + [(a["pads"][i], a["pads"][r + i]) for i in range(r)],
                       constant_values=a["value"])
    if op is Op.SLICE:
        index = tuple(slice(s, e if e >= 0 else None, t) for s, e, t in zip(a["starts"], a["ends"], a["steps"]))
        return x[(slice(None), *index)]
    if op is Op.QUANT:
        t = node.output.type.dtype
        return _quantize(x, t) if isinstance(t, FixedType) else x
    if op is Op.ARGMAX:  # a label: no gradient, the index as a float (as the float reference)
        axis = a["axis"] + 1
        if a.get("select_last"):
            last = x.shape[axis] - 1 - jnp.argmax(jnp.flip(x, axis=axis), axis=axis)
            idx = last
        else:
            idx = jnp.argmax(x, axis=axis)
        idx = lax.stop_gradient(idx.astype(x.dtype))
        return jnp.expand_dims(idx, axis) if a.get("keepdims", True) else idx
    raise AssertionError(op)


SUPPORTED = frozenset({Op.DENSE, Op.CONV, Op.SCALE_SHIFT, Op.ACTIVATION, Op.POOL, Op.GLOBAL_POOL, Op.SOFTMAX,
                       Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.MAX, Op.MIN, Op.RESHAPE, Op.TRANSPOSE, Op.CONCAT,
                       Op.PAD, Op.SLICE, Op.QUANT, Op.LSTM, Op.GRU, Op.ARGMAX})


def unsupported(graph: Graph) -> Node | None:
    """The first node the training graph cannot express (a Lookup table: quantized graphs only), or None."""
    return next((n for n in graph.nodes if n.op not in SUPPORTED), None)


def _const(value) -> np.ndarray:
    if isinstance(value.type.dtype, FixedType):
        return to_float(value.data, value.type.dtype).astype(np.float32)
    return np.asarray(value.data, dtype=np.float32)


def parameters(graph: Graph, layers: frozenset[str] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """The trained parameters: per Dense/Conv node (of ``layers``, None: all) ``w`` and ``b``, per
    LSTM/GRU node ``w``, ``r`` and ``b`` (a missing bias starts at zero: it is trained too)."""
    params = {}
    for node in graph.nodes:
        names = TRAINED.get(node.op)
        if names is None or (layers is not None and node.name not in layers):
            continue
        w = node.inputs[1]
        if w is None or not w.is_const or isinstance(w.type.dtype, FixedType):
            continue  # a QONNX fixed-point weight is the exporter's: left alone
        entry = {}
        for index, name in names.items():
            v = node.input(index)
            if v is not None and v.is_const:
                entry[name] = _const(v)
            elif name == "b":
                units = {Op.DENSE: lambda: w.type.shape[1], Op.CONV: lambda: w.type.shape[0],
                         Op.LSTM: lambda: 8 * node.attrs["hidden_size"],
                         Op.GRU: lambda: 6 * node.attrs["hidden_size"]}[node.op]()
                entry[name] = np.zeros(units, np.float32)
        params[node.name] = entry
    return params


def forward(graph: Graph, types: Mapping[str, FixedType] | None = None, *,
            stop_at: str | None = None) -> Callable[[dict, list], list]:
    """``f(params, inputs) -> outputs`` of ``graph`` (the value ``stop_at`` instead of the
    outputs when given: the logits under a final softmax). ``types``: quantize those values
    (inputs, results, and the trained weights and biases by their constants' names)."""
    node = unsupported(graph)
    if node is not None:
        raise UsageError(f"distill: node {node.name!r} ({node.op.value}) is not in the training graph yet "
                         "(it takes Dense, Conv, pools, activations, softmax, elementwise and shape ops)")
    consts = {id(v): _const(v) for v in graph.values() if v.is_const}
    inputs = list(graph.inputs)
    wanted = [stop_at] if stop_at else [v.name for v in graph.outputs]

    def run(params: dict, arrays: list) -> list:
        env = {id(v): a for v, a in zip(inputs, arrays)}
        for value in inputs:
            if types and value.name in types:
                env[id(value)] = _quantize(env[id(value)], types[value.name])
        names = {}
        for node in graph.nodes:
            const_inputs = OP_SPECS[node.op].const_inputs
            args = []
            trained = params.get(node.name)
            slots = TRAINED.get(node.op, {}) if trained is not None else {}
            for i, v in enumerate(node.inputs):
                if v is None:
                    args.append(None)
                elif i in slots:
                    a = trained[slots[i]]
                    args.append(_quantize(a, types[v.name]) if types and v.name in types else a)
                elif v.is_const:
                    args.append(consts[id(v)] if i in const_inputs else consts[id(v)][None])
                else:
                    args.append(env[id(v)])
            for i, name in slots.items():  # a trained bias the node did not have
                if node.input(i) is None and name in trained:
                    args += [None] * (i + 1 - len(args))
                    args[i] = trained[name]
            if node.op in (Op.LSTM, Op.GRU):
                ys = (_lstm if node.op is Op.LSTM else _gru)(node, args)
            else:
                ys = [_eval(node, args)]
            for out, y in zip(node.outputs, ys):
                if types and out.name in types and node.op is not Op.QUANT:
                    y = _quantize(y, types[out.name])
                env[id(out)] = y
                names[out.name] = y
        return [names[n] if n in names else env[id(next(v for v in inputs if v.name == n))] for n in wanted]

    return run
