"""The HLS design of a quantized graph: kernel calls with the model's types, configs and ROMs.

Python emits only what depends on the model (types, configuration structs, constant ROMs and the
top function's calls); the arithmetic is in the hand-written kernel headers of ``include/``. Each
IR op maps to one emit function (``_PARALLEL``); ops with a streaming form also have one in
``_STREAM`` (the others are wrapped: their input words are read into an array, the array kernel
runs, and the result is written back as words).

Layout: every tensor is its per-sample IR shape, channels-first, flattened row-major. In io_stream
designs a ``[C, *spatial]`` tensor is ``prod(spatial)`` words of ``C`` values (a vector ``[N]`` is
one word of ``N``); see ``include/stream.h``.

Constants are ROMs of integer mantissas; a weight matrix is the list of its non-zero entries (value,
input index, output index), so a zero weight, pruned or rounded away, appears nowhere.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from fpgac.errors import UnsupportedError
from fpgac.ir import Act, FixedType, Graph, Node, Op, PoolKind, Value
from fpgac.ir.tables import Table

from ..codegen import identifier
from .cpp import (
    Code,
    Namer,
    fixed,
    fixed_rom_type,
    index_type,
    int_literal,
    rom,
    rom_type,
)

__all__ = ["Design", "IO_MODES", "words"]

IO_MODES = ("parallel", "stream")


def words(shape: tuple[int, ...]) -> tuple[int, int]:
    """(values per word, words) of a tensor in io_stream form: channels, then positions."""
    size = math.prod(shape)
    channels = shape[0] if shape else 1
    return channels, (size // channels if channels else 0)


def _size(value: Value) -> int:
    return math.prod(value.type.shape)


def _ftype(value: Value) -> FixedType:
    return value.type.dtype


@dataclass
class Struct:
    """A configuration struct: ``static const`` members and typedefs, in order."""

    name: str
    members: list[tuple[str, str, object]] = field(default_factory=list)  # (ctype, name, value)
    types: list[tuple[str, str]] = field(default_factory=list)  # (name, C++ type)
    comment: str = ""

    def const(self, name: str, value: object, ctype: str = "unsigned") -> Struct:
        self.members.append((ctype, name, value))
        return self

    def type(self, name: str, cpp: str) -> Struct:
        self.types.append((name, cpp))
        return self

    def text(self) -> str:
        code = Code()
        if self.comment:
            code(f"// {self.comment}")
        code(f"struct {self.name} {{")
        with code.indent():
            for ctype, name, value in self.members:
                if isinstance(value, bool):
                    literal = "true" if value else "false"
                elif ctype == "long long":
                    literal = f"{int(value)}LL"
                else:
                    literal = str(value)
                code(f"static const {ctype} {name} = {literal};")
            for name, cpp in self.types:
                code(f"typedef {cpp} {name};")
        code("};")
        return code.text()


class Design:
    """The model as HLS C++: built node by node, then written out by :mod:`.project`."""

    def __init__(self, graph: Graph, io: str, reuse: int) -> None:
        self.graph = graph
        self.io = io
        self.reuse = reuse
        self.names = Namer()
        self.top = self.names.fresh(graph.name or "model")
        self.typedefs: list[tuple[str, str]] = []  # defines.h: (name, C++ type)
        self.configs: list[str] = []  # parameters.h
        self.roms: dict[str, list[str]] = {}  # weights/<stem>.h -> ROM definitions
        self.headers: list[str] = []  # kernel headers the design uses
        self.code = Code()  # the top function's body
        self.ports_in: list[tuple[Value, str]] = []
        self.ports_out: list[tuple[Value, str]] = []
        self.weight_count = 0  # weights of every weight matrix, zero or not
        self.nonzero_count = 0  # the ones the design contains
        self._ident: dict[int, str] = {}  # id(value) -> array or stream identifier
        self._type: dict[int, str] = {}  # id(value) -> type name
        self._word: dict[int, str] = {}
        self._uses: dict[int, list[str]] = {}  # id(value) -> stream names left for its readers (stream mode)
        self._files = Namer()
        self._stems: dict[str, str] = {}  # node name -> its weights header's stem
        self._fanout_calls: list[tuple[Value, str, str, int]] = []
        self._use_count: dict[int, int] = {}  # id(value) -> how many node inputs and graph outputs read it
        self._build()

    # -- naming --------------------------------------------------------------------------------

    def type_name(self, value: Value) -> str:
        """The typedef of a value's fixed-point type (``<value>_t``)."""
        if id(value) not in self._type:
            if not isinstance(value.type.dtype, FixedType):
                raise UnsupportedError(f"value {value.name!r} has type {value.type.dtype}: the xilinx target needs a "
                                       "quantized graph")
            name = self.names.fresh(f"{identifier(value.name)}_t")
            self._type[id(value)] = name
            self.typedefs.append((name, fixed(value.type.dtype)))
        return self._type[id(value)]

    def word_name(self, value: Value) -> str:
        if id(value) not in self._word:
            c, _ = words(value.type.shape)
            name = self.names.fresh(f"{identifier(value.name)}_word_t")
            self._word[id(value)] = name
            self.typedefs.append((name, f"fpgac::word<{self.type_name(value)}, {c}>"))
        return self._word[id(value)]

    def layer_name(self, node: Node, role: str) -> str:
        return self.names.fresh(f"{identifier(node.name)}_{role}")

    def use(self, header: str) -> None:
        if header not in self.headers:
            self.headers.append(header)

    def rom(self, node: Node, role: str, ctype: str, values: np.ndarray | list[int], note: str = "") -> str:
        """A ROM of integer constants for ``node``, in ``weights/<node>.h``; returns its name."""
        name = self.layer_name(node, role)
        if node.name not in self._stems:
            self._stems[node.name] = self._files.fresh(identifier(node.name))
            self.roms[self._stems[node.name]] = []
        self.roms[self._stems[node.name]].append((f"// {note}\n" if note else "") + rom(ctype, name, values))
        return name

    def config(self, struct: Struct) -> str:
        self.configs.append(struct.text())
        return struct.name

    def table(self, node: Node, role: str, table: Table) -> tuple[str, str]:
        """A lookup table: its TABLE config (see common.h) and its values ROM."""
        out = table.out_type
        value_t = fixed_rom_type(out)
        values = self.rom(node, f"{role}_values", value_t, table.values,
                          f"{role}: {table!r}, shift {table.shift}, offset {table.offset}; mantissas of {out}")
        struct = Struct(self.layer_name(node, f"{role}_table"), comment=f"{node.name}: {role} table")
        struct.const("size", table.size).const("shift", table.shift, "int")
        struct.const("offset", table.offset, "long long").const("start", table.offset << table.shift, "long long")
        struct.const("interpolate", bool(table.interpolate), "bool").const("out_width", out.width, "int")
        struct.type("value_t", value_t)
        return self.config(struct), values

    # -- building ------------------------------------------------------------------------------

    def _build(self) -> None:
        graph = self.graph
        uses = self._use_count
        for node in graph.nodes:
            for v in node.inputs:
                if v is not None and not v.is_const:
                    uses[id(v)] = uses.get(id(v), 0) + 1
        for v in graph.outputs:
            uses[id(v)] = uses.get(id(v), 0) + 1
        direct = {id(v) for v in graph.outputs if uses[id(v)] == 1 and v not in graph.inputs}

        for value in graph.inputs:
            name = self.names.fresh(identifier(value.name))
            self.ports_in.append((value, name))
            self._ident[id(value)] = name
            self.type_name(value)
        for value in graph.outputs:
            if value.is_const:
                raise UnsupportedError(f"output {value.name!r} is a constant: the xilinx target needs computed outputs")
            base = identifier(value.name)
            name = self.names.fresh(base if id(value) in direct else base + "_out")
            self.ports_out.append((value, name))
            if id(value) in direct:
                self._ident[id(value)] = name
            self.type_name(value)
        if self.io == "stream":
            for value, _ in self.ports_in + self.ports_out:
                self.word_name(value)

        self.use("common.h")
        if self.io == "stream":
            self.use("stream.h")
            for value, name in self.ports_in:
                self._fan_out(value, name)
        for node in graph.nodes:
            self._node(node)
        self._copy_outputs(direct)

    def _copy_outputs(self, direct: set[int]) -> None:
        for value, port in self.ports_out:
            if id(value) in direct:
                continue
            t = self.type_name(value)
            if self.io == "stream":
                c, p = words(value.type.shape)
                source = self._take(value)
                self.use("stream.h")
                self.code(f"fpgac::copy_stream<{t}, {t}, {c}, {p}>({source}, {port});")
            else:
                self.use("elementwise.h")
                self.code(f"fpgac::map<fpgac::copy_op, {t}, {t}, {_size(value)}>({self._ident[id(value)]}, {port});")

    def _describe(self, node: Node) -> str:
        shapes = " x ".join(str(list(v.type.shape)) for v in node.inputs if v is not None and not v.is_const)
        what = node.op.value
        if "kind" in node.attrs:
            what += f"({node.attrs['kind'].value})"
        return f"{node.name}: {what} {shapes} -> {' '.join(str(list(v.type.shape)) for v in node.outputs)}"

    def _node(self, node: Node) -> None:
        emit = _PARALLEL.get(node.op)
        if emit is None:
            raise UnsupportedError(f"node {node.name!r} ({node.op.value}): the xilinx target has no kernel for this op")
        for v in node.inputs:
            if v is not None:
                self.type_name(v)
        self.code("", f"// {self._describe(node)}")
        if self.io == "parallel":
            ins = [None if v is None or v.is_const else self._ident[id(v)] for v in node.inputs]
            outs = [self._array(v) for v in node.outputs]
            emit(self, node, ins, outs)
            return
        stream = _STREAM.get(node.op)
        if stream is not None and stream[0](node):
            ins = [None if v is None or v.is_const else self._take(v) for v in node.inputs]
            outs = [self._stream(v) for v in node.outputs]
            stream[1](self, node, ins, outs)
        else:  # no streaming form: words -> array -> array kernel -> words
            ins = []
            data = [i for i, v in enumerate(node.inputs) if v is not None and not v.is_const]
            for i, v in enumerate(node.inputs):
                if i not in data:
                    ins.append(None)
                    continue
                c, p = words(v.type.shape)
                buf = self.names.fresh(f"{identifier(node.name)}_in{i if len(data) > 1 else ''}")
                self.code(f"{self.type_name(v)} {buf}[{_size(v)}];", *self._partition(buf))
                self.code(f"fpgac::read_stream<{self.type_name(v)}, {c}, {p}>({self._take(v)}, {buf});")
                ins.append(buf)
            outs = []
            for k, v in enumerate(node.outputs):
                buf = self.names.fresh(f"{identifier(node.name)}_out{k if len(node.outputs) > 1 else ''}")
                self.code(f"{self.type_name(v)} {buf}[{_size(v)}];", *self._partition(buf))
                outs.append(buf)
            emit(self, node, ins, outs)
            for v, buf in zip(node.outputs, outs):
                if self._use_count.get(id(v), 0) == 0:
                    continue  # an output of a recurrent layer nothing reads
                c, p = words(v.type.shape)
                self.code(f"fpgac::write_stream<{self.type_name(v)}, {c}, {p}>({buf}, {self._stream(v)});")

    def _partition(self, name: str) -> list[str]:
        if self.io == "parallel":
            return [f"#pragma HLS ARRAY_PARTITION variable={name} complete dim=0"]
        return []

    def _array(self, value: Value) -> str:
        """The array a node writes ``value`` into (io_parallel): an output port, or a new local."""
        if id(value) in self._ident:
            return self._ident[id(value)]
        name = self.names.fresh(identifier(value.name))
        self._ident[id(value)] = name
        self.code(f"{self.type_name(value)} {name}[{_size(value)}];", *self._partition(name))
        return name

    def _stream(self, value: Value) -> str:
        """The stream a node writes ``value`` into (io_stream), with its fan-out to several readers."""
        if id(value) in self._ident:  # an output port
            return self._ident[id(value)]
        name = self.names.fresh(identifier(value.name))
        _, p = words(value.type.shape)
        self.code(f'hls::stream<{self.word_name(value)}> {name}("{name}");',
                  f"#pragma HLS STREAM variable={name} depth={max(p, 1)}")
        self._fan_out(value, name)
        return name

    def _fan_out(self, value: Value, name: str) -> None:
        """Readers of a stream value: the stream itself, or K copies when K > 1 read it."""
        k = self._use_count.get(id(value), 0)
        if k <= 1:
            self._uses[id(value)] = [name]
            return
        copies = self.names.fresh(f"{name}_copies")
        _, p = words(value.type.shape)
        self.code(f"hls::stream<{self.word_name(value)}> {copies}[{k}];",
                  f"#pragma HLS STREAM variable={copies} depth={max(p, 1)}")
        self._uses[id(value)] = [f"{copies}[{i}]" for i in range(k)]
        # the fan-out itself runs once the producer is emitted: queued until the first reader
        self._fanout_calls.append((value, name, copies, k))
        if value in self.graph.inputs:
            self._flush_fanout()

    def _flush_fanout(self) -> None:
        for value, name, copies, k in self._fanout_calls:
            c, p = words(value.type.shape)
            self.code(f"fpgac::fanout<{self.type_name(value)}, {c}, {p}, {k}>({name}, {copies});")
        self._fanout_calls = []

    def _take(self, value: Value) -> str:
        """The next unused stream copy of ``value`` for a reader."""
        self._flush_fanout()
        remaining = self._uses.get(id(value))
        if not remaining:
            raise UnsupportedError(f"value {value.name!r} is read more often than the design expects")
        return remaining.pop(0)


# -- emit functions: (design, node, input arrays or streams, output arrays or streams) -----------------

Emit = Callable[[Design, Node, list, list], None]


def _mac_config(d: Design, node: Node, role: str, w: np.ndarray, weight: Value, n_in: int, n_out: int,
                accum: str, reuse: int) -> tuple[str, list[str]]:
    """The non-zero entries of ``w[n_in, n_out]`` (mantissas) as ROMs, and their mac config (dense.h)."""
    rows, cols = np.nonzero(w)  # input-major: consecutive entries feed different outputs
    values = w[rows, cols]
    nnz = len(values)
    w_t = _ftype(weight)
    d.weight_count += w.size
    d.nonzero_count += nnz
    note = f"{node.name} {role}: {nnz} of {w.size} weights non-zero, mantissas of {w_t}"
    w_rom_t, in_t, out_t = fixed_rom_type(w_t), index_type(n_in), index_type(n_out)
    roms = [
        d.rom(node, role, w_rom_t, values, note),
        d.rom(node, f"{role}i", in_t, rows, f"{node.name} {role}: input index of each weight"),
        d.rom(node, f"{role}o", out_t, cols, f"{node.name} {role}: output index of each weight"),
    ]
    struct = Struct(d.layer_name(node, f"{role}_config"), comment=f"{node.name}: {role} {n_in} -> {n_out}, {nnz} of "
                    f"{w.size} weights non-zero")
    struct.const("n_in", n_in).const("n_out", n_out).const("n_nonzero", nnz).const("n_rom", max(nnz, 1))
    struct.const("reuse", max(1, min(reuse, nnz)))
    struct.type("accum_t", accum).type("weight_t", d.type_name(weight)).type("weight_rom_t", w_rom_t)
    struct.type("in_index_t", in_t).type("out_index_t", out_t)
    return d.config(struct), roms


def _bias(d: Design, node: Node, index: int, n: int, accum: FixedType) -> tuple[str, str, str]:
    """(bias type, ROM element type, ROM name) of an optional bias input; zeros of the accumulator type without one."""
    value = node.input(index)
    if value is None:
        t, data = accum, np.zeros(n, dtype=np.int64)
    else:
        t, data = _ftype(value), value.data
    rom_t = fixed_rom_type(t)
    name = fixed(t) if value is None else d.type_name(value)
    return name, rom_t, d.rom(node, "b", rom_t, data, f"{node.name} bias: mantissas of {t}")


def _emit_dense(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("dense.h")
    x, w = node.inputs[0], node.inputs[1]
    n_in, n_out = w.type.shape
    rows = _size(x) // n_in
    out_t = d.type_name(node.output)
    mac, roms = _mac_config(d, node, "w", w.data, w, n_in, n_out, out_t, d.reuse)
    bias_t, bias_rom_t, bias = _bias(d, node, 2, n_out, _ftype(node.output))
    struct = Struct(d.layer_name(node, "config"), comment=f"{node.name}: Dense")
    struct.const("n_rows", rows)
    struct.type("bias_t", bias_t).type("bias_rom_t", bias_rom_t)
    name = _derive(d, struct, mac)
    d.code(f"fpgac::dense<{d.type_name(x)}, {out_t}, {name}>({ins[0]}, {outs[0]}, {', '.join(roms)}, {bias});")


def _derive(d: Design, struct: Struct, base: str) -> str:
    """A config struct extending another (the mac config): ``struct X : base {...}``."""
    text = struct.text().replace(f"struct {struct.name} {{", f"struct {struct.name} : {base} {{", 1)
    d.configs.append(text)
    return struct.name


def _geometry(node: Node, kernel: tuple[int, ...], in_shape: tuple[int, ...], out_shape: tuple[int, ...],
              ends: tuple[int, ...] | None = None) -> Struct:
    """conv.h / pool.h geometry of a 1D or 2D window op; a 1D one is 2D with height 1."""
    a = node.attrs
    nd = len(kernel)
    begins = tuple(a["pads"][:nd])
    ends = tuple(a["pads"][nd:]) if ends is None else ends
    strides, dilations = tuple(a["strides"]), tuple(a["dilations"])
    if nd == 1:
        kernel, strides, dilations = (1, *kernel), (1, *strides), (1, *dilations)
        begins, ends = (0, *begins), (0, *ends)
        in_shape, out_shape = (in_shape[0], 1, *in_shape[1:]), (out_shape[0], 1, *out_shape[1:])
    s = Struct("")
    s.const("n_chan", in_shape[0]).const("in_height", in_shape[1]).const("in_width", in_shape[2])
    s.const("out_height", out_shape[1]).const("out_width", out_shape[2])
    s.const("filt_height", kernel[0]).const("filt_width", kernel[1])
    s.const("stride_height", strides[0]).const("stride_width", strides[1])
    s.const("dilation_height", dilations[0]).const("dilation_width", dilations[1])
    s.const("pad_top", begins[0]).const("pad_left", begins[1]).const("pad_bottom", ends[0]).const("pad_right", ends[1])
    return s


def _conv_parts(d: Design, node: Node) -> tuple[str, list[str], str]:
    d.use("conv.h")
    x, w = node.inputs[0], node.inputs[1]
    m, cg, *kernel = w.type.shape
    groups = node.attrs["groups"]
    c = x.type.shape[0]
    taps = math.prod(kernel)
    # the weight as a matrix from the receptive field (c, kh, kw) to the output channels
    matrix = np.zeros((c * taps, m), dtype=np.int64)
    per_group = m // groups
    data = w.data.reshape(m, cg, taps)
    for f in range(m):
        g = f // per_group
        matrix[(g * cg) * taps:(g * cg + cg) * taps, f] = data[f].reshape(-1)
    out_t = d.type_name(node.output)
    mac, roms = _mac_config(d, node, "w", matrix, w, c * taps, m, out_t, d.reuse)
    bias_t, bias_rom_t, bias = _bias(d, node, 2, m, _ftype(node.output))
    struct = _geometry(node, tuple(kernel), x.type.shape, node.output.type.shape)
    struct.name = d.layer_name(node, "config")
    struct.comment = f"{node.name}: Conv, {groups} group(s)"
    struct.const("n_filt", m)
    struct.type("bias_t", bias_t).type("bias_rom_t", bias_rom_t)
    return _derive(d, struct, mac), roms, bias


def _emit_conv(d: Design, node: Node, ins: list, outs: list) -> None:
    name, roms, bias = _conv_parts(d, node)
    x = node.inputs[0]
    d.code(f"fpgac::conv_2d<{d.type_name(x)}, {d.type_name(node.output)}, {name}>({ins[0]}, {outs[0]}, "
           f"{', '.join(roms)}, {bias});")


def _emit_conv_stream(d: Design, node: Node, ins: list, outs: list) -> None:
    name, roms, bias = _conv_parts(d, node)
    x = node.inputs[0]
    d.code(f"fpgac::conv_2d_stream<{d.type_name(x)}, {d.type_name(node.output)}, {name}>({ins[0]}, {outs[0]}, "
           f"{', '.join(roms)}, {bias});")


def _reciprocal(count: np.ndarray, bits: int) -> np.ndarray:
    """``round(2**bits / count)``, ties up: the averaging pools' multiplier (as the golden model)."""
    count = np.maximum(np.asarray(count, dtype=np.int64), 1)
    return ((np.int64(1) << (bits + 1)) // count + 1) >> 1


def _window_counts(size: int, k: int, stride: int, dilation: int, begin: int, end: int, out: int,
                   include_pad: bool) -> np.ndarray:
    """How many taps of each window along one axis count for an average (ONNX's rules)."""
    lo, hi = (0, size + begin + end) if include_pad else (begin, begin + size)
    starts = np.arange(out) * stride
    taps = starts[:, None] + dilation * np.arange(k)[None, :]
    return ((taps >= lo) & (taps < hi)).sum(axis=1)


def _sum_type(x: FixedType, taps: int) -> FixedType:
    grow = max(taps - 1, 0).bit_length()
    return FixedType(x.width + grow, x.int_bits + grow, x.signed)


def _pool_parts(d: Design, node: Node) -> tuple[str, str]:
    d.use("pool.h")
    x = node.inputs[0]
    a = node.attrs
    kernel = tuple(a["kernel"])
    nd = len(kernel)
    size, out = x.type.shape[1:], node.output.type.shape[1:]
    begins, ends = a["pads"][:nd], a["pads"][nd:]
    # ceil_mode: the end padding grows until the last window fits (never counted by count_include_pad)
    ext = tuple(e + max(0, (o - 1) * s + dl * (k - 1) + 1 - (n + b + e))
                for o, s, dl, k, n, b, e in zip(out, a["strides"], a["dilations"], kernel, size, begins, ends))
    struct = _geometry(node, kernel, x.type.shape, node.output.type.shape, ext)
    struct.name = d.layer_name(node, "config")
    avg = a["kind"] is PoolKind.AVG
    struct.comment = f"{node.name}: {'average' if avg else 'max'} pooling"
    struct.const("reuse", d.reuse).const("avg", avg, "bool")
    xt = _ftype(x)
    taps = math.prod(kernel)
    if avg:
        bits = a["reciprocal_bits"]
        counts = [_window_counts(n, k, s, dl, b, e, o, a["count_include_pad"])
                  for n, k, s, dl, b, e, o in zip(size, kernel, a["strides"], a["dilations"], begins, ends, out)]
        count = counts[0] if nd == 1 else np.outer(counts[0], counts[1]).ravel()
        recip = _reciprocal(count, bits)
        recip_t = FixedType(bits + 1, 1, False)
        recip_rom_t = rom_type(0, int(recip.max()))
        rom_name = d.rom(node, "recip", recip_rom_t, recip,
                         f"{node.name}: round(2^{bits} / taps counted) per output position, mantissas of {recip_t}")
        struct.type("sum_t", fixed(_sum_type(xt, taps))).type("recip_t", fixed(recip_t))
    else:
        recip_rom_t = "uint8_t"
        rom_name = d.rom(node, "recip", recip_rom_t, [0], f"{node.name}: (max pooling divides nothing)")
        struct.type("sum_t", fixed(_sum_type(xt, taps))).type("recip_t", "ap_ufixed<1, 1>")
    struct.type("recip_rom_t", recip_rom_t)
    return d.config(struct), rom_name


def _emit_pool(d: Design, node: Node, ins: list, outs: list) -> None:
    name, recip = _pool_parts(d, node)
    d.code(f"fpgac::pool_2d<{d.type_name(node.inputs[0])}, {d.type_name(node.output)}, {name}>({ins[0]}, {outs[0]}, "
           f"{recip});")


def _emit_pool_stream(d: Design, node: Node, ins: list, outs: list) -> None:
    name, recip = _pool_parts(d, node)
    d.code(f"fpgac::pool_2d_stream<{d.type_name(node.inputs[0])}, {d.type_name(node.output)}, {name}>({ins[0]}, "
           f"{outs[0]}, {recip});")


def _global_pool_config(d: Design, node: Node) -> str:
    d.use("pool.h")
    x = node.inputs[0]
    c, p = words(x.type.shape)
    avg = node.attrs["kind"] is PoolKind.AVG
    struct = Struct(d.layer_name(node, "config"), comment=f"{node.name}: global {'average' if avg else 'max'} pooling")
    struct.const("n_chan", c).const("n_positions", p).const("avg", avg, "bool")
    struct.type("sum_t", fixed(_sum_type(_ftype(x), p)))
    if avg:
        bits = node.attrs["reciprocal_bits"]
        struct.const("recip", int(_reciprocal(np.int64(p), bits)), "long long")
        struct.type("recip_t", fixed(FixedType(bits + 1, 1, False)))
    else:
        struct.const("recip", 0, "long long").type("recip_t", "ap_ufixed<1, 1>")
    return d.config(struct)


def _emit_global_pool(d: Design, node: Node, ins: list, outs: list) -> None:
    name = _global_pool_config(d, node)
    d.code(f"fpgac::global_pool<{d.type_name(node.inputs[0])}, {d.type_name(node.output)}, {name}>({ins[0]}, "
           f"{outs[0]});")


def _emit_global_pool_stream(d: Design, node: Node, ins: list, outs: list) -> None:
    name = _global_pool_config(d, node)
    d.code(f"fpgac::global_pool_stream<{d.type_name(node.inputs[0])}, {d.type_name(node.output)}, {name}>({ins[0]}, "
           f"{outs[0]});")


def _clip_bounds(node: Node) -> tuple[int, int]:
    """CLIP's bounds as mantissas of the input type (as the golden model computes them)."""
    t = _ftype(node.inputs[0])
    lo, hi = node.attrs["min"], node.attrs["max"]
    lo_m = t.min_mantissa if lo == -np.inf else max(t.min_mantissa, int(np.ceil(lo / t.lsb)))
    hi_m = t.max_mantissa if hi == np.inf else min(t.max_mantissa, int(np.floor(hi / t.lsb)))
    return lo_m, hi_m


def _elementwise_op(node: Node) -> str:
    """The elementwise.h op struct of a Quant or a one-input Activation."""
    if node.op is Op.QUANT:
        return "fpgac::requantize_op"
    kind = node.attrs["kind"]
    if kind is Act.RELU:
        return "fpgac::relu_op"
    if kind is Act.ABS:
        return "fpgac::abs_op"
    if kind is Act.CLIP:
        lo, hi = _clip_bounds(node)
        return f"fpgac::clip_op<{int_literal(lo)}, {int_literal(hi)}>"
    raise UnsupportedError(f"node {node.name!r} (Activation {kind.value}): no exact fixed-point form; quantization "
                           "turns it into a Lookup")


def _is_mappable(node: Node) -> bool:
    return node.op is Op.QUANT or node.attrs["kind"] in (Act.RELU, Act.ABS, Act.CLIP)


def _sizes(x: Value, stream: bool) -> str:
    """An element-wise kernel's size arguments: ``N`` elements, or ``C, P`` words of a stream."""
    return ", ".join(map(str, words(x.type.shape))) if stream else str(_size(x))


def _emit_map(d: Design, node: Node, ins: list, outs: list, stream: bool = False) -> None:
    if not stream and node.op is Op.ACTIVATION and node.attrs["kind"] is Act.PRELU:
        return _emit_prelu(d, node, ins, outs)
    d.use("elementwise.h")
    op = _elementwise_op(node)
    x = node.inputs[0]
    kernel = "map_stream" if stream else "map"
    d.code(f"fpgac::{kernel}<{op}, {d.type_name(x)}, {d.type_name(node.output)}, {_sizes(x, stream)}>"
           f"({ins[0]}, {outs[0]});")


def _broadcast(value: Value, shape: tuple[int, ...]) -> np.ndarray:
    """A constant's mantissas broadcast to ``shape`` (trailing axes aligned), flattened."""
    return np.broadcast_to(value.data, shape).ravel()


def _const_rom(d: Design, node: Node, role: str, value: Value, shape: tuple[int, ...]) -> str:
    t = _ftype(value)
    return d.rom(node, role, fixed_rom_type(t), _broadcast(value, shape),
                 f"{node.name} {role} ({value.name}, broadcast to {list(shape)}): mantissas of {t}")


def _emit_prelu(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("elementwise.h")
    x, slope = node.inputs[0], node.inputs[1]
    if not slope.is_const:
        raise UnsupportedError(f"node {node.name!r} (PReLU): a run-time slope is not supported; give it as a constant")
    rom_name = _const_rom(d, node, "slope", slope, x.type.shape)
    d.code(f"fpgac::prelu<{d.type_name(x)}, {d.type_name(slope)}, {d.type_name(node.output)}, {_size(x)}>("
           f"{ins[0]}, {outs[0]}, {rom_name});")


def _emit_lookup(d: Design, node: Node, ins: list, outs: list, stream: bool = False) -> None:
    d.use("elementwise.h")
    table, values = d.table(node, "table", node.attrs["table"])
    x = node.inputs[0]
    kernel = "lookup_stream" if stream else "lookup_map"
    d.code(f"fpgac::{kernel}<{table}, {d.type_name(x)}, {d.type_name(node.output)}, {_sizes(x, stream)}>"
           f"({ins[0]}, {outs[0]}, {values});")


def _emit_softmax(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("softmax.h")
    x = node.inputs[0]
    xt = _ftype(x)
    shape, axis = x.type.shape, node.attrs["axis"]
    log = bool(node.attrs["log"])
    exp = node.attrs["exp"]
    inv = node.attrs["log_table"] if log else node.attrs["reciprocal"]
    z = FixedType(xt.width + 1, xt.int_bits + 1, True)
    if exp.in_type.frac_bits != z.frac_bits or inv.in_type.frac_bits != exp.out_type.frac_bits:
        raise UnsupportedError(f"node {node.name!r} (Softmax): tables {exp!r}, {inv!r} do not fit its input {xt}")
    exp_cfg, exp_values = d.table(node, "exp", exp)
    inv_cfg, inv_values = d.table(node, "log" if log else "reciprocal", inv)
    struct = Struct(d.layer_name(node, "config"),
                    comment=f"{node.name}: {'log-' if log else ''}softmax along axis {axis}")
    struct.const("n_outer", math.prod(shape[:axis])).const("n", shape[axis])
    struct.const("n_inner", math.prod(shape[axis + 1:]))
    struct.const("log", log, "bool")
    struct.type("z_t", fixed(z)).type("exp_t", fixed(exp.out_type)).type("sum_t", fixed(inv.in_type))
    struct.type("inv_t", fixed(inv.out_type)).type("exp_table", exp_cfg).type("inv_table", inv_cfg)
    name = d.config(struct)
    d.code(f"fpgac::softmax<{d.type_name(x)}, {d.type_name(node.output)}, {name}>({ins[0]}, {outs[0]}, {exp_values}, "
           f"{inv_values});")


_BINARY_OPS = {Op.ADD: "add_op", Op.SUB: "sub_op", Op.MUL: "mul_op", Op.MAX: "max_op", Op.MIN: "min_op"}
_COMMUTATIVE = {Op.ADD, Op.MUL, Op.MAX, Op.MIN}


def _gathered(d: Design, node: Node, index: int, array: str, shape: tuple[int, ...]) -> str:
    """A run-time operand broadcast to the output ``shape``: itself, or a gathered copy."""
    v = node.inputs[index]
    if v.type.shape == shape:
        return array
    d.use("shape.h")
    src = np.arange(_size(v)).reshape(v.type.shape)
    idx = np.broadcast_to(src, shape).ravel()
    rom_name = d.rom(node, f"index{index}", rom_type(-1, _size(v)), idx, f"{node.name}: broadcast of input {index}")
    name = d.names.fresh(f"{identifier(node.name)}_in{index}_broadcast")
    t = d.type_name(v)
    d.code(f"{t} {name}[{math.prod(shape)}];", *d._partition(name))
    d.code(f"fpgac::gather<{t}, {t}, {math.prod(shape)}, 0>({array}, {name}, {rom_name});")
    return name


def _emit_binary(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("elementwise.h")
    shape = node.output.type.shape
    n = math.prod(shape)
    out_t = d.type_name(node.output)
    a, b = node.inputs
    op = f"fpgac::{_BINARY_OPS[node.op]}"
    if a.is_const and b.is_const:
        raise UnsupportedError(f"node {node.name!r} ({node.op.value}): both inputs are constants (fold them first)")
    if a.is_const or b.is_const:
        k = 0 if b.is_const else 1  # the run-time operand
        const = node.inputs[1 - k]
        if k == 1 and node.op not in _COMMUTATIVE:  # const - x  =  -(x - const): use a reversed op
            op = "fpgac::rsub_op"
        x = _gathered(d, node, k, ins[k], shape)
        rom_name = _const_rom(d, node, "const", const, shape)
        d.code(f"fpgac::binary_const<{op}, {d.type_name(node.inputs[k])}, {d.type_name(const)}, {out_t}, {n}>("
               f"{x}, {rom_name}, {outs[0]});")
        return
    xa, xb = _gathered(d, node, 0, ins[0], shape), _gathered(d, node, 1, ins[1], shape)
    d.code(f"fpgac::binary<{op}, {d.type_name(a)}, {d.type_name(b)}, {out_t}, {n}>({xa}, {xb}, {outs[0]});")


def _same_shape_runtime(node: Node) -> bool:
    return all(not v.is_const and v.type.shape == node.output.type.shape for v in node.inputs)


def _emit_binary_stream(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("elementwise.h")
    a, b = node.inputs
    c, p = words(node.output.type.shape)
    d.code(f"fpgac::binary_stream<fpgac::{_BINARY_OPS[node.op]}, {d.type_name(a)}, {d.type_name(b)}, "
           f"{d.type_name(node.output)}, {c}, {p}>({ins[0]}, {ins[1]}, {outs[0]});")


def _emit_scale_shift(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("elementwise.h")
    x, scale, shift = node.inputs
    shape = x.type.shape
    s, t = _const_rom(d, node, "scale", scale, shape), _const_rom(d, node, "shift", shift, shape)
    d.code(f"fpgac::scale_shift<{d.type_name(x)}, {d.type_name(scale)}, {d.type_name(shift)}, "
           f"{d.type_name(node.output)}, {_size(x)}>({ins[0]}, {outs[0]}, {s}, {t});")


def _emit_concat(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("shape.h")
    axis = node.attrs["axis"]
    out_shape = node.output.type.shape
    outer, inner = math.prod(out_shape[:axis]), math.prod(out_shape[axis + 1:])
    offset = 0
    for v, array in zip(node.inputs, ins):
        if v.is_const:
            raise UnsupportedError(f"node {node.name!r} (Concat): constant input {v.name!r} is not supported")
        n = v.type.shape[axis]
        d.code(f"fpgac::concat_part<{d.type_name(v)}, {d.type_name(node.output)}, {outer}, {n}, {offset}, "
               f"{out_shape[axis]}, {inner}>({array}, {outs[0]});")
        offset += n


def _emit_reshape(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("elementwise.h")
    x = node.inputs[0]
    d.code(f"fpgac::map<fpgac::copy_op, {d.type_name(x)}, {d.type_name(node.output)}, {_size(x)}>({ins[0]}, "
           f"{outs[0]});")


def _same_words(node: Node) -> bool:
    return words(node.inputs[0].type.shape) == words(node.output.type.shape)


def _emit_reshape_stream(d: Design, node: Node, ins: list, outs: list) -> None:
    x = node.inputs[0]
    c, p = words(x.type.shape)
    d.code(f"fpgac::copy_stream<{d.type_name(x)}, {d.type_name(node.output)}, {c}, {p}>({ins[0]}, {outs[0]});")


def _gather_index(node: Node) -> tuple[np.ndarray, int]:
    """Transpose/Slice/Pad as an index table (output element -> input element, -1 for padding)."""
    x = node.inputs[0]
    src = np.arange(_size(x)).reshape(x.type.shape)
    a = node.attrs
    if node.op is Op.TRANSPOSE:
        return src.transpose(a["perm"]).ravel(), 0
    if node.op is Op.SLICE:
        index = tuple(slice(s, e if e >= 0 else None, t) for s, e, t in zip(a["starts"], a["ends"], a["steps"]))
        return src[index].ravel(), 0
    r = len(x.type.shape)
    widths = [(a["pads"][i], a["pads"][r + i]) for i in range(r)]
    t = _ftype(node.output)
    return np.pad(src, widths, constant_values=-1).ravel(), int(round(a["value"] / t.lsb))


def _emit_gather(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("shape.h")
    x = node.inputs[0]
    index, pad = _gather_index(node)
    rom_name = d.rom(node, "index", rom_type(-1, _size(x)), index, f"{node.name}: input element of each output element"
                     + (" (-1: padding)" if node.op is Op.PAD else ""))
    d.code(f"fpgac::gather<{d.type_name(x)}, {d.type_name(node.output)}, {len(index)}, {int_literal(pad)}>({ins[0]}, "
           f"{outs[0]}, {rom_name});")


def _emit_argmax(d: Design, node: Node, ins: list, outs: list) -> None:
    d.use("shape.h")
    x = node.inputs[0]
    shape, axis = x.type.shape, node.attrs["axis"]
    last = "true" if node.attrs["select_last_index"] else "false"
    d.code(f"fpgac::argmax<{d.type_name(x)}, {d.type_name(node.output)}, {math.prod(shape[:axis])}, {shape[axis]}, "
           f"{math.prod(shape[axis + 1:])}, {last}>({ins[0]}, {outs[0]});")


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
    a = node.attrs
    hidden = a["hidden_size"]
    x, w, r = node.inputs[0], node.inputs[1], node.inputs[2]
    steps, features = x.type.shape
    acc_t, gate_t, state_t = a["accum_type"], a["gate_type"], a["state_type"]
    accum = fixed(acc_t)
    struct = Struct(d.layer_name(node, "config"), comment=f"{node.name}: {node.op.value}, {steps} steps, "
                    f"{features} features, hidden {hidden}")
    struct.const("n_steps", steps).const("n_in", features).const("n_hidden", hidden)
    w_cfg, w_roms = _mac_config(d, node, "w", w.data.T, w, features, gates * hidden, accum, d.reuse)
    lbr = node.op is Op.GRU and a["linear_before_reset"]
    r_rows = gates * hidden if node.op is Op.LSTM or lbr else 2 * hidden
    r_cfg, r_roms = _mac_config(d, node, "r", r.data[:r_rows].T, r, hidden, r_rows, accum, d.reuse)
    roms = w_roms + r_roms
    if node.op is Op.GRU:
        rn = r.data[2 * hidden:] if not lbr else np.zeros((0, hidden), dtype=np.int64)
        rn_cfg, rn_roms = _mac_config(d, node, "rn", rn.T, r, hidden, hidden, accum, d.reuse)
        struct.type("rn_config", rn_cfg)
        roms += rn_roms
    struct.type("w_config", w_cfg).type("r_config", r_cfg)
    # biases at the accumulator's fractional bits: Wb and Rb (summed for LSTM, separate for GRU)
    bias = node.input(3)
    halves = np.zeros((2, gates * hidden), dtype=np.int64)
    if bias is not None:
        halves = np.left_shift(bias.data.reshape(2, gates * hidden).astype(np.int64),
                               acc_t.frac_bits - _ftype(bias).frac_bits)
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
    states = [("h0", 4, state_t, "state")] + ([("c0", 5, a["cell_type"], "cell")] if node.op is Op.LSTM else [])
    for role, index, t, kind in states:
        v = node.input(index)
        data = np.zeros(hidden, dtype=np.int64) if v is None else v.data
        struct.type(f"{kind}_rom_t", fixed_rom_type(t))
        roms.append(d.rom(node, role, fixed_rom_type(t), data, f"{node.name}: initial {kind}, mantissas of {t}"))
    struct.type("accum_t", accum).type("gate_t", fixed(gate_t)).type("state_t", d.type_name(node.outputs[0]))
    sigmoid, tanh = a["sigmoid"], a["tanh"]
    struct.type("sig_t", fixed(_holder(sigmoid.out_type))).type("tanh_t", fixed(_holder(tanh.out_type)))
    tables = [("sigmoid", sigmoid), ("tanh", tanh)]
    if node.op is Op.LSTM:
        struct.type("cell_t", d.type_name(node.outputs[2]))
        struct.type("tanh_cell_t", fixed(_holder(a["tanh_cell"].out_type)))
        tables.append(("tanh_cell", a["tanh_cell"]))
    else:
        struct.const("linear_before_reset", bool(lbr), "bool")
    for role, table in tables:
        cfg, values = d.table(node, role, table)
        struct.type(f"{role}_table", cfg)
        roms.append(values)
    return struct, roms


def _emit_recurrent(d: Design, node: Node, ins: list, outs: list) -> None:
    """fpgac::lstm (4 gates) or fpgac::gru (3 gates)."""
    kernel, gates = ("lstm", 4) if node.op is Op.LSTM else ("gru", 3)
    struct, roms = _recurrent_parts(d, node, gates)
    name = d.config(struct)
    d.code(f"fpgac::{kernel}<{d.type_name(node.inputs[0])}, {name}>({ins[0]}, {', '.join(outs)},")
    with d.code.indent():
        d.code(f"{', '.join(roms)});")


#: IR op -> emit function of its io_parallel (array) form
_PARALLEL: dict[Op, Emit] = {
    Op.DENSE: _emit_dense,
    Op.CONV: _emit_conv,
    Op.POOL: _emit_pool,
    Op.GLOBAL_POOL: _emit_global_pool,
    Op.ACTIVATION: _emit_map,
    Op.QUANT: _emit_map,
    Op.LOOKUP: _emit_lookup,
    Op.SOFTMAX: _emit_softmax,
    Op.SCALE_SHIFT: _emit_scale_shift,
    Op.ADD: _emit_binary,
    Op.SUB: _emit_binary,
    Op.MUL: _emit_binary,
    Op.MAX: _emit_binary,
    Op.MIN: _emit_binary,
    Op.CONCAT: _emit_concat,
    Op.RESHAPE: _emit_reshape,
    Op.TRANSPOSE: _emit_gather,
    Op.SLICE: _emit_gather,
    Op.PAD: _emit_gather,
    Op.ARGMAX: _emit_argmax,
    Op.LSTM: _emit_recurrent,
    Op.GRU: _emit_recurrent,
}

#: IR op -> (does this node have a streaming form, its emit function); other nodes are wrapped
_STREAM: dict[Op, tuple[Callable[[Node], bool], Emit]] = {
    Op.CONV: (lambda node: True, _emit_conv_stream),
    Op.POOL: (lambda node: True, _emit_pool_stream),
    Op.GLOBAL_POOL: (lambda node: True, _emit_global_pool_stream),
    Op.ACTIVATION: (_is_mappable, partial(_emit_map, stream=True)),
    Op.QUANT: (lambda node: True, partial(_emit_map, stream=True)),
    Op.LOOKUP: (lambda node: True, partial(_emit_lookup, stream=True)),
    Op.RESHAPE: (_same_words, _emit_reshape_stream),
    **{op: (_same_shape_runtime, _emit_binary_stream) for op in _BINARY_OPS},
}

#: which ops each io mode streams natively (for the README and the manifest)
STREAMED = sorted(op.value for op in _STREAM)
SUPPORTED = sorted(op.value for op in _PARALLEL)
