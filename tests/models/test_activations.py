"""The squashing functions, against the paper's scaled tanh
(/work/shared/reference/lenet5.md)."""

import pytest
import torch

from lenet5.models import ACTIVATIONS, ScaledTanh
from lenet5.models.activations import make_activation


def test_scaled_tanh_maps_plus_minus_one_to_itself():
    f = ScaledTanh()
    out = f(torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64))
    torch.testing.assert_close(out, torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64), atol=1e-6, rtol=0)


def test_scaled_tanh_constants_are_the_papers():
    assert round(ScaledTanh.A, 4) == 1.7159
    assert ScaledTanh.S == pytest.approx(2 / 3)
    # The asymptote is A, and the function is A tanh(S a).
    a = torch.linspace(-5, 5, 101, dtype=torch.float64)
    torch.testing.assert_close(ScaledTanh()(a), 1.7159 * torch.tanh(2 * a / 3), atol=1e-4, rtol=0)
    assert ScaledTanh()(torch.tensor(50.0)).item() == pytest.approx(1.7159, abs=1e-4)


def test_scaled_tanh_is_the_registered_activation():
    assert isinstance(make_activation("scaled_tanh"), ScaledTanh)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activations_have_no_parameters_and_are_finite(name):
    f = make_activation(name)
    assert list(f.parameters()) == []
    x = torch.linspace(-100, 100, 201)
    assert torch.isfinite(f(x)).all()
