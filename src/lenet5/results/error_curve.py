"""The paper's Figure 5: training and test error measured after every pass, into error_curve.csv.

For the reproduction recipes only (callbacks.error_curve): the test error is measured, never
used to choose anything (they test the last pass whatever the curve says). Both errors are of
whole splits in eval mode after the pass, as the paper plots them: the training error on the
undistorted training images, not the running average of the pass.
"""

import csv
from pathlib import Path

import lightning as L
import torch

from lenet5.atomic import write_rows


@torch.no_grad()
def error_rate(
    model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 2000
) -> float:
    wrong = 0
    for start in range(0, len(labels), batch):
        output = model(images[start : start + batch])
        wrong += int((model.predict(output) != labels[start : start + batch]).sum())
    return wrong / len(labels)


class ErrorCurve(L.Callback):
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = trainer.datamodule
        was_training = pl_module.training
        pl_module.eval()
        row = {"epoch": trainer.current_epoch + 1}
        for split in ("train", "test"):
            images, labels = datamodule.splits[split]
            row[f"{split}_error"] = error_rate(
                pl_module.model, images.to(pl_module.device), labels.to(pl_module.device)
            )
        pl_module.train(was_training)
        rows = [r for r in self._read() if int(r["epoch"]) < row["epoch"]] + [row]
        write_rows(self.path, ["epoch", "train_error", "test_error"], rows)

    def _read(self) -> list[dict[str, str]]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="") as handle:
            return list(csv.DictReader(handle))
