"""MNIST-style data held in memory as tensors."""

from lenet5.data.augment import random_affine
from lenet5.data.datamodule import MNISTDataModule, to_model_input
from lenet5.data.files import FILES, ROOT_VARIABLE, load_split

__all__ = [
    "FILES",
    "ROOT_VARIABLE",
    "MNISTDataModule",
    "load_split",
    "random_affine",
    "to_model_input",
]
