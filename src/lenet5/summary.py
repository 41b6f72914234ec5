"""Per-layer table of a configured LeNet-5: ``python -m lenet5.summary model=classic``.

For ``model=classic`` it reproduces the paper's table (60,000 parameters, 340,908 connections).
The same table replaces Lightning's model summary at the start of training (``LayerSummary``).
"""

import hydra
import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from lenet5.config import CONFIG_DIR
from lenet5.models import INPUT_SIZE, LeNet5, build_model


def layer_rows(model: LeNet5) -> list[tuple[str, tuple[int, ...], int, int]]:
    """(layer, output shape per image, trainable parameters, connections) for each layer."""
    shapes: dict[str, torch.Size] = {}
    hooks = [
        getattr(model, name).register_forward_hook(
            lambda module, inputs, output, name=name: shapes.__setitem__(name, output.shape[1:])
        )
        for name in model.LAYERS
    ]
    with torch.no_grad():
        model(torch.zeros(1, 1, INPUT_SIZE, INPUT_SIZE))
    for hook in hooks:
        hook.remove()
    return [
        (
            name.upper(),
            tuple(shapes[name]),
            layer.parameter_count(),
            layer.connections(shapes[name]),
        )
        for name in model.LAYERS
        for layer in [getattr(model, name)]
    ]


def render(model: LeNet5, title: str) -> Table:
    table = Table(title=title)
    for column in ("layer", "output shape", "parameters", "connections"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    rows = layer_rows(model)
    for name, shape, params, connections in rows:
        table.add_row(name, "x".join(map(str, shape)), f"{params:,}", f"{connections:,}")
    table.add_section()
    table.add_row("total", "", f"{sum(r[2] for r in rows):,}", f"{sum(r[3] for r in rows):,}")
    return table


def describe(model: LeNet5) -> str:
    axes = ("activation", "pooling", "c3", "head", "init", "normalization")
    choices = ", ".join(f"{axis}={model.config[axis]}" for axis in axes)
    return f"LeNet-5 ({choices})"


class LayerSummary(ModelSummary):
    """Lightning's summary counts every element of every weight tensor: 60.9 K for the paper's
    network, whose C3 weights outside Table I are masked to zero, and a "Total FLOPs: 0" line
    for a model it cannot measure. This prints the per-layer table above instead (60,000 for
    ``model=classic``, as in the paper), with the connections the paper counts."""

    @rank_zero_only
    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not isinstance(getattr(pl_module, "model", None), LeNet5):
            return super().on_fit_start(trainer, pl_module)
        # A plain copy on the CPU: the trained one may be compiled or on a GPU.
        plain = build_model({**pl_module.model.config, "compile": False, "channels_last": False})
        Console().print(render(plain, describe(plain)))


@hydra.main(config_path=CONFIG_DIR, config_name="summary", version_base="1.3")
def main(cfg: DictConfig) -> None:
    model = instantiate(cfg.model)
    Console().print(render(model, describe(model)))


if __name__ == "__main__":
    main()
