"""The output layers: the paper's RBF units over fixed 7x12 digit codes with the MAP loss, and the
linear softmax head (/work/shared/reference/lenet5.md)."""

import math

import pytest
import torch
import torch.nn.functional as F

from lenet5.models import LeNet5, LinearHead, RBFHead, digit_codes
from lenet5.models.heads import make_head


@pytest.fixture
def codes() -> torch.Tensor:
    return digit_codes()


@pytest.fixture
def rbf() -> RBFHead:
    return RBFHead(j=10.0)


def test_codes_are_plus_minus_one_7x12_bitmaps(codes):
    assert codes.shape == (10, 84)  # 84 = a 7x12 bitmap per digit
    assert set(codes.unique().tolist()) == {-1.0, 1.0}


def test_codes_are_distinct_and_far_apart(codes):
    assert len({tuple(row.tolist()) for row in codes}) == 10
    hamming = (codes[:, None, :] != codes[None, :, :]).sum(dim=2)
    off_diagonal = hamming[~torch.eye(10, dtype=torch.bool)]
    assert off_diagonal.min().item() >= 10


def test_codes_are_a_fixed_buffer_not_parameters(rbf, codes):
    assert list(rbf.parameters()) == []
    assert rbf.codes.requires_grad is False
    assert "codes" in rbf.state_dict()
    torch.testing.assert_close(rbf.codes, codes, atol=0, rtol=0)

    model = LeNet5(head="rbf")
    assert not any(p is model.output.codes for p in model.parameters())
    assert not any(name.startswith("output.") for name, _ in model.named_parameters())
    assert "output.codes" in model.state_dict()


def test_codes_do_not_change_under_backprop():
    model = LeNet5(head="rbf")
    before = model.output.codes.clone()
    out = model(torch.rand(2, 1, 32, 32))
    model.loss(out, torch.tensor([3, 7])).backward()
    assert model.output.codes.grad is None
    torch.testing.assert_close(model.output.codes, before, atol=0, rtol=0)


def test_rbf_penalty_is_squared_euclidean_distance_and_output_its_negative(rbf, codes):
    x = torch.empty(5, 84).uniform_(-1.7, 1.7)
    torch.testing.assert_close(rbf.penalties(x), torch.cdist(x, codes) ** 2, atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(rbf(x), -rbf.penalties(x))


def test_rbf_predicts_the_nearest_code(rbf, codes):
    x = codes + 0.1 * torch.randn_like(codes)  # each code, slightly perturbed, as the F6 output
    assert torch.equal(rbf.predict(rbf(x)), torch.arange(10))
    assert torch.equal(rbf.predict(rbf(codes)), torch.arange(10))
    # The same rule through the assembled model.
    model = LeNet5(head="rbf")
    assert torch.equal(model.predict(model.output(x)), torch.arange(10))
    # Smallest penalty wins, also for points far from every code.
    far = torch.empty(50, 84).uniform_(-1.7, 1.7)
    assert torch.equal(rbf.predict(rbf(far)), torch.cdist(far, codes).argmin(dim=1))
    # Larger output = more likely, as for the linear head.
    assert torch.equal(rbf.predict(rbf(far)), rbf(far).argmax(dim=1))


def test_rbf_probabilities_favour_the_smallest_penalty(rbf, codes):
    probs = rbf.probabilities(rbf(codes))
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(10))
    assert torch.equal(probs.argmax(dim=1), torch.arange(10))


def test_map_loss_is_lower_for_the_right_class(rbf, codes):
    x = codes + 0.1 * torch.randn_like(codes)
    scores = rbf(x)
    for k in range(10):
        right = rbf.loss(scores[k : k + 1], torch.tensor([k]))
        for wrong in set(range(10)) - {k}:
            assert right < rbf.loss(scores[k : k + 1], torch.tensor([wrong]))


@pytest.mark.parametrize("j", [0.5, 2.0, 10.0])
def test_map_loss_matches_the_papers_formula(j):
    head = RBFHead(j=j)
    y = torch.tensor(
        [
            [0.3, 2.0, 5.0, 1.1, 0.7, 3.3, 4.0, 0.2, 6.0, 2.5],
            [7.0, 1.0, 0.5, 3.0, 2.2, 9.0, 4.4, 1.8, 0.9, 5.5],
        ],
        dtype=torch.float64,
    )
    target = torch.tensor([7, 2])
    expected = (
        sum(
            y[p, target[p]].item() + math.log(math.exp(-j) + sum(math.exp(-v) for v in y[p].tolist()))
            for p in range(2)
        )
        / 2
    )
    assert head.loss(-y, target).item() == pytest.approx(expected, rel=1e-12)


def test_map_loss_is_finite_for_huge_penalties(rbf):
    y = torch.full((2, 10), 1e4)
    y[0, 3] = 0.0
    loss = rbf.loss(-y, torch.tensor([3, 5]))
    assert torch.isfinite(loss)


@pytest.mark.parametrize("j", [0.0, -1.0])
def test_map_constant_must_be_positive(j):
    with pytest.raises(ValueError, match="positive"):
        RBFHead(j=j)
    with pytest.raises(ValueError, match="positive"):
        make_head("rbf", j)
    with pytest.raises(ValueError, match="positive"):
        LeNet5(head="rbf", rbf_j=j)


def test_linear_head_is_softmax_cross_entropy():
    head = LinearHead()
    assert sum(p.numel() for p in head.parameters()) == 850
    logits = torch.randn(4, 10)
    target = torch.tensor([1, 0, 9, 4])
    torch.testing.assert_close(head.loss(logits, target), F.cross_entropy(logits, target))
    assert torch.equal(head.predict(logits), logits.argmax(dim=1))
    torch.testing.assert_close(head.probabilities(logits), logits.softmax(dim=1))
