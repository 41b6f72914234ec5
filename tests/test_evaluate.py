"""``evaluate.py ckpt_path=...`` reproduces the test metrics that training reported; the run's
history.csv (behind curves.png) holds the same per-epoch values as its CSV log."""

import csv
import json
import sys
from pathlib import Path

import pytest

from lenet5.results.plots import read_history
from test_plots import PICTURES, assert_png


def test_evaluate_reproduces_the_training_test_accuracy(train_in_process, run_cli, tmp_path: Path) -> None:
    _, run_dir = train_in_process("model=modern", "trainer.max_epochs=2")
    trained = json.loads((run_dir / "metrics.json").read_text())
    out = tmp_path / "evaluation"
    process = run_cli("evaluate.py", f"ckpt_path={trained['best_checkpoint']}", f"hydra.run.dir={out}")
    assert process.returncode == 0, process.stderr[-3000:]
    assert "test/acc:" in process.stdout
    evaluated = json.loads((out / "metrics.json").read_text())
    assert abs(evaluated["test/acc"] - trained["test/acc"]) <= 1e-4
    assert abs(evaluated["test/loss"] - trained["test/loss"]) <= 1e-4
    assert evaluated["test_images"] == 200 and evaluated["dataset"] == "mnist"
    for name in PICTURES:  # curves.png from the training run's history.csv
        assert_png(out / name)


def test_history_matches_the_csv_logger(train_in_process) -> None:
    """history.csv holds each epoch's final values, as the CSV logger records them."""
    _, run_dir = train_in_process("model=modern", "trainer.max_epochs=3")
    logged: dict[str, dict[str, float]] = {}
    with open(run_dir / "csv" / "metrics.csv", newline="") as file:
        for row in csv.DictReader(file):
            for key in ("train/acc", "train/loss", "val/acc"):
                if row.get(key):
                    logged.setdefault(key, {})[row["epoch"]] = float(row[key])
    history = read_history(run_dir / "history.csv")
    assert [row["epoch"] for row in history] == ["0", "1", "2"]
    for row in history:
        assert float(row["train/acc"]) == pytest.approx(logged["train/acc"][row["epoch"]])
        assert float(row["train/loss"]) == pytest.approx(logged["train/loss"][row["epoch"]])
        assert float(row["val/acc"]) == pytest.approx(logged["val/acc"][row["epoch"]])


def test_evaluate_errors_are_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    """evaluate.py's Hydra main in this process; test_hostile_inputs.py sends an evaluate.py
    refusal through the command line."""
    from lenet5.evaluate import main

    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.chdir(tmp_path)

    def evaluate(*overrides: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", ["evaluate.py", *overrides])
        with pytest.raises(SystemExit) as exited:
            main()
        return exited.value.code, capsys.readouterr().err

    status, stderr = evaluate(f"hydra.run.dir={tmp_path / 'none'}")
    assert status == 2
    assert stderr.strip().startswith("error: ckpt_path=")
    bogus = tmp_path / "bogus.ckpt"
    bogus.write_text("not a checkpoint")
    status, stderr = evaluate(f"ckpt_path={bogus}", f"hydra.run.dir={tmp_path / 'bogus'}")
    assert status == 2
    assert stderr.strip() == f"error: {bogus}: not a lenet5 checkpoint (not a PyTorch file)"
