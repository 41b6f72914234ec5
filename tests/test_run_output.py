"""What a training run says and logs: the results block at the end, train.log, the honest
layer summary, CSV epochs without a phantom one after fit, TensorBoard's hp_metric and pictures,
and no progress bar when it is switched off."""

import csv
import json
import subprocess
import sys

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from support import QUICK, REPO, subprocess_env


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory, tiny_data):
    """One two-epoch run shared by the tests of this file (they only read it)."""
    folder = tmp_path_factory.mktemp("logged")
    env = subprocess_env(folder, tiny_data)
    process = subprocess.run(
        [
            sys.executable,
            str(REPO / "train.py"),
            *QUICK,
            "trainer.max_epochs=2",
            "logger=[csv,tensorboard]",
            f"hydra.run.dir={folder / 'run'}",
        ],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return process, folder / "run"


def test_results_block_ends_the_run_and_train_log(logged_run):
    process, run = logged_run
    metrics = json.loads((run / "metrics.json").read_text())
    tail = process.stdout.strip().splitlines()[-5:]
    assert tail[0].endswith("results")
    assert f"test accuracy   {metrics['test/acc']:.2%}" in tail[1]
    assert f"(test error {metrics['test/error']:.2%})" in tail[1]
    assert f"best epoch      {metrics['best_epoch']} of 2" in tail[2]
    assert "training time" in tail[3]
    assert tail[4].split()[-1] == str(run.resolve())
    log = (run / "train.log").read_text()
    assert "`Trainer.fit` stopped" in log and "test accuracy" in log


def test_summary_counts_the_paper_parameters(logged_run):
    process, _ = logged_run
    assert "60,000" in process.stdout and "340,908" in process.stdout
    assert "60.9 K" not in process.stdout and "FLOPs" not in process.stdout
    assert "Tip:" not in process.stdout + process.stderr


def test_no_progress_bar_when_dropped(logged_run):
    # QUICK sets callbacks.progress_bar=null: neither Rich's bar nor Lightning's default one.
    process, _ = logged_run
    assert "Epoch 0" not in process.stdout + process.stderr
    assert "it/s" not in process.stdout + process.stderr


def test_csv_has_no_phantom_epoch(logged_run):
    _, run = logged_run
    metrics = json.loads((run / "metrics.json").read_text())
    with open(run / "csv" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    epochs = {int(float(r["epoch"])) for r in rows if r["epoch"]}
    assert epochs == {0, 1}
    (tested,) = [r for r in rows if r["test/acc"]]
    assert int(float(tested["epoch"])) == metrics["best_epoch"] - 1


def test_tensorboard_hp_metric_and_pictures(logged_run):
    _, run = logged_run
    metrics = json.loads((run / "metrics.json").read_text())
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert events.Scalars("hp_metric")[-1].value == pytest.approx(metrics["val/acc"])
    assert {"pictures/confusion_matrix", "pictures/misclassified", "pictures/curves"} <= set(
        events.Tags()["images"]
    )
