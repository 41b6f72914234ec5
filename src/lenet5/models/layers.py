"""Weighted layers of LeNet-5: a convolution (optionally sparsely connected) and a dense layer,
each followed by the squashing function, each able to count its own parameters and connections."""

import torch
import torch.nn.functional as F
from torch import nn

from lenet5.models.activations import make_activation


class MaskedConv2d(nn.Conv2d):
    """A convolution whose absent input->output map connections are zero by construction.

    The mask is applied in ``forward``, so no optimizer state (momentum, Adam moments, weight
    decay) can bring an absent connection back; the raw weights there start at zero and,
    receiving zero gradient, stay zero.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, mask: torch.Tensor):
        super().__init__(in_channels, out_channels, kernel_size)
        if mask.shape != (out_channels, in_channels):
            raise ValueError(f"mask shape {tuple(mask.shape)} != {(out_channels, in_channels)}")
        self.register_buffer("mask", mask.to(self.weight.dtype)[:, :, None, None])
        self.apply_mask()

    @torch.no_grad()
    def apply_mask(self) -> None:
        self.weight.mul_(self.mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight * self.mask, self.bias)

    def fan_in(self) -> torch.Tensor:
        """Inputs per output map (per unit), shape (out_channels, 1, 1, 1)."""
        return self.mask.sum(dim=1, keepdim=True) * self.kernel_size[0] * self.kernel_size[1]


class ConvLayer(nn.Module):
    def __init__(self, in_maps: int, out_maps: int, activation: str, mask: torch.Tensor | None = None):
        super().__init__()
        self.conv = (
            nn.Conv2d(in_maps, out_maps, 5) if mask is None else MaskedConv2d(in_maps, out_maps, 5, mask)
        )
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] == self.conv.weight.shape[-2:] and not isinstance(self.conv, MaskedConv2d):
            # C5: a 5x5 convolution of a 5x5 input is one matrix product, and as F.linear its
            # backward runs about 4x faster on a CPU than the convolution's. Same weights.
            flat = F.linear(x.flatten(1), self.conv.weight.flatten(1), self.conv.bias)
            return self.activation(flat[:, :, None, None])
        return self.activation(self.conv(x))

    def parameter_count(self) -> int:
        weights = self.conv.weight.numel()
        if isinstance(self.conv, MaskedConv2d):
            weights = int(self.conv.mask.sum()) * self.conv.weight[0, 0].numel()
        return weights + self.conv.bias.numel()

    def connections(self, output_shape: torch.Size) -> int:
        # Weights are shared across positions: every output position repeats every connection.
        return self.parameter_count() * output_shape[-1] * output_shape[-2]


class DenseLayer(nn.Module):
    def __init__(self, in_features: int, out_features: int, activation: str):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.activation = make_activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.linear(x.flatten(1)))

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def connections(self, output_shape: torch.Size) -> int:
        return self.parameter_count()
