"""LeNet-5 composed from independent choices, one per axis of the ablation."""

import torch
from torch import nn

from lenet5.models.connectivity import c3_mask
from lenet5.models.heads import make_head
from lenet5.models.init import initialize
from lenet5.models.layers import ConvLayer, DenseLayer
from lenet5.models.normalization import make_normalization
from lenet5.models.pooling import make_pooling

INPUT_SIZE = 32  # the paper's 28x28 digits padded by 2


class LeNet5(nn.Module):
    """Input: (N, 1, 32, 32) images in [0, 1] with ink = 1.

    Layers, named as in the paper: normalize -> C1 -> S2 -> C3 -> S4 -> C5 -> F6 -> output.
    The output is the head's scores, larger = more likely (logits for ``linear``, minus the
    penalties for ``rbf``); ``loss``, ``predict`` and ``probabilities`` apply the head's rules.
    """

    LAYERS = ("c1", "s2", "c3", "s4", "c5", "f6", "output")

    def __init__(
        self,
        activation: str = "scaled_tanh",
        pooling: str = "trainable",
        c3: str = "paper",
        head: str = "rbf",
        init: str = "paper",
        normalization: str = "paper",
        input_mean: float = 0.0,
        input_std: float = 1.0,
        rbf_j: float = 10.0,
        channels_last: bool = False,
        compile: bool = False,
    ):
        """``channels_last`` and ``compile`` change how the network runs, not what it computes
        nor its state_dict keys: weights trained with either load into a plain LeNet5."""
        super().__init__()
        # The constructor's arguments, so a checkpoint can rebuild this network as data.
        self.config = {
            "activation": activation,
            "pooling": pooling,
            "c3": c3,
            "head": head,
            "init": init,
            "normalization": normalization,
            "input_mean": input_mean,
            "input_std": input_std,
            "rbf_j": rbf_j,
            "channels_last": channels_last,
            "compile": compile,
        }
        self.normalize = make_normalization(normalization, input_mean, input_std)
        self.c1 = ConvLayer(1, 6, activation)
        self.s2 = make_pooling(pooling, 6, activation)
        self.c3 = ConvLayer(6, 16, activation, mask=c3_mask(c3))
        self.s4 = make_pooling(pooling, 16, activation)
        self.c5 = ConvLayer(16, 120, activation)
        self.f6 = DenseLayer(120, 84, activation)
        self.output = make_head(head, rbf_j)
        initialize(self, init)
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)
        if compile:
            self.compile()  # compiles __call__ lazily; parameters stay this module's own

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[-3:] != (1, INPUT_SIZE, INPUT_SIZE):
            raise ValueError(
                f"LeNet5 expects (N, 1, {INPUT_SIZE}, {INPUT_SIZE}) images, got {tuple(images.shape)}"
            )
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        x = self.normalize(images)
        for name in self.LAYERS:
            x = getattr(self, name)(x)
        return x

    def loss(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.output.loss(output, target)

    def predict(self, output: torch.Tensor) -> torch.Tensor:
        return self.output.predict(output)

    def probabilities(self, output: torch.Tensor) -> torch.Tensor:
        return self.output.probabilities(output)

    def parameter_count(self) -> int:
        """Trainable parameters that can be non-zero (absent C3 connections excluded)."""
        return sum(getattr(self, name).parameter_count() for name in self.LAYERS)
