"""trainer=ddp_cpu: two gloo processes (ddp_spawn: the children never re-run Hydra or pytest)
train one job into one run folder with one metrics.json."""

import json
from pathlib import Path


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
