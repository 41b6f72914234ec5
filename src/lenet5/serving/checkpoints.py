"""Opening a training checkpoint outside Lightning's Trainer, for evaluate, predict and export.

``torch.load`` fails deep inside zipfile or pickle on a wrong or damaged file; here every
such failure becomes one UserError naming the file and the problem. Files are read with
``weights_only=True``, so a foreign pickle cannot run code, and the model is built only from
LeNet5's own arguments (``lenet5.models.build_model``), so no ``_target_`` in a file is
instantiated. torch itself never checks the zip's CRC-32s: a file whose bytes changed after it
was written would load and be evaluated as if nothing happened, so every member is checked first.
"""

import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torchvision import datasets

from lenet5.errors import UserError
from lenet5.training.checkpoint_io import first_line, verify_integrity
from lenet5.training.module import LeNet5Module

ZIP_MAGIC = b"PK\x03\x04"  # torch.save's format is a zip archive


def class_names(dataset: str) -> list[str]:
    """Labels to print: the digit itself for MNIST, the garment for Fashion-MNIST."""
    if dataset == "fashion_mnist":
        return list(datasets.FashionMNIST.classes)
    return [str(digit) for digit in range(10)]


@dataclass
class Checkpoint:
    path: Path
    module: LeNet5Module  # in eval mode, on the CPU
    data: dict[str, Any] = field(default_factory=dict)  # the datamodule's hparams, if saved

    @property
    def dataset(self) -> str:
        return self.data.get("dataset", "mnist")

    @property
    def class_names(self) -> list[str]:
        return class_names(self.dataset)


def read_weights(path: Path) -> dict[str, Any]:
    """A checkpoint's contents as plain data (tensors, numbers, strings, containers), never code."""
    with warnings.catch_warnings():  # torch warns about the pickle protocol of foreign files
        warnings.simplefilter("ignore")
        return torch.load(path, map_location="cpu", weights_only=True)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a folder, not a checkpoint file")
    with open(path, "rb") as file:
        head = file.read(len(ZIP_MAGIC))
    if not head:
        raise UserError(f"{path}: empty file, not a lenet5 checkpoint")
    if head == ZIP_MAGIC:
        verify_integrity(path)
    try:
        checkpoint = read_weights(path)
    except Exception as error:  # noqa: BLE001 - zipfile, pickle and torch each fail their own way
        if head != ZIP_MAGIC:
            raise UserError(f"{path}: not a lenet5 checkpoint (not a PyTorch file)") from error
        if not zipfile.is_zipfile(path):
            raise UserError(f"{path}: truncated checkpoint (an incomplete zip archive)") from error
        raise UserError(f"{path}: damaged checkpoint ({first_line(error)})") from error
    if not isinstance(checkpoint, dict):
        raise UserError(f"{path}: not a lenet5 checkpoint (holds a {type(checkpoint).__name__})")
    return checkpoint


def load_checkpoint(path: str | Path) -> Checkpoint:
    """The module with the checkpoint's weights, rebuilt from the model config saved in it."""
    path = Path(path)
    checkpoint = _read(path)
    model_config = checkpoint.get("hyper_parameters", {}).get("model")
    if not isinstance(model_config, dict) or "state_dict" not in checkpoint:
        raise UserError(f"{path}: not a lenet5 checkpoint (no LeNet-5 model config and weights)")
    # Compilation and memory layout only speed training up; evaluating, predicting and
    # exporting (torch.export, tracing) want the plain network, which the weights fit as they are.
    plain = {key: False for key in ("compile", "channels_last") if key in model_config}
    try:
        module = LeNet5Module(model={**model_config, **plain})
        module.load_state_dict(checkpoint["state_dict"])
    except Exception as error:  # noqa: BLE001 - any failure here means the same to the user
        raise UserError(
            f"{path}: not a lenet5 checkpoint (its model does not build: {first_line(error)})"
        ) from error
    module.eval()
    return Checkpoint(path, module, dict(checkpoint.get("datamodule_hyper_parameters", {})))
