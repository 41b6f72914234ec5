"""Input normalization: the paper's background -0.1 / ink 1.175, identity, standardization."""

import pytest
import torch

from lenet5.models import NORMALIZATIONS, LeNet5
from lenet5.models.normalization import make_normalization


def test_paper_normalization_maps_background_and_ink():
    norm = make_normalization("paper", 0.5, 0.5)  # the dataset statistics are ignored
    out = norm(torch.tensor([0.0, 1.0]))
    torch.testing.assert_close(out, torch.tensor([-0.1, 1.175]), atol=1e-6, rtol=0)
    model = LeNet5(normalization="paper")
    torch.testing.assert_close(model.normalize(torch.tensor([0.0, 1.0])), out, atol=0, rtol=0)


def test_unit_normalization_is_identity():
    norm = make_normalization("unit", 0.3, 0.2)
    x = torch.rand(3, 1, 32, 32)
    assert torch.equal(norm(x), x)


def test_standardize_uses_the_given_statistics():
    mean, std = 0.1, 0.25
    norm = make_normalization("standardize", mean, std)
    out = norm(torch.tensor([mean, mean + std, mean - 2 * std]))
    torch.testing.assert_close(out, torch.tensor([0.0, 1.0, -2.0]), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", list(NORMALIZATIONS))
def test_normalization_values_are_buffers(name):
    model = LeNet5(normalization=name, input_mean=0.1, input_std=0.3)
    assert list(model.normalize.parameters()) == []
    assert not any(n.startswith("normalize.") for n, _ in model.named_parameters())
    state = model.state_dict()
    assert {"normalize.scale", "normalize.shift"} <= set(state)
    # A checkpoint carries the convention: loading it into a differently configured model
    # reproduces the original normalization.
    other = LeNet5(normalization="unit")
    other.load_state_dict(state)
    x = torch.rand(2, 1, 32, 32)
    torch.testing.assert_close(other.normalize(x), model.normalize(x), atol=0, rtol=0)


@pytest.mark.parametrize("std", [0.0, -1.0])
def test_normalization_rejects_non_positive_std(std):
    with pytest.raises(ValueError, match="input_std"):
        make_normalization("standardize", 0.1, std)
