"""The convolution layer's fast path: C5 as one matrix product."""

import pytest
import torch

from lenet5.models.layers import ConvLayer


@pytest.mark.parametrize("activation", ["relu", "scaled_tanh"])
def test_c5_as_a_matrix_product_equals_the_convolution(activation):
    """A convolution whose kernel covers its whole input runs as F.linear: same values and
    same gradients as the convolution it replaces."""
    torch.manual_seed(0)
    layer = ConvLayer(16, 120, activation)
    x = torch.randn(7, 16, 5, 5, requires_grad=True)
    fast = layer(x)
    reference = layer.activation(layer.conv(x))
    assert fast.shape == reference.shape == (7, 120, 1, 1)
    torch.testing.assert_close(fast, reference, rtol=1e-5, atol=1e-6)
    (fast_input, fast_weight) = torch.autograd.grad(fast.square().sum(), (x, layer.conv.weight))
    (ref_input, ref_weight) = torch.autograd.grad(reference.square().sum(), (x, layer.conv.weight))
    torch.testing.assert_close(fast_input, ref_input, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast_weight, ref_weight, rtol=1e-4, atol=1e-5)
