"""Passes and the manager that runs them in a visible, named order."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from fpgac.ir import Graph, verify

__all__ = ["Pass", "PassManager"]

log = logging.getLogger(__name__)


class Pass(Protocol):
    """A graph rewrite: a frozen dataclass whose fields are its options.

    ``run`` rewrites the graph in place and says whether it changed anything. Passes keep graph
    output ``Value`` objects (and so their names) alive: they re-point producers instead.
    """

    def run(self, graph: Graph) -> bool: ...


class PassManager:
    """Runs passes in order; with ``verify_each`` the graph is verified after every one."""

    def __init__(self, passes: Sequence[Pass], *, verify_each: bool = False,
                 dump: Callable[[str, Graph], None] | None = None) -> None:
        self.passes = list(passes)
        self.verify_each = verify_each
        self.dump = dump

    def run(self, graph: Graph) -> bool:
        changed = False
        for p in self.passes:
            name = type(p).__name__
            did = p.run(graph)
            changed |= did
            log.debug("pass %s: %s", name, "changed the graph" if did else "no change")
            if self.verify_each:
                verify(graph)
            if self.dump is not None:
                self.dump(name, graph)
        return changed
