"""Helpers the inspection tests import (a conftest is not importable unambiguously): LeNet-5
variants written as train.py's checkpoints without training, and a drawn 7."""

from pathlib import Path

import torch
from PIL import Image, ImageDraw

from lenet5.training.module import LeNet5Module

# Between them, every option of every axis that changes what a layer computes.
VARIANTS = {
    "classic": dict(activation="scaled_tanh", pooling="trainable", c3="paper", head="rbf", init="paper"),
    "d2l": dict(
        activation="sigmoid", pooling="avg", c3="full", head="linear", init="xavier", normalization="unit"
    ),
    "modern": dict(
        activation="relu",
        pooling="max",
        c3="full",
        head="linear",
        init="default",
        normalization="standardize",
        input_mean=0.1307,
        input_std=0.3081,
    ),
    "tanh_channels_last": dict(
        activation="tanh", pooling="trainable", c3="paper", head="linear", channels_last=True
    ),
    "gelu_compiled": dict(activation="gelu", pooling="max", c3="paper", head="rbf", compile=True),
}


def model_config(variant: str) -> dict:
    return {"_target_": "lenet5.models.LeNet5", **VARIANTS[variant]}


def write_checkpoint(path: Path, variant: str = "classic", seed: int = 0) -> Path:
    """What train.py saves (model config, weights, data settings), untrained."""
    torch.manual_seed(seed)
    config = model_config(variant)
    module = LeNet5Module(model=config)
    torch.save(
        {
            "hyper_parameters": {"model": config},
            "state_dict": module.state_dict(),
            "datamodule_hyper_parameters": {"dataset": "mnist"},
        },
        path,
    )
    return path


def draw_seven(path: Path, size: tuple[int, int] = (200, 240), dark_on_light: bool = True) -> Path:
    """A hand-drawn-looking 7: a bar and a slanted stroke."""
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    image = Image.new("L", size, paper)
    w, h = size
    ImageDraw.Draw(image).line(
        [(0.25 * w, 0.2 * h), (0.75 * w, 0.2 * h), (0.45 * w, 0.85 * h)], fill=ink, width=max(3, w // 14)
    )
    image.save(path)
    return path
