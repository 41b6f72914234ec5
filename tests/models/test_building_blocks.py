"""The pieces LeNet-5 is built from, checked against the paper's facts
(/work/shared/reference/lenet5.md): squashing function, RBF output and MAP loss, input
normalization, trainable subsampling, and the C3 connection table."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from lenet5.models import (
    ACTIVATIONS,
    NORMALIZATIONS,
    POOLINGS,
    LeNet5,
    LinearHead,
    RBFHead,
    ScaledTanh,
    TrainableSubsampling,
    digit_codes,
)
from lenet5.models.activations import make_activation
from lenet5.models.connectivity import c3_mask
from lenet5.models.heads import make_head
from lenet5.models.layers import ConvLayer
from lenet5.models.normalization import make_normalization
from lenet5.models.pooling import make_pooling

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


# --- squashing function -----------------------------------------------------------------------


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


# --- RBF output layer and MAP loss ----------------------------------------------------------


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


def test_rbf_output_is_squared_euclidean_distance(rbf, codes):
    x = torch.empty(5, 84).uniform_(-1.7, 1.7)
    torch.testing.assert_close(rbf(x), torch.cdist(x, codes) ** 2, atol=1e-3, rtol=1e-5)


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


def test_rbf_probabilities_favour_the_smallest_penalty(rbf, codes):
    probs = rbf.probabilities(rbf(codes))
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(10))
    assert torch.equal(probs.argmax(dim=1), torch.arange(10))


def test_map_loss_is_lower_for_the_right_class(rbf, codes):
    x = codes + 0.1 * torch.randn_like(codes)
    penalties = rbf(x)
    for k in range(10):
        right = rbf.loss(penalties[k : k + 1], torch.tensor([k]))
        for wrong in set(range(10)) - {k}:
            assert right < rbf.loss(penalties[k : k + 1], torch.tensor([wrong]))


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
    assert head.loss(y, target).item() == pytest.approx(expected, rel=1e-12)


def test_map_loss_is_finite_for_huge_penalties(rbf):
    y = torch.full((2, 10), 1e4)
    y[0, 3] = 0.0
    loss = rbf.loss(y, torch.tensor([3, 5]))
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


# --- input normalization ---------------------------------------------------------------------


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


# --- subsampling -----------------------------------------------------------------------------


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


# --- C3 connectivity -------------------------------------------------------------------------


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
