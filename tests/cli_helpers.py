"""Helpers shared by the command-line tests (test_cli*.py)."""

from __future__ import annotations

from pathlib import Path

from niseg.cli import main


def run(capsys, *args) -> tuple[int, str, str]:
    """Run ``niseg ARGS`` in-process; return (exit status, stdout, stderr)."""
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_user_error(status: int, err: str, *words: str) -> None:
    """Exit status 2 and exactly one 'error: ...' line naming ``words``, no traceback."""
    assert status == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])


def files_in(folder: Path) -> set[str]:
    """Names of the entries of ``folder``."""
    return {p.name for p in Path(folder).iterdir()}
