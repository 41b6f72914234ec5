"""Squashing functions; ``scaled_tanh`` is the paper's f(a) = 1.7159 tanh(2a/3), so f(+-1) = +-1."""

import math

import torch
from torch import nn

from lenet5.models.registry import choose


class ScaledTanh(nn.Module):
    # A is chosen so that f(1) = 1 exactly (the paper rounds it to 1.7159).
    S = 2.0 / 3.0
    A = 1.0 / math.tanh(2.0 / 3.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.A * torch.tanh(self.S * x)


ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "scaled_tanh": ScaledTanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
}


def make_activation(name: str) -> nn.Module:
    return choose(ACTIVATIONS, "activation", name)()
