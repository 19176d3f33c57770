"""The CPU target against onnxruntime: inferences per second and bytes of weights.

    python bench/bench_cpu.py [--bits 8 16] [--seconds S] [--models mlp cnn2d ...]

For every example (and the mlp pruned to 20% of its weights) the integer-only C kernel that
``--target cpu`` writes is built with gcc -O2 (the flags ``fpgac verify`` uses, plus -fPIC) into
a shared library with a 20-line batch loop around ``model_run``, loaded with ctypes into this
process, and timed on the same 1,000 inputs as onnxruntime's float32 run of the same ONNX model
(``peers.ort_predict``: one thread, sequential; the whole batch per call). Both see one call per
batch, so the Python overhead is the same small constant. Bytes: the kernel's ``static const``
data (weights, biases, sparse indices, lookup tables) against the float model's float32
initializers. Nothing is asserted; the table is printed.
"""

from __future__ import annotations

import argparse
import ctypes
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

from peers import ort_predict, peer_versions, throughput  # noqa: E402

from fpgac import api  # noqa: E402
from fpgac.backends.cpu.testbench import CFLAGS, build  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
MODELS = ["mlp", "cnn2d", "cnn1d", "lstm", "gru", "digits"]

_LOOP = """#include "model.h"
/* n inferences over contiguous batches of inputs and outputs (one input, one output) */
void bench_batch(const model_in0_t *x, model_out0_t *y, long n)
{
    long i;
    for (i = 0; i < n; i++)
        model_run(x + i * MODEL_IN0_SIZE, y + i * MODEL_OUT0_SIZE);
}
"""

_NUMPY = {"int8_t": np.int8, "int16_t": np.int16, "int32_t": np.int32, "int64_t": np.int64,
          "uint8_t": np.uint8, "uint16_t": np.uint16, "uint32_t": np.uint32, "uint64_t": np.uint64}


def batched_onnx(path: Path, work: Path) -> Path:
    """The model with a symbolic batch dimension (cnn2d's is fixed at 1), so onnxruntime runs whole batches."""
    model = onnx.load(path)
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "N"
    del model.graph.value_info[:]
    out = work / f"batched_{path.name}"
    onnx.save(model, out)
    return out


def float_weight_bytes(path: Path) -> int:
    """Bytes of the model's float initializers (weights, biases) as float32."""
    model = onnx.load(path)
    return sum(4 * numpy_helper.to_array(t).size for t in model.graph.initializer
               if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16))


def kernel(compiled: api.CompiledModel, work: Path, n: int):
    """Write the cpu design, build it as a shared library; returns (batch fn, input mantissas, manifest memory)."""
    out = compiled.write(work / "out", "cpu", vectors=n)
    (out / "bench_loop.c").write_text(_LOOP)
    lib_path = build(out, work, cflags=["-fPIC", "-shared"], sources=("bench_loop.c", "model.c"),
                     output="libmodel.so")
    lib = ctypes.CDLL(str(lib_path))
    lib.bench_batch.restype = None
    lib.bench_batch.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_long]
    header = (out / "model.h").read_text()
    in_t = _NUMPY[header.split("typedef ")[1].split()[0]]
    out_t = _NUMPY[header.split("typedef ")[2].split()[0]]
    vectors = compiled.vectors(n)
    x = np.ascontiguousarray(vectors.input_mantissas[0].astype(in_t))
    y = np.zeros((n, *compiled.graph.outputs[0].type.shape), dtype=out_t)

    def run(batch: np.ndarray) -> np.ndarray:
        lib.bench_batch(batch.ctypes.data, y.ctypes.data, len(batch))
        return y

    run(x)
    assert np.array_equal(y.astype(np.int64), vectors.golden[0]), "the shared library is not the verified kernel"
    import json

    memory = json.loads((out / "fpgac.json").read_text())["memory_bytes"]
    return run, x, vectors, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[8, 16])
    parser.add_argument("--models", nargs="+", default=MODELS + ["mlp-pruned"])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per throughput measurement")
    args = parser.parse_args()
    versions = peer_versions()
    print(", ".join(f"{k} {v}" for k, v in versions.items() if k in ("python", "numpy", "onnxruntime", "g++")))
    print(f"kernel built with gcc {' '.join(CFLAGS)} -fPIC -shared; {args.samples} inputs "
          "(input-type extremes, then uniform over the input type)\n")
    rows = []
    with tempfile.TemporaryDirectory(prefix="fpgac-bench-cpu-") as tmp:
        for name in args.models:
            base = name.removesuffix("-pruned")
            path = EXAMPLES / f"{base}.onnx"
            ort = ort_predict(batched_onnx(path, Path(tmp)))
            for bits in args.bits:
                work = Path(tmp) / f"{name}{bits}"
                work.mkdir()
                compiled = api.compile(path, bits=bits, input_range=(-1, 1),
                                       prune="magnitude:0.8" if name.endswith("-pruned") else None)
                run, x, vectors, memory = kernel(compiled, work, args.samples)
                xf = np.ascontiguousarray(vectors.inputs[0], dtype=np.float32)
                c_ips = throughput(run, x, min_seconds=args.seconds)
                ort_ips = throughput(ort, xf, min_seconds=args.seconds)
                fbytes = float_weight_bytes(path)
                params = memory["weights"] + memory["biases"] + memory["indices"]
                rows.append((name, bits, c_ips, ort_ips, params, memory["tables"], memory["flash"], fbytes,
                             memory["ram"]))
                print(f"  {name} {bits} bits: {c_ips:,.0f}/s vs onnxruntime {ort_ips:,.0f}/s", flush=True)
    print()
    print("| model | bits | C kernel inf/s | onnxruntime inf/s | C / ort | weights+biases+indices B | tables B "
          "| flash B | float32 weights B | float / weights | RAM B |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, bits, c_ips, ort_ips, params, tables, flash, fbytes, ram in rows:
        print(f"| {name} | {bits} | {c_ips:,.0f} | {ort_ips:,.0f} | {c_ips / ort_ips:.2f}x | {params:,} | {tables:,} "
              f"| {flash:,} | {fbytes:,} | {fbytes / params:.2f}x | {ram:,} |")


if __name__ == "__main__":
    main()
