"""The in-memory DataModule: each split is one tensor, padded to 32x32 and scaled to [0, 1] once.

Validation is a fixed, seeded hold-out of the official training images; test is always the
official 10,000-image test set.
"""

import math

import lightning as L
import torch
import torch.nn.functional as F

from lenet5.data.augment import random_affine
from lenet5.data.batches import TensorBatches
from lenet5.data.files import dataset_class, ensure_downloaded, file_identity, load_split
from lenet5.errors import UserError
from lenet5.models import INPUT_SIZE
from lenet5.validation import check

AUGMENTATIONS = {"none": None, "affine": random_affine}
# The last splits made in this process, keyed by the files (path, size, mtime) and the hold-out:
# the jobs of a sweep run one after another in one process (or a joblib worker) and each
# would otherwise read and convert the same files again (~0.3 s a job). Nothing writes into
# a split's tensors, so the jobs share them.
_SPLITS: dict[tuple, dict[str, tuple[torch.Tensor, torch.Tensor]]] = {}


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 32, 32) in [0, 1], padded with background."""
    pad = (INPUT_SIZE - images.shape[-1]) // 2
    return F.pad(images.unsqueeze(1), (pad, pad, pad, pad)).float().div_(255)


class MNISTDataModule(L.LightningDataModule):
    def __init__(
        self,
        dataset: str = "mnist",
        root: str = "data",
        download: bool = True,
        val_size: int = 5000,
        split_seed: int = 12345,
        batch_size: int = 128,
        eval_batch_size: int = 500,
        augment: str = "none",
        mean: float = 0.0,
        std: float = 1.0,
    ):
        """``mean``/``std`` are the padded training images' pixel statistics; they are not
        applied here (the model normalises its own input) but kept with the checkpoint."""
        super().__init__()
        dataset_class(dataset)  # fail on a bad name before any work
        given = locals()
        for key in ("val_size", "split_seed", "batch_size", "eval_batch_size", "augment", "mean", "std"):
            check(f"data.{key}", given[key])  # the rules of the data.* keys they come from
        self.save_hyperparameters()
        self.splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @property
    def has_validation(self) -> bool:
        """False for the paper's set-up: all training images trained on, no hold-out to validate."""
        return self.hparams.val_size > 0

    def prepare_data(self) -> None:
        ensure_downloaded(self.hparams.dataset, self.hparams.root, self.hparams.download)

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        name, root = self.hparams.dataset, self.hparams.root
        key = (file_identity(name, root), self.hparams.val_size, self.hparams.split_seed)
        if key in _SPLITS:
            self.splits = dict(_SPLITS[key])
            self._check_limits()
            return
        images, labels = load_split(name, root, train=True)
        val_size = self.hparams.val_size
        if val_size >= len(labels):
            raise UserError(
                f"data.val_size={val_size} leaves no training images: the {name} training set "
                f"has {len(labels)}; choose 0 <= data.val_size < {len(labels)}"
            )
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.hparams.split_seed))
        val, train = order[:val_size], order[val_size:]
        test_images, test_labels = load_split(name, root, train=False)
        self.splits = {
            "train": (to_model_input(images[train]), labels[train]),
            "val": (to_model_input(images[val]), labels[val]),
            "test": (to_model_input(test_images), test_labels),
        }
        _SPLITS.clear()
        _SPLITS[key] = dict(self.splits)
        self._check_limits()

    def _check_limits(self) -> None:
        """A trainer.limit_*_batches fraction that leaves no batch: Lightning stops with a
        traceback when it reaches that loader, for the test set after all the training."""
        sizes = {"train": self.hparams.batch_size, "val": self.hparams.eval_batch_size}
        for split in ("train", "val", "test") if self.has_validation else ("train", "test"):
            limit = getattr(self.trainer, f"limit_{split}_batches", None)
            if not isinstance(limit, float) or not 0.0 < limit < 1.0:
                continue
            size = sizes.get(split, self.hparams.eval_batch_size)
            count = len(TensorBatches(*self.splits[split], batch_size=size))
            if int(count * limit) == 0:
                raise UserError(
                    f"trainer.limit_{split}_batches={limit} leaves none of the {count} {split} "
                    f"batches; give a fraction of at least {math.ceil(1e5 / count) / 1e5:g}, "
                    "or a number of batches (an integer)"
                )

    def _device(self) -> torch.device:
        return self.trainer.strategy.root_device if self.trainer is not None else torch.device("cpu")

    def _split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The split on the training device, moved there once rather than batch by batch."""
        device = self._device()
        images, labels = self.splits[name]
        if images.device != device:
            images, labels = images.to(device), labels.to(device)
            self.splits[name] = (images, labels)
        return images, labels

    def _epoch_seed(self) -> int:
        # Same permutation on every process; a new one each epoch; reproducible from the seed.
        epoch = self.trainer.current_epoch if self.trainer is not None else 0
        return torch.initial_seed() % (2**31) * 1000 + epoch

    def train_dataloader(self) -> TensorBatches:
        # trainer.overfit_batches: the same first batches every epoch. Lightning unshuffles only
        # loaders with a sampler, which these batches of tensors do without.
        overfit = getattr(self.trainer, "overfit_batches", 0) > 0
        return TensorBatches(
            *self._split("train"),
            batch_size=self.hparams.batch_size,
            shuffle_seed=None if overfit else self._epoch_seed,
            transform=AUGMENTATIONS[self.hparams.augment],
        )

    def val_dataloader(self) -> TensorBatches | list:
        if not self.has_validation:
            return []  # Lightning skips validation when there is no loader
        return TensorBatches(*self._split("val"), batch_size=self.hparams.eval_batch_size)

    def test_dataloader(self) -> TensorBatches:
        return TensorBatches(*self._split("test"), batch_size=self.hparams.eval_batch_size)

    def predict_dataloader(self) -> TensorBatches:
        """``trainer.predict(module, datamodule=...)``: the official test images."""
        return self.test_dataloader()
