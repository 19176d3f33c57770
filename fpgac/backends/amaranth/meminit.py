"""Large memory contents (weight ROMs) as ``$readmemh`` files beside the Verilog.

Amaranth writes a memory's initial contents into the Verilog, one assignment a word, so a folded
design's Verilog would grow with its weight count. :func:`write_verilog` moves the contents of
each initialized memory of at least :data:`MIN_BITS` bits into ``mem/<module>.<memory>.hex`` (one
word a line, in address order, as ``$readmemh`` reads it) and leaves
``initial $readmemh("mem/....hex", memory);`` in its place. The path is relative: yosys,
Verilator and Icarus read it from the folder they run in, which is the design's folder for the
README's commands; ``fpgac verify`` and ``fpgac report`` put the files where their runs look.
Small memories (tables, queues) keep their contents inline.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

__all__ = ["MEM_DIR", "MIN_BITS", "data_files", "write_verilog"]

#: the folder, beside the Verilog, of the memories' contents
MEM_DIR = "mem"
#: the size from which a memory's contents go into a file (about one block RAM's worth)
MIN_BITS = 16384

_MODULE = re.compile(r"^module (\S+?)\s*\(")
_DECL = re.compile(r"^(\s*)reg \[(\d+):0\] (\\\S+ |[A-Za-z_][\w$]*) ?\[(\d+):0\];$")
_READ = re.compile(r'\$readmemh\("([^"]+)"')


def _split(lines: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    out: list[str] = []
    files: dict[str, list[str]] = {}
    module = "top"
    k = 0
    while k < len(lines):
        line = lines[k]
        found = _MODULE.match(line)
        if found:
            module = found.group(1).lstrip("\\")
        decl = _DECL.match(line)
        if decl and k + 1 < len(lines) and lines[k + 1].strip() == "initial begin":
            indent, msb, name, top = decl.groups()
            width, depth = int(msb) + 1, int(top) + 1
            words, j = {}, k + 2
            word = re.compile(rf"^\s*{re.escape(name.strip())} ?\[(\d+)\] = {width}'h([0-9a-fA-F]+);$")
            while j < len(lines) and (m := word.match(lines[j])):
                words[int(m.group(1))] = m.group(2)
                j += 1
            if width * depth >= MIN_BITS and j < len(lines) and lines[j].strip() == "end" and words:
                stem = re.sub(r"[^\w.]", "_", f"{module}.{name.strip().lstrip(chr(92))}")
                path = f"{MEM_DIR}/{stem}.hex"
                n = 1
                while path in files:
                    n += 1
                    path = f"{MEM_DIR}/{stem}_{n}.hex"
                digits = -(-width // 4)
                files[path] = [words.get(a, "0").rjust(digits, "0") for a in range(depth)]
                out += [line, f'{indent}initial $readmemh("{path}", {name});']
                k = j + 1
                continue
        out.append(line)
        k += 1
    return out, files


def write_verilog(text: str, path: Path) -> list[str]:
    """Write the Verilog ``text`` to ``path``, large memories' contents into ``mem/`` beside it
    (the folder made anew); the files written, relative to the Verilog's folder."""
    lines, files = _split(text.split("\n"))
    folder = path.parent / MEM_DIR
    if folder.exists():
        shutil.rmtree(folder)
    for name, words in files.items():
        target = path.parent / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(words) + "\n")
    path.write_text("\n".join(lines))
    return sorted(files)


def data_files(verilog: Path) -> list[str]:
    """The files (relative paths) ``verilog`` reads with ``$readmemh``."""
    return sorted(set(_READ.findall(verilog.read_text())))
