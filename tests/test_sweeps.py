"""Multiruns through each launcher and the Optuna sweeper, on tiny data: every job finishes or
is recorded as failed, the sweep ends with its failure count, and the report reads the folders."""

import csv
import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from lenet5.sweep import available_cores
from support import QUICK

# A NaN loss on the first steps: SGD with an absurd learning rate through ReLU and a linear head.
DIVERGES = ["model/head=linear", "model/activation=relu", "optimizer=sgd"]


@pytest.fixture
def multirun(tmp_path: Path, run_cli):
    """``train.py -m`` on tiny data with the default sweep folder, as users type it; returns
    (process, sweep folder). Whatever the launcher, the sweep is one folder: multirun.yaml and
    every job's folder side by side, and nothing else under outputs/multirun/."""

    def sweep(*overrides: str, timeout: float = 600):
        process = run_cli("train.py", "-m", *QUICK, *overrides, timeout=timeout)
        folders = sorted((tmp_path / "outputs" / "multirun").glob("*/*"))
        assert len(folders) == 1, (folders, process.stderr[-3000:])
        folder = folders[0]
        # Hydra's basic sweeper writes multirun.yaml; Optuna's writes its results instead.
        assert any((folder / name).is_file() for name in ("multirun.yaml", "optimization_results.yaml"))
        assert f"python -m lenet5.report {folder.relative_to(tmp_path)}" in process.stderr
        return process, folder

    return sweep


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def log_span(job: Path) -> tuple[datetime, datetime]:
    """First and last timestamps of a job's Hydra log (train.log)."""
    stamps = [line[1:24] for line in (job / "train.log").read_text().splitlines() if line.startswith("[20")]
    return tuple(datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in (stamps[0], stamps[-1]))


def test_joblib_grid_and_report(multirun, run_cli):
    process, sweep = multirun(
        "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
        "model/activation=relu,tanh", "model/pooling=avg,max",
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    assert "0 of 4 jobs failed" in process.stderr
    # cores // 2 concurrent jobs, capped by the subprocesses' OMP_NUM_THREADS=1 (support.py).
    threads = min(max(1, available_cores() // 2), 1)
    for job in range(4):
        assert (sweep / str(job) / "metrics.json").is_file()
        assert f"torch threads: {threads} (" in (sweep / str(job) / "train.log").read_text()

    report = run_cli("-m", "lenet5.report", str(sweep))
    assert report.returncode == 0, report.stderr[-3000:]
    rows = read_csv(sweep / "report.csv")
    assert [(r["model/activation"], r["model/pooling"]) for r in rows] == [
        ("relu", "avg"), ("relu", "max"), ("tanh", "avg"), ("tanh", "max"),
    ]  # fmt: skip
    # One epoch on tiny data may stay at chance: such a job is flagged instead of counted.
    for row in rows:
        assert (row["n"], row["flagged"]) in (("1", ""), ("0", "1 chance")), row
        assert row["n"] == "0" or 0.0 <= float(row["test_error_mean"]) <= 1.0
    table = [line for line in (sweep / "report.md").read_text().splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 4  # header and one row per variant
    assert (sweep / "report.png").stat().st_size > 0


def test_failing_job_does_not_stop_the_sweep(multirun, run_cli):
    # The failing job goes first, so the other one runs after it.
    process, sweep = multirun(*DIVERGES, "optimizer.lr=1e30,0.05")
    assert process.returncode == 1
    assert "1 of 2 jobs failed: 0" in process.stderr
    failure = json.loads((sweep / "0" / "failure.json").read_text())
    # Caught as a non-finite loss or as weights blown up, whichever check sees it first.
    assert failure["error"] == "FloatingPointError"
    assert "loss is nan" in failure["message"] or "blew up" in failure["message"]
    assert "optimizer.lr=1e+30" in failure["overrides"]  # as Hydra writes it
    assert failure["config"]["optimizer"]["lr"] == 1e30 and "Traceback" in failure["traceback"]
    assert not (sweep / "0" / "metrics.json").exists()
    assert (sweep / "1" / "metrics.json").is_file()

    report = run_cli("-m", "lenet5.report", str(sweep))
    assert report.returncode == 0, report.stderr[-3000:]
    rows = {r["optimizer.lr"]: r for r in read_csv(sweep / "report.csv")}
    assert (rows["1e+30"]["n"], rows["1e+30"]["failed"], rows["1e+30"]["test_acc_mean"]) == ("0", "1", "")
    assert rows["0.05"]["failed"] == "0"
    assert (rows["0.05"]["n"], rows["0.05"]["flagged"]) in (("1", ""), ("0", "1 chance"))
    text = (sweep / "report.md").read_text()
    assert "## Failed jobs" in text and "- `0` (optimizer.lr=1e+30): FloatingPointError" in text


def test_single_run_failure_exits_non_zero(train_cli_in_process):
    process, folder = train_cli_in_process(*DIVERGES, "optimizer.lr=1e30")
    assert process.returncode == 1
    assert "FloatingPointError" in process.stderr
    assert json.loads((folder / "failure.json").read_text())["error"] == "FloatingPointError"


def test_single_run_user_error_stays_one_line(train_cli_in_process):
    process, folder = train_cli_in_process("data.augment=bogus")
    assert process.returncode == 2
    assert process.stderr.strip().splitlines() == ["error: data.augment='bogus': give none or affine"]
    assert not (folder / "failure.json").exists()


def test_submitit_local_runs_jobs_within_its_cap(multirun):
    process, sweep = multirun(
        "hydra/launcher=submitit_local", "hydra.launcher.array_parallelism=1", "model/pooling=avg,max"
    )
    assert process.returncode == 0, process.stderr[-3000:]
    assert "0 of 2 jobs failed" in process.stderr
    assert all((sweep / str(job) / "metrics.json").is_file() for job in range(2))
    assert (sweep / ".submitit").is_dir()
    assert not (sweep / ".submitit" / "%j").exists()  # no empty folder named after the pattern
    # array_parallelism=1: the second job starts after the first has ended.
    assert log_span(sweep / "1")[0] >= log_span(sweep / "0")[1]


def test_optuna_search_reports_best_value(multirun):
    process, sweep = multirun("hparams_search=mnist_optuna", "hydra.sweeper.n_trials=3")
    assert process.returncode == 0, process.stderr[-3000:]
    assert "0 of 3 jobs failed" in process.stderr
    assert "setup plugin" not in process.stdout + process.stderr  # alembic's import chatter
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    # QUICK's data.batch_size=50, given on the command line, takes that axis out of the search.
    assert set(results["best_params"]) == {"optimizer.lr", "optimizer.weight_decay"}
    best = max(json.loads((sweep / str(j) / "metrics.json").read_text())["val/acc"] for j in range(3))
    assert results["best_value"] == pytest.approx(best)


@pytest.mark.parametrize(("omp", "expected"), [(None, 4), ("1", 1), ("2", 2), ("16", 4), ("junk", 4)])
def test_multirun_threads_are_cores_over_jobs_capped_by_omp(monkeypatch, omp, expected) -> None:
    """8 cores, 2 concurrent jobs: 4 threads each, fewer where OMP_NUM_THREADS asks for fewer."""
    import torch

    from lenet5 import sweep

    monkeypatch.setattr(sweep, "in_multirun", lambda: True)
    monkeypatch.setattr(sweep, "available_cores", lambda: 8)
    monkeypatch.setattr(sweep, "concurrent_jobs", lambda launcher, cores: 2)
    hydra = SimpleNamespace(launcher=None)
    monkeypatch.setattr(sweep, "HydraConfig", SimpleNamespace(get=lambda: hydra))
    if omp is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", omp)
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    assert sweep.limit_threads() == expected
