"""Distill: train the surviving weights of a pruned network to match the unpruned one (its teacher).

Least-squares refit (:mod:`fpgac.passes.refit`) fixes each layer alone; distillation trains the
whole network at once, end to end, on the calibration data: the student (the pruned graph) learns
the teacher's (the unpruned float graph's) soft targets, the teacher's logits at a temperature
``T`` when the network ends in a softmax (Hinton et al.'s knowledge distillation, the loss scaled
by ``T**2``), its outputs by mean squared error otherwise; with labels (``y`` in the calibration
file), a cross-entropy on them as well, weighted by ``alpha``. Pruned weights stay exactly zero
(the weights are masked in every step); only the surviving weights and the biases of Dense and
Conv layers (and the W, R and B of LSTM and GRU layers) move. Adam (optax) on mini-batches, a seeded shuffle, 10% of the rows held out: the
weights kept are those of the epoch whose held-out teacher loss was lowest, and training stops
when it has not improved for ``patience`` epochs. With ``types`` (value name -> FixedType, from
a quantization of the same graph) every value is rounded to its type on the way forward with a
straight-through gradient: what is trained is what the hardware computes.

The training graph is built from the IR (:mod:`fpgac.passes.jax_graph`) and the weights are
written back into the same nodes. JAX and optax are an optional extra (``fpgac[train]``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fpgac.progress import counter
from fpgac.errors import UsageError
from fpgac.ir import FixedType, Graph, Op
from fpgac.ir.semantics import evaluate_float
from fpgac.passes.layer_weights import set_const

__all__ = ["Distill", "MIN_ROWS", "check_data", "qat_types"]

#: the training options of a Distill (what a spec's ``distill:key=value`` sets)
OPTIONS = ("epochs", "temperature", "alpha", "lr", "batch", "patience", "mix", "seed")


def check_data(inputs: Mapping[str, np.ndarray], labels: np.ndarray | None) -> None:
    """Enough rows to train on, and as many labels as rows: refused before any work."""
    rows = min((len(a) for a in inputs.values() if np.ndim(a)), default=0)
    if rows < MIN_ROWS:
        raise UsageError(f"distill needs at least {MIN_ROWS} calibration rows to train on, got {rows}")
    if labels is not None and len(np.asarray(labels).reshape(-1)) != rows:
        raise UsageError(f"distill: {len(np.asarray(labels).reshape(-1))} labels y for {rows} calibration rows")

log = logging.getLogger(__name__)

#: the fewest calibration rows distillation trains on (10% of them are held out)
MIN_ROWS = 50


@dataclass(frozen=True)
class Distill:
    reference: Graph = field(compare=False, repr=False)
    inputs: Mapping[str, np.ndarray] = field(compare=False, repr=False)
    labels: np.ndarray | None = field(default=None, compare=False, repr=False)
    epochs: int = 400
    temperature: float = 2.0
    alpha: float = 0.5
    lr: float = 2e-3
    batch: int = 64
    patience: int = 40
    mix: int = 4
    seed: int = 0
    types: Mapping[str, FixedType] | None = field(default=None, compare=False, repr=False)
    layers: frozenset[str] | None = None
    exclude: frozenset[str] = frozenset()
    record: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for name, value, ok in (("epochs", self.epochs, self.epochs >= 1), ("batch", self.batch, self.batch >= 1),
                                ("patience", self.patience, self.patience >= 1), ("mix", self.mix, self.mix >= 0),
                                ("temperature", self.temperature, self.temperature > 0),
                                ("lr", self.lr, self.lr > 0), ("alpha", self.alpha, 0 <= self.alpha <= 1)):
            if not ok:
                raise UsageError(f"distill {name} must be {'in [0, 1]' if name == 'alpha' else 'positive'}, "
                                 f"not {value!r}")
        check_data(self.inputs, self.labels)

    @property
    def options(self) -> dict[str, Any]:
        """The training options, as a spec would give them."""
        return {name: getattr(self, name) for name in OPTIONS}

    def run(self, graph: Graph) -> bool:
        from fpgac.passes import jax_graph

        try:
            import jax
            import jax.numpy as jnp
            import optax
        except ImportError:
            raise UsageError("distillation needs JAX and optax: pip install 'fpgac[train]'") from None
        names = [v.name for v in graph.inputs]
        arrays = [np.asarray(self.inputs[n], dtype=np.float32) for n in names]
        rows = len(arrays[0])
        labels = None if self.labels is None else np.asarray(self.labels).reshape(-1)
        # the teacher: the unpruned float network's logits (under a final softmax) or outputs
        last = self.reference.nodes[-1]
        soft = last.op is Op.SOFTMAX and not last.attrs["log"] and len(self.reference.outputs) == 1
        target = last.inputs[0].name if soft else None
        values = evaluate_float(self.reference, dict(zip(names, arrays)))
        teacher = [np.asarray(values[target], dtype=np.float32)] if soft else [
            np.asarray(values[v.name], dtype=np.float32) for v in self.reference.outputs]
        if labels is not None and not (soft and teacher[0].ndim == 2 and labels.dtype.kind in "iu"):
            labels = None  # labels only for a classifier's integer classes
        student = jax_graph.forward(graph, self.types, stop_at=target)
        params = jax_graph.parameters(graph, None if self.layers is None else self.layers - self.exclude)
        params = {k: v for k, v in params.items() if k not in self.exclude}
        if not params:
            return False
        # a weight that is zero (pruned) stays zero; biases are free
        masks = {k: {name: (a != 0).astype(np.float32) if name != "b" else np.ones_like(a) for name, a in p.items()}
                 for k, p in params.items()}
        t, alpha = self.temperature, self.alpha if labels is not None else 0.0

        def loss(p, xs, ts, ys):
            p = jax.tree_util.tree_map(lambda a, m: a * m, p, masks)
            outs = student(p, xs)
            if not soft:
                return sum(jnp.mean((o - tt) ** 2) for o, tt in zip(outs, ts))
            s = outs[0]
            kl = jnp.mean(jnp.sum(jax.nn.softmax(ts[0] / t) * (jax.nn.log_softmax(ts[0] / t)
                                                                 - jax.nn.log_softmax(s / t)), axis=-1)) * t * t
            if ys is None or alpha == 0:
                return kl
            known = ys >= 0  # mixed rows have no label (-1)
            picked = jnp.take_along_axis(jax.nn.log_softmax(s), jnp.maximum(ys, 0)[:, None], axis=-1)[:, 0]
            ce = -jnp.sum(jnp.where(known, picked, 0.0)) / jnp.maximum(jnp.sum(known), 1)
            return (1 - alpha) * kl + alpha * ce

        opt = optax.adam(self.lr)
        state = opt.init(params)

        @jax.jit
        def step(p, st, xs, ts, ys):
            value, grads = jax.value_and_grad(loss)(p, xs, ts, ys)
            updates, st = opt.update(grads, st, p)
            return optax.apply_updates(p, updates), st, value

        def held_out(p, xs, ts):  # what early stopping watches: the teacher's loss alone
            return loss(p, xs, ts, None)

        teacher_loss = jax.jit(held_out)

        rng = np.random.default_rng(self.seed)
        order = rng.permutation(rows)
        held = max(1, rows // 10)
        val, train = order[:held], order[held:]
        # the teacher labels any input: each batch also gets `mix` blends of two training rows
        # per row (mixup), with the teacher's targets for them and no label
        teach = jax.jit(jax_graph.forward(self.reference, None, stop_at=target))
        teacher_params = jax_graph.parameters(self.reference)

        def pick(idx):
            return ([a[idx] for a in arrays], [tt[idx] for tt in teacher],
                    None if labels is None else jnp.asarray(labels[idx]))

        def batch_of(idx):
            xs, ts, ys = pick(idx)
            if not self.mix:
                return xs, ts, ys
            k = len(idx) * self.mix
            a, b = rng.choice(train, k), rng.choice(train, k)
            lam = rng.uniform(0, 1, size=k).astype(np.float32)
            mixed = [(lam.reshape(-1, *(1,) * (x.ndim - 1)) * x[a] + (1 - lam.reshape(-1, *(1,) * (x.ndim - 1)))
                      * x[b]) for x in arrays]
            targets = [np.asarray(v) for v in teach(teacher_params, mixed)]
            xs = [np.concatenate([u, v]) for u, v in zip(xs, mixed)]
            ts = [np.concatenate([u, v]) for u, v in zip(ts, targets)]
            if ys is not None:
                ys = jnp.concatenate([ys, -jnp.ones(k, dtype=ys.dtype)])
            return xs, ts, ys

        xv, tv, yv = pick(val)

        def scores(p) -> dict[str, float]:
            """On the held-out rows: argmax agreement with the teacher, accuracy against labels."""
            if not soft:
                return {}
            s = np.asarray(student(jax.tree_util.tree_map(lambda a, m: a * m, p, masks), xv)[0]).argmax(axis=-1)
            out = {"agreement_with_teacher": float(np.mean(s == tv[0].argmax(axis=-1)))}
            if yv is not None:
                out["accuracy_vs_labels"] = float(np.mean(s == np.asarray(yv)))
            return out

        best, best_params, waited = float(teacher_loss(params, xv, tv)), params, 0
        self.record.update({"held_out_loss_before": best, "rows": rows, "held_out": held,
                            "before": scores(params), "quantization_aware": bool(self.types)})
        start = time.perf_counter()
        epoch = 0
        for epoch in range(1, self.epochs + 1):
            shuffled = rng.permutation(train)
            for i in range(0, len(shuffled), self.batch):
                xs, ts, ys = batch_of(shuffled[i:i + self.batch])
                params, state, _ = step(params, state, xs, ts, ys)
            now = float(teacher_loss(params, xv, tv))
            if now < best - 1e-7:
                best, best_params, waited = now, params, 0
            else:
                waited += 1
            counter("distilling (epochs)", epoch, self.epochs)
            if waited >= self.patience:
                break
        self.record.update({"held_out_loss_after": best, "after": scores(best_params), "epochs": epoch,
                            "seconds": round(time.perf_counter() - start, 2)})
        log.info("distill: held-out teacher loss %.4g -> %.4g in %d epochs (%.1f s)", self.record["held_out_loss_before"],
                 best, epoch, self.record["seconds"])
        nodes = {n.name: n for n in graph.nodes}
        for name, p in best_params.items():
            node = nodes[name]
            for index, key in jax_graph.TRAINED[node.op].items():
                if key in p:
                    value = np.asarray(p[key], dtype=np.float64) * masks[name][key]
                    set_const(graph, node, index, value, sparse=key != "b")
        return True


def qat_types(quantized: Graph) -> dict[str, FixedType]:
    """What quantization-aware training rounds, by the float graph's value names: the inputs, the
    weights and biases, and each value a Quant node narrows (to the Quant's type)."""
    types: dict[str, FixedType] = {}
    for v in quantized.inputs:
        if isinstance(v.type.dtype, FixedType):
            types[v.name] = v.type.dtype
    for node in quantized.nodes:
        if node.op is Op.QUANT and isinstance(node.output.type.dtype, FixedType):
            types[node.inputs[0].name] = node.output.type.dtype
        for v in node.inputs[1:4] if node.op in (Op.DENSE, Op.CONV, Op.LSTM, Op.GRU) else ():
            if v is not None and v.is_const and isinstance(v.type.dtype, FixedType):
                types[v.name] = v.type.dtype
    return types
