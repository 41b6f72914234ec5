"""Subsampling: the paper's trainable S2/S4 units against hand computation, and fixed pooling
(max pooling's gradient-free CPU path against F.max_pool2d: the same numbers)."""

import itertools

import pytest
import torch

from lenet5.models import ACTIVATIONS, POOLINGS, LeNet5, TrainableSubsampling
from lenet5.models.activations import make_activation
from lenet5.models.pooling import FixedPooling, by_elementwise_max, make_pooling


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


def _blocks() -> dict[str, torch.Tensor]:
    """Maps whose 2x2 blocks have ties, zeros of both signs, NaNs and infinities."""
    generator = torch.Generator().manual_seed(5)
    ties = torch.randint(-2, 3, (2, 3, 6, 8), generator=generator).float()
    special = torch.randn(2, 3, 6, 8, generator=generator)
    special.view(-1)[::7] = float("nan")
    special.view(-1)[3::11] = float("inf")
    special.view(-1)[5::13] = float("-inf")
    special.view(-1)[1::5] = -0.0
    return {
        "ties": ties,
        "special": special,
        "relu_s2": torch.relu(torch.randn(4, 6, 28, 28, generator=generator)),
        "s4": torch.randn(4, 16, 10, 10, generator=generator, dtype=torch.float64),
        "odd": torch.randn(2, 3, 7, 9, generator=generator),  # F.max_pool2d's own path
        "channels_last_ties": ties.contiguous(memory_format=torch.channels_last),
        "channels_last_special": special.contiguous(memory_format=torch.channels_last),
        "transposed": torch.randn(2, 3, 8, 6, generator=generator).transpose(-1, -2),  # operator
    }


@pytest.mark.parametrize("name", list(_blocks()))
def test_max_pool_without_gradient_equals_max_pool2d(name):
    x = _blocks()[name]
    with torch.no_grad():
        expected, got = torch.nn.functional.max_pool2d(x, 2), FixedPooling("max")(x)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    for layout in (torch.contiguous_format, torch.channels_last):
        assert got.is_contiguous(memory_format=layout) == expected.is_contiguous(memory_format=layout)
    assert torch.equal(got.isnan(), expected.isnan())
    assert torch.equal(got.nan_to_num(7.0), expected.nan_to_num(7.0))


@pytest.mark.parametrize(
    ("name", "fast"),
    [("ties", True), ("relu_s2", True), ("s4", True), ("channels_last_ties", True)]
    + [("odd", False), ("transposed", False)],
)
def test_maxima_path_is_taken_for_dense_even_maps_only(name, fast):
    x = _blocks()[name]
    with torch.no_grad():
        assert by_elementwise_max(x) is fast
    assert by_elementwise_max(x.clone().requires_grad_()) is False  # training keeps the operator


def test_max_pool_with_gradient_routes_it_as_max_pool2d():
    x = _blocks()["ties"].requires_grad_()
    reference = x.detach().clone().requires_grad_()
    grad = torch.randn(2, 3, 3, 4)
    FixedPooling("max")(x).backward(grad)
    torch.nn.functional.max_pool2d(reference, 2).backward(grad)
    assert torch.equal(x.grad, reference.grad)


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("c3", ["paper", "full"])
def test_lenet5_with_max_pooling_evaluates_as_it_trains(c3, channels_last):
    """The evaluation path (no gradient) gives the very outputs of the training path."""
    model = LeNet5(
        activation="relu", pooling="max", c3=c3, head="linear", init="default", channels_last=channels_last
    )
    images = torch.rand(8, 1, 32, 32)
    with torch.no_grad():
        evaluated = model(images)
    assert torch.equal(evaluated, model(images).detach())
