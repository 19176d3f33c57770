"""``fpgac verify OUT --against OLD_OUT``: did a new compile move any output bit from a baseline?

The new design's test-vector inputs go through the baseline's own golden model (``OLD_OUT``
keeps its quantized graph), and every output is compared with the new golden outputs: bit for
bit where the output type is unchanged, by value where it changed (then every vector whose
value moved is listed, and the type change said). ``verify`` has proved the new hardware equal
to its golden model, so this compares hardware with hardware.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..backends import load_design
from ..backends.common import VECTORS, load_vectors, read_manifest
from ..backends.verification import mismatched_bits
from ..errors import UsageError
from ..ir import FixedType
from ..ir.fixed import to_float
from ..sim import run_fixed

__all__ = ["Moved", "against", "compare_output"]

#: how many moved vectors are listed per output
SHOW = 5


@dataclass
class Moved:
    """What moved between a baseline and a new compile, per output."""

    vectors: int
    outputs: dict[str, list[int]] = field(default_factory=dict)  # name -> moved vector indices
    notes: dict[str, str] = field(default_factory=dict)  # name -> a type change
    examples: dict[str, list[str]] = field(default_factory=dict)  # name -> the first moved vectors

    @property
    def ok(self) -> bool:
        return not any(self.outputs.values())

    def lines(self) -> list[str]:
        lines = []
        for name, moved in self.outputs.items():
            note = f" ({self.notes[name]})" if name in self.notes else ""
            if not moved:
                lines.append(f"output {name}: unchanged on all {self.vectors} vectors{note}")
                continue
            lines.append(f"output {name}: {len(moved)} of {self.vectors} vectors moved{note}")
            lines += [f"  {line}" for line in self.examples[name]]
        verdict = "PASS: no output moved" if self.ok else "FAIL: outputs moved from the baseline"
        return lines + [f"against baseline  {verdict}"]


def compare_output(new_type: FixedType, old_type: FixedType, now: np.ndarray, was: np.ndarray
                   ) -> tuple[list[int], str | None, list[str]]:
    """One output's mantissas now and in a baseline (batch first): the vectors that moved (every
    bit compared, or the values when the type changed, then said in the note) and the first few."""
    n = len(now)
    now = np.asarray(now, dtype=np.int64).reshape(n, -1)
    was = np.asarray(was, dtype=np.int64).reshape(n, -1)
    note, fmt = None, "mantissas"
    if new_type == old_type:
        rows = np.flatnonzero(mismatched_bits(now, was, new_type))
    else:
        note = f"type {old_type} -> {new_type}"
        now, was, fmt = to_float(now, new_type), to_float(was, old_type), "values"
        rows = np.flatnonzero((now != was).any(axis=1))
    examples = [f"vector {k}: {fmt} {now[k].tolist()}, baseline {was[k].tolist()}" for k in rows[:SHOW]]
    return [int(k) for k in rows], note, examples


def against(out: str | os.PathLike, baseline: str | os.PathLike) -> Moved:
    """Compare the golden outputs of ``out`` with those of the design in ``baseline`` on ``out``'s inputs."""
    out, baseline = Path(out), Path(baseline)
    new, old = read_manifest(out), read_manifest(baseline)
    names_new = [p.name for p in new["outputs"]]
    names_old = [p.name for p in old["outputs"]]
    if names_new != names_old:
        raise UsageError(f"--against {baseline}: its outputs {names_old} are not {out}'s {names_new}")
    if [p.name for p in new["inputs"]] != [p.name for p in old["inputs"]]:
        raise UsageError(f"--against {baseline}: its inputs differ from {out}'s")
    vectors = load_vectors(out / VECTORS)
    graph, _ = load_design(baseline)
    then = run_fixed(graph, vectors.inputs, mantissas=True)
    moved = Moved(vectors.n)
    for port, old_port, now, was in zip(new["outputs"], old["outputs"], vectors.golden, then):
        rows, note, examples = compare_output(port.type, old_port.type, now, was)
        if note:
            moved.notes[port.name] = note
        moved.outputs[port.name], moved.examples[port.name] = rows, examples
    return moved
