"""A quantized graph as a C program: constants, helpers, one function per layer, buffers, entry points.

``Program(graph).build()`` walks the nodes in order and asks each op's emitter (the table in
:mod:`.layers`) for one ``static void`` layer function; ``model_run`` calls them in order. Values
live in static buffers, one array per container type and lifetime: a buffer is reused by a later
value of the same container type once every reader of its earlier value has run (buffers of
different C types never share memory, so there is no type punning). A Reshape whose input sits
in a buffer just renames it. Graph inputs and outputs are the caller's arrays.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fpgac import __version__
from fpgac.errors import UnsupportedError
from fpgac.ir import FixedType, Graph, Node, Value

from .cgen import CWriter, c_array, c_ident, container, container_bytes

__all__ = ["Program", "Layer", "Const", "Buffer", "PREFIX"]

#: prefix of every public C name (model_run, MODEL_IN0_SIZE, model_in0_t)
PREFIX = "model"

#: identifiers the generated code may not take for its own names
_RESERVED = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "main",
    # the parameter and local names the layer functions use, so that no global shadows them
    "x", "y", "a", "b", "y_h", "y_c", "slope", "scale", "xr", "yr", "wr", "xt", "xc", "acc", "corner", "base",
    "mx", "total", "inv", "ls", "best", "at", "ax", "ah", "rg", "q", "e", "g", "h", "c", "z", "n", "k", "i", "o",
    "f", "j", "r", "m", "t", "u", "v", "oy", "ox", "iy", "ix", "ky", "kx", "fl", "qb", "here", "next", "sink",
}


@dataclass
class Const:
    """A ``static const`` array (it goes to flash on a microcontroller)."""

    name: str
    ctype: str
    data: np.ndarray
    role: str  # weights, biases, indices, tables, constants
    what: str

    @property
    def bytes(self) -> int:
        return max(self.data.size, 1) * container_bytes(self.ctype)


@dataclass
class Buffer:
    """A static activation array, reused by values of its C type whose lifetimes do not overlap."""

    name: str
    ctype: str
    size: int = 0
    holds: list[str] = field(default_factory=list)  # the values it held, in order
    live: set[int] = field(default_factory=set)  # ids of the values in it now

    @property
    def bytes(self) -> int:
        return self.size * container_bytes(self.ctype)


class Layer:
    """One layer function being written: its parameters (pointers to values) and its body."""

    def __init__(self, program: Program, node: Node) -> None:
        self.p = program
        self.node = node
        self.params: list[tuple[str, str]] = []  # (declaration, argument at the call)
        self.w = CWriter(1)
        self.stack = 0  # bytes of local arrays

    def input(self, index: int, name: str) -> str:
        """A read-only pointer parameter for the node's input ``index``."""
        value = self.node.inputs[index]
        self.params.append((f"const {self.p.ctype(value)} *restrict {name}", self.p.loc(value)))
        return name

    def output(self, index: int, name: str) -> str:
        """A pointer parameter the node's output ``index`` is written through."""
        value = self.node.outputs[index]
        self.params.append((f"{self.p.ctype(value)} *restrict {name}", self.p.alloc(value)))
        return name

    def local(self, ctype: str, name: str, size: int) -> str:
        """A local array (on the stack) of ``size`` elements."""
        self.w(f"{ctype} {name}[{max(size, 1)}];")
        self.stack += max(size, 1) * container_bytes(ctype)
        return name

    def finish(self, *comment: str) -> None:
        fname = self.p.ident(f"layer_{self.node.name}")
        t = self.node.output.type
        head = [f"/* {self.node.name}: {self.node.op.value} -> {t.dtype}{list(t.shape)}"]
        head += [f" * {line}" for line in comment]
        decls = ", ".join(d for d, _ in self.params) or "void"
        text = "\n".join(head) + " */\n" + f"static void {fname}({decls})\n{{\n" + self.w.text() + "}\n"
        self.p.layers.append(text)
        self.p.calls.append(f"{fname}({', '.join(a for _, a in self.params)});")
        self.p.stack = max(self.p.stack, self.stack)


class Program:
    """Everything model.c and model.h hold, built node by node (see the module docstring)."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.names: set[str] = set(_RESERVED)
        self.consts: list[Const] = []
        self._const_keys: dict[Any, str] = {}
        self.helpers: list[str] = []
        self.helper_names: dict[Any, str] = {}
        self.layers: list[str] = []
        self.calls: list[str] = []
        self.finale: list[str] = []  # copies into outputs that are not written by a layer
        self.buffers: list[Buffer] = []
        self.stack = 0
        self._where: dict[int, str] = {}  # id(value) -> C expression of its storage
        self._buffer_of: dict[int, Buffer] = {}
        self.inputs = list(graph.inputs)
        self.outputs = list(graph.outputs)
        for i in range(len(self.inputs)):
            self._where[id(self.inputs[i])] = f"in{i}"
        self._out_param: dict[int, str] = {}
        for i, value in enumerate(self.outputs):
            self._out_param.setdefault(id(value), f"out{i}")
        big = max([v.type.size for v in graph.values()] + [1])
        self.index = "int" if big < (1 << 15) else "long"  # loop indices

    # -- names and constants -------------------------------------------------------------------

    def ident(self, base: str) -> str:
        name = c_ident(base)
        candidate, i = name, 0
        while candidate in self.names or candidate.startswith(("fx_", PREFIX + "_")):
            i += 1
            candidate = f"{name}_{i}" if not name.startswith(("fx_", PREFIX + "_")) else f"n_{name}_{i}"
        self.names.add(candidate)
        return candidate

    def const(self, base: str, ctype: str, data: np.ndarray, role: str, what: str, key: Any = None) -> str:
        """A ``static const`` array; the same ``key`` (if given) gives the same array once."""
        if key is not None and key in self._const_keys:
            return self._const_keys[key]
        name = self.ident(base)
        self.consts.append(Const(name, ctype, np.asarray(data, dtype=np.int64).reshape(-1), role, what))
        if key is not None:
            self._const_keys[key] = name
        return name

    # -- values ----------------------------------------------------------------------------------

    @staticmethod
    def ftype(value: Value) -> FixedType:
        t = value.type.dtype
        if not isinstance(t, FixedType):
            raise UnsupportedError(f"value {value.name!r} has type {t}: the cpu target needs a quantized graph")
        return t

    def ctype(self, value: Value) -> str:
        return container(self.ftype(value))

    def loc(self, value: Value) -> str:
        """Where ``value`` is: an entry-point parameter, a buffer, or a constant array."""
        if id(value) in self._where:
            return self._where[id(value)]
        if value.is_const:
            name = self.const(f"const_{value.name}", self.ctype(value), value.data, "constants",
                              f"{value.name}: {value.type}", key=("value", id(value)))
            self._where[id(value)] = name
            return name
        raise AssertionError(f"value {value.name!r} is read before it is written")

    def alloc(self, value: Value) -> str:
        """Storage for a node output: the caller's output array, or a free buffer of its C type."""
        if id(value) in self._out_param and id(value) not in self._where:
            self._where[id(value)] = self._out_param[id(value)]
            return self._where[id(value)]
        ctype, size = self.ctype(value), value.type.size
        free = [b for b in self.buffers if b.ctype == ctype and not b.live]
        fitting = [b for b in free if b.size >= size]
        if fitting:
            buf = min(fitting, key=lambda b: b.size)
        elif free:
            buf = max(free, key=lambda b: b.size)
        else:
            buf = Buffer(self.ident(f"buf_{ctype[:-2].replace('int', 'i')}_{len(self.buffers)}"), ctype)
            self.buffers.append(buf)
        buf.size = max(buf.size, size)
        self._bind(value, buf)
        return buf.name

    def alias(self, value: Value, source: Value) -> bool:
        """Give ``value`` the storage of ``source`` (a Reshape), if that is a buffer of the same type."""
        buf = self._buffer_of.get(id(source))
        if buf is None or id(value) in self._out_param or self.ctype(value) != buf.ctype:
            return False
        self._bind(value, buf)
        return True

    def _bind(self, value: Value, buf: Buffer) -> None:
        buf.live.add(id(value))
        buf.holds.append(value.name)
        self._buffer_of[id(value)] = buf
        self._where[id(value)] = buf.name

    def release(self, value: Value) -> None:
        buf = self._buffer_of.get(id(value))
        if buf is not None:
            buf.live.discard(id(value))

    # -- the walk ----------------------------------------------------------------------------------

    def build(self, emitters: dict[Any, Callable[[Program, Node], None]], refused: dict[Any, str]) -> None:
        last_use: dict[int, int] = {}
        for i, node in enumerate(self.graph.nodes):
            for value in node.inputs:
                if value is not None:
                    last_use[id(value)] = i
        for i, node in enumerate(self.graph.nodes):
            emit = emitters.get(node.op)
            if emit is None:
                why = refused.get(node.op, "the cpu target has no kernel for this op")
                raise UnsupportedError(f"node {node.name!r} ({node.op.value}): {why}")
            for value in node.inputs + node.outputs:
                if value is not None:
                    self.ftype(value)
            emit(self, node)
            for value in node.inputs + node.outputs:
                if value is not None and last_use.get(id(value), -1) <= i:
                    self.release(value)
        for i, value in enumerate(self.outputs):
            target = f"out{i}"
            if self._where.get(id(value)) != target:
                self.finale.append(f"for (i = 0; i < {value.type.size}; i++)")
                self.finale.append(f"    {target}[i] = {self.loc(value)}[i];")

    # -- memory --------------------------------------------------------------------------------------

    def memory(self) -> dict[str, int]:
        """Bytes by kind: constants by role, activation buffers, the largest layer's stack arrays."""
        mem = {role: 0 for role in ("weights", "biases", "indices", "tables", "constants")}
        for c in self.consts:
            mem[c.role] += c.bytes
        mem["buffers"] = sum(b.bytes for b in self.buffers)
        mem["stack"] = self.stack
        mem["flash"] = sum(c.bytes for c in self.consts)
        mem["ram"] = mem["buffers"] + mem["stack"]
        return mem

    # -- text ------------------------------------------------------------------------------------------

    def port_comment(self, kind: str, i: int, value: Value) -> str:
        t = self.ftype(value)
        return (f"{kind} {i}: {value.name!r}, {t}{list(value.type.shape)}: mantissa m stands for "
                f"m * 2^{-t.frac_bits}; {container(t)}")

    def signature(self, floats: bool = False) -> str:
        """``void model_run(const model_in0_t *in0, ..., model_out0_t *out0)`` (or model_run_float on doubles)."""
        args = [f"const {'double' if floats else f'{PREFIX}_in{i}_t'} *in{i}" for i in range(len(self.inputs))]
        args += [f"{'double' if floats else f'{PREFIX}_out{i}_t'} *out{i}" for i in range(len(self.outputs))]
        return f"void {PREFIX}_run{'_float' if floats else ''}({', '.join(args) or 'void'})"

    def header(self) -> str:
        P = PREFIX.upper()
        w = CWriter()
        w(f"/* {self.graph.name}: integer-only C99 kernel generated by fpgac {__version__} (--target cpu).",
          " * Bit-exact with fpgac's golden fixed-point model. See README.md for the memory each buffer takes. */",
          f"#ifndef {P}_H", f"#define {P}_H", "", "#include <stdint.h>", "")
        for kind, values in (("in", self.inputs), ("out", self.outputs)):
            for i, value in enumerate(values):
                t = self.ftype(value)
                w(f"/* {self.port_comment('input' if kind == 'in' else 'output', i, value)} */",
                  f"typedef {container(t)} {PREFIX}_{kind}{i}_t;",
                  f"#define {P}_{kind.upper()}{i}_SIZE {value.type.size}",
                  f"#define {P}_{kind.upper()}{i}_FRAC_BITS {t.frac_bits}", "")
        w("/* One inference on mantissas: integer arithmetic only, no allocation. Not reentrant: the",
          " * activations live in static buffers. Inputs must be mantissas of their types. */",
          f"{self.signature()};", "",
          f"#ifndef {P}_NO_FLOAT",
          "/* Convenience: quantize double inputs as the input types say (rounding, saturation),",
          f" * run {PREFIX}_run, and give the outputs' exact values. Needs <math.h> (frexp, ldexp). */",
          f"{self.signature(floats=True)};",
          "#endif", "", f"#endif /* {P}_H */")
        return w.text()

    def source(self, runtime: str) -> str:
        P = PREFIX.upper()
        out = [
            f"/* {self.graph.name}: integer-only C99 kernel generated by fpgac {__version__}; do not edit.\n"
            " *\n"
            " * Values are integer mantissas of fixed-point types (see model.h). Each layer below\n"
            " * computes exactly what fpgac's golden model does: exact integer sums in accumulators wide\n"
            " * enough for their bounds, and rounding/saturation only where the graph requantizes. */\n",
            f"#include \"{PREFIX}.h\"\n",
            "\n/* ---- runtime (hand-written, the same in every model) ---- */\n",
            runtime,
            "\n/* ---- constants (static const: flash on a microcontroller) ---- */\n",
        ]
        out += [f"/* {c.what} */\n" + c_array(c.ctype, c.name, c.data) for c in self.consts]
        out.append("\n/* ---- requantizers and lookup tables ---- */\n")
        out += [h + "\n" for h in self.helpers]
        out.append("/* ---- activation buffers ---- */\n")
        for b in self.buffers:
            out.append(f"static {b.ctype} {b.name}[{max(b.size, 1)}]; /* {', '.join(b.holds)} */\n")
        out.append("\n/* ---- layers ---- */\n")
        out += [layer + "\n" for layer in self.layers]
        w = CWriter()
        w("/* ---- entry points ---- */", "")
        w(self.signature())
        with w.block(""):
            if self.finale:
                w(f"{self.index} i;")
            for i in range(len(self.inputs)):
                if not re.search(rf"\bin{i}\b", " ".join(self.calls + self.finale)):
                    w(f"(void)in{i};")
            w(*self.calls)
            w(*self.finale)
        w("", f"#ifndef {P}_NO_FLOAT")
        w(self.signature(floats=True))
        with w.block(""):
            for kind, values in (("in", self.inputs), ("out", self.outputs)):
                for i, value in enumerate(values):
                    w(f"static {PREFIX}_{kind}{i}_t m{kind}{i}[{max(value.type.size, 1)}];")
            w(f"{self.index} i;")
            for i, value in enumerate(self.inputs):
                t = self.ftype(value)
                w(f"const fx_type t{i} = {{{t.width}, {t.frac_bits}, {int(t.signed)}, FX_{t.rounding.value}, "
                  f"FX_{t.overflow.value}}};")
            for i, value in enumerate(self.inputs):
                w(f"for (i = 0; i < {value.type.size}; i++)",
                  f"    min{i}[i] = ({PREFIX}_in{i}_t)fx_from_double(in{i}[i], t{i});")
            mantissas = [f"min{i}" for i in range(len(self.inputs))] + [f"mout{i}" for i in range(len(self.outputs))]
            w(f"{PREFIX}_run({', '.join(mantissas)});")
            for i, value in enumerate(self.outputs):
                w(f"for (i = 0; i < {value.type.size}; i++)",
                  f"    out{i}[i] = fx_to_double(mout{i}[i], {self.ftype(value).frac_bits});")
        w(f"#endif /* {P}_NO_FLOAT */")
        out.append(w.text())
        return "".join(out)
