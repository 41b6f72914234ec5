"""The speed benchmark's --quick mode: every row on tiny data (its numbers are not asserted)."""

import logging
import runpy
import sys

import pytest

from support import REPO

EXPECTED_SECONDS = 75  # eleven train.py processes (tests/conftest.py hands the costliest out first)
ROWS = (
    "(a) hand-written loop",
    "(a) the same, model.channels_last=true",
    "channels-last memory:",
    "(b) train.py",
    "(c) torchvision transforms + DataLoader",
    "ratio b/a:",
    "framework work per step",
    "ratio c/b:",
    "train.py start-up",
    "train.py fixed costs per job:",
    "fixed costs per 1-epoch job in a multirun",
    "seeds=2, 1 epoch: one run",
    "2 processes",
    "one 2-job multirun",
    "experiment=fast in epochs of (a)",
    "experiment=fast:",
    "2-job grid, 1 epoch each: basic launcher",
    "speed-up",
    "machine:",
    "online SDLM (experiment=paper_sdlm), CPU ms per pattern",
    "plain PyTorch loop (forward, backward, SDLM.step)",
    "train.py, 100 patterns a training step",
    "train.py, data.batch_size=1",
    "online SDLM pass of 60,000 patterns through train.py",
)


def test_quick_benchmark_prints_every_row(hermetic_env, tmp_path, monkeypatch, capsys) -> None:
    """``python benchmarks/speed.py --quick``, run in this process: its train.py jobs are
    subprocesses of their own, and one more interpreter start would check nothing more."""
    for name, value in hermetic_env.items():
        monkeypatch.setenv(name, value)  # also what the benchmark sets for its jobs is undone
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["speed.py", "--quick"])
    monkeypatch.setattr(sys, "path", list(sys.path))  # speed.py puts benchmarks/ first
    lightning = logging.getLogger("lightning.pytorch")
    monkeypatch.setattr(lightning, "level", lightning.level)
    try:
        runpy.run_path(str(REPO / "benchmarks" / "speed.py"), run_name="__main__")
    except SystemExit as exited:  # a failed job: the benchmark exits with its log's tail
        pytest.fail(f"speed.py --quick exited: {exited.code}")
    finally:
        for name in ("jobs", "pipeline", "epoch_timer", "online"):  # benchmarks/ modules, not the tests'
            sys.modules.pop(name, None)
    printed = capsys.readouterr().out
    for row in ROWS:
        assert row in printed, row
