"""The LightningModule's training metrics: kept as running sums, logged without per-step cost."""

import csv
import functools
from pathlib import Path

import lightning as L
import pytest
import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.loggers import CSVLogger
from omegaconf import OmegaConf

from lenet5.config import CONFIG_DIR
from lenet5.data import MNISTDataModule
from lenet5.training.module import LeNet5Module


def modern_module(lr: float) -> LeNet5Module:
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        model = compose("train", overrides=["model=modern"]).model
    optimizer = functools.partial(torch.optim.Adam, lr=lr)
    return LeNet5Module(OmegaConf.to_container(model, resolve=True), optimizer=optimizer)


def fit_one_epoch(module: LeNet5Module, data: MNISTDataModule, folder: Path, every: int) -> L.Trainer:
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_val_batches=0,
        log_every_n_steps=every,
        logger=CSVLogger(folder, name="", version=""),
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=data)
    return trainer


def test_epoch_metrics_are_the_means_over_the_training_split(tiny_data: Path, tmp_path: Path) -> None:
    """With lr=0 the weights never change, so the epoch's train/loss and train/acc must equal
    one pass of the same network over the training split."""
    torch.manual_seed(0)
    module = modern_module(lr=0.0)
    data = MNISTDataModule(root=str(tiny_data), download=False, val_size=100, batch_size=50)
    trainer = fit_one_epoch(module, data, tmp_path, every=3)
    images, labels = data.splits["train"]
    with torch.no_grad():
        output = module.model(images)
    expected_loss = module.model.loss(output, labels)
    expected_acc = (module.model.predict(output) == labels).float().mean()
    assert trainer.callback_metrics["train/loss"] == pytest.approx(float(expected_loss), rel=1e-5)
    assert trainer.callback_metrics["train/acc"] == pytest.approx(float(expected_acc), abs=1e-6)


def test_step_loss_reaches_the_logger_every_n_steps(tiny_data: Path, tmp_path: Path) -> None:
    data = MNISTDataModule(root=str(tiny_data), download=False, val_size=100, batch_size=50)
    fit_one_epoch(modern_module(lr=3e-3), data, tmp_path, every=3)  # 500 images: 10 steps
    with open(tmp_path / "metrics.csv", newline="") as file:
        rows = [row for row in csv.DictReader(file) if row.get("train/loss_step")]
    assert [int(row["step"]) for row in rows] == [2, 5, 8]
    assert all(float(row["train/loss_step"]) > 0 for row in rows)


def test_a_diverging_run_stops_with_a_clear_error(tiny_data: Path, tmp_path: Path) -> None:
    data = MNISTDataModule(root=str(tiny_data), download=False, val_size=100, batch_size=50)
    with pytest.raises(FloatingPointError, match="training loss is nan at epoch 0.*lower optimizer.lr"):
        fit_one_epoch(modern_module(lr=1e30), data, tmp_path, every=50)
