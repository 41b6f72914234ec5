"""The model's first, fixed layer: images in [0, 1] (ink = 1) to the network's input convention.

Held as buffers, so a checkpoint or an exported model carries its own input convention.
"""

import torch
from torch import nn

from lenet5.models.registry import choose
from lenet5.validation import check

# The paper: background (white) -> -0.1, ink (black) -> 1.175.
PAPER_BACKGROUND, PAPER_INK = -0.1, 1.175


class InputNormalization(nn.Module):
    def __init__(self, scale: float, shift: float):
        super().__init__()
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


NORMALIZATIONS = {
    "paper": lambda mean, std: (PAPER_INK - PAPER_BACKGROUND, PAPER_BACKGROUND),
    "standardize": lambda mean, std: (1.0 / std, -mean / std),
    "unit": lambda mean, std: (1.0, 0.0),
}


def make_normalization(name: str, mean: float, std: float) -> InputNormalization:
    """``mean`` and ``std`` are the dataset's pixel statistics, used by ``standardize`` only."""
    check("model.input_mean", mean)
    check("model.input_std", std)
    return InputNormalization(*choose(NORMALIZATIONS, "normalization", name)(mean, std))
