"""Subsampling layers S2 and S4.

``trainable`` is the paper's: each output is the sum of a 2x2 block times one trainable
coefficient per map plus one trainable bias per map, then the squashing function.

On a CPU, ``F.max_pool2d`` of (N, C, H, W) maps walks every small map on its own: 6 ms for a
batch of 500 at S2 on 2 cores, about half of an evaluation pass over it. Where no gradient is
wanted (validation, test, predict), ``max_pool_2x2`` takes the same maximum as two elementwise
maxima of strided views, rows then columns (0.4 ms); a maximum is exact, so the outputs are the
same numbers. In channels-last memory the operator takes 4.1 ms and the maxima 0.36 ms.
Training keeps the one operator, whose backward needs the argmax it records.
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


def by_elementwise_max(x: torch.Tensor) -> bool:
    """Whether ``max_pool_2x2`` is the faster path: plain CPU tensors, dense in NCHW or
    channels-last order (the maxima keep it), with even sides when no gradient flows; not under
    tracing, compilation or export, which want the one operator."""
    if torch.jit.is_tracing() or torch.compiler.is_compiling():  # before x is looked at
        return False
    return (
        type(x) is torch.Tensor
        and not (x.requires_grad and torch.is_grad_enabled())
        and x.device.type == "cpu"
        and x.dim() == 4
        and x.shape[-1] % 2 == 0
        and x.shape[-2] % 2 == 0
        and (x.is_contiguous() or is_channels_last(x))
    )


def is_channels_last(x: torch.Tensor) -> bool:
    try:
        return x.is_contiguous(memory_format=torch.channels_last)
    except RuntimeError:  # inside vmap, which cannot say (the seeds=K networks on a GPU)
        return False


def max_pool_2x2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` of even-sided maps, without the argmax (a NaN in a block gives NaN
    either way)."""
    rows = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
    return torch.maximum(rows[..., 0::2], rows[..., 1::2])


class FixedPooling(nn.Module):
    """Average or max pooling: no parameters, no squashing of its own."""

    def __init__(self, kind: str):
        super().__init__()
        self.pool = nn.AvgPool2d(2) if kind == "avg" else nn.MaxPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if isinstance(self.pool, nn.MaxPool2d) and by_elementwise_max(x):
            return max_pool_2x2(x)
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
