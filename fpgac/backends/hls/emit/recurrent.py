"""LSTM and GRU with recurrent.h: the gate matrices as mac configs, and the types, tables, biases
and shifts from the op's plan (:mod:`fpgac.ir.semantics.recurrent`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from fpgac.errors import UnsupportedError
from fpgac.ir import FixedType, Node, Op, semantics

from ..cpp import Struct, fixed, fixed_rom_type

from .common import mac_config

if TYPE_CHECKING:
    from ..design import Design

__all__ = ["emit_recurrent"]


def _holder(t: FixedType) -> FixedType:
    """A signed type one integer bit wider than a table's output: holds 1 - v and -v exactly."""
    int_bits = max(t.int_bits, 1) + 1
    return FixedType(int_bits + t.frac_bits, int_bits, True)


def _accum_rom(node: Node, name: str, m: np.ndarray, t: FixedType) -> np.ndarray:
    if m.size and (m.min() < t.min_mantissa or m.max() > t.max_mantissa):
        raise UnsupportedError(f"node {node.name!r} ({node.op.value}): {name} does not fit the accumulator {t}")
    return m


def _recurrent_parts(d: Design, node: Node, gates: int) -> tuple[Struct, list[str]]:
    """What LSTM and GRU share: the W and R mac configs, the biases, the initial state, the tables."""
    d.use("recurrent.h")
    plan: semantics.RecurrentPlan = semantics.plan(node)
    hidden = plan.hidden
    x, w, r = node.inputs[0], node.inputs[1], node.inputs[2]
    steps, features = x.type.shape
    acc_t, gate_t, state_t = plan.accum_type, plan.gate_type, plan.state_type
    accum = fixed(acc_t)
    struct = Struct(d.layer_name(node, "config"), comment=f"{node.name}: {node.op.value}, {steps} steps, "
                    f"{features} features, hidden {hidden}")
    struct.const("n_steps", steps).const("n_in", features).const("n_hidden", hidden)
    w_cfg, w_roms = mac_config(d, node, "w", w.data.T, w, features, gates * hidden, accum, d.reuse)
    lbr = node.op is Op.GRU and node.attrs["linear_before_reset"]
    r_rows = gates * hidden if node.op is Op.LSTM or lbr else 2 * hidden
    r_cfg, r_roms = mac_config(d, node, "r", r.data[:r_rows].T, r, hidden, r_rows, accum, d.reuse)
    roms = w_roms + r_roms
    if node.op is Op.GRU:
        rn = r.data[2 * hidden:] if not lbr else np.zeros((0, hidden), dtype=np.int64)
        rn_cfg, rn_roms = mac_config(d, node, "rn", rn.T, r, hidden, hidden, accum, d.reuse)
        struct.type("rn_config", rn_cfg)
        roms += rn_roms
    struct.type("w_config", w_cfg).type("r_config", r_cfg)
    # biases at the accumulator's fractional bits: Wb and Rb (summed for LSTM, separate for GRU)
    halves = np.stack([plan.input_bias, plan.state_bias])
    acc_rom_t = fixed_rom_type(acc_t)
    struct.type("bias_rom_t", acc_rom_t)
    if node.op is Op.LSTM:
        roms.append(d.rom(node, "b", acc_rom_t, _accum_rom(node, "Wb + Rb", halves.sum(axis=0), acc_t),
                          f"{node.name}: Wb + Rb, mantissas of the accumulator {acc_t}"))
    else:
        roms.append(d.rom(node, "bx", acc_rom_t, _accum_rom(node, "Wb", halves[0], acc_t),
                          f"{node.name}: Wb, mantissas of the accumulator {acc_t}"))
        roms.append(d.rom(node, "bh", acc_rom_t, _accum_rom(node, "Rb", halves[1], acc_t),
                          f"{node.name}: Rb, mantissas of the accumulator {acc_t}"))
    # initial states (constants or zeros)
    states = [("h0", 4, state_t, "state")] + ([("c0", 5, plan.cell_type, "cell")] if node.op is Op.LSTM else [])
    for role, index, t, kind in states:
        v = node.input(index)
        data = np.zeros(hidden, dtype=np.int64) if v is None else v.data
        struct.type(f"{kind}_rom_t", fixed_rom_type(t))
        roms.append(d.rom(node, role, fixed_rom_type(t), data, f"{node.name}: initial {kind}, mantissas of {t}"))
    struct.type("accum_t", accum).type("gate_t", fixed(gate_t)).type("state_t", d.type_name(node.outputs[0]))
    sigmoid, tanh = plan.sigmoid, plan.tanh
    struct.type("sig_t", fixed(_holder(sigmoid.out_type))).type("tanh_t", fixed(_holder(tanh.out_type)))
    tables = [("sigmoid", sigmoid), ("tanh", tanh)]
    if node.op is Op.LSTM:
        struct.type("cell_t", d.type_name(node.outputs[2]))
        struct.type("tanh_cell_t", fixed(_holder(plan.tanh_cell.out_type)))
        tables.append(("tanh_cell", plan.tanh_cell))
    else:
        struct.const("linear_before_reset", bool(lbr), "bool")
    for role, table in tables:
        cfg, values = d.table(node, role, table)
        struct.type(f"{role}_table", cfg)
        roms.append(values)
    return struct, roms


def emit_recurrent(d: Design, node: Node, ins: list, outs: list) -> None:
    """fpgac::lstm (4 gates) or fpgac::gru (3 gates)."""
    kernel, gates = ("lstm", 4) if node.op is Op.LSTM else ("gru", 3)
    struct, roms = _recurrent_parts(d, node, gates)
    name = d.config(struct)
    d.code(f"fpgac::{kernel}<{d.type_name(node.inputs[0])}, {name}>({ins[0]}, {', '.join(outs)},")
    with d.code.indent():
        d.code(f"{', '.join(roms)});")
