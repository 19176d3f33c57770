"""The Vitis HLS project on disk: firmware, testbench, test data, build script and README.

::

    OUT/
      firmware/<top>.cpp, <top>.h     the top function (what Vitis synthesizes)
      firmware/defines.h              every tensor's ap_fixed type
      firmware/parameters.h           each layer's configuration struct
      firmware/weights/<layer>.h      constant ROMs: non-zero weights, biases, tables (integer mantissas)
      firmware/fpgac/*.h              fpgac's kernel library (a copy of the package's include/)
      <top>_test.cpp                  testbench: runs tb_data, compares bit for bit
      tb_data/tb_input_features.dat   inputs, one vector a line
      tb_data/tb_output_predictions.dat  the golden model's outputs on them
      build_prj.tcl                   vitis_hls -f build_prj.tcl: csim / csynth / cosim / export
      README.md
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpgac import __version__
from fpgac.ir import to_float

from .. import common
from .cpp import Code
from .design import Design, IOMode, words

__all__ = ["Options", "INCLUDE", "write_project", "top_source", "testbench_name"]

#: the kernel library shipped with the package (package data ``include/*``)
INCLUDE = Path(__file__).resolve().parent / "include"

#: the kernel headers, copied into every project; testbench.h is only the testbench's
LIBRARY = ("common.h", "dense.h", "window.h", "conv.h", "pool.h", "elementwise.h", "softmax.h", "shape.h",
           "stream.h", "recurrent.h", "testbench.h")


@dataclass(frozen=True)
class Options:
    """The xilinx target's options (CLI: --io, --part, --clock-period, --reuse)."""

    io: str = "parallel"
    part: str = "xcvu13p-flga2577-2-e"
    clock_period: float = 5.0
    reuse: int = 1


def testbench_name(top: str) -> str:
    return f"{top}_test.cpp"


def _port_params(d: Design) -> list[str]:
    params = []
    for value, name in d.ports_in + d.ports_out:
        if d.io is IOMode.STREAM:
            params.append(f"hls::stream<{d.word_name(value)}> &{name}")
        else:
            params.append(f"{d.type_name(value)} {name}[{math.prod(value.type.shape)}]")
    return params


def _signature(d: Design) -> str:
    return f"void {d.top}({', '.join(_port_params(d))})"


def top_source(d: Design) -> str:
    """``firmware/<top>.cpp``: the top function, the only model-specific code Vitis synthesizes."""
    code = Code()
    mode = ("io_stream: ports and layers are hls::stream, one process per layer under DATAFLOW"
            if d.io is IOMode.STREAM else "io_parallel: ports and tensors are arrays, "
            + ("the whole network one pipeline" if d.reuse == 1 else f"layers under DATAFLOW, reuse {d.reuse}"))
    code(f"// {d.top}: model '{d.graph.name}' as a Vitis HLS top function, written by fpgac.",
         f"// {mode}.",
         "// Kernels: firmware/fpgac/*.h; types: defines.h; layer configs: parameters.h; ROMs: weights/*.h.",
         f'#include "{d.top}.h"',
         '#include "parameters.h"',
         "",
         f"{_signature(d)} {{")
    names = ",".join(name for _, name in d.ports_in + d.ports_out)
    if d.io is IOMode.STREAM:
        for _, name in d.ports_in + d.ports_out:
            code(f"#pragma HLS INTERFACE axis port={name}")
        code("#pragma HLS DATAFLOW")
    else:
        for _, name in d.ports_in:
            code(f"#pragma HLS ARRAY_RESHAPE variable={name} complete dim=0")
        for _, name in d.ports_out:
            code(f"#pragma HLS ARRAY_PARTITION variable={name} complete dim=0")
        code(f"#pragma HLS INTERFACE ap_vld port={names}")
        code("#pragma HLS PIPELINE" if d.reuse == 1 else "#pragma HLS DATAFLOW")
    with code.indent():
        for line in d.code.lines:
            code(line)
    code("}")
    return code.text()


def _header(d: Design) -> str:
    guard = f"{d.top.upper()}_H_"
    return (f"#ifndef {guard}\n#define {guard}\n\n#include \"defines.h\"\n\n{_signature(d)};\n\n#endif\n")


def _defines(d: Design) -> str:
    code = Code()
    code("// Every tensor's type: ap_fixed with exactly the widths, rounding and overflow modes fpgac chose",
         "// (an exact result's type holds every value it can take: nothing rounds or wraps but a Quant).",
         "#ifndef DEFINES_H_", "#define DEFINES_H_", "", '#include "fpgac/common.h"', "")
    for name, cpp in d.typedefs:
        code(f"typedef {cpp} {name};")
    code("", "#endif")
    return code.text()


def _parameters(d: Design) -> str:
    code = Code()
    code("// Each layer's configuration (sizes, types, tables) and its constant ROMs.",
         "#ifndef PARAMETERS_H_", "#define PARAMETERS_H_", "", '#include "defines.h"', "")
    for header in d.headers:
        code(f'#include "fpgac/{header}"')
    code("")
    for stem in d.roms:
        code(f'#include "weights/{stem}.h"')
    code("")
    for struct in d.configs:
        code(struct)
    code("#endif")
    return code.text()


def _weights(stem: str, roms: list[str]) -> str:
    guard = f"WEIGHTS_{stem.upper()}_H_"
    return (f"// {stem}: constant ROMs, integer mantissas of the types named in each comment.\n"
            f"#ifndef {guard}\n#define {guard}\n\n#include <stdint.h>\n\n" + "\n".join(roms) + "\n#endif\n")


def _testbench(d: Design) -> str:
    code = Code()
    n_in = sum(math.prod(v.type.shape) for v, _ in d.ports_in)
    n_out = sum(math.prod(v.type.shape) for v, _ in d.ports_out)
    code(f"// Testbench of {d.top}: runs every vector of tb_data through the design and compares each output",
         "// bit with the golden model's. Usage: <exe> [TB_DATA_DIR [RESULTS_FILE [N [MANTISSA_FILE]]]]",
         "// (defaults: tb_data, tb_data/csim_results.log, all vectors, none). Exit status 0: bit-exact.",
         "#include <cstdlib>", "#include <fstream>", "#include <iostream>", "#include <string>", "#include <vector>",
         "", f'#include "firmware/{d.top}.h"', '#include "firmware/fpgac/testbench.h"', "",
         "int main(int argc, char **argv) {")
    with code.indent():
        code('const std::string dir = argc > 1 ? argv[1] : "tb_data";',
             'const std::string results = argc > 2 ? argv[2] : dir + "/csim_results.log";',
             "const long limit = argc > 3 ? std::atol(argv[3]) : -1;",
             'std::ifstream fin((dir + "/tb_input_features.dat").c_str());',
             'std::ifstream fpr((dir + "/tb_output_predictions.dat").c_str());',
             "if (!fin.is_open() || !fpr.is_open()) {")
        with code.indent():
            code('std::cerr << "ERROR: cannot open " << dir << "/tb_input_features.dat or tb_output_predictions.dat"'
                 " << std::endl;", "return 2;")
        code("}", "std::ofstream fout(results.c_str());", "std::ofstream fman;",
             "if (argc > 4) fman.open(argv[4]);",
             "std::vector<double> in, golden;",
             "long vectors = 0;",
             "unsigned long bits = 0, words = 0, reported = 0;",
             "while ((limit < 0 || vectors < limit) && fpgac::tb::read_line(fin, in) &&",
             "       fpgac::tb::read_line(fpr, golden)) {")
        with code.indent():
            code(f"if (in.size() != {n_in} || golden.size() != {n_out}) {{")
            with code.indent():
                code('std::cerr << "ERROR: vector " << vectors << " has " << in.size() << " inputs and "',
                     f'          << golden.size() << " outputs, the design {n_in} and {n_out}" << std::endl;',
                     "return 2;")
            code("}")
            args = []
            offset = 0
            for value, name in d.ports_in:
                size, t = math.prod(value.type.shape), d.type_name(value)
                code(f"static {t} {name}[{size}];", f"fpgac::tb::load(in, {offset}, {name}, {size});")
                offset += size
                if d.io is IOMode.STREAM:
                    c, p = words(value.type.shape)
                    code(f"hls::stream<{d.word_name(value)}> {name}_stream;",
                         f"fpgac::tb::to_stream<{t}, {c}, {p}>({name}, {name}_stream);")
                    args.append(f"{name}_stream")
                else:
                    args.append(name)
            for value, name in d.ports_out:
                size, t = math.prod(value.type.shape), d.type_name(value)
                code(f"static {t} {name}[{size}];")
                if d.io is IOMode.STREAM:
                    code(f"hls::stream<{d.word_name(value)}> {name}_stream;")
                    args.append(f"{name}_stream")
                else:
                    args.append(name)
            code(f"{d.top}({', '.join(args)});")
            offset = 0
            for value, name in d.ports_out:
                size, t = math.prod(value.type.shape), d.type_name(value)
                if d.io is IOMode.STREAM:
                    c, p = words(value.type.shape)
                    code(f"if (!fpgac::tb::from_stream<{t}, {c}, {p}>({name}_stream, {name})) {{")
                    with code.indent():
                        code(f'std::cerr << "ERROR: vector " << vectors << ": output {name} did not get exactly {p} '
                             f'words" << std::endl;', "return 2;")
                    code("}")
                code(f'bits += fpgac::tb::compare({name}, {size}, golden, {offset}, vectors, "{name}", words,',
                     "                           reported);",
                     f"fpgac::tb::write_values(fout, {name}, {size});",
                     f"if (fman.is_open()) fpgac::tb::write_mantissas(fman, {name}, {size});")
                offset += size
            code("fout << '\\n';", "if (fman.is_open()) fman << '\\n';", "vectors++;")
        code("}")
        code('std::cout << "fpgac testbench: " << vectors << " vectors, " << bits << " mismatching bits in " << words'
             ' << " output words" << std::endl;',
             "return bits == 0 && vectors > 0 ? 0 : 1;")
    code("}")
    return code.text()


def _vectors_text(arrays: list[np.ndarray]) -> str:
    """One line a vector: every array's values (channels-first, flattened), exact decimal floats."""
    n = len(arrays[0])
    flat = np.concatenate([np.asarray(a, dtype=np.float64).reshape(n, -1) for a in arrays], axis=1)
    return "".join(" ".join(map(repr, row)) + "\n" for row in flat.tolist())


def _build_tcl(d: Design, options: Options) -> str:

    top = d.top
    return f"""# Vitis HLS build script for {top}, written by fpgac {__version__}.
#
#   vitis_hls -f build_prj.tcl                              C-simulation and synthesis
#   vitis_hls -f build_prj.tcl "csim=1 synth=1 cosim=1 export=1"
#
# Options (name=0|1): reset (start a fresh project), csim, synth, cosim, export (IP catalog).
array set opt {{
    reset  1
    csim   1
    synth  1
    cosim  0
    export 0
}}
foreach arg $::argv {{
    foreach o [array names opt] {{
        regexp "$o=+(\\\\w+)" $arg unused opt($o)
    }}
}}

set part         {options.part}
set clock_period {options.clock_period:g}
set cflags       "-std=c++14 -Ifirmware"

if {{$opt(reset)}} {{
    open_project -reset {top}_prj
}} else {{
    open_project {top}_prj
}}
set_top {top}
add_files firmware/{top}.cpp -cflags $cflags
add_files -tb {top}_test.cpp -cflags $cflags
add_files -tb tb_data
if {{$opt(reset)}} {{
    open_solution -reset solution1 -flow_target vivado
}} else {{
    open_solution solution1 -flow_target vivado
}}
set_part $part
create_clock -period $clock_period -name default

if {{$opt(csim)}} {{
    puts "***** C SIMULATION (the testbench compares every output bit with fpgac's golden model) *****"
    csim_design
}}
if {{$opt(synth)}} {{
    puts "***** C/RTL SYNTHESIS *****"
    csynth_design
}}
if {{$opt(cosim)}} {{
    puts "***** C/RTL CO-SIMULATION *****"
    cosim_design -trace_level none
}}
if {{$opt(export)}} {{
    puts "***** EXPORT IP *****"
    export_design -format ip_catalog
}}
exit
"""


def _readme(d: Design, options: Options, vectors: int) -> str:

    top = d.top
    ports = "\n".join(
        f"- `{name}`: {'input' if (v, name) in d.ports_in else 'output'} {list(v.type.shape)}, `{d.type_name(v)}` = "
        f"`{dict(d.typedefs)[d.type_name(v)]}`" for v, name in d.ports_in + d.ports_out)
    if d.io is IOMode.STREAM:
        layout = ("`--io stream`: every port is an `hls::stream` of `fpgac::word<T, C>`; a `[C, *spatial]` tensor "
                  "is `prod(spatial)` words of its `C` channels in raster order (a vector `[N]` is one word). "
                  "Convolutions and pooling use line buffers; the layers run as a DATAFLOW pipeline. Convolution, "
                  "pooling, global pooling, Relu/Abs/Clip, Quant, table lookups, Add/Sub/Mul/Max/Min of two "
                  "same-shape tensors and reshapes that keep the word layout stream word by word; every other layer "
                  "(dense, softmax, recurrent, ...) reads its whole input into an array, runs the io_parallel "
                  "kernel and writes its result back as words.")
    else:
        layout = ("`--io parallel`: every port is an array, channels-first and flattened as in the ONNX model "
                  "(element `[c, h, w]` at `(c * H + h) * W + w`). "
                  + ("The whole network is one pipeline, every product its own multiplier."
                     if options.reuse == 1 else f"Each layer reuses a multiplier {options.reuse} times (DATAFLOW)."))
    zero = d.weight_count - d.nonzero_count
    return f"""# {top}: Vitis HLS project

Written by fpgac {__version__} from model `{d.graph.name}` (`fpgac compile ... --target xilinx`).

**Vitis HLS was not run to make this project.** What fpgac checked, with g++ and the `ap_fixed`
headers, is the C-simulation: the testbench below, run on the {vectors} vectors of `tb_data/`,
equals fpgac's golden model on every output bit (`fpgac verify .` repeats that check).
Synthesis results (latency, resources, timing) are for Vitis to report.

## Build with Vitis HLS

```
vitis_hls -f build_prj.tcl                                # C-simulation + synthesis
vitis_hls -f build_prj.tcl "csim=1 synth=1 cosim=1 export=1"
```

Part `{options.part}`, clock period {options.clock_period:g} ns (`fpgac compile --part P --clock-period NS`
to change them, or edit `build_prj.tcl`). The project is written to `{top}_prj/`; C-simulation
prints `fpgac testbench: N vectors, 0 mismatching bits ...` and fails (non-zero exit) on any
mismatch; outputs go to `tb_data/csim_results.log`.

Without Vitis, the same C-simulation with g++ (the `ap_types` headers ship with hls4ml):

```
g++ -std=c++14 -O2 -isystem <ap_types> -Ifirmware {top}_test.cpp firmware/{top}.cpp -o csim && ./csim
```

## Interface

Top function `{top}` (`firmware/{top}.h`):

{ports}

{layout}

## Files

- `firmware/{top}.cpp`: the top function, one call per layer into fpgac's kernel library
  (`firmware/fpgac/*.h`: hand-written templates with the Vitis pragmas).
- `firmware/defines.h`: every tensor's `ap_fixed` type, exactly as fpgac chose it; a cast is the
  golden model's requantization, and every other result is exact.
- `firmware/parameters.h`: each layer's configuration struct.
- `firmware/weights/*.h`: ROMs of integer mantissas. A weight matrix is stored as its non-zero
  entries (value, input index, output index), so a zero weight costs no multiplier, ROM word or
  cycle: {d.nonzero_count} of the {d.weight_count} weights are non-zero here ({zero} zero).
- `{top}_test.cpp`, `tb_data/`: the testbench and its vectors (inputs, and the golden model's outputs,
  one vector a line, each port channels-first).
"""


def write_project(d: Design, out: Path, vectors: common.Vectors, options: Options) -> None:
    firmware = out / "firmware"
    (firmware / "fpgac").mkdir(parents=True)
    (firmware / "weights").mkdir()
    for header in LIBRARY:
        shutil.copyfile(INCLUDE / header, firmware / "fpgac" / header)
    (firmware / f"{d.top}.cpp").write_text(top_source(d))
    (firmware / f"{d.top}.h").write_text(_header(d))
    (firmware / "defines.h").write_text(_defines(d))
    (firmware / "parameters.h").write_text(_parameters(d))
    for stem, roms in d.roms.items():
        (firmware / "weights" / f"{stem}.h").write_text(_weights(stem, roms))
    (out / testbench_name(d.top)).write_text(_testbench(d))
    tb = out / "tb_data"
    tb.mkdir()
    (tb / "tb_input_features.dat").write_text(_vectors_text(vectors.inputs))
    golden = [to_float(g, v.type.dtype) for g, v in zip(vectors.golden, d.graph.outputs)]
    (tb / "tb_output_predictions.dat").write_text(_vectors_text(golden))
    (out / "build_prj.tcl").write_text(_build_tcl(d, options))
    (out / "README.md").write_text(_readme(d, options, vectors.n))
