"""What every op family's semantics module shares: the registry entry and the exactness checks.

An op's meaning is three functions over its node (see :class:`Semantics`): ``plan`` derives, once,
every integer the hardware needs (shifts, bounds, reciprocals, intermediate types, tables, window
geometry); ``float`` and ``fixed`` evaluate it on a batch, the fixed one on integer mantissas and
on top of the plan. The golden model is a loop over these (:mod:`.interpret`); the backends read
the plans and derive nothing themselves.

Arrays are batched: a run-time tensor is ``(N, *shape)``; ``args[i]`` is a constant's per-sample
``data`` where input ``i`` must be constant (a weight), else a batched array (a constant used as
data gets a batch axis of size 1); ``None`` for an absent input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from fpgac.ir.graph import Node, Value
from fpgac.ir.types import FixedType
from fpgac.ir.verify import VerifyError

__all__ = [
    "Args",
    "NO_PLAN",
    "Semantics",
    "check_fits",
    "expect_frac",
    "frac",
    "full_batch",
    "is_fixed",
    "lift",
    "optional",
    "same_type",
    "shift_to",
]

Args: TypeAlias = list[np.ndarray | None]
FloatFunction: TypeAlias = Callable[[Node, Args], list[np.ndarray]]
FixedFunction: TypeAlias = Callable[[Node, Any, Args], list[np.ndarray]]


@dataclass(frozen=True)
class _NoPlan:
    """The plan of an op whose hardware needs no derived integer (Reshape, Transpose, ...)."""


NO_PLAN = _NoPlan()


@dataclass(frozen=True)
class Semantics:
    """One op's meaning: its plan and its float and fixed-point evaluation.

    ``plan(node)`` needs a quantized node (every input and output a FixedType) and checks that the
    types fit the op's exact arithmetic (a ``VerifyError`` naming the node otherwise); ``fixed``
    is None for an op with no fixed-point form (``refused`` says why). ``exact_type(node)`` needs
    only the inputs quantized: it is what the Quantize pass gives the output.
    """

    plan: Callable[[Node], Any]
    float: FloatFunction
    fixed: FixedFunction | None
    refused: str = ""
    #: the exact type of the output from the (quantized) input types and constants: the narrowest
    #: that holds every value they allow (None for an op that rounds: Quant, Lookup, LSTM/GRU)
    exact_type: Callable[[Node], FixedType] | None = None


def is_fixed(node: Node) -> bool:
    """Whether every input and output of ``node`` has a FixedType (a quantized node)."""
    values = [v for v in (*node.inputs, *node.outputs) if v is not None]
    return all(isinstance(v.type.dtype, FixedType) for v in values)


def frac(value: Value) -> int:
    """The fractional bits of a quantized value."""
    return value.type.dtype.frac_bits


def shift_to(m: np.ndarray, src: int, dst: int, node: Node) -> np.ndarray:
    """Mantissas with ``src`` fractional bits, exactly, at ``dst >= src`` fractional bits."""
    if dst < src:
        raise VerifyError(f"node {node.name!r} ({node.op.value}): cannot align {src} to {dst} fractional bits exactly")
    return np.left_shift(np.asarray(m, dtype=np.int64), dst - src)


def expect_frac(node: Node, bits: int) -> int:
    """The output must have the exact result's ``bits`` fractional bits; returns them."""
    if frac(node.output) != bits:
        raise VerifyError(
            f"node {node.name!r} ({node.op.value}): output type {node.output.type.dtype} has "
            f"{frac(node.output)} fractional bits, the exact result has {bits}"
        )
    return bits


def check_fits(node: Node, value: Value, array: np.ndarray) -> None:
    """An op's exact result must fit its output type: otherwise the hardware would wrap."""
    t = value.type.dtype
    if not isinstance(t, FixedType):
        raise VerifyError(f"node {node.name!r} ({node.op.value}): output {value.name!r} has type {t}, not fixed point")
    if array.dtype != np.int64:
        raise VerifyError(f"node {node.name!r} ({node.op.value}) gave {array.dtype} mantissas, not int64")
    if array.size and (array.min() < t.min_mantissa or array.max() > t.max_mantissa):
        raise VerifyError(
            f"node {node.name!r} ({node.op.value}): output {value.name!r} mantissas "
            f"{array.min()}..{array.max()} overflow {t} ({t.min_mantissa}..{t.max_mantissa})"
        )


def lift(array: np.ndarray, rank: int) -> np.ndarray:
    """Give a batched array ``rank`` per-sample axes by inserting 1s after the batch axis.

    Per-sample shapes broadcast with trailing axes aligned; inserting the axes here keeps the
    batch axis from being aligned with a per-sample one.
    """
    missing = rank + 1 - array.ndim
    return array.reshape(array.shape[:1] + (1,) * missing + array.shape[1:])


def full_batch(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Broadcast batch axes of size 1 (constants) to the batch size of the others."""
    n = max(a.shape[0] for a in arrays)
    return [np.broadcast_to(a, (n, *a.shape[1:])) for a in arrays]


def optional(args: Args, index: int) -> np.ndarray | None:
    return args[index] if index < len(args) else None


def same_type(node: Node) -> FixedType:
    """The input's type without its rounding and overflow modes: an op that moves or picks values."""
    x = node.inputs[0].type.dtype
    return FixedType(x.width, x.int_bits, x.signed)
