"""The peers fpgac's benchmarks compare against: onnxruntime (float) and hls4ml (fixed point).

    ort_predict(onnx_path)                       -> fn(x) -> first output, onnxruntime float, 1 thread
    hls4ml_model(onnx_path, precision, out_dir)  -> .predict(x), .compile_seconds, ...
    throughput(fn, x)                            -> inferences per second
    peer_versions()                              -> {package: version}, printed by every benchmark run

hls4ml is driven through its ONNX path, the way its documentation says: the model is first
cleaned by qonnx (cleanup_model, ConvertToChannelsLastAndClean, GemmToMatMul, cleanup_model
again), then `hls4ml.utils.config_from_onnx_model(..., granularity='name')`,
`hls4ml.converters.convert_from_onnx_model(..., backend='Vitis')` and `compile()`, which builds
the C++ model with g++ into a shared library; `predict()` runs that library (C simulation of the
HLS code, bit-accurate ap_fixed arithmetic), one ctypes call per sample. No Vivado or Vitis is
needed for that.

Precision:

- "fixed<W,I>" (any hls4ml precision string): the `Model` default precision, and every per-layer
  type that `config_from_onnx_model` leaves as 'auto' (results, accumulators, inputs, constants)
  is set to it too; weights and biases take the `Model` default. This is what
  `granularity='model'` does. The softmax lookup tables keep hls4ml's own defaults
  (fixed<18,8,RND,SAT>, 1024 entries, "stable" implementation).
- "auto": hls4ml's automatic precision, the config exactly as `config_from_onnx_model` makes it
  with its default `default_precision='fixed<16,6>'`. In hls4ml 1.3 that means: weights, biases,
  the input and every activation's result take fixed<16,6>; a dense layer's accumulator and
  result are widened so that nothing overflows or rounds
  (width = w_in + w_weight + ceil(log2 n_in) + 1 for the bias, e.g. ap_fixed<37,17>).
  See bench/README.md for what that does to a following Softmax.

Run this file to check the peers on the bundled examples: `python bench/peers.py`.
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"

#: The hls4ml backend. 'Vitis' and 'Vivado' both compile here with g++ (no HLS tool needed);
#: Vitis is the one fpgac's HLS backend targets.
HLS4ML_BACKEND = "Vitis"


def peer_versions() -> dict[str, str]:
    """Versions of everything the peers use, to print with every benchmark's results."""
    out = {"python": platform.python_version()}
    for pkg in ("numpy", "onnx", "onnxruntime", "hls4ml", "qonnx"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    try:
        gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True, check=True)
        out["g++"] = gxx.stdout.splitlines()[0]
    except (OSError, subprocess.CalledProcessError):
        out["g++"] = "not found"
    return out


# --------------------------------------------------------------------------- onnxruntime


def ort_predict(onnx_path: str | os.PathLike) -> Callable[[np.ndarray], np.ndarray]:
    """onnxruntime on the CPU in float32, one thread, sequential: returns x -> first output."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.use_deterministic_compute = True
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(onnx_path), sess_options=so, providers=["CPUExecutionProvider"])
    input_name = sess.get_inputs()[0].name
    output_name = sess.get_outputs()[0].name

    def predict(x: np.ndarray) -> np.ndarray:
        return sess.run([output_name], {input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return predict


# --------------------------------------------------------------------------- hls4ml


def clean_for_hls4ml(onnx_path: str | os.PathLike):
    """The qonnx cleaning hls4ml 1.x needs before its ONNX parser (as in hls4ml's docs).

    cleanup_model: shape inference (hls4ml's parser needs a shape for every tensor, initializers
    included), constant folding, unique node and tensor names. GemmToMatMul: hls4ml has no Gemm
    handler. ConvertToChannelsLastAndClean: hls4ml's Conv/Pool/BatchNorm need channels-last
    (a no-op on dense-only models).
    """
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul
    from qonnx.util.cleanup import cleanup_model

    with warnings.catch_warnings():
        # "GemmToMatMul only offers explicit support for version 9 of the Gemm node": harmless
        # for Gemm(alpha=1, beta=1, transB in {0, 1}), checked against onnxruntime in main().
        warnings.filterwarnings("ignore", message=".*GemmToMatMul.*", category=UserWarning)
        model = cleanup_model(ModelWrapper(str(onnx_path)))
        model = model.transform(ConvertToChannelsLastAndClean())
        model = model.transform(GemmToMatMul())
        model = cleanup_model(model)
    return model


@dataclass
class Hls4mlModel:
    """A compiled hls4ml model: `predict(x)` runs its g++-built C simulation."""

    graph: Any  # hls4ml.model.graph.ModelGraph
    precision: str
    out_dir: Path
    config: dict
    convert_seconds: float  # qonnx cleaning + config + hls4ml conversion (Python)
    compile_seconds: float  # hls4ml compile(): write the project + g++ -O3 -> .so
    log: str = field(repr=False, default="")  # hls4ml's chatter on stdout

    def predict(self, x: np.ndarray) -> np.ndarray:
        """x [N, ...] -> [N, outputs] (hls4ml flattens each sample's output)."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        y = np.asarray(self.graph.predict(x))
        return y.reshape(x.shape[0], -1)


def _inside_repo(path: Path) -> bool:
    try:
        path.resolve().relative_to(REPO)
        return True
    except ValueError:
        return False


def hls4ml_model(
    onnx_path: str | os.PathLike,
    precision: str,
    out_dir: str | os.PathLike | None = None,
    *,
    io_type: str = "io_parallel",
    strategy: str = "Latency",
    reuse: int = 1,
    backend: str = HLS4ML_BACKEND,
) -> Hls4mlModel:
    """Convert an ONNX model with hls4ml and compile it for `predict()`.

    precision: an hls4ml precision string such as "fixed<16,6>", applied to every layer, or
    "auto" for hls4ml's own automatic precision (see the module docstring). out_dir must be
    outside the repository (default: a fresh tempfile.mkdtemp()); it must live as long as the
    model is used, since the compiled library reads its weights from there.
    """
    import hls4ml

    if out_dir is None:
        out_dir = tempfile.mkdtemp(prefix="fpgac-hls4ml-")
    out_dir = Path(out_dir)
    if _inside_repo(out_dir):
        raise ValueError(f"hls4ml output directory {out_dir} is inside the repository {REPO}")
    out_dir.mkdir(parents=True, exist_ok=True)

    log = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(log):
        model = clean_for_hls4ml(onnx_path)
        if precision == "auto":
            # hls4ml's defaults: default_precision='fixed<16,6>', per-layer 'auto' left as it is.
            # (default_precision='auto' itself never returns: see bench/README.md.)
            config = hls4ml.utils.config_from_onnx_model(
                model, granularity="name", backend=backend, default_reuse_factor=reuse
            )
        else:
            config = hls4ml.utils.config_from_onnx_model(
                model, granularity="name", backend=backend, default_precision=precision, default_reuse_factor=reuse
            )
            for layer_config in config["LayerName"].values():
                types = layer_config.get("Precision", {})
                for name, value in types.items():
                    if value == "auto":
                        types[name] = precision
        config["Model"]["Strategy"] = strategy
        graph = hls4ml.converters.convert_from_onnx_model(
            model,
            output_dir=str(out_dir),
            backend=backend,
            hls_config=config,
            io_type=io_type,
        )
        t1 = time.perf_counter()
        graph.compile()
        t2 = time.perf_counter()
    return Hls4mlModel(
        graph=graph,
        precision=precision,
        out_dir=out_dir,
        config=config,
        convert_seconds=t1 - t0,
        compile_seconds=t2 - t1,
        log=log.getvalue(),
    )


# --------------------------------------------------------------------------- timing


def throughput(fn: Callable[[np.ndarray], Any], x: np.ndarray, *, min_seconds: float = 1.0) -> float:
    """Inferences per second: fn(x) on the whole batch, once to warm up, then repeatedly until
    min_seconds have passed; returns len(x) * calls / elapsed."""
    fn(x)
    calls = 0
    start = time.perf_counter()
    while True:
        fn(x)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return len(x) * calls / elapsed


# --------------------------------------------------------------------------- self-check


def _inputs(name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(inputs, labels or None): mlp 1000 uniform [-1, 1] rows; digits the 450 test digits."""
    if name == "mlp":
        return np.random.default_rng(0).uniform(-1.0, 1.0, (1000, 16)).astype(np.float32), None
    if name == "digits":
        data = np.load(EXAMPLES / "digits_test.npz")
        return data["x"].astype(np.float32), data["y"]
    raise ValueError(name)


def main(argv: list[str] | None = None) -> int:
    """Print hls4ml (fixed<16,6> and auto) against onnxruntime on mlp.onnx and digits.onnx."""
    argv = sys.argv[1:] if argv is None else argv
    names = argv or ["mlp", "digits"]
    for k, v in peer_versions().items():
        print(f"{k:12s} {v}")
    print(f"hls4ml backend {HLS4ML_BACKEND}, io_parallel, Latency, reuse 1")
    with tempfile.TemporaryDirectory(prefix="fpgac-peers-") as tmp:
        for name in names:
            path = EXAMPLES / f"{name}.onnx"
            x, labels = _inputs(name)
            xt = np.resize(x, (1000, x.shape[1]))  # throughput is always timed on 1000-row batches
            ort = ort_predict(path)
            ref = ort(x)
            print(f"\n{name}.onnx: agreement on {len(x)} inputs, throughput on batches of {len(xt)}")
            print(f"  {'peer':22s} {'argmax agree':>12s} {'max |err|':>10s} {'inf/s':>10s} {'convert s':>9s} {'compile s':>9s}")
            print(f"  {'onnxruntime float':22s} {'100.00%':>12s} {0.0:10.2e} {throughput(ort, xt):10.0f}")
            for precision in ("fixed<16,6>", "auto"):
                try:
                    hm = hls4ml_model(path, precision, Path(tmp) / f"{name}-{precision.replace('<', '_').replace('>', '').replace(',', '_')}")
                except Exception as exc:  # report and go on: this is a survey, not a test
                    print(f"  hls4ml {precision:15s} FAILED: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
                    continue
                y = hm.predict(x)
                agree = 100.0 * np.mean(np.argmax(y, axis=1) == np.argmax(ref, axis=1))
                err = float(np.max(np.abs(y - ref)))
                tp = throughput(hm.predict, xt)
                print(
                    f"  hls4ml {precision:15s} {agree:11.2f}% {err:10.2e} {tp:10.0f}"
                    f" {hm.convert_seconds:9.2f} {hm.compile_seconds:9.2f}"
                )
                if labels is not None:
                    print(
                        f"  {'':22s} accuracy vs labels: hls4ml {100 * np.mean(np.argmax(y, 1) == labels):.2f}%,"
                        f" onnxruntime {100 * np.mean(np.argmax(ref, 1) == labels):.2f}%"
                    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
