"""Subsampling: the paper's trainable S2/S4 units against hand computation, and fixed pooling."""

import itertools

import pytest
import torch

from lenet5.models import ACTIVATIONS, POOLINGS, TrainableSubsampling
from lenet5.models.activations import make_activation
from lenet5.models.pooling import make_pooling


@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_trainable_subsampling_matches_hand_computation(activation):
    layer = TrainableSubsampling(2, activation).double()
    coefficient, bias = [0.5, -1.5], [0.1, -0.2]
    with torch.no_grad():
        layer.coefficient.copy_(torch.tensor(coefficient, dtype=torch.float64))
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float64))
    x = torch.randn(3, 2, 4, 6, dtype=torch.float64)

    pre = torch.empty(3, 2, 2, 3, dtype=torch.float64)
    for n, c, i, j in itertools.product(range(3), range(2), range(2), range(3)):
        block = (
            x[n, c, 2 * i, 2 * j]
            + x[n, c, 2 * i + 1, 2 * j]
            + x[n, c, 2 * i, 2 * j + 1]
            + x[n, c, 2 * i + 1, 2 * j + 1]
        )
        pre[n, c, i, j] = coefficient[c] * block + bias[c]
    expected = make_activation(activation).double()(pre)
    torch.testing.assert_close(layer(x), expected, atol=1e-12, rtol=1e-12)


def test_trainable_subsampling_is_not_average_pooling():
    # With coefficient 1 and bias 0, a linear-ish squash sees the block SUM (4x the average).
    layer = TrainableSubsampling(1, "relu")
    with torch.no_grad():
        layer.coefficient.fill_(1.0)
        layer.bias.zero_()
    assert layer(torch.ones(1, 1, 2, 2)).item() == pytest.approx(4.0)


@pytest.mark.parametrize("channels", [6, 16])
def test_trainable_subsampling_has_two_parameters_per_map(channels):
    layer = make_pooling("trainable", channels, "scaled_tanh")
    assert isinstance(layer, TrainableSubsampling)
    assert sum(p.numel() for p in layer.parameters() if p.requires_grad) == 2 * channels
    assert layer.parameter_count() == 2 * channels


@pytest.mark.parametrize("name", [name for name in POOLINGS if name != "trainable"])
def test_fixed_pooling_has_no_parameters(name):
    layer = make_pooling(name, 6, "scaled_tanh")
    assert list(layer.parameters()) == []
    assert layer.parameter_count() == 0
    x = torch.randn(2, 6, 4, 4)
    blocks = x.unfold(2, 2, 2).unfold(3, 2, 2).reshape(2, 6, 2, 2, 4)  # (..., block of 4)
    expected = {"avg": blocks.mean(dim=-1), "max": blocks.amax(dim=-1)}[name]
    torch.testing.assert_close(layer(x), expected)
