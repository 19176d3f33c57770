"""An LSTM or GRU as one lane-level stage over its whole sequence (:class:`Recurrent`), with the
golden model's steps per unit in numpy (:func:`step_numbers`), what the hardware's elementwise
pipeline computes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...errors import UnsupportedError
from ...ir import FixedType, Node, Op
from ...ir.fixed import requantize
from ...ir.semantics.recurrent import plan as recurrent_plan, signed_sigmoid as _sig, signed_tanh as _th
from ...ir.tables import Table
from .stage import Stage

__all__ = ["Recurrent", "step_numbers"]


@dataclass
class Recurrent(Stage):
    """An LSTM or GRU (``kind``) over a whole sequence: ``steps`` x ``n_x`` input lanes in, and out
    ``output`` 0 (``Y``: ``steps`` x ``hidden`` lanes), 1 (``Y_h``) or 2 (``Y_c``). Each step's
    gate sums are one matrix product ``[x_t, h] @ matrix + bias``: ``matrix`` is
    ``[n_x + hidden, 4 * hidden]``, the golden model's shifts to the accumulator's ``acc_frac``
    fractional bits folded into it, columns ``k * hidden + j`` for unit ``j``'s sum ``k``: LSTM
    ``i, o, f, c``; GRU ``z, r`` (over x and h), ``n_x`` (``W_n x + Wb_n``, zero rows for h) and
    ``n_h`` (``R_n h + Rb_n``, zero rows for x). The rest is the golden model's steps per unit
    (:mod:`fpgac.ir.semantics.recurrent`), ``linear_before_reset = 1`` for a GRU."""

    kind: str = "lstm"
    steps: int = 1
    n_x: int = 1
    hidden: int = 1
    output: int = 0
    acc_frac: int = 0
    matrix: np.ndarray = field(default=None)  # int64 [n_x + hidden, 4 * hidden]
    bias: np.ndarray = field(default=None)  # int64 [4 * hidden]
    h0: np.ndarray = field(default=None)  # int64 [hidden]: the initial state's mantissas
    c0: np.ndarray = field(default=None)
    gate_type: FixedType = field(default=None)
    state_type: FixedType = field(default=None)
    cell_type: FixedType | None = field(default=None)
    sigmoid: Table = field(default=None)
    tanh: Table = field(default=None)
    tanh_cell: Table | None = field(default=None)

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        n, hidden = len(inputs[0]), self.hidden
        x = inputs[0].reshape(n, self.steps, self.n_x)
        h = np.broadcast_to(self.h0, (n, hidden)).astype(np.int64)
        c = np.broadcast_to(self.c0, (n, hidden)).astype(np.int64)
        ys = []
        for t in range(self.steps):
            acc = np.concatenate([x[:, t], h], axis=1) @ self.matrix + self.bias
            h, c = step_numbers(self, [acc[:, k * hidden:(k + 1) * hidden] for k in range(4)], h, c)
            ys.append(h)
        return [np.stack(ys, axis=1).reshape(n, -1), h, c][self.output]


def _wide(frac: int) -> FixedType:
    """A 62-bit type at ``frac`` fractional bits: the type of an exact intermediate (no overflow)."""
    return FixedType(62, 62 - frac)


def step_numbers(s: Recurrent, acc: list[np.ndarray], h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One step's new ``h`` and ``c`` from the four gate sums of each unit (what the hardware's
    elementwise pipeline computes), in numpy."""
    fs = s.sigmoid.out_type.frac_bits
    gate = lambda a, frac: requantize(a, _wide(frac), s.gate_type)  # noqa: E731
    if s.kind == "lstm":
        g = [gate(a, s.acc_frac) for a in acc]
        i, o, f, k = _sig(s.sigmoid, g[0]), _sig(s.sigmoid, g[1]), _sig(s.sigmoid, g[2]), _th(s.tanh, g[3])
        fc, fu = fs + s.cell_type.frac_bits, fs + s.tanh.out_type.frac_bits
        top = max(fc, fu)
        c = requantize(np.left_shift(f * c, top - fc) + np.left_shift(i * k, top - fu), _wide(top), s.cell_type)
        h = requantize(o * _th(s.tanh_cell, c), _wide(fs + s.tanh_cell.out_type.frac_bits), s.state_type)
        return h, c
    z, r = _sig(s.sigmoid, gate(acc[0], s.acc_frac)), _sig(s.sigmoid, gate(acc[1], s.acc_frac))
    n = _th(s.tanh, gate(np.left_shift(acc[2], fs) + r * acc[3], s.acc_frac + fs))
    fn, fh = fs + s.tanh.out_type.frac_bits, fs + s.state_type.frac_bits
    top = max(fn, fh)
    one = np.int64(1) << fs
    h = requantize(np.left_shift((one - z) * n, top - fn) + np.left_shift(z * h, top - fh), _wide(top), s.state_type)
    return h, c


def _recurrent(node: Node, output: int) -> Stage:
    """The stage of an LSTM or GRU computing its ``output`` (0 ``Y``, 1 ``Y_h``, 2 ``Y_c``): its gate
    matrix with the shifts folded in (see :class:`Recurrent`)."""
    p = recurrent_plan(node)
    y = node.outputs[output]
    base = dict(node=node.name, in_type=node.inputs[0].type.dtype, out_type=y.type.dtype,
                n_in=int(np.prod(node.inputs[0].type.shape)), n_out=int(np.prod(y.type.shape)))
    lstm = node.op is Op.LSTM
    if not lstm and not node.attrs["linear_before_reset"]:
        raise UnsupportedError(f"node {node.name!r} (GRU): linear_before_reset=0 (r applied to h before R_n) is not "
                               "built by the amaranth target; PyTorch exports linear_before_reset=1")
    for index, what in ((4, "initial_h"), (5, "initial_c")):
        v = node.input(index)
        if v is not None and not v.is_const:
            raise UnsupportedError(f"node {node.name!r} ({node.op.value}): a run-time {what} is not built by the "
                                   "amaranth target (a constant or absent one is)")
    x, hidden = node.inputs[0], p.hidden
    steps, n_x = x.type.shape
    w = np.left_shift(np.asarray(node.inputs[1].data, dtype=np.int64), p.input_shift)  # [gates*H, I]
    r = np.left_shift(np.asarray(node.inputs[2].data, dtype=np.int64), p.state_shift)  # [gates*H, H]
    matrix = np.zeros((n_x + hidden, 4 * hidden), dtype=np.int64)
    if lstm:
        matrix[:n_x], matrix[n_x:] = w.T, r.T
        bias = p.input_bias + p.state_bias
    else:
        zr, nn = slice(0, 2 * hidden), slice(2 * hidden, 3 * hidden)
        matrix[:n_x, zr], matrix[n_x:, zr] = w[zr].T, r[zr].T
        matrix[:n_x, nn] = w[nn].T
        matrix[n_x:, 3 * hidden:] = r[nn].T
        bias = np.concatenate([p.input_bias[zr] + p.state_bias[zr], p.input_bias[nn], p.state_bias[nn]])
    initial = [np.zeros(hidden, dtype=np.int64) if node.input(i) is None
               else np.broadcast_to(np.asarray(node.input(i).data, dtype=np.int64), (hidden,)).copy() for i in (4, 5)]
    if not lstm:
        initial[1] = np.zeros(hidden, dtype=np.int64)
    return Recurrent(**base, kind="lstm" if lstm else "gru", output=output, steps=int(steps), n_x=int(n_x), hidden=hidden,
                     acc_frac=p.accum_type.frac_bits, matrix=matrix, bias=bias, h0=initial[0], c0=initial[1],
                     gate_type=p.gate_type, state_type=p.state_type, cell_type=p.cell_type, sigmoid=p.sigmoid,
                     tanh=p.tanh, tanh_cell=p.tanh_cell)
