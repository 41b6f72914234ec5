"""The pictures every run folder gets without W&B: curves.png from history.csv, and the
confusion matrix and worst mistakes from one pass over the test split."""

import csv
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image

from lenet5.results.plots import (
    EpochHistory,
    Outcome,
    confusion_matrix,
    per_class_accuracy,
    plot_misclassified,
    read_history,
    write_pictures,
)

PICTURES = ("confusion_matrix.png", "misclassified.png", "curves.png")


def assert_png(path: Path, min_size: int = 200) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert min(image.size) >= min_size, f"{path.name} is only {image.size}"
        image.verify()


def test_run_folder_has_the_three_pictures_without_any_logger(train_in_process) -> None:
    _, run_dir = train_in_process("logger=none", "callbacks.lr_monitor=null", "trainer.max_epochs=2")
    for name in PICTURES:
        assert_png(run_dir / name)
    rows = read_history(run_dir / "history.csv")
    assert [row["epoch"] for row in rows] == ["0", "1"]
    assert all(0 <= float(row["val/acc"]) <= 1 and float(row["train/loss"]) > 0 for row in rows)


def outcome(labels: list[int], predictions: list[int]) -> Outcome:
    n = len(labels)
    probabilities = torch.full((n, 10), 0.02)
    probabilities[torch.arange(n), torch.tensor(predictions)] = 0.82
    return Outcome(torch.rand(n, 1, 32, 32), torch.tensor(labels), torch.tensor(predictions), probabilities)


def test_confusion_matrix_and_per_class_accuracy() -> None:
    result = outcome([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 2, 2])
    matrix = confusion_matrix(result, 10)
    assert matrix[0, 0] == 1 and matrix[0, 1] == 1 and matrix[1, 1] == 2 and matrix[1, 2] == 1
    assert matrix.sum() == 6
    per_class = per_class_accuracy(result, 10)
    assert per_class[:3] == [(2, 1, 0.5), (3, 2, 2 / 3), (1, 1, 1.0)]
    assert result.accuracy == pytest.approx(4 / 6)


def test_pictures_without_mistakes_or_history(tmp_path: Path) -> None:
    perfect = outcome([3, 4, 5], [3, 4, 5])
    written = write_pictures(tmp_path, perfect, [str(d) for d in range(10)], tmp_path / "history.csv")
    assert [p.name for p in written] == ["confusion_matrix.png", "misclassified.png"]
    for path in written:
        assert_png(path)
    plot_misclassified(outcome([1] * 50, [7] * 50), [str(d) for d in range(10)], tmp_path / "many.png")
    assert_png(tmp_path / "many.png")


def test_history_keeps_earlier_epochs_when_resumed(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    history = EpochHistory(path)

    def epoch(number: int, resumed: bool = False) -> None:
        trainer = SimpleNamespace(
            is_global_zero=True,
            ckpt_path="last.ckpt" if resumed else None,
            current_epoch=number,
            callback_metrics={"train/loss": torch.tensor(1.0 / (number + 1)), "val/acc": torch.tensor(0.5)},
        )
        if number == 0 or resumed:
            history.on_fit_start(trainer, None)
        history.on_train_epoch_start(trainer, None)  # nothing due yet: no row
        history.on_train_epoch_end(trainer, None)
        trainer.current_epoch += 1  # as Lightning does before on_train_end
        history.on_train_end(trainer, None)

    for number in range(3):
        epoch(number)
    epoch(2, resumed=True)  # resumed from the end of epoch 1: epoch 2 is run again
    rows = read_history(path)
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert rows[0]["train/acc"] == ""  # not logged: an empty cell, not a crash
    epoch(0)  # a new run in the same folder starts a new history
    with open(path, newline="") as file:
        assert len(list(csv.DictReader(file))) == 1
