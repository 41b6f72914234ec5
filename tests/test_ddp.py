"""trainer=ddp_cpu: two gloo processes (ddp_spawn: the children never re-run Hydra or pytest)
train one job into one run folder with one metrics.json."""

import json
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch.distributed as dist
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher

from lenet5.training.spawned import LeaveProcessGroup
from support import QUICK, REPO


def test_ddp_cpu_trains_on_two_processes_into_one_folder(train_run, tmp_path: Path):
    process, run = train_run("trainer=ddp_cpu")
    log = process.stdout + process.stderr
    assert "distributed_backend=gloo" in log
    assert "Starting with 2 processes" in log
    assert "MEMBER: 1/2" in log and "MEMBER: 2/2" in log
    # Two spawns, fit and test: the best checkpoint's validation numbers come with it, not
    # from a third spawn that validates again.
    assert log.count("Starting with 2 processes") == 2

    # Nothing but the run folder in the working directory: no outputs/ from a child process.
    assert [p.name for p in tmp_path.iterdir() if p.name != "wandb_home"] == ["run"]
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("metrics.json")] == [Path("run/metrics.json")]
    assert len(list(tmp_path.rglob(".hydra"))) == 1

    metrics = json.loads((run / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["epochs"] == 1
    assert 0.0 <= metrics["val/acc"] <= 1.0 and metrics["val/loss"] > 0
    assert metrics["best_checkpoint"] and Path(metrics["best_checkpoint"]).is_file()
    # Both processes logged into one CSV (rank 0's), each epoch once.
    rows = (run / "csv" / "metrics.csv").read_text().splitlines()
    assert sum("," in row for row in rows[1:]) >= 1


def test_torchrun_two_processes_into_one_folder(hermetic_env, tmp_path: Path) -> None:
    """torchrun starts both processes (each runs Hydra; the folder is given): Lightning takes
    the ranks from torchrun's environment and relaunches nothing."""
    run = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    ddp = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", f"hydra.run.dir={run}"]
    process = subprocess.run(
        [*command, str(REPO / "train.py"), *QUICK, *ddp],
        cwd=tmp_path, env=hermetic_env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    log = process.stdout + process.stderr
    assert process.returncode == 0, log[-3000:]
    assert "distributed_backend=gloo" in log and "MEMBER: 1/2" in log and "MEMBER: 2/2" in log
    assert [p.name for p in tmp_path.iterdir() if p.name != "wandb_home"] == ["run"]
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("metrics.json")] == [Path("run/metrics.json")]
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 1


@pytest.mark.parametrize("spawned", [True, False])
def test_only_spawned_children_leave_the_process_group(tmp_path: Path, spawned: bool) -> None:
    """A spawned child destroys its group at each stage's teardown; processes that go on to the
    next stage (strategy=ddp's launcher, or none) keep theirs."""
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    interrupt = signal.getsignal(signal.SIGINT)  # Lightning's destroy leaves SIGINT at its default
    try:
        launcher = _MultiProcessingLauncher.__new__(_MultiProcessingLauncher) if spawned else None
        strategy = SimpleNamespace(launcher=launcher, barrier=lambda name: dist.barrier())
        LeaveProcessGroup().teardown(SimpleNamespace(strategy=strategy), None, "fit")
        assert dist.is_initialized() is not spawned
    finally:
        signal.signal(signal.SIGINT, interrupt)
        if dist.is_initialized():
            dist.destroy_process_group()
