"""Running ``fpgac`` in-process for the CLI tests: its exit code and what it printed."""

from __future__ import annotations

from fpgac.cli import main


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error(capsys, *argv) -> str:
    """Run a failing command: exit 2, one line on stderr, no traceback; return the message."""
    code, out, err = run(capsys, *argv)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fpgac: error: ")
    assert "Traceback" not in err
    return lines[0].removeprefix("fpgac: error: ")
