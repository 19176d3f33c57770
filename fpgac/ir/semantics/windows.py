"""Sliding windows, the geometry Conv and Pool share: padding, strides, dilations, ceil_mode,
and how many taps of each window an average counts.

A :class:`Window` is derived once per node (:func:`window`), so the golden model and every backend
use the same output positions, the same end padding that ``ceil_mode`` adds, and the same tap
counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from fpgac.ir.graph import Node
from fpgac.ir.ops import Op

__all__ = ["Window", "pad_spatial", "round_half_up_reciprocal", "views", "window"]


@dataclass(frozen=True)
class Window:
    """A Conv's or Pool's sliding window over ``size`` (the spatial shape of its input).

    ``begins``/``ends`` are the explicit pads; ``ends_ext`` adds what ``ceil_mode`` needs for the
    last window to fit (never counted as padding by ``count_include_pad``, as onnxruntime and
    PyTorch do). ``out`` is the spatial output shape.
    """

    size: tuple[int, ...]
    out: tuple[int, ...]
    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begins: tuple[int, ...]
    ends: tuple[int, ...]
    ends_ext: tuple[int, ...]

    @property
    def nd(self) -> int:
        return len(self.size)

    @property
    def taps(self) -> int:
        return int(np.prod(self.kernel))

    def axis_counts(self, axis: int, include_pad: bool) -> np.ndarray:
        """Per output position along ``axis``: how many of the window's taps an average counts
        (those inside the input, or inside it and its explicit pads with ``include_pad``)."""
        n, b, e = self.size[axis], self.begins[axis], self.ends[axis]
        lo, hi = (0, n + b + e) if include_pad else (b, b + n)
        s, d, k = self.strides[axis], self.dilations[axis], self.kernel[axis]
        return np.array([sum(lo <= o * s + t * d < hi for t in range(k)) for o in range(self.out[axis])],
                        dtype=np.int64)

    def counts(self, include_pad: bool) -> np.ndarray:
        """The counted taps of every window, shaped like the spatial output (the counted region
        is a box, so each count is the product of the per-axis ones)."""
        total = np.ones((), dtype=np.int64)
        for axis in range(self.nd):
            total = np.multiply.outer(total, self.axis_counts(axis, include_pad))
        return total


def window(node: Node) -> Window:
    """The window of a Conv (kernel from its weight) or Pool node."""
    a = node.attrs
    size = tuple(node.inputs[0].type.shape[1:])
    out = tuple(node.output.type.shape[1:])
    nd = len(size)
    kernel = tuple(node.inputs[1].type.shape[2:]) if node.op is Op.CONV else tuple(a["kernel"])
    strides, dilations = tuple(a["strides"]), tuple(a["dilations"])
    begins, ends = tuple(a["pads"][:nd]), tuple(a["pads"][nd:])
    extra = [max(0, (o - 1) * s + d * (k - 1) + 1 - (n + b + e))
             for o, s, d, k, n, b, e in zip(out, strides, dilations, kernel, size, begins, ends)]
    return Window(size, out, kernel, strides, dilations, begins, ends, tuple(e + m for e, m in zip(ends, extra)))


def pad_spatial(x: np.ndarray, begins: Sequence[int], ends: Sequence[int], fill: float | int) -> np.ndarray:
    """Pad the spatial axes of a ``(B, C, *spatial)`` array with ``fill``."""
    return np.pad(x, [(0, 0), (0, 0), *zip(begins, ends)], constant_values=fill)


def views(x: np.ndarray, w: Window) -> np.ndarray:
    """View a padded ``(B, C, *spatial)`` array as ``(B, C, *out, *kernel)`` receptive fields.

    An im2col without the copy: a sliding window as wide as the dilated kernel, stepped by the
    stride over the output positions and by the dilation over the taps.
    """
    spans = [d * (k - 1) + 1 for k, d in zip(w.kernel, w.dilations)]
    view = sliding_window_view(x, spans, axis=tuple(range(2, 2 + w.nd)))
    index = (
        (slice(None), slice(None))
        + tuple(slice(0, o * s, s) for o, s in zip(w.out, w.strides))
        + tuple(slice(None, None, d) for d in w.dilations)
    )
    return view[index]


def round_half_up_reciprocal(count: np.ndarray | int, bits: int) -> np.ndarray:
    """``round(2**bits / count)``, ties up, in integers: an average's multiplier (count 0 as 1)."""
    count = np.asarray(count, dtype=np.int64)
    return ((np.int64(1) << (bits + 1)) // np.maximum(count, 1) + 1) >> 1
