"""Subsampling layers S2 and S4.

``trainable`` is the paper's: each output is the sum of a 2x2 block times one trainable
coefficient per map plus one trainable bias per map, then the squashing function.
"""

import torch
import torch.nn.functional as F
from torch import nn

from lenet5.models.activations import make_activation
from lenet5.models.registry import choose


class TrainableSubsampling(nn.Module):
    def __init__(self, channels: int, activation: str):
        super().__init__()
        self.coefficient = nn.Parameter(torch.full((channels,), 0.25))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block_sum = 4.0 * F.avg_pool2d(x, 2)
        a = block_sum * self.coefficient.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return self.activation(a)

    def parameter_count(self) -> int:
        return self.coefficient.numel() + self.bias.numel()

    def connections(self, output_shape: torch.Size) -> int:
        return 5 * output_shape.numel()  # four inputs and the bias per output unit


class FixedPooling(nn.Module):
    """Average or max pooling: no parameters, no squashing of its own."""

    def __init__(self, kind: str):
        super().__init__()
        self.pool = nn.AvgPool2d(2) if kind == "avg" else nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)

    def parameter_count(self) -> int:
        return 0

    def connections(self, output_shape: torch.Size) -> int:
        return 4 * output_shape.numel()


POOLINGS = {
    "avg": lambda channels, activation: FixedPooling("avg"),
    "max": lambda channels, activation: FixedPooling("max"),
    "trainable": TrainableSubsampling,
}


def make_pooling(name: str, channels: int, activation: str) -> nn.Module:
    return choose(POOLINGS, "pooling", name)(channels, activation)
