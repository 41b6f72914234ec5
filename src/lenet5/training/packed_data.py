"""``seeds=K``'s data order and its per-seed checkpoints: each seed walks the permutation a
single run with that seed walks, and each seed's weights are saved as a single run's."""

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch

from lenet5.atomic import save_whole
from lenet5.data.batches import PackedBatches
from lenet5.models import LeNet5
from lenet5.training.module import LeNet5Module


class PackedDataModule(L.LightningDataModule):
    """The run's datamodule, with training batches for K seeds; validation and test unchanged."""

    def __init__(self, inner: L.LightningDataModule, seeds: list[int]):
        super().__init__()
        self.inner, self.seeds = inner, list(seeds)

    @property
    def has_validation(self) -> bool:
        return getattr(self.inner, "has_validation", True)

    @property
    def hparams(self):  # what a resume compares with the checkpoint's: the data settings
        return self.inner.hparams

    def prepare_data(self) -> None:
        self.inner.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        self.inner.trainer = self.trainer  # so the splits move to the training device
        self.inner.setup(stage)

    def _epoch_seed(self, seed: int) -> Callable[[], int]:
        # The single run's permutation seed (MNISTDataModule._epoch_seed under that seed).
        return lambda: seed % (2**31) * 1000 + (self.trainer.current_epoch if self.trainer else 0)

    def train_dataloader(self) -> PackedBatches:
        train = self.inner.train_dataloader()
        return PackedBatches(
            train.images,
            train.labels,
            batch_size=train.batch_size,
            # None: the single run's order is fixed (trainer.overfit_batches), so is each seed's.
            shuffle_seeds=[
                None if train.shuffle_seed is None else self._epoch_seed(seed) for seed in self.seeds
            ],
            transform=train.transform,
        )

    def val_dataloader(self):
        return self.inner.val_dataloader()

    def test_dataloader(self):
        return self.inner.test_dataloader()


def save_single_checkpoint(
    path: Path,
    model: LeNet5,
    datamodule_hparams: dict[str, Any],
    epoch: int,
    global_step: int,
    recipe: tuple[Any, Any] = (None, None),
) -> None:
    """A checkpoint of one run that loads as any single run's (load_checkpoint, evaluate,
    predict, export): the LeNet5Module's state_dict and, as hyperparameters, the model config
    and the ``recipe`` it was trained with (optimizer, scheduler; none: the default recipe).
    Written whole or not at all, as the trainer's checkpoints are."""
    module = LeNet5Module(model=copy.deepcopy(model), optimizer=recipe[0], scheduler=recipe[1])
    checkpoint = {
        "epoch": epoch,
        "global_step": global_step,
        "pytorch-lightning_version": L.__version__,
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "datamodule_hyper_parameters": dict(datamodule_hparams),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_whole(path, lambda partial: torch.save(checkpoint, partial))
