"""Weight initialisation schemes.

``paper``: every weight and bias uniform in +-2.4 / F, F the fan-in of the unit (for the
sparse C3, the inputs that map actually reads). ``xavier``: Glorot uniform, zero biases.
``default``: PyTorch's own initialisation, as the layers were constructed.

``eblearn``: what LeCun's lab code does for its MNIST LeNet-5 (EBLearn, the lab's C++ library),
a departure from the paper's text: every weight uniform in +-1 / sqrt(F), F the unit's fan-in
as for ``paper``, every bias 0, and each subsampling coefficient 0.5. Why it matters for SDLM
(optimizer=sdlm): at the paper's written +-2.4 / F, almost every parameter (97-99.7% on 500
digits) has a diagonal second derivative h below mu = 0.02, so it steps at the cap eta / mu and
the paper's eta = 0.0005 throws the weights away within a few patterns; from this initialisation
under 1% do, the first pass's step sizes come near the range the paper reports (7e-5 to 0.016,
i.e. every h >= 0.011) and eta = 0.0005 trains (docs/results.md, SDLM).
"""

import torch
from torch import nn

from lenet5.models.layers import MaskedConv2d
from lenet5.models.pooling import TrainableSubsampling
from lenet5.models.registry import choose


@torch.no_grad()
def _paper(module: nn.Module) -> None:
    if isinstance(module, MaskedConv2d):
        bound = 2.4 / module.fan_in()
        module.weight.copy_((torch.rand_like(module.weight) * 2 - 1) * bound)
        module.bias.copy_((torch.rand_like(module.bias) * 2 - 1) * bound.flatten())
    elif isinstance(module, (nn.Conv2d, nn.Linear)):
        bound = 2.4 / module.weight[0].numel()
        nn.init.uniform_(module.weight, -bound, bound)
        nn.init.uniform_(module.bias, -bound, bound)
    elif isinstance(module, TrainableSubsampling):
        nn.init.uniform_(module.coefficient, -2.4 / 4, 2.4 / 4)
        nn.init.uniform_(module.bias, -2.4 / 4, 2.4 / 4)


@torch.no_grad()
def _xavier(module: nn.Module) -> None:
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


@torch.no_grad()
def _eblearn(module: nn.Module) -> None:
    if isinstance(module, MaskedConv2d):
        bound = module.fan_in().rsqrt()
        module.weight.copy_((torch.rand_like(module.weight) * 2 - 1) * bound)
        nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.Conv2d, nn.Linear)):
        bound = module.weight[0].numel() ** -0.5
        nn.init.uniform_(module.weight, -bound, bound)
        nn.init.zeros_(module.bias)
    elif isinstance(module, TrainableSubsampling):
        nn.init.constant_(module.coefficient, 0.5)
        nn.init.zeros_(module.bias)


INITS = {"paper": _paper, "eblearn": _eblearn, "xavier": _xavier, "default": lambda module: None}


def initialize(model: nn.Module, scheme: str) -> None:
    model.apply(choose(INITS, "init", scheme))
    for module in model.modules():
        if isinstance(module, MaskedConv2d):
            module.apply_mask()
