"""Lowerings of the layers with weights and windows: Gemm, MatMul, Conv, BatchNormalization,
pooling, activations, Softmax/LogSoftmax, LSTM and GRU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fpgac.errors import (
    InvalidModelError,
)
from fpgac.ir import (
    Act,
    Op,
    PoolKind,
    Value,
)

from .context import Grid, Lowering, LoweringContext, Sym, Tensor


def _dense(cx: LoweringContext, x: Tensor, weight: np.ndarray, bias: np.ndarray | None,
           grids: tuple[Grid | None, Grid | None] = (None, None)) -> None:
    if x.batch_axis == x.rank - 1:
        raise cx.unsupported("the batch axis is the one the weights would be applied to")
    inputs = [x.value, cx.constant(weight, f"{cx.node.name or cx.node.output[0]}.weight", grids[0])]
    if bias is not None:
        inputs.append(cx.constant(bias, f"{cx.node.name or cx.node.output[0]}.bias", grids[1]))
    (out,) = cx.emit(Op.DENSE, inputs)
    cx.set_outputs([Tensor(out, x.batch_axis)])


def lower_gemm(cx: LoweringContext, a: dict[str, Any]) -> None:
    if a.get("transA", 0):
        raise cx.unsupported("Gemm with transA=1 would transpose the batch into the reduction")
    x = cx.tensor(0)
    if x.rank != 2 or x.batch_axis != 0:
        raise cx.unsupported(f"Gemm wants a [batch, features] input, got rank {x.rank}")
    b = cx.const(1, "B (the weight)")
    weight = (b.T if a.get("transB", 0) else b) * a.get("alpha", 1.0)
    bias = None
    c = cx.const(2, "C (the bias)")
    if c is not None:
        c = np.asarray(c, dtype=np.float64) * a.get("beta", 1.0)
        if c.ndim == 2:
            c = cx.drop_batch(c, 2, 0)
        bias = np.broadcast_to(c, (weight.shape[1],)).copy()
    _dense(cx, x, np.asarray(weight, dtype=np.float64), bias, (cx.grid(1), cx.grid(2)))


def lower_matmul(cx: LoweringContext, a: dict[str, Any]) -> None:
    left, right = cx.sym(0), cx.sym(1)
    if isinstance(left, Tensor) and isinstance(right, Tensor):
        raise cx.unsupported("MatMul of two run-time tensors: fpgac needs one side to be constant weights")
    if not isinstance(left, Tensor):
        raise cx.unsupported("MatMul with the constant on the left: export as x @ W")
    weight = cx.const(1, "the weight")
    if weight.ndim != 2 or left.rank < 2:
        raise cx.unsupported(
            f"MatMul of rank {left.rank} by a constant of shape {list(weight.shape)}: only x @ W with a 2D W"
        )
    _dense(cx, left, weight, None, (cx.grid(1), None))


def lower_conv(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    weight = cx.const(1, "W (the kernel)")
    bias = cx.const(2, "B (the bias)")
    nd = x.rank - 2
    if x.batch_axis != 0:
        raise cx.unsupported("Conv input must have the batch first")
    if nd not in (1, 2):
        raise cx.unsupported(f"{nd}D convolution: fpgac compiles 1D and 2D convolutions")
    kernel = tuple(weight.shape[2:])
    if "kernel_shape" in a and tuple(a["kernel_shape"]) != kernel:
        raise InvalidModelError(f"{cx.where()}: kernel_shape {a['kernel_shape']} does not match W {weight.shape}")
    attrs = _window_attrs(cx, a, x.value.type.shape[1:], kernel)
    attrs["groups"] = int(a.get("group", 1))
    inputs = [x.value, cx.constant(weight, f"{cx.node.name or cx.node.output[0]}.weight", cx.grid(1))]
    if bias is not None:
        inputs.append(cx.constant(bias, f"{cx.node.name or cx.node.output[0]}.bias", cx.grid(2)))
    (out,) = cx.emit(Op.CONV, inputs, attrs)
    cx.set_outputs([Tensor(out, 0)])


def _window_attrs(cx: LoweringContext, a: dict[str, Any], spatial: tuple[int, ...], kernel: tuple[int, ...]) -> dict:
    """strides, dilations and explicit pads (auto_pad resolved) of a Conv or Pool node."""
    nd = len(spatial)
    strides = tuple(a.get("strides", (1,) * nd))
    dilations = tuple(a.get("dilations", (1,) * nd))
    auto_pad = a.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
    if auto_pad in ("NOTSET", ""):
        pads = tuple(a.get("pads", (0,) * (2 * nd)))
    elif auto_pad == "VALID":
        pads = (0,) * (2 * nd)
    elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        begins, ends = [], []
        for size, k, s, d in zip(spatial, kernel, strides, dilations):
            total = max((-(-size // s) - 1) * s + (k - 1) * d + 1 - size, 0)
            small, large = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else large)
            ends.append(large if auto_pad == "SAME_UPPER" else small)
        pads = tuple(begins + ends)
    else:
        raise cx.unsupported(f"auto_pad {auto_pad!r}")
    if any(p < 0 for p in pads):
        raise cx.unsupported(f"negative pads {list(pads)}")
    return {"strides": strides, "dilations": dilations, "pads": pads}


def lower_pool(kind: PoolKind) -> Lowering:
    def lower(cx: LoweringContext, a: dict[str, Any]) -> None:
        x = cx.tensor(0)
        nd = x.rank - 2
        if x.batch_axis != 0:
            raise cx.unsupported("pooling input must have the batch first")
        if nd not in (1, 2):
            raise cx.unsupported(f"{nd}D pooling: fpgac compiles 1D and 2D pooling")
        if len(cx.node.output) > 1 and cx.node.output[1]:
            raise cx.unsupported("MaxPool's Indices output")
        kernel = tuple(a["kernel_shape"])
        attrs = _window_attrs(cx, a, x.value.type.shape[1:], kernel)
        attrs.update(
            kind=kind,
            kernel=kernel,
            ceil_mode=bool(a.get("ceil_mode", 0)),
            count_include_pad=bool(a.get("count_include_pad", 0)),
        )
        (out,) = cx.emit(Op.POOL, [x.value], attrs)
        cx.set_outputs([Tensor(out, 0)])

    return lower


def lower_global_pool(kind: PoolKind) -> Lowering:
    def lower(cx: LoweringContext, a: dict[str, Any]) -> None:
        x = cx.tensor(0)
        if x.batch_axis != 0 or x.rank < 3:
            raise cx.unsupported("global pooling wants a [batch, channels, *spatial] input")
        (out,) = cx.emit(Op.GLOBAL_POOL, [x.value], {"kind": kind})
        cx.set_outputs([Tensor(out, 0)])

    return lower


def lower_activation(kind: Act, **defaults: float) -> Lowering:
    def lower(cx: LoweringContext, a: dict[str, Any]) -> None:
        x = cx.tensor(0)
        attrs: dict[str, Any] = {"kind": kind}
        for name, default in defaults.items():
            attrs[name] = float(a.get(name, default))
        (out,) = cx.emit(Op.ACTIVATION, [x.value], attrs)
        cx.set_outputs([Tensor(out, x.batch_axis)])

    return lower


def lower_prelu(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    slope = cx.const(1, "slope")
    if slope.ndim == 1 and x.rank > 2 and slope.shape[0] == x.full_shape[1] and slope.shape[0] != 1:
        # PyTorch's per-channel PReLU on an opset < 7 export: the slope is [C], meant for axis 1
        slope = slope.reshape((-1,) + (1,) * (x.rank - 2))
    value = cx.per_sample_const(slope, x, f"{cx.node.name or cx.node.output[0]}.slope", cx.grid(1))
    (out,) = cx.emit(Op.ACTIVATION, [x.value, value], {"kind": Act.PRELU})
    cx.set_outputs([Tensor(out, x.batch_axis)])


def lower_clip(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    if cx.opset < 11:
        lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
    else:
        lo_c, hi_c = cx.const(1, "min"), cx.const(2, "max")
        lo = -np.inf if lo_c is None else float(lo_c)
        hi = np.inf if hi_c is None else float(hi_c)
    lo = -np.inf if lo <= -3.4e38 else float(lo)
    hi = np.inf if hi >= 3.4e38 else float(hi)
    kind_attrs: dict[str, Any] = {"kind": Act.CLIP, "min": lo, "max": hi}
    if lo == 0.0 and hi == np.inf:
        kind_attrs = {"kind": Act.RELU}
    (out,) = cx.emit(Op.ACTIVATION, [x.value], kind_attrs)
    cx.set_outputs([Tensor(out, x.batch_axis)])


def lower_softmax(log_: bool) -> Lowering:
    def lower(cx: LoweringContext, a: dict[str, Any]) -> None:
        x = cx.tensor(0)
        default = -1 if cx.opset >= 13 else 1
        axis = int(a.get("axis", default))
        full = axis + x.rank if axis < 0 else axis
        if cx.opset < 13 and full != x.rank - 1:
            # before opset 13: softmax over all axes from `axis` on, flattened together
            if x.batch_axis >= full:
                raise cx.unsupported(f"softmax over axes {full}.. includes the batch axis")
            shape = x.value.type.shape
            first = cx.axis(full, x)
            flat = cx.reshape(x, shape[:first] + (math.prod(shape[first:]),), x.batch_axis, "_flat")
            (out,) = cx.emit(Op.SOFTMAX, [flat.value], {"axis": first, "log": log_})
            cx.set_outputs([cx.reshape(Tensor(out, x.batch_axis), shape, x.batch_axis, "_unflat")])
            return
        (out,) = cx.emit(Op.SOFTMAX, [x.value], {"axis": cx.axis(axis, x), "log": log_})
        cx.set_outputs([Tensor(out, x.batch_axis)])

    return lower


def lower_batchnorm(cx: LoweringContext, a: dict[str, Any]) -> None:
    x = cx.tensor(0)
    if a.get("training_mode", 0) or any(cx.node.output[1:]):
        raise cx.unsupported("BatchNormalization in training mode (export the model in eval mode)")
    if x.batch_axis != 0 or x.rank < 2:
        raise cx.unsupported("BatchNormalization wants a [batch, channels, ...] input")
    scale, bias, mean, var = (np.asarray(cx.const(i, n), np.float64) for i, n in
                              ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")))
    if np.any(var + a.get("epsilon", 1e-5) <= 0):
        raise InvalidModelError(f"{cx.where()}: variance + epsilon is not positive")
    s = scale / np.sqrt(var + a.get("epsilon", 1e-5))
    t = bias - mean * s
    per_channel = (-1,) + (1,) * (x.rank - 2)
    name = cx.node.name or cx.node.output[0]
    inputs = [x.value, cx.constant(s.reshape(per_channel), f"{name}.scale"),
              cx.constant(t.reshape(per_channel), f"{name}.shift")]
    (out,) = cx.emit(Op.SCALE_SHIFT, inputs)
    cx.set_outputs([Tensor(out, 0)])


def lower_rnn(op: Op) -> Lowering:
    gates = 4 if op is Op.LSTM else 3

    def lower(cx: LoweringContext, a: dict[str, Any]) -> None:
        name = op.value
        direction = a.get("direction", b"forward")
        direction = direction.decode() if isinstance(direction, bytes) else direction
        if direction != "forward":
            raise cx.unsupported(f"{name} direction {direction!r}: fpgac compiles forward RNNs")
        if "clip" in a or a.get("input_forget", 0):
            raise cx.unsupported(f"{name} with clip or input_forget")
        if "activations" in a:
            want = [b"Sigmoid", b"Tanh", b"Tanh"] if op is Op.LSTM else [b"Sigmoid", b"Tanh"]
            if list(a["activations"]) != want:
                raise cx.unsupported(f"{name} activations {a['activations']}: only the defaults")
        layout = int(a.get("layout", 0))
        x = cx.tensor(0)
        if x.rank != 3 or x.batch_axis != (1 if layout == 0 else 0):
            raise cx.unsupported(
                f"{name} with layout={layout} wants the batch at axis {1 if layout == 0 else 0} of a rank-3 "
                f"input; here it is at axis {x.batch_axis} of rank {x.rank}"
            )
        w, r = cx.const(1, "W"), cx.const(2, "R")
        h = int(a.get("hidden_size", w.shape[1] // gates))
        bias = cx.const(3, "B")
        if cx.has(4):
            lens = cx.const(4, "sequence_lens")
            if np.any(np.asarray(lens) != x.value.type.shape[0]):
                raise cx.unsupported(f"{name} with sequence_lens shorter than the sequence")
        if op is Op.LSTM and cx.has(7):
            peep = cx.const(7, "P")
            if np.any(peep != 0):
                raise cx.unsupported("LSTM peephole weights")
        base = cx.node.name or cx.node.output[0]
        # x is [T, N, F] (layout 0) or [N, T, F] (layout 1): per sample [T, F] either way
        inputs: list[Value | None] = [x.value, cx.constant(w[0], f"{base}.W", cx.grid(1)),
                                      cx.constant(r[0], f"{base}.R", cx.grid(2))]
        inputs.append(None if bias is None else cx.constant(bias[0], f"{base}.B", cx.grid(3)))
        state_batch_axis = 1 if layout == 0 else 0
        for index in ((5, 6) if op is Op.LSTM else (5,)):
            state = cx.const(index, "initial state") if cx.has(index) else None
            if state is None:
                inputs.append(None)
                continue
            state = cx.drop_batch(state, 3, state_batch_axis).reshape(-1)
            # the zeros exporters build with ConstantOfShape are the default: leave the input absent
            inputs.append(None if not np.any(state) else cx.constant(state, f"{base}.state{index - 5}"))
        while inputs and inputs[-1] is None:
            inputs.pop()
        attrs: dict[str, Any] = {"hidden_size": h}
        if op is Op.GRU:
            attrs["linear_before_reset"] = bool(a.get("linear_before_reset", 0))
        outs = cx.emit(op, inputs, attrs)
        seq = outs[0]
        seq_batch_axis = 2 if layout == 0 else 0  # ONNX Y is [T, 1, N, H] or [N, T, 1, H]
        results: list[Sym] = [cx.reshape(Tensor(seq, seq_batch_axis), (seq.type.shape[0], 1, h), seq_batch_axis, "_Y")]
        for state in outs[1:]:
            results.append(cx.reshape(Tensor(state, state_batch_axis), (1, h), state_batch_axis, "_state"))
        cx.set_outputs(results)

    return lower
