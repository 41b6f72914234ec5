"""The paper's diagonal Gauss-Newton second derivatives (its Appendix C), for SDLM.

Backpropagated like the gradient but with squares, layer by layer: for a layer whose outputs
o_i have second derivatives g_i = d2E/do_i2, each input gets  sum_i (do_i/dx_j)^2 g_i  and each
parameter  sum_i (do_i/dw)^2 g_i  (the off-diagonal terms dropped, and the f'' terms, so nothing
is ever negative). A weight shared by many connections (a convolution kernel entry, a subsampling
coefficient) therefore sums over its connections; a sparse C3 kernel only over the connections
Table I keeps; the fixed RBF output has no parameters to estimate.

The paper gives no second derivative for the MAP loss. The choice here is its Gauss-Newton one
with respect to the F6 outputs x: the correct class's penalty y_D = sum_j (x_j - w_Dj)^2 is a
sum of squares (exactly 2 per unit), and the competition term log(e^-j + sum_i e^-y_i) adds
sum_i (dy_i/dx_j)^2 p_i (1 - p_i), p the softmax over (-j, -y). The linear head's softmax
cross-entropy gets p (1 - p) on its logits, the standard Gauss-Newton term.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.grad import conv2d_input, conv2d_weight

from lenet5.models.heads import LinearHead, RBFHead
from lenet5.models.layers import ConvLayer, DenseLayer, MaskedConv2d
from lenet5.models.lenet5 import LeNet5
from lenet5.models.pooling import FixedPooling, TrainableSubsampling


def _activation_slope(activation: nn.Module, pre: torch.Tensor) -> torch.Tensor:
    """f'(a) elementwise, by autograd, so every activation of the family is covered."""
    pre = pre.detach().requires_grad_(True)
    with torch.enable_grad():
        (slope,) = torch.autograd.grad(activation(pre).sum(), pre)
    return slope


def _conv_layer(layer: ConvLayer, x: torch.Tensor, g_out: torch.Tensor, h: dict) -> torch.Tensor:
    conv = layer.conv
    weight = conv.weight * conv.mask if isinstance(conv, MaskedConv2d) else conv.weight
    pre = F.conv2d(x, weight, conv.bias)
    g = g_out.reshape(pre.shape) * _activation_slope(layer.activation, pre) ** 2
    h_weight = conv2d_weight(x.square(), weight.shape, g)
    if isinstance(conv, MaskedConv2d):
        h_weight = h_weight * conv.mask  # absent connections have none
    h[conv.weight] = h_weight
    h[conv.bias] = g.sum(dim=(0, 2, 3))
    return conv2d_input(x.shape, weight.square(), g)


def _dense_layer(layer: DenseLayer, x: torch.Tensor, g_out: torch.Tensor, h: dict) -> torch.Tensor:
    flat = x.flatten(1)
    pre = layer.linear(flat)
    g = g_out.reshape(pre.shape) * _activation_slope(layer.activation, pre) ** 2
    h[layer.linear.weight] = g.T @ flat.square()
    h[layer.linear.bias] = g.sum(dim=0)
    return (g @ layer.linear.weight.square()).reshape(x.shape)


def _trainable_subsampling(
    layer: TrainableSubsampling, x: torch.Tensor, g_out: torch.Tensor, h: dict
) -> torch.Tensor:
    """The four inputs are added, then multiplied by the coefficient: one connection per unit
    whose input is the block sum, and each input reaches its unit with slope = coefficient."""
    block_sum = 4.0 * F.avg_pool2d(x, 2)
    pre = block_sum * layer.coefficient.view(1, -1, 1, 1) + layer.bias.view(1, -1, 1, 1)
    g = g_out * _activation_slope(layer.activation, pre) ** 2
    h[layer.coefficient] = (g * block_sum.square()).sum(dim=(0, 2, 3))
    h[layer.bias] = g.sum(dim=(0, 2, 3))
    spread = F.interpolate(g, scale_factor=2, mode="nearest")
    return _pad_to(spread * layer.coefficient.square().view(1, -1, 1, 1), x.shape)


def _fixed_pooling(layer: FixedPooling, x: torch.Tensor, g_out: torch.Tensor, h: dict) -> torch.Tensor:
    if isinstance(layer.pool, nn.AvgPool2d):
        return _pad_to(F.interpolate(g_out, scale_factor=2, mode="nearest") / 16.0, x.shape)
    # Slope 1 at each block's maximum, 0 elsewhere: max pooling's own backward routes g there
    # (max_unpool2d would too, but has no deterministic kernel for trainer.deterministic=true).
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        (g_x,) = torch.autograd.grad(F.max_pool2d(x, 2), x, grad_outputs=g_out)
    return g_x


def _pad_to(g: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Odd inputs: the last row/column that 2x2 pooling never reads gets nothing."""
    return F.pad(g, (0, shape[-1] - g.shape[-1], 0, shape[-2] - g.shape[-2]))


BACKWARD = {
    ConvLayer: _conv_layer,
    DenseLayer: _dense_layer,
    TrainableSubsampling: _trainable_subsampling,
    FixedPooling: _fixed_pooling,
}


def head_curvature(head: nn.Module, x: torch.Tensor, labels: torch.Tensor, h: dict) -> torch.Tensor:
    """d2E/dx2 at the head's input x (F6's outputs), per pattern; the linear head's own
    parameters get theirs in ``h``."""
    if isinstance(head, RBFHead):
        penalties = head.penalties(x)  # the head outputs their negatives (scores)
        constant = penalties.new_full((len(x), 1), -head.j)
        p = torch.cat([constant, -penalties], dim=1).softmax(dim=1)[:, 1:]
        slopes = 2 * (x.unsqueeze(1) - head.codes)  # dy_i/dx_j, shape (N, 10, 84)
        return 2.0 + (slopes.square() * (p * (1 - p)).unsqueeze(2)).sum(dim=1)
    if isinstance(head, LinearHead):
        p = head(x).softmax(dim=1)
        g = p * (1 - p)
        h[head.linear.weight] = g.T @ x.square()
        h[head.linear.bias] = g.sum(dim=0)
        return g @ head.linear.weight.square()
    raise TypeError(f"no second derivative for head {type(head).__name__}")


@torch.no_grad()
def gauss_newton_diagonal(model: LeNet5, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """{parameter: h} averaged over the patterns given (the paper: 500 before each pass)."""
    inputs = [model.normalize(images)]
    blocks = [getattr(model, name) for name in model.LAYERS[:-1]]
    for block in blocks:
        inputs.append(block(inputs[-1]))
    h: dict[nn.Parameter, torch.Tensor] = {}
    g = head_curvature(model.output, inputs[-1].flatten(1), labels, h)
    for block, x, out in zip(reversed(blocks), reversed(inputs[:-1]), reversed(inputs[1:]), strict=True):
        g = BACKWARD[type(block)](block, x, g.reshape(out.shape), h)
    return {param: value / len(images) for param, value in h.items()}
