"""Distillation against refit: accuracy on held-out labels after pruning and at low widths.

Models: the bundled digits classifier (``examples/digits.onnx``, 64-32-10), and an MLP (64-64-32-10)
and a CNN (1x8x8: conv 8 3x3, relu, max-pool 2, conv 16 3x3, relu, dense 10) trained here on
scikit-learn's digits with JAX and written as ONNX with onnx.helper (PyTorch, the exporter the
issue names, ships gigabytes of GPU libraries from PyPI and is not installed on this machine).

Data: scikit-learn's 1,797 digits, scaled to [0, 1], split once with a fixed seed: 1,000 rows
train the two new models, 400 are the calibration rows (quantization, refit and distillation see
only these, with their labels), 397 are held out; every accuracy below is on the held-out rows,
against their labels. Each row of the table: float, then pruning/quantization with refit and
with distill, at 8 bits unless said, and the time distillation took.

    python3 bench/bench_distill.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fpgac import api

REPO = Path(__file__).resolve().parents[1]
#: the sparsities of gradual pruning, each followed by refit or distillation
GRADUAL = (0.5, 0.7, 0.8, 0.85, 0.9)


def _data() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    train, cal, test = order[:1000], order[1000:1400], order[1400:]
    return x[train], y[train], x[cal], y[cal], x[test], y[test]


def _train(init, apply, x, y, steps: int = 1500, lr: float = 3e-3):
    import jax
    import jax.numpy as jnp
    import optax

    params = init
    opt = optax.adam(lr)
    state = opt.init(params)

    @jax.jit
    def step(p, s, xb, yb):
        def loss(p):
            logits = apply(p, xb)
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), yb[:, None], axis=-1))
        g = jax.grad(loss)(p)
        u, s = opt.update(g, s, p)
        return optax.apply_updates(p, u), s

    rng = np.random.default_rng(1)
    for _ in range(steps):
        idx = rng.integers(0, len(x), 64)
        params, state = step(params, state, x[idx], y[idx])
    return jax.tree_util.tree_map(np.asarray, params)


def _mlp(x, y, path: Path) -> Path:
    import jax.numpy as jnp

    rng = np.random.default_rng(2)
    sizes = [64, 64, 32, 10]
    init = [{"w": (rng.normal(size=(a, b)) / np.sqrt(a)).astype(np.float32), "b": np.zeros(b, np.float32)}
            for a, b in zip(sizes, sizes[1:])]

    def apply(p, xb):
        h = xb
        for k, layer in enumerate(p):
            h = h @ layer["w"] + layer["b"]
            if k < len(p) - 1:
                h = jnp.maximum(h, 0)
        return h

    p = _train(init, apply, x, y)
    nodes, inits, prev = [], [], "x"
    for k, layer in enumerate(p):
        inits += [numpy_helper.from_array(layer["w"], f"w{k}"), numpy_helper.from_array(layer["b"], f"b{k}")]
        nodes.append(helper.make_node("Gemm", [prev, f"w{k}", f"b{k}"], [f"h{k}"], name=f"fc{k}"))
        prev = f"h{k}"
        if k < len(p) - 1:
            nodes.append(helper.make_node("Relu", [prev], [f"r{k}"], name=f"relu{k}"))
            prev = f"r{k}"
    nodes.append(helper.make_node("Softmax", [prev], ["y"], axis=1, name="softmax"))
    return _save(nodes, inits, [64], path, "mlp")


def _cnn(x, y, path: Path) -> Path:
    import jax.numpy as jnp
    from jax import lax

    rng = np.random.default_rng(3)
    init = {"c1": (rng.normal(size=(8, 1, 3, 3)) / 3).astype(np.float32), "b1": np.zeros(8, np.float32),
            "c2": (rng.normal(size=(16, 8, 3, 3)) / np.sqrt(72)).astype(np.float32), "b2": np.zeros(16, np.float32),
            "w": (rng.normal(size=(16 * 2 * 2, 10)) / 8).astype(np.float32), "b": np.zeros(10, np.float32)}

    def apply(p, xb):
        h = xb.reshape(-1, 1, 8, 8)
        h = lax.conv_general_dilated(h, p["c1"], (1, 1), [(1, 1), (1, 1)]) + p["b1"][:, None, None]
        h = jnp.maximum(h, 0)
        h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        h = lax.conv_general_dilated(h, p["c2"], (1, 1), [(0, 0), (0, 0)]) + p["b2"][:, None, None]
        h = jnp.maximum(h, 0)
        return h.reshape(h.shape[0], -1) @ p["w"] + p["b"]

    p = _train(init, apply, x, y)
    inits = [numpy_helper.from_array(p[k], k) for k in ("c1", "b1", "c2", "b2", "w", "b")]
    inits.append(numpy_helper.from_array(np.array([-1, 1, 8, 8], np.int64), "shape"))
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["img"], name="to_image"),
             helper.make_node("Conv", ["img", "c1", "b1"], ["a1"], pads=[1, 1, 1, 1], name="conv1"),
             helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
             helper.make_node("Conv", ["p1", "c2", "b2"], ["a2"], name="conv2"),
             helper.make_node("Relu", ["a2"], ["r2"], name="relu2"),
             helper.make_node("Flatten", ["r2"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w", "b"], ["logits"], name="fc"),
             helper.make_node("Softmax", ["logits"], ["y"], axis=1, name="softmax")]
    return _save(nodes, inits, [64], path, "cnn")


def _save(nodes, inits, shape, path: Path, name: str) -> Path:
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *shape])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 10])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def main() -> None:
    xtr, ytr, xc, yc, xt, yt = _data()
    with tempfile.TemporaryDirectory(prefix="fpgac-bench-distill-") as tmp:
        tmp = Path(tmp)
        cal = tmp / "cal.npz"
        np.savez(cal, x=xc, y=yc)
        models = {"digits (bundled, 64-32-10)": REPO / "examples" / "digits.onnx",
                  "mlp 64-64-32-10 (trained here)": _mlp(xtr, ytr, tmp / "mlp.onnx"),
                  "cnn 8c3-pool-16c3-10 (trained here)": _cnn(xtr, ytr, tmp / "cnn.onnx")}
        print("accuracy against the labels of 397 held-out rows; calibration, refit and distill on 400 other rows\n")
        print("| model | float | case | refit (or plain) | distill | distill time |")
        print("|---|---:|---|---:|---:|---:|")
        for label, path in models.items():
            (f,) = api.run(api.load(path), xt)
            float_acc = float(np.mean(f.argmax(1) == yt))
            cases = [("80% global magnitude, 8 bits", dict(bits=8, prune="magnitude:global:0.8,refit"),
                      dict(bits=8, prune="magnitude:global:0.8,distill")),
                     ("90% global magnitude, 8 bits", dict(bits=8, prune="magnitude:global:0.9,refit"),
                      dict(bits=8, prune="magnitude:global:0.9,distill")),
                     ("90% gradually (50, 70, 80, 85, 90%, refit or distilled after each)",
                      dict(bits=8, prune=",".join(f"magnitude:global:{f},refit" for f in GRADUAL)),
                      dict(bits=8, prune=",".join(f"magnitude:global:{f},distill" for f in GRADUAL))),
                     ("4-bit weights and activations", dict(bits=4), dict(bits=4, distill=True))]
            for case, base, trained in cases:
                def accuracy(options) -> float:
                    compiled = api.compile(path, calibration=cal, **options)
                    return float(np.mean(compiled.predict(xt).argmax(1) == yt))
                plain = accuracy(base)
                start = time.monotonic()
                distilled = accuracy(trained)
                seconds = time.monotonic() - start
                print(f"| {label} | {float_acc:.2%} | {case} | {plain:.2%} ({100 * (plain - float_acc):+.1f}) | "
                      f"{distilled:.2%} ({100 * (distilled - float_acc):+.1f}) | {seconds:.1f} s |", flush=True)


if __name__ == "__main__":
    main()
