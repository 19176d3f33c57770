"""The two element-level rules every kernel shares: requantization and table lookup, as C.

Each distinct requantization (source type -> destination type) and each table becomes one small
``static inline`` function, specialized to its constants: the shift, the rounding increment of
the destination's rounding mode, and only the overflow checks the source range can trigger. The
steps are those of :func:`fpgac.ir.fixed.requantize` and :meth:`fpgac.ir.tables.Table.lookup`,
line for line, so the C equals the golden model on every input.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from fpgac.ir import FixedType, Overflow, Rounding
from fpgac.ir.tables import Table

from .cgen import CWriter, compute_type, container, maxabs, rng, shl, sra

if TYPE_CHECKING:
    from .program import Program

__all__ = ["requantizer", "lookup", "sigmoid_by_magnitude", "tanh_by_magnitude"]

#: the rounding increment added to the floored value, from ap_fixed's quantization_adjust:
#: ``qb`` the first dropped bit, ``r`` whether any other dropped bit is set, ``m`` the source,
#: ``fl`` the floored value (fpgac.ir.fixed._ROUND_UP)
_INCREMENT: dict[Rounding, str | None] = {
    Rounding.TRN: None,
    Rounding.TRN_ZERO: "(m < 0) & (qb | r)",
    Rounding.RND: "qb",
    Rounding.RND_ZERO: "qb & ((m < 0) | r)",
    Rounding.RND_INF: "qb & ((m >= 0) | r)",
    Rounding.RND_MIN_INF: "qb & r",
    Rounding.RND_CONV: "qb & ((int)(fl & 1) | r)",
}


def _limits(t: FixedType) -> tuple[int, int]:
    """The saturation limits of ``t``: SAT_SYM (signed, wider than 1 bit) excludes the minimum."""
    lo, hi = rng(t)
    if t.overflow is Overflow.SAT_SYM and t.signed and t.width > 1:
        lo = -hi
    return lo, hi


def _overflow(w: CWriter, t: FixedType, value: str, above: str, below: str, wrapped: str) -> None:
    """Return ``value`` after t's overflow rule (``above``/``below``: C conditions, or '' if impossible)."""
    lo, hi = _limits(t)
    out = container(t)
    if not above and not below:
        w(f"return ({out}){value};")
        return
    if t.overflow is Overflow.WRAP:
        w(f"return ({out}){wrapped};")
        return
    conds = " || ".join(c for c in (above, below) if c)
    if t.overflow is Overflow.SAT_ZERO:
        w(f"if ({conds})", "    return 0;", f"return ({out}){value};")
        return
    if above:
        w(f"if ({above})", f"    return {hi};")
    if below:
        w(f"if ({below})", f"    return {lo};")
    w(f"return ({out}){value};")


def requantizer(p: Program, src: FixedType, dst: FixedType) -> str:
    """The name of ``static inline dst_container rq(ct m)``: ``requantize(m, src, dst)`` for m in src."""
    key = ("rq", src, dst)
    if key in p.helper_names:
        return p.helper_names[key]
    lo_in, hi_in = rng(src)
    lo, hi = _limits(dst)
    k = dst.frac_bits - src.frac_bits
    wrap = "fx_wrap_signed" if dst.signed else "fx_wrap_unsigned"
    w = CWriter(1)
    if k >= 0:
        ct = compute_type((lo_in, hi_in), rng(dst), where=f"{src} -> {dst}")
        if k >= 64:  # every multiple of 2**64 wraps to 0
            above, below = ("m > 0" if hi_in > 0 else ""), ("m < 0" if lo_in < 0 else "")
            exact, wrapped = "0", "0"
            w("(void)m;")
            how = f"shift up {k} bits (past the word)"
        else:
            hi_k, lo_k = hi >> k, (lo - 1) >> k
            above = f"m > {hi_k}" if hi_in > hi_k else ""
            below = f"m <= {lo_k}" if lo_in <= lo_k else ""
            exact = shl(ct, "m", k)
            wrapped = f"{wrap}((uint64_t)m << {k}, {dst.width})"
            how = f"shift up {k} bits" if k else "same scale"
    else:
        n = min(-k, 63)
        need32 = n - 1 <= 30 and compute_type((lo_in, hi_in)) == "int32_t"
        ct = "int32_t" if need32 else "int64_t"
        w(f"const {ct} t = {sra(ct, 'm', n - 1)}; /* 2x the result, floored */",
          f"const {ct} fl = {sra(ct, 't', 1)};")
        inc = _INCREMENT[dst.rounding]
        if inc is not None:
            w("const int qb = (int)(t & 1); /* the first dropped bit */")
            if re.search(r"\br\b", inc):
                mask = (1 << (n - 1)) - 1
                w(f"const int r = (m & {mask}) != 0; /* any other dropped bit */" if n > 1 else "const int r = 0;")
            w(f"const {ct} y = fl + ({inc});")
        else:
            w(f"const {ct} y = fl;")
        rlo, rhi = lo_in >> n, (hi_in >> n) + (inc is not None)
        above = f"y > {hi}" if rhi > hi else ""
        below = f"y < {lo}" if rlo < lo else ""
        exact, wrapped = "y", f"{wrap}((uint64_t)y, {dst.width})"
        how = f"drop {-k} bits, {dst.rounding.value}"
    _overflow(w, dst, exact, above, below, wrapped)
    body = f"({ct} m)\n{{\n" + w.text() + "}\n"
    same = p.helper_names.get(("rq body", container(dst), body))
    if same is not None:  # another source type with the same range and scale: the same function
        p.helper_names[key] = same
        return same
    name = p.ident(f"rq_{len(p.helpers)}")
    p.helpers.append(f"/* {src} -> {dst}: {how}, {dst.overflow.value} */\nstatic inline {container(dst)} {name}{body}")
    p.helper_names[key] = p.helper_names[("rq body", container(dst), body)] = name
    return name


def _table_key(table: Table) -> tuple:
    return (table.function, table.in_type, table.out_type, table.shift, table.offset, table.interpolate,
            table.values.tobytes())


def lookup(p: Program, table: Table, arg_lo: int, arg_hi: int) -> str:
    """The name of ``static inline out_container lut(ct m)``: ``table.lookup(m)`` for m in [arg_lo, arg_hi]."""
    key = ("lut", _table_key(table), compute_type((arg_lo, arg_hi)))
    if key in p.helper_names:
        return p.helper_names[key]
    values = p.const(f"tab_{table.function}", container(table.out_type), table.values, "tables",
                     f"{table}: shift {table.shift}, offset {table.offset}", key=("table", _table_key(table)))
    name = p.ident(f"lut_{table.function}_{len(p.helpers)}")
    size, shift, offset = table.size, table.shift, table.offset
    vlo, vhi = int(table.values.min()), int(table.values.max())
    w = CWriter(1)
    if not table.interpolate:
        ct = compute_type((arg_lo, arg_hi), ((arg_lo >> shift) - offset, (arg_hi >> shift) - offset),
                          where=f"table {table}")
        w(f"{ct} i = {sra(ct, 'm', shift)} {'-' if offset >= 0 else '+'} {abs(offset)};" if offset
          else f"{ct} i = {sra(ct, 'm', shift)};",
          "if (i < 0)", "    i = 0;", f"else if (i > {size - 1})", f"    i = {size - 1};",
          f"return {values}[i];")
        what = f"{size} entries, one per {1 << shift} inputs"
    else:
        base, top = offset << shift, (size - 1) << shift
        steps = np.diff(table.values.astype(object))
        diff = int(max(abs(steps).max(), 1)) if steps.size else 1  # the largest (next - here)
        ct = compute_type((arg_lo, arg_hi), (arg_lo - base, arg_hi - base), (0, top), (vlo, vhi),
                          (-diff * ((1 << shift) - 1), diff * ((1 << shift) - 1)), where=f"table {table}")
        w(f"{ct} a = m {'-' if base >= 0 else '+'} {abs(base)};" if base else f"{ct} a = m;",
          "if (a < 0)", "    a = 0;", f"else if (a > {top})", f"    a = {top};")
        if shift == 0:
            w(f"return {values}[a];")
        else:
            w(f"const {ct} i = a >> {shift};",
              f"const {ct} here = {values}[i];",
              f"const {ct} next = {values}[i < {size - 1} ? i + 1 : {size - 1}];",
              f"return ({container(table.out_type)})"
              f"(here + {sra(ct, f'(next - here) * (a & {(1 << shift) - 1})', shift)});")
        what = f"{size} entries, interpolated over {1 << shift} inputs" if shift else f"{size} entries, one per input"
    head = (f"/* {table.function}: {table.in_type} -> {table.out_type}, {what} */\n"
            f"static inline {container(table.out_type)} {name}({ct} m)\n{{\n")
    p.helpers.append(head + w.text() + "}\n")
    p.helper_names[key] = name
    return name


def sigmoid_by_magnitude(p: Program, table: Table, gate: FixedType) -> str:
    """``sig(g)`` of fpgac.ir.semantics.recurrent: ``sigmoid[|g|]``, or ``1 - sigmoid[|g|]`` for g < 0."""
    return _by_magnitude(p, table, gate, "sig", f"({1 << table.out_type.frac_bits} - v)")


def tanh_by_magnitude(p: Program, table: Table, gate: FixedType) -> str:
    """``th(g)`` of fpgac.ir.semantics.recurrent: ``tanh[|g|]``, or ``-tanh[|g|]`` for g < 0."""
    return _by_magnitude(p, table, gate, "th", "(-v)")


def _by_magnitude(p: Program, table: Table, gate: FixedType, what: str, negative: str) -> str:
    key = (what, _table_key(table), gate)
    if key in p.helper_names:
        return p.helper_names[key]
    if table.out_type.frac_bits < 0:
        raise AssertionError(f"{table} cannot hold 1 exactly")
    top = max(-gate.min_mantissa, gate.max_mantissa)
    lut = lookup(p, table, 0, top)
    out = table.out_type
    one = 1 << out.frac_bits
    ct = compute_type(rng(gate), (-top, top), (-one - maxabs(out), one + maxabs(out)))
    name = p.ident(f"{what}_{len(p.helpers)}")
    p.helpers.append(
        f"/* {what}(g) for g of {gate}: the table read at |g| */\n"
        f"static inline {ct} {name}({ct} g)\n{{\n"
        f"    const {ct} v = {lut}(g < 0 ? -g : g);\n"
        f"    return g >= 0 ? v : {negative};\n}}\n"
    )
    p.helper_names[key] = name
    return name
