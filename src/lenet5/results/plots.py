"""Pictures of a run made from its own files, whatever logger was chosen (csv, wandb or none):
``curves.png`` from ``history.csv``, ``confusion_matrix.png`` and ``misclassified.png`` from
one pass of the best weights over the test split (those two drawn with Pillow, for speed:
``confusion.py``, ``montage.py``).

matplotlib's object API (``Figure``, no pyplot) needs no display and keeps no global state,
so it is safe in sweeps' worker processes.
"""

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lenet5.atomic import save_whole, write_rows
from lenet5.data import MNISTDataModule
from lenet5.models import LeNet5
from lenet5.results.confusion import draw_confusion_matrix
from lenet5.results.montage import draw_montage
from lenet5.run_files import CONFUSION, CURVES, MISCLASSIFIED
from lenet5.run_files import HISTORY as HISTORY  # imported from here by lenet5.run
from lenet5.serving.predict import classify

METRICS = ("train/loss", "train/acc", "val/loss", "val/acc")
# The run's pictures are drawn once per job, so each costs its job: fixed axes rectangles (a
# layout engine measured every label again, ~40% of a figure) and fast PNG compression (the
# files are a few tens of kB either way).
PNG = {"dpi": 100, "pil_kwargs": {"compress_level": 1}}


def save_png(figure: Figure, path: Path) -> None:
    save_whole(path, lambda partial: figure.savefig(partial, format="png", **PNG))


class EpochHistory(L.Callback):
    """Per-epoch train/val loss and accuracy into ``history.csv``, rewritten after every epoch
    so an interrupted run still has its curves; a resumed run keeps its earlier epochs.

    Lightning computes an epoch's metric objects (``train/acc``) only after the
    ``on_train_epoch_end`` hooks, so a row is written when the next epoch starts, or at the end.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.finished: int | None = None  # the epoch whose row is due

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero and trainer.ckpt_path is None:
            self.path.unlink(missing_ok=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.finished = trainer.current_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._write(trainer)

    def _write(self, trainer: L.Trainer) -> None:
        epoch, self.finished = self.finished, None
        if epoch is None or not trainer.is_global_zero:
            return
        logged = trainer.callback_metrics
        row = {"epoch": epoch, **{m: float(logged[m]) if m in logged else "" for m in METRICS}}
        rows = [r for r in read_history(self.path) if int(r["epoch"]) < epoch] + [row]
        write_rows(self.path, ["epoch", *METRICS], rows)


def read_history(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@dataclass
class Outcome:
    images: torch.Tensor  # (N, 1, 32, 32) in [0, 1]
    labels: torch.Tensor
    predictions: torch.Tensor
    probabilities: torch.Tensor  # (N, classes)

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).float().mean())


def predict_test_split(model: LeNet5, datamodule: MNISTDataModule) -> Outcome:
    """Predictions of ``model`` on the official test split, on the CPU."""
    datamodule.setup("test")
    images, labels = (t.cpu() for t in datamodule.splits["test"])
    device = next(model.parameters(), torch.empty(0)).device
    predictions, probabilities = classify(model, images.to(device), datamodule.hparams.eval_batch_size)
    return Outcome(images, labels, predictions.cpu(), probabilities.cpu())


def outcome_of_test_pass(
    model: LeNet5, outputs: list[torch.Tensor], datamodule: MNISTDataModule
) -> Outcome | None:
    """The Outcome of the whole test split from the outputs a test pass kept (None when it did
    not see the whole split in order: a shard under DDP, limit_test_batches)."""
    datamodule.setup("test")
    images, labels = (t.cpu() for t in datamodule.splits["test"])
    output = torch.cat(outputs).float() if outputs else torch.empty(0)
    if len(output) != len(labels):
        return None
    return Outcome(images, labels, model.predict(output).cpu(), model.probabilities(output).cpu())


def confusion_matrix(outcome: Outcome, classes: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class."""
    pairs = outcome.labels * classes + outcome.predictions
    return torch.bincount(pairs, minlength=classes * classes).reshape(classes, classes).numpy()


def per_class_accuracy(outcome: Outcome, classes: int) -> list[tuple[int, int, float]]:
    """(images, correct, accuracy) per true class."""
    matrix = confusion_matrix(outcome, classes)
    totals = matrix.sum(axis=1)
    return [
        (int(total), int(matrix[c, c]), float(matrix[c, c] / total) if total else math.nan)
        for c, total in enumerate(totals)
    ]


def plot_confusion_matrix(outcome: Outcome, names: list[str], path: Path) -> None:
    matrix = confusion_matrix(outcome, len(names))
    title = f"test: accuracy {outcome.accuracy:.2%} on {len(outcome.labels)} images"
    draw_confusion_matrix(matrix, names, title, path)


def plot_misclassified(outcome: Outcome, names: list[str], path: Path, count: int = 36) -> None:
    """The most confident mistakes first: those say most about what the model gets wrong."""
    wrong = (outcome.predictions != outcome.labels).nonzero().flatten()
    confidence = outcome.probabilities[wrong, outcome.predictions[wrong]]
    worst = wrong[confidence.argsort(descending=True)][:count].tolist()
    captions = []
    for index in worst:
        true, predicted = int(outcome.labels[index]), int(outcome.predictions[index])
        confidence = float(outcome.probabilities[index, predicted])
        captions.append((f"true {names[true]}", f"pred {names[predicted]} ({confidence:.0%})"))
    if worst:
        title = f"{len(worst)} most confident of {len(wrong)} mistakes on {len(outcome.labels)} test images"
    else:
        title = f"no mistakes on {len(outcome.labels)} test images"
    draw_montage(outcome.images[worst], captions, title, path)


def plot_curves(history: Path, path: Path, test_accuracy: float | None = None) -> None:
    rows = read_history(history)
    epochs = [int(r["epoch"]) + 1 for r in rows]
    figure = Figure(figsize=(10, 4))
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.92, wspace=0.22)
    for ax, metric, label in zip(figure.subplots(1, 2), ("loss", "acc"), ("loss", "accuracy"), strict=True):
        for split, style in (("train", "o-"), ("val", "s-")):
            values = [float(r[f"{split}/{metric}"] or "nan") for r in rows]
            ax.plot(epochs, values, style, label=split, markersize=4)
        if metric == "acc" and test_accuracy is not None:
            ax.axhline(test_accuracy, color="grey", linestyle="--", label=f"test {test_accuracy:.2%}")
        ax.set(xlabel="epoch", ylabel=label, title=f"{label} per epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="upper right" if metric == "loss" else "lower right")  # "best" searches
    save_png(figure, path)


def write_pictures(folder: Path, outcome: Outcome, names: list[str], history: Path) -> list[Path]:
    """The three PNGs into ``folder``; curves only when there is a history to draw."""
    paths = [folder / CONFUSION, folder / MISCLASSIFIED]
    plot_confusion_matrix(outcome, names, paths[0])
    plot_misclassified(outcome, names, paths[1])
    if read_history(history):
        paths.append(folder / CURVES)
        plot_curves(history, paths[-1], outcome.accuracy)
    return paths


def log_to_tensorboard(loggers: list, pictures: list[Path], optimized: float | None, step: int) -> None:
    """For each TensorBoard logger: ``hp_metric`` set to the optimized metric (its HParams tab
    otherwise shows Lightning's placeholder -1) and the run's pictures under ``pictures/``."""
    from lightning.pytorch.loggers import TensorBoardLogger
    from PIL import Image

    for logger in loggers:
        if not isinstance(logger, TensorBoardLogger):
            continue
        if optimized is not None:
            logger.log_metrics({"hp_metric": optimized}, step=step)
        for path in pictures:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
            logger.experiment.add_image(f"pictures/{path.stem}", pixels, step, dataformats="HWC")
        logger.experiment.flush()
