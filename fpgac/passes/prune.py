"""Magnitude pruning, and the ``--prune`` spec that builds the whole pruning pipeline.

Pruning runs on the float graph, before calibration and quantization, so that calibration sees
the network that will be built. Every zero it leaves in a weight is recorded in the weight's
``TensorType.sparsity`` (the structural-zero mask); the quantizer keeps the mask and a zero weight
quantizes to mantissa 0, so a pruned weight never comes back; backends emit no hardware for it.

Spec syntax (``fpgac --prune SPEC``, ``api.compile(prune=SPEC)``, or ``"Prune"`` in the precision
JSON config): steps separated by commas, run in order; fields within a step by colons. Fractions
are in ``[0, 1)`` and may be written as percentages (``0.8`` or ``80%``). A step acts on the
weights of every Dense and Conv layer (biases are kept; QONNX fixed-point weights are left alone).

``magnitude:F`` / ``magnitude:layer:F``
    in each layer, zero the fraction ``F`` of its weights with the smallest ``|w|`` (weights that
    are already zero count toward ``F``).
``magnitude:global:F``
    one cut for the whole model: the fraction ``F`` of all weights with the smallest ``|w|``, so
    layers with many small weights lose more.
``threshold:T``
    zero every weight with ``|w| < T``.
``structured:F`` / ``structured:l1:F`` / ``structured:l2:F``
    remove the fraction ``F`` of each layer's output units (Dense neurons, Conv channels) with
    the smallest L1 (default) or L2 norm of incoming weights, and shrink the layers that read
    them (:mod:`fpgac.passes.prune_structured`); a layer whose output reaches an Add, a Concat, a
    Softmax or a graph output is skipped with a log message (so the logit layer always stays).
    Dead-unit elimination (``dead``) runs once after the last step.
``dead``
    remove units whose outgoing weights are all zero or whose incoming weights are all zero
    (after a Relu with ``bias <= 0`` always zero); the function does not change.
``clip:T`` / ``clip:std:K`` / ``clip:global:std:K``
    clip weights to ``[-T, T]``; or to ``K`` standard deviations of the layer's weights (of all
    weights with ``global``) (:mod:`fpgac.passes.clip_weights`).
``binary`` / ``binary:channel``
    ``w -> +-s``, ``s`` a power of two per layer (per output channel) (:mod:`fpgac.passes.binarize`).
``ternary`` / ``ternary:D`` / ``ternary:channel`` / ``ternary:channel:D``
    ``w -> +-s`` or ``0``: zero where ``|w| <= D * mean|w|`` (``D`` defaults to 0.7).
``refit`` / ``refit:D``
    re-solve every layer's surviving weights and bias by least squares on the calibration data
    so that its outputs match the unpruned network's (:mod:`fpgac.passes.refit`; ``D`` is the
    damping, default 0.01). Put it after the pruning steps and before ``binary``/``ternary``.
    It needs calibration inputs (``compile`` passes its own).
``distill`` / ``distill:EPOCHS`` / ``distill:epochs=E:t=T:alpha=A:lr=L:batch=B:patience=P:mix=M:seed=S``
    train the surviving weights and biases of the whole pruned network, end to end, to match the
    unpruned float network on the calibration data (and its labels ``y``, when the calibration
    file has them) (:mod:`fpgac.passes.distill`: knowledge distillation with temperature ``T``,
    default 2; ``alpha`` the labels' weight, default 0.5; at most ``E`` epochs, default 400,
    stopping early (patience 40); ``M`` mixup blends of two rows per row, labelled by the teacher,
    default 4;
    seeded). Pruned weights stay zero. Put it after the pruning steps. It needs
    calibration inputs and the ``train`` extra (JAX, optax).
``none``
    nothing (in a per-layer override: leave this layer out of the model-wide spec).

Per-layer overrides (a config's ``LayerName: {"fc1": {"Prune": "magnitude:0.5"}}``) replace the
model-wide spec for that layer: it gets exactly its own steps (``"none"``: no pruning), and a
``global`` step's cut is taken over the other layers only. The model-wide spec is ``--prune``, or
the config's ``Model: {"Prune": ...}`` when ``--prune`` is not given.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from fpgac.errors import UsageError
from fpgac.ir import Graph
from fpgac.passes.binarize import Binarize
from fpgac.passes.clip_weights import ClipWeights
from fpgac.passes.layer_weights import Scope, set_const, weight_layers
from fpgac.passes.manager import Pass
from fpgac.passes.prune_structured import DeadUnits, Norm, StructuredPrune
from fpgac.passes.refit import Refit

__all__ = ["MagnitudePrune", "Scope", "distill_options", "parse_prune", "prune_passes"]


@dataclass(frozen=True)
class MagnitudePrune:
    """Zero the smallest weights: ``sparsity`` (a fraction, per layer or global) or ``|w| < threshold``."""

    sparsity: float | None = None
    threshold: float | None = None
    scope: Scope = Scope.LAYER
    layers: frozenset[str] | None = None  # None: every Dense/Conv
    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if (self.sparsity is None) == (self.threshold is None):
            raise UsageError("magnitude pruning takes either a target sparsity or a threshold")
        if self.sparsity is not None and not 0 <= self.sparsity < 1:
            raise UsageError(f"a target sparsity must be a fraction in [0, 1), not {self.sparsity!r}")
        if self.threshold is not None and not self.threshold >= 0:
            raise UsageError(f"a pruning threshold must be non-negative, not {self.threshold!r}")

    def run(self, graph: Graph) -> bool:
        nodes = weight_layers(graph, self.layers, self.exclude)
        weights = [node.inputs[1].data for node in nodes]
        if not nodes:
            return False
        if self.threshold is not None:
            masks = [np.abs(w) < self.threshold for w in weights]
        elif self.scope is Scope.LAYER:
            masks = [_smallest(np.abs(w), self.sparsity) for w in weights]
        else:
            cut = _smallest(np.concatenate([np.abs(w).ravel() for w in weights]), self.sparsity)
            parts = np.split(cut, np.cumsum([w.size for w in weights])[:-1])
            masks = [m.reshape(w.shape) for m, w in zip(parts, weights)]
        changed = False
        for node, w, mask in zip(nodes, weights, masks):
            pruned = np.where(mask, 0.0, w)
            old = node.inputs[1].type.sparsity
            if old is not None and np.array_equal(old.zero, pruned == 0):
                continue
            if old is None and not np.any(pruned == 0):
                continue
            set_const(graph, node, 1, pruned)
            changed = True
        return changed


def _smallest(magnitude: np.ndarray, fraction: float) -> np.ndarray:
    """A mask of the ``round(fraction * size)`` smallest entries (ties: the first ones)."""
    k = math.floor(fraction * magnitude.size + 0.5)
    mask = np.zeros(magnitude.size, dtype=bool)
    mask[np.argsort(magnitude.ravel(), kind="stable")[:k]] = True
    return mask.reshape(magnitude.shape)


# -- the spec -------------------------------------------------------------------------------------

_KINDS = "magnitude, threshold, structured, dead, clip, binary, ternary, refit, distill or none"
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")


def parse_prune(spec: str | Sequence[str], *, layers: frozenset[str] | None = None,
                exclude: frozenset[str] = frozenset(), reference: Graph | None = None,
                inputs: Mapping[str, np.ndarray] | None = None, labels: np.ndarray | None = None,
                calibrated: bool = True) -> list[Pass]:
    """The passes a spec names, each acting on ``layers`` (None: all) but not on ``exclude``.

    ``refit`` needs the unpruned ``reference`` graph and calibration ``inputs``; ``distill`` also
    ``calibrated`` ones (real data, not samples of an input range), and takes their ``labels``.
    """
    context = {"reference": reference, "inputs": inputs, "labels": labels, "calibrated": calibrated}
    passes: list[Pass] = []
    for step in _steps(spec):
        passes += _parse_step(step, {"layers": layers, "exclude": exclude}, context)
    return passes


def prune_passes(spec: str | Sequence[str] | None, layer_specs: Mapping[str, str] | None = None, *,
                 reference: Graph | None = None, inputs: Mapping[str, np.ndarray] | None = None,
                 labels: np.ndarray | None = None, calibrated: bool = True) -> list[Pass]:
    """The pruning pipeline: the model-wide ``spec`` on every layer not in ``layer_specs``, then
    each overridden layer's own steps, then dead-unit elimination if any step was structured."""
    layer_specs = dict(layer_specs or {})
    context = {"reference": reference, "inputs": inputs, "labels": labels, "calibrated": calibrated}
    passes = parse_prune(spec or "none", exclude=frozenset(layer_specs), **context)
    for name, text in layer_specs.items():
        steps = parse_prune(text, layers=frozenset({name}), **context)
        _check_order(text, steps)
        passes += steps
    _check_order(spec, passes)
    if any(isinstance(p, StructuredPrune) for p in passes) and not isinstance(passes[-1], DeadUnits):
        passes.append(DeadUnits())
    return passes


def _check_order(spec: str | Sequence[str] | None, passes: list[Pass]) -> None:
    binarized = False
    for p in passes:
        binarized |= isinstance(p, Binarize)
        if type(p).__name__ == "Distill" and binarized:
            text = spec if isinstance(spec, str) else ",".join(spec or [])
            raise UsageError(f"prune spec {text!r}: put distill before binary/ternary "
                             "(training would lose their levels)")
        if isinstance(p, Refit) and binarized:
            text = spec if isinstance(spec, str) else ",".join(spec or [])
            raise UsageError(f"prune spec {text!r}: put refit before binary/ternary "
                             "(refitting would lose their levels)")


def _steps(spec: str | Sequence[str]) -> list[str]:
    texts = [spec] if isinstance(spec, str) else list(spec)
    for text in texts:
        if not isinstance(text, str):
            raise UsageError(f"a prune spec is a string such as 'magnitude:0.8', not {text!r}")
    steps = [step.strip() for text in texts for step in text.split(",")]
    if any(not step for step in steps):
        raise UsageError(f"prune spec {','.join(texts)!r} has an empty step (steps are separated by single commas)")
    return steps


def _parse_step(step: str, where: dict, context: dict) -> list[Pass]:
    kind, *args = [part.strip().lower() for part in step.split(":")]
    parse = _STEPS.get(kind)
    if parse is None:
        raise UsageError(f"prune spec {step!r}: unknown kind {kind!r} (expected {_KINDS})")
    if kind in ("refit", "distill"):
        return [parse(step, args, where, context)]
    result = parse(step, args, where)
    return result if isinstance(result, list) else [result]


def _number(step: str, text: str, what: str) -> float:
    if not _NUMBER.match(text):
        raise UsageError(f"prune spec {step!r}: {text!r} is not a number ({what})")
    return float(text[:-1]) / 100 if text.endswith("%") else float(text)


def _fraction(step: str, text: str) -> float:
    value = _number(step, text, "expected a fraction such as 0.8 or 80%")
    if not 0 <= value < 1:
        raise UsageError(f"prune spec {step!r}: the fraction must be in [0, 1) (0.8 or 80%), not {text}")
    return value


def _positive(step: str, text: str, what: str) -> float:
    value = _number(step, text, what)
    if not value > 0:
        raise UsageError(f"prune spec {step!r}: {what}, not {text}")
    return value


def _shape(step: str, args: list[str], usage: str, counts: tuple[int, ...]) -> None:
    if len(args) not in counts:
        raise UsageError(f"prune spec {step!r}: expected {usage}")


def _magnitude(step: str, args: list[str], where: dict) -> Pass:
    usage = "magnitude:F, magnitude:layer:F or magnitude:global:F with F a fraction such as 0.8"
    _shape(step, args, usage, (1, 2))
    if len(args) == 2 and args[0] not in ("layer", "global"):
        raise UsageError(f"prune spec {step!r}: scope {args[0]!r} is not 'layer' or 'global'")
    scope = Scope(args[0]) if len(args) == 2 else Scope.LAYER
    return MagnitudePrune(sparsity=_fraction(step, args[-1]), scope=scope, **where)


def _threshold(step: str, args: list[str], where: dict) -> Pass:
    _shape(step, args, "threshold:T with T a non-negative number such as 0.01", (1,))
    value = _number(step, args[0], "expected a threshold such as 0.01")
    if value < 0:
        raise UsageError(f"prune spec {step!r}: the threshold must be non-negative, not {args[0]}")
    return MagnitudePrune(threshold=value, **where)


def _structured(step: str, args: list[str], where: dict) -> list[Pass]:
    _shape(step, args, "structured:F, structured:l1:F or structured:l2:F with F a fraction such as 0.5", (1, 2))
    if len(args) == 2 and args[0] not in ("l1", "l2"):
        raise UsageError(f"prune spec {step!r}: norm {args[0]!r} is not 'l1' or 'l2'")
    norm = Norm(args[0]) if len(args) == 2 else Norm.L1
    return [StructuredPrune(_fraction(step, args[-1]), norm, **where)]


def _dead(step: str, args: list[str], where: dict) -> Pass:
    _shape(step, args, "'dead' with no arguments", (0,))
    return DeadUnits()


def _clip(step: str, args: list[str], where: dict) -> Pass:
    usage = "clip:T, clip:std:K or clip:global:std:K (T, K positive numbers)"
    _shape(step, args, usage, (1, 2, 3))
    if len(args) == 1:
        return ClipWeights(limit=_positive(step, args[0], "the limit T must be positive"), **where)
    scope = args[0] if len(args) == 3 else "layer"
    if args[-2] != "std" or scope not in ("layer", "global"):
        raise UsageError(f"prune spec {step!r}: expected {usage}")
    return ClipWeights(std=_positive(step, args[-1], "K must be positive"), scope=Scope(scope), **where)


def _binary(step: str, args: list[str], where: dict) -> Pass:
    _shape(step, args, "binary or binary:channel", (0, 1))
    if args and args[0] != "channel":
        raise UsageError(f"prune spec {step!r}: expected binary or binary:channel")
    return Binarize(per_channel=bool(args), **where)


def _ternary(step: str, args: list[str], where: dict) -> Pass:
    _shape(step, args, "ternary, ternary:D, ternary:channel or ternary:channel:D", (0, 1, 2))
    per_channel = bool(args) and args[0] == "channel"
    rest = args[1:] if per_channel else args
    if len(rest) > 1 or (len(args) == 2 and not per_channel):
        raise UsageError(f"prune spec {step!r}: expected ternary, ternary:D, ternary:channel or ternary:channel:D")
    options = {}
    if rest:
        options["threshold"] = _number(step, rest[0], "expected D, the zero threshold as a multiple of mean |w|")
        if options["threshold"] < 0:
            raise UsageError(f"prune spec {step!r}: D must be non-negative, not {rest[0]}")
    return Binarize(ternary=True, per_channel=per_channel, **options, **where)


def _refit(step: str, args: list[str], where: dict, context: dict) -> Pass:
    _shape(step, args, "refit or refit:D with D a positive damping such as 0.01", (0, 1))
    options = {"damping": _positive(step, args[0], "the damping D must be positive")} if args else {}
    if context["reference"] is None or context["inputs"] is None:
        raise UsageError(f"prune spec {step!r}: refit needs calibration inputs (compile with calibration data, "
                         "or give api.prune its calibration)")
    return Refit(context["reference"], context["inputs"], **options, **where)


_DISTILL_KEYS = {"epochs": int, "t": float, "temperature": float, "alpha": float, "lr": float, "batch": int,
                 "patience": int, "seed": int, "mix": int}


def distill_options(step: str, args: Sequence[str]) -> dict[str, Any]:
    """The options of a ``distill`` step (``step`` for messages): ``EPOCHS`` first, or ``key=value``."""
    options: dict[str, Any] = {}
    for k, arg in enumerate(args):
        key, sep, value = arg.partition("=")
        if not sep and k == 0:
            key, value = "epochs", arg
        kind = _DISTILL_KEYS.get(key)
        if kind is None:
            raise UsageError(f"prune spec {step!r}: unknown distill option {key!r} (expected EPOCHS or "
                             f"{', '.join(k + '=' for k in _DISTILL_KEYS)})")
        try:
            options["temperature" if key == "t" else key] = kind(value)
        except ValueError:
            raise UsageError(f"prune spec {step!r}: {key}={value!r} is not a number") from None
    return options


def _distill(step: str, args: list[str], where: dict, context: dict) -> Pass:
    """``distill``, ``distill:EPOCHS``, or named keys: ``distill:epochs=60:t=2:alpha=0.5:lr=0.002``."""
    from fpgac.passes.distill import Distill

    options = distill_options(step, args)
    if context["reference"] is None or context["inputs"] is None or not context.get("calibrated", True):
        raise UsageError("distill trains on calibration data: give --calibration X.npz (the inputs, and the labels y "
                         "if there are any)")
    return Distill(context["reference"], context["inputs"], context.get("labels"), **options, **where)


def _none(step: str, args: list[str], where: dict) -> list[Pass]:
    _shape(step, args, "'none' with no arguments", (0,))
    return []


_STEPS = {
    "magnitude": _magnitude,
    "threshold": _threshold,
    "structured": _structured,
    "dead": _dead,
    "clip": _clip,
    "binary": _binary,
    "ternary": _ternary,
    "refit": _refit,
    "distill": _distill,
    "none": _none,
}
