"""The README's two set-up commands, the CI script that runs the second, and the check that a
test needing a missing tool fails in one line naming what to install."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import toolchain

ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ["pytester"]


def _readme_commands() -> list[str]:
    return re.findall(r"```\n(.+?)\n```", (ROOT / "README.md").read_text())[:2]


def test_ci_runs_the_readmes_test_command_word_for_word() -> None:
    install, tests = _readme_commands()
    assert install.startswith("python3 -m pip install -e . && fpgac compile ")
    assert tests == f"{toolchain.SETUP} && python3 -m pytest -n 2"
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert lines[-1] == tests


def test_the_install_script_installs_every_package_the_tests_name() -> None:
    script = (ROOT / "scripts" / "install-test-deps").read_text()
    listed = re.search(r'^packages="(.+)"$', script, re.M).group(1).split()
    for package in toolchain.APT_PACKAGES:
        wanted = "libpython${pyver}" if package.startswith("libpython") else package
        assert wanted in listed, f"scripts/install-test-deps does not install {package}"
    assert "pip install --quiet --disable-pip-version-check -e '.[test]'" in script
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert {"pytest", "pytest-xdist", "onnxruntime"} <= {re.split(r"[<>=\[]", r)[0] for r in extras["test"]}


def test_a_missing_tool_fails_in_one_line_naming_the_package(pytester, monkeypatch) -> None:
    monkeypatch.setitem(toolchain.TOOLS, "frobnicator", (lambda: False, "apt package frobnicator"))
    pytester.makeconftest("from toolchain import pytest_configure, pytest_runtest_setup\n")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.requires("frobnicator")
        def test_needs_it():
            raise AssertionError("never runs")

        def test_without():
            pass
    """)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:xdist", "-rf")
    result.assert_outcomes(passed=1, errors=1)  # fails in setup, before the test body
    result.stdout.fnmatch_lines(["*frobnicator is not installed: install the apt package frobnicator, or run "
                                 f"`{toolchain.SETUP}` (installs all test dependencies)*"])
    assert "never runs" not in result.stdout.str()
