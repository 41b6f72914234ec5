"""What every hostile-input test checks (imported by the test_hostile_*.py files)."""

import importlib
from types import SimpleNamespace


def run_main(module: str, args: list[str], capsys) -> SimpleNamespace:
    try:
        status = importlib.import_module(module).main(args)
    except SystemExit as exited:
        status = exited.code
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=status, stdout=captured.out, stderr=captured.err)


def refused(process, *expected: str) -> None:
    """Exit status 2, stderr exactly one line starting ``error:``, naming what was expected."""
    assert process.returncode == 2, process.stderr[-2000:]
    assert "Traceback" not in process.stderr, process.stderr[-2000:]
    lines = process.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), process.stderr[-2000:]
    for text in expected:
        assert text in lines[0], lines[0]
