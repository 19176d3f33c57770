"""The CPU target's testbench (tb.c), its input file, the Makefile, and building/running with gcc."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..common import BackendError, Port
from .program import PREFIX

__all__ = ["CFLAGS", "INPUTS", "tb_source", "makefile", "write_inputs", "build", "parse_outputs"]

#: how verify compiles: C99, warnings are errors
CFLAGS = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")
#: the testbench's input file: the vector count, then one line of input mantissas per vector
INPUTS = "tb_inputs.txt"
SOURCES = ("tb.c", f"{PREFIX}.c")


def tb_source(inputs: Sequence[Port], outputs: Sequence[Port]) -> str:
    """tb.c: reads vectors, runs the kernel, prints output mantissas (or values, or a timing)."""
    P = PREFIX.upper()
    ins = [f"in{i}" for i in range(len(inputs))]
    outs = [f"out{i}" for i in range(len(outputs))]
    decl = [f"static {PREFIX}_in{i}_t in{i}[{P}_IN{i}_SIZE];" for i in range(len(inputs))]
    decl += [f"static {PREFIX}_out{i}_t out{i}[{P}_OUT{i}_SIZE];" for i in range(len(outputs))]
    decl += [f"static double fin{i}[{P}_IN{i}_SIZE];" for i in range(len(inputs))]
    decl += [f"static double fout{i}[{P}_OUT{i}_SIZE];" for i in range(len(outputs))]
    read = "\n".join(
        f"        for (j = 0; j < {P}_IN{i}_SIZE; j++) {{\n"
        f"            if (float_mode ? fscanf(f, \"%lf\", &fin{i}[j]) != 1 : fscanf(f, \"%lld\", &m) != 1)\n"
        f"                return fail(\"cannot read vector\", v);\n"
        f"            if (!float_mode)\n"
        f"                in{i}[j] = ({PREFIX}_in{i}_t)m;\n"
        f"        }}" for i in range(len(inputs)))
    store = "\n".join(
        f"        for (j = 0; j < {P}_IN{i}_SIZE; j++)\n"
        f"            all{i}[v * {P}_IN{i}_SIZE + j] = in{i}[j];" for i in range(len(inputs)))
    alloc = "\n".join(
        f"    {PREFIX}_in{i}_t *all{i} = ({PREFIX}_in{i}_t *)malloc(sizeof({PREFIX}_in{i}_t)"
        f" * (size_t)(n * {P}_IN{i}_SIZE + 1));"
        for i in range(len(inputs)))
    free_all = " ".join(f"free(all{i});" for i in range(len(inputs)))
    check_alloc = " || ".join([f"!all{i}" for i in range(len(inputs))]) or "0"
    bench_args = ", ".join([f"all{i} + v * {P}_IN{i}_SIZE" for i in range(len(inputs))] + outs)
    prints = "\n".join(
        f"        for (j = 0; j < {P}_OUT{i}_SIZE; j++)\n"
        f"            if (float_mode)\n"
        f"                printf(\" %.17g\", fout{i}[j]);\n"
        f"            else\n"
        f"                printf(\" %lld\", (long long)out{i}[j]);" for i in range(len(outputs)))
    float_args = [f"fin{i}" for i in range(len(inputs))] + [f"fout{i}" for i in range(len(outputs))]
    sink = " ^ ".join(f"(long long)out{i}[0]" for i in range(len(outputs))) or "0"
    return f"""/* Testbench of the fpgac CPU kernel (only `fpgac verify` needs it).
 *
 *   tb FILE [N] [--float] [--repeat R]
 *
 * FILE holds the vector count, then one line per vector: the input mantissas of every input in
 * order (with --float: input values, fed to {PREFIX}_run_float). Prints one line per vector:
 * the output mantissas (with --float: output values). --repeat R instead runs the first N
 * vectors R times through {PREFIX}_run and prints the seconds and inferences it took. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "{PREFIX}.h"

{chr(10).join(decl)}

static int fail(const char *what, long v)
{{
    fprintf(stderr, "tb: %s (vector %ld)\\n", what, v);
    return 1;
}}

int main(int argc, char **argv)
{{
    FILE *f;
    long n = -1, limit = -1, repeat = 0, v, r;
    int a, float_mode = 0;
    long j;
    long long m = 0;
    if (argc < 2)
        return fail("usage: tb FILE [N] [--float] [--repeat R]", -1);
    for (a = 2; a < argc; a++) {{
        if (argv[a][0] == '-' && argv[a][1] == '-' && argv[a][2] == 'f')
            float_mode = 1;
        else if (argv[a][0] == '-' && argv[a][1] == '-' && argv[a][2] == 'r' && a + 1 < argc)
            repeat = atol(argv[++a]);
        else
            limit = atol(argv[a]);
    }}
    f = fopen(argv[1], "r");
    if (!f)
        return fail("cannot open the vector file", -1);
    if (fscanf(f, "%ld", &n) != 1 || n < 0)
        return fail("no vector count", -1);
    if (limit >= 0 && limit < n)
        n = limit;
    if (repeat > 0) {{
{alloc}
        clock_t start;
        long long sink = 0;
        if ({check_alloc})
            return fail("out of memory", -1);
        for (v = 0; v < n; v++) {{
{read}
{store}
        }}
        start = clock();
        for (r = 0; r < repeat; r++)
            for (v = 0; v < n; v++) {{
                {PREFIX}_run({bench_args});
                sink += {sink};
            }}
        printf("seconds %.6f inferences %ld sink %lld\\n",
               (double)(clock() - start) / CLOCKS_PER_SEC, n * repeat, sink);
        {free_all}
        fclose(f);
        return 0;
    }}
    for (v = 0; v < n; v++) {{
{read}
        if (float_mode)
            {PREFIX}_run_float({", ".join(float_args)});
        else
            {PREFIX}_run({", ".join(ins + outs)});
{prints}
        printf("\\n");
    }}
    fclose(f);
    return 0;
}}
"""


def makefile() -> str:
    flags = " ".join(CFLAGS)
    return f"""# Build the testbench: make (CC=clang, CFLAGS+=-m32 ... work too); run it: ./tb {INPUTS}
CC ?= gcc
CFLAGS ?= {flags}

tb: tb.c {PREFIX}.c {PREFIX}.h
\t$(CC) $(CFLAGS) -o tb tb.c {PREFIX}.c -lm

clean:
\trm -f tb

.PHONY: clean
"""


def write_inputs(path: Path, mantissas: Sequence[np.ndarray], fmt: str = "%d") -> None:
    """The testbench's input file: the count, then each vector's inputs flattened on one line."""
    n = len(mantissas[0]) if mantissas else 0
    rows = np.concatenate([np.asarray(m).reshape(n, -1) for m in mantissas], axis=1)
    with open(path, "w") as f:
        f.write(f"{n}\n")
        np.savetxt(f, rows, fmt=fmt, delimiter=" ")


def build(src: Path, build_dir: Path, cc: str = "gcc", cflags: str | Sequence[str] = (),
          sources: Sequence[str] = SOURCES, output: str = "tb", link: Sequence[str] = ("-lm",)) -> Path:
    """Compile ``sources`` from ``src`` with ``cc`` and :data:`CFLAGS` (plus ``cflags``) into ``build_dir``."""
    compiler = shutil.which(cc)
    if compiler is None:
        raise BackendError(f"the C compiler {cc!r} is not on the PATH: install gcc (apt-get install gcc)")
    extra = shlex.split(cflags) if isinstance(cflags, str) else list(cflags)
    exe = Path(build_dir) / output
    cmd = [compiler, *CFLAGS, *extra, "-I", str(src), "-o", str(exe), *(str(Path(src) / s) for s in sources), *link]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BackendError(f"{cc} could not build the CPU kernel in {src}:\n{tail}")
    return exe


def parse_outputs(text: str, outputs: Sequence[Port], n: int) -> list[np.ndarray]:
    """The testbench's lines back into one int64 array ``(n, *shape)`` per output."""
    values = np.array(text.split(), dtype=np.int64)
    width = sum(p.size for p in outputs)
    if values.size != n * width:
        raise BackendError(f"the testbench printed {values.size} numbers, expected {n} vectors x {width}")
    rows = values.reshape(n, width)
    result, at = [], 0
    for port in outputs:
        result.append(rows[:, at:at + port.size].reshape(n, *port.shape))
        at += port.size
    return result
