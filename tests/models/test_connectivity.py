"""The C3 connection table (Table I of the paper, /work/shared/reference/lenet5.md): its mask, and
that each C3 map sees only the S2 maps it reads."""

import pytest
import torch

from lenet5.models import LeNet5
from lenet5.models.connectivity import c3_mask

# Table I of the paper, written independently of the source: the S2 maps each C3 map reads.
C3_READS = [
    {0, 1, 2},
    {1, 2, 3},
    {2, 3, 4},
    {3, 4, 5},
    {4, 5, 0},
    {5, 0, 1},
    {0, 1, 2, 3},
    {1, 2, 3, 4},
    {2, 3, 4, 5},
    {3, 4, 5, 0},
    {4, 5, 0, 1},
    {5, 0, 1, 2},
    {0, 1, 3, 4},
    {1, 2, 4, 5},
    {0, 2, 3, 5},
    {0, 1, 2, 3, 4, 5},
]
C3_TABLE = torch.tensor([[s2 in reads for s2 in range(6)] for reads in C3_READS])  # (16, 6)


def test_paper_c3_mask_is_table_one():
    mask = c3_mask("paper")
    assert mask.shape == (16, 6)
    assert torch.equal(mask.bool(), C3_TABLE)
    assert mask.sum().item() == 60
    model = LeNet5(c3="paper")
    assert torch.equal(model.c3.conv.mask[:, :, 0, 0].bool(), C3_TABLE)


def test_full_c3_connects_everything():
    assert c3_mask("full") is None
    model = LeNet5(c3="full")
    assert not hasattr(model.c3.conv, "mask")
    assert model.c3.parameter_count() == 16 * 6 * 25 + 16


@pytest.fixture
def sparse_c3():
    return LeNet5(c3="paper").c3


@pytest.mark.parametrize("s2_map", range(6))
def test_c3_map_ignores_the_s2_maps_it_does_not_read(sparse_c3, s2_map):
    x = torch.rand(2, 6, 14, 14)
    base = sparse_c3(x)
    perturbed = x.clone()
    perturbed[:, s2_map] += torch.randn(2, 14, 14)
    out = sparse_c3(perturbed)
    for k, reads in enumerate(C3_READS):
        if s2_map in reads:
            assert not torch.allclose(out[:, k], base[:, k], atol=1e-4), f"C3 map {k}"
        else:
            torch.testing.assert_close(out[:, k], base[:, k], atol=1e-6, rtol=0, msg=f"C3 map {k}")


def test_c3_mask_is_applied_in_forward(sparse_c3):
    """Even if the raw weights of absent connections became non-zero, they would not count."""
    x = torch.rand(2, 6, 14, 14)
    base = sparse_c3(x)
    absent = (sparse_c3.conv.mask == 0).expand_as(sparse_c3.conv.weight)
    with torch.no_grad():
        sparse_c3.conv.weight[absent] = torch.randn(int(absent.sum())) * 10
    torch.testing.assert_close(sparse_c3(x), base, atol=1e-6, rtol=0)
