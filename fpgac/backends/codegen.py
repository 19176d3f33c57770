"""Writing generated source text: lines with an indentation level (C for cpu, C++ for xilinx)."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

__all__ = ["Code", "identifier"]


def identifier(name: str) -> str:
    """A C, C++ and Verilog identifier from a model's name: other characters become ``_``, and a
    leading digit or a name reserved in C++ (``__x``, ``_X``) gets a ``v`` in front."""
    ident = re.sub(r"[^0-9A-Za-z_]", "_", name) or "v"
    if ident[0].isdigit() or ident.startswith("__") or re.match(r"_[A-Z]", ident):
        ident = "v" + ident
    return ident


class Code:
    """Lines of C or C++ with an indentation level: ``with code.indent():``, ``with code.block("for (...)"):``.

    A string holding several lines is split and each line indented; ``#pragma`` lines stay in
    column 0, as Vitis HLS examples write them.
    """

    def __init__(self, indent: int = 0, step: str = "    ") -> None:
        self.lines: list[str] = []
        self.level = indent
        self.step = step

    def __call__(self, *lines: str) -> None:
        for line in lines:
            for part in line.split("\n"):
                if not part or part.startswith("#pragma"):
                    self.lines.append(part)
                else:
                    self.lines.append(self.step * self.level + part)

    @contextlib.contextmanager
    def indent(self) -> Iterator[None]:
        self.level += 1
        try:
            yield
        finally:
            self.level -= 1

    @contextlib.contextmanager
    def block(self, head: str, tail: str = "}") -> Iterator[None]:
        """``head {``, the body one level in, then ``tail``."""
        self((head + " {") if head else "{")
        with self.indent():
            yield
        self(tail)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"
