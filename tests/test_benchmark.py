"""The speed benchmark's --quick mode: every row on tiny data (its numbers are not asserted)."""

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
)


def test_quick_benchmark_prints_every_row(run_cli) -> None:
    process = run_cli("benchmarks/speed.py", "--quick", timeout=1200)
    assert process.returncode == 0, process.stdout[-2000:] + process.stderr[-3000:]
    for row in ROWS:
        assert row in process.stdout, row
