"""The HLS design of a quantized graph: kernel calls with the model's types, configs and ROMs.

Python emits only what depends on the model (types, configuration structs, constant ROMs and the
top function's calls); the arithmetic is in the hand-written kernel headers of ``include/``. Each
IR op maps to one emit function (:data:`.emit.PARALLEL`); ops with a streaming form also have one in
:data:`.emit.STREAM` (the others are wrapped: their input words are read into an array, the array kernel
runs, and the result is written back as words).

Layout: every tensor is its per-sample IR shape, channels-first, flattened row-major. In io_stream
designs a ``[C, *spatial]`` tensor is ``prod(spatial)`` words of ``C`` values (a vector ``[N]`` is
one word of ``N``); see ``include/stream.h``.

Constants are ROMs of integer mantissas; a weight matrix is the list of its non-zero entries (value,
input index, output index), so a zero weight, pruned or rounded away, appears nowhere.
"""

from __future__ import annotations

import enum

import numpy as np

from fpgac.errors import UnsupportedError
from fpgac.ir import FixedType, Graph, Node, Value
from fpgac.ir.tables import Table

from ..codegen import identifier
from .cpp import Code, Namer, Struct, fixed, fixed_rom_type, rom, words
from .emit import PARALLEL, REFUSED, STREAM, STREAMED, SUPPORTED
from .emit.common import size

__all__ = ["Design", "IO_MODES", "IOMode", "STREAMED", "SUPPORTED", "words"]


class IOMode(enum.Enum):
    """How the top function moves data: arrays, fully partitioned (parallel), or ``hls::stream`` with dataflow."""

    PARALLEL = "parallel"
    STREAM = "stream"


IO_MODES = tuple(m.value for m in IOMode)


class Design:
    """The model as HLS C++: built node by node, then written out by :mod:`.project`."""

    def __init__(self, graph: Graph, io: IOMode | str, reuse: int) -> None:
        self.graph = graph
        self.io = IOMode(io)
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
        if self.io is IOMode.STREAM:
            for value, _ in self.ports_in + self.ports_out:
                self.word_name(value)

        self.use("common.h")
        if self.io is IOMode.STREAM:
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
            if self.io is IOMode.STREAM:
                c, p = words(value.type.shape)
                source = self._take(value)
                self.use("stream.h")
                self.code(f"fpgac::copy_stream<{t}, {t}, {c}, {p}>({source}, {port});")
            else:
                self.use("elementwise.h")
                self.code(f"fpgac::map<fpgac::copy_op, {t}, {t}, {size(value)}>({self._ident[id(value)]}, {port});")

    def _describe(self, node: Node) -> str:
        shapes = " x ".join(str(list(v.type.shape)) for v in node.inputs if v is not None and not v.is_const)
        what = node.op.value
        if "kind" in node.attrs:
            what += f"({node.attrs['kind'].value})"
        return f"{node.name}: {what} {shapes} -> {' '.join(str(list(v.type.shape)) for v in node.outputs)}"

    def _node(self, node: Node) -> None:
        emit = PARALLEL.get(node.op)
        if emit is None:
            why = REFUSED.get(node.op, "the xilinx target has no kernel for this op")
            raise UnsupportedError(f"node {node.name!r} ({node.op.value}): {why}")
        for v in node.inputs:
            if v is not None:
                self.type_name(v)
        self.code("", f"// {self._describe(node)}")
        if self.io is IOMode.PARALLEL:
            ins = [None if v is None or v.is_const else self._ident[id(v)] for v in node.inputs]
            outs = [self._array(v) for v in node.outputs]
            emit(self, node, ins, outs)
            return
        stream = STREAM.get(node.op)
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
                self.code(f"{self.type_name(v)} {buf}[{size(v)}];", *self._partition(buf))
                self.code(f"fpgac::read_stream<{self.type_name(v)}, {c}, {p}>({self._take(v)}, {buf});")
                ins.append(buf)
            outs = []
            for k, v in enumerate(node.outputs):
                buf = self.names.fresh(f"{identifier(node.name)}_out{k if len(node.outputs) > 1 else ''}")
                self.code(f"{self.type_name(v)} {buf}[{size(v)}];", *self._partition(buf))
                outs.append(buf)
            emit(self, node, ins, outs)
            for v, buf in zip(node.outputs, outs):
                if self._use_count.get(id(v), 0) == 0:
                    continue  # an output of a recurrent layer nothing reads
                c, p = words(v.type.shape)
                self.code(f"fpgac::write_stream<{self.type_name(v)}, {c}, {p}>({buf}, {self._stream(v)});")

    def _partition(self, name: str) -> list[str]:
        if self.io is IOMode.PARALLEL:
            return [f"#pragma HLS ARRAY_PARTITION variable={name} complete dim=0"]
        return []

    def _array(self, value: Value) -> str:
        """The array a node writes ``value`` into (io_parallel): an output port, or a new local."""
        if id(value) in self._ident:
            return self._ident[id(value)]
        name = self.names.fresh(identifier(value.name))
        self._ident[id(value)] = name
        self.code(f"{self.type_name(value)} {name}[{size(value)}];", *self._partition(name))
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
