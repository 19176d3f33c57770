"""The base of every lane-level stage: what a stage reads, what it computes, and where its value goes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...ir import FixedType

__all__ = ["Stage"]


@dataclass
class Stage:
    """One step on a vector of lanes: ``n_in`` lanes of ``in_type`` to ``n_out`` lanes of ``out_type``."""

    node: str
    in_type: FixedType
    out_type: FixedType
    n_in: int
    n_out: int
    #: the stages whose outputs this one reads (``-1 - j``: graph input ``j``); () means the stage before
    sources: tuple[int, ...] = ()
    #: the graph outputs this stage's value is (() in a chain: the last stage is the one output)
    outputs: tuple[int, ...] = ()

    def run(self, inputs: list[np.ndarray]) -> np.ndarray:
        """The stage on batches of flattened input mantissas ``(n, lanes)``: what its component computes."""
        raise NotImplementedError(type(self).__name__)
