"""What each layer of a LeNet5 answers to an image, and what it learned.

The layers are run one by one, in the order ``LeNet5.forward`` runs them, so the outputs are
the network's own (the last one equals ``model(images)``) for every variant: any activation,
pooling, C3 table or head.
"""

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import torch

from lenet5.models import LeNet5
from lenet5.models.heads import RBFHead
from lenet5.models.layers import MaskedConv2d

# The shape of one image's output at each layer, as drawn (C5 is a strip of 120 units).
SHAPES = {
    "c1": (6, 28, 28),
    "s2": (6, 14, 14),
    "c3": (16, 10, 10),
    "s4": (16, 5, 5),
    "c5": (120,),
    "f6": (84,),
    "output": (10,),
}
# The RBF codes (and F6 drawn beside them) are 7 wide and 12 high.
BITMAP = (12, 7)


@torch.no_grad()
def layer_outputs(model: LeNet5, images: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
    """c1, s2, c3, s4, c5, f6, output for a batch of (N, 1, 32, 32) images in [0, 1]."""
    model.eval()
    if model.channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    x = model.normalize(images)
    outputs: OrderedDict[str, torch.Tensor] = OrderedDict()
    for name in LeNet5.LAYERS:
        x = getattr(model, name)(x)
        outputs[name] = x.flatten(1) if name == "c5" else x.contiguous()
    return outputs


def is_rbf(model: LeNet5) -> bool:
    return isinstance(model.output, RBFHead)


@torch.no_grad()
def c1_kernels(model: LeNet5) -> torch.Tensor:
    """C1's six learned 5x5 kernels, (6, 5, 5)."""
    return model.c1.conv.weight[:, 0].detach().clone()


@torch.no_grad()
def c3_connections(model: LeNet5) -> torch.Tensor:
    """(6 S2 maps, 16 C3 maps), laid out as the paper's Table I: the L2 norm of the 5x5 kernel
    joining each pair as trained, zero where the table has no connection."""
    conv = model.c3.conv
    weight = conv.weight * conv.mask if isinstance(conv, MaskedConv2d) else conv.weight
    return weight.detach().pow(2).sum(dim=(2, 3)).sqrt().T.contiguous()


def c3_table(model: LeNet5) -> torch.Tensor:
    """(6, 16) booleans: which S2 map feeds which C3 map (all True for ``c3=full``)."""
    conv = model.c3.conv
    if isinstance(conv, MaskedConv2d):
        return conv.mask[:, :, 0, 0].T.bool()
    return torch.ones(6, 16, dtype=torch.bool)


@dataclass
class Inspection:
    """One image through the network: what the figure and the page draw."""

    image: torch.Tensor  # (32, 32) in [0, 1], ink = 1: what the model was given
    layers: "OrderedDict[str, torch.Tensor]"  # c1 .. f6, one image's outputs (SHAPES), and output
    probabilities: torch.Tensor  # (classes,)
    digit: int
    penalties: torch.Tensor | None  # (10,) for the RBF head: squared distance of F6 to each code
    code: torch.Tensor | None  # (84,) for the RBF head: the predicted class's +-1 code

    def as_json(self, decimals: int = 3) -> dict[str, Any]:
        """Nested lists of rounded numbers: small enough to send on every stroke."""

        def numbers(tensor: torch.Tensor) -> Any:
            return torch.round(tensor.double(), decimals=decimals).tolist()  # float64: short reprs

        answer: dict[str, Any] = {
            "digit": self.digit,
            "probabilities": [round(float(p), 6) for p in self.probabilities],
            "input": numbers(self.image),
            "layers": {name: numbers(value) for name, value in self.layers.items() if name != "output"},
            "head": "rbf" if self.penalties is not None else "linear",
        }
        if self.penalties is not None:
            answer["rbf_penalties"] = numbers(self.penalties)
            answer["rbf_code"] = numbers(self.code)
        return answer


def inspect_image(model: LeNet5, image: torch.Tensor) -> Inspection:
    """``image``: (1, 1, 32, 32) model-ready, as ``lenet5.serving.predict`` prepares one."""
    outputs = layer_outputs(model, image)
    layers = OrderedDict((name, value[0]) for name, value in outputs.items())
    scores = outputs["output"]
    probabilities = model.probabilities(scores)[0]
    digit = int(model.predict(scores)[0])
    penalties = code = None
    if is_rbf(model):
        penalties = model.output.penalties(outputs["f6"])[0]
        code = model.output.codes[digit].clone()
    return Inspection(image[0, 0], layers, probabilities, digit, penalties, code)
