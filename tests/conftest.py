"""Fixtures shared across test folders, and the check of the tools a test ``requires``."""

from __future__ import annotations

import os
import sys
import types

import pytest
from toolchain import pytest_configure, pytest_runtest_setup  # noqa: F401 (hooks: the `requires` marker)

from fpgac import backends


@pytest.fixture(scope="session", autouse=True)
def build_cache(tmp_path_factory):
    """fpgac's build cache (simulator executables) in the test run's own folder, shared by the
    xdist workers of one run: builds are reused within a run, never across runs."""
    root = tmp_path_factory.getbasetemp()
    shared = root.parent if root.name.startswith("popen-gw") else root
    os.environ["FPGAC_CACHE_DIR"] = str(shared / "fpgac-cache")
    yield shared / "fpgac-cache"


class FakeBackend(types.ModuleType):
    """A backend whose "testbench" returns the golden outputs: the shared machinery tested alone.

    ``flip`` flips the lowest bit of vector 0's first output word; ``fail_write`` makes ``write``
    fail after it has written a file; ``seen`` holds the options ``write`` was given.
    """

    flip = False
    fail_write = False
    seen: dict = {}
    VERIFY_OPTIONS = ()

    def options(self, **given):
        return dict(given)

    def write(self, graph, out, vectors, **options):
        from fpgac.errors import UsageError

        self.seen = options
        (out / "design.txt").write_text("ok")
        if self.fail_write:
            raise UsageError("cannot build this")
        return {"latency": 3}

    def run(self, out, manifest, vectors, n, progress=None, *, build_dir):
        produced = [g.copy() for g in vectors.golden]
        if self.flip:
            produced[0][0].flat[0] ^= 1
        return produced, {"latency_cycles": 3}


@pytest.fixture()
def fake_backend(monkeypatch):
    """Install a FakeBackend as target ``target`` (a new name, or in place of a real one)."""

    def install(target: str) -> FakeBackend:
        module = FakeBackend(f"fpgac_fake_backend_{target}")
        monkeypatch.setitem(sys.modules, module.__name__, module)
        monkeypatch.setitem(backends.TARGETS, target, module.__name__)
        return module

    return install
