"""The assembled LeNet-5: every combination of choices builds, has the paper's shapes, trains,
keeps C3 sparse under every optimizer, and refuses bad names and bad inputs."""

import itertools
import os
import struct
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from lenet5.models import (
    ACTIVATIONS,
    CONNECTIVITIES,
    HEADS,
    INITS,
    INPUT_SIZE,
    NORMALIZATIONS,
    POOLINGS,
    LeNet5,
)
from lenet5.models.layers import MaskedConv2d

REPO_ROOT = Path(__file__).resolve().parents[2]

# Output shape per image after each layer, from the paper.
LAYER_SHAPES = {
    "c1": (6, 28, 28),
    "s2": (6, 14, 14),
    "c3": (16, 10, 10),
    "s4": (16, 5, 5),
    "c5": (120, 1, 1),
    "f6": (84,),
    "output": (10,),
}

# (LeNet5 keyword, registry) for every axis of the ablation.
AXES = {
    "activation": ACTIVATIONS,
    "pooling": POOLINGS,
    "c3": CONNECTIVITIES,
    "head": HEADS,
    "init": INITS,
    "normalization": NORMALIZATIONS,
}

COMBINATIONS = list(itertools.product(ACTIVATIONS, POOLINGS, CONNECTIVITIES, HEADS, NORMALIZATIONS))


def batch(n: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Random images in [0, 1] and random labels."""
    return torch.rand(n, 1, INPUT_SIZE, INPUT_SIZE), torch.randint(0, 10, (n,))


def absent_c3_weights(model: LeNet5) -> torch.Tensor:
    """Boolean mask over C3's raw weight of the connections Table I leaves out."""
    conv = model.c3.conv
    return (conv.mask == 0).expand_as(conv.weight)


# --- every combination ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("activation", "pooling", "c3", "head", "normalization"),
    COMBINATIONS,
    ids=["-".join(combo) for combo in COMBINATIONS],
)
def test_every_combination_has_the_paper_shapes_and_backpropagates(
    activation, pooling, c3, head, normalization
):
    model = LeNet5(
        activation=activation,
        pooling=pooling,
        c3=c3,
        head=head,
        normalization=normalization,
        input_mean=0.1,
        input_std=0.3,
    )
    images, labels = batch()

    x = model.normalize(images)
    for name in LeNet5.LAYERS:
        x = getattr(model, name)(x)
        assert x.shape == (2, *LAYER_SHAPES[name]), name
        assert torch.isfinite(x).all(), name
    out = model(images)
    torch.testing.assert_close(out, x, atol=0, rtol=0)

    loss = model.loss(out, labels)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    for name, p in trainable:
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{name} got an all-zero gradient"
    if c3 != "full":
        assert (model.c3.conv.weight.grad[absent_c3_weights(model)] == 0).all()

    assert model.predict(out).shape == (2,)
    probabilities = model.probabilities(out)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(2))


@pytest.mark.parametrize("pooling", list(POOLINGS))
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_activation_squashes_every_layer_up_to_f6(activation, pooling):
    model = LeNet5(activation=activation, pooling=pooling)
    expected = ACTIVATIONS[activation]
    for name in ("c1", "c3", "c5", "f6"):
        assert type(getattr(model, name).activation) is expected, name
    for name in ("s2", "s4"):
        layer = getattr(model, name)
        if pooling == "trainable":  # the paper's subsampling squashes its own output
            assert type(layer.activation) is expected, name
        else:  # plain pooling squashes nothing
            assert not any(isinstance(m, tuple(ACTIVATIONS.values())) for m in layer.modules())


@pytest.mark.parametrize("init", list(INITS))
@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("c3", list(CONNECTIVITIES))
def test_every_init_builds_and_gives_finite_outputs(init, head, c3):
    model = LeNet5(init=init, head=head, c3=c3)
    images, labels = batch(4)
    out = model(images)
    assert out.shape == (4, 10)
    assert torch.isfinite(out).all()
    assert torch.isfinite(model.loss(out, labels))
    if c3 != "full":
        assert (model.c3.conv.weight[absent_c3_weights(model)] == 0).all()


@pytest.mark.parametrize("c3", list(CONNECTIVITIES))
def test_paper_init_is_uniform_within_2_4_over_fan_in(c3):
    model = LeNet5(init="paper", c3=c3, head="linear")
    fan_in = {
        "c1": torch.tensor(25.0),
        "c5": torch.tensor(16 * 25.0),
        "f6": torch.tensor(120.0),
    }
    if c3 == "full":
        fan_in["c3"] = torch.tensor(6 * 25.0)
    else:
        fan_in["c3"] = model.c3.conv.mask.sum(dim=1).flatten() * 25  # per C3 map
    for name, fan in fan_in.items():
        layer = getattr(model, name)
        weight = layer.conv.weight if hasattr(layer, "conv") else layer.linear.weight
        bias = layer.conv.bias if hasattr(layer, "conv") else layer.linear.bias
        bound = 2.4 / fan
        per_unit = weight.detach().flatten(1).abs().amax(dim=1)
        assert (per_unit <= bound * (1 + 1e-6)).all(), name
        assert (bias.detach().abs() <= bound * (1 + 1e-6)).all(), name
        assert weight.detach().abs().max() > 0.5 * bound.max(), f"{name} is initialised too small"
    for name in ("s2", "s4"):
        layer = getattr(model, name)
        for p in layer.parameters():
            assert (p.detach().abs() <= 2.4 / 4 * (1 + 1e-6)).all(), name
    head_bound = 2.4 / 84
    assert model.output.linear.weight.detach().abs().max() <= head_bound * (1 + 1e-6)


def test_xavier_init_zeroes_biases():
    model = LeNet5(init="xavier", head="linear")
    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            assert torch.equal(module.bias, torch.zeros_like(module.bias))


# --- parameter counts -------------------------------------------------------------------------


@pytest.mark.parametrize("head", list(HEADS))
@pytest.mark.parametrize("pooling", list(POOLINGS))
@pytest.mark.parametrize("c3", list(CONNECTIVITIES))
def test_parameter_count_excludes_only_absent_c3_weights(c3, pooling, head):
    model = LeNet5(c3=c3, pooling=pooling, head=head)
    stored = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if isinstance(model.c3.conv, MaskedConv2d):
        assert int(model.c3.conv.mask.sum()) == 60  # Table I has exactly 60 connections
        absent = int(absent_c3_weights(model).sum())
        assert absent == (16 * 6 - 60) * 25
    else:
        absent = 0
    assert model.parameter_count() == stored - absent


def test_classic_defaults_have_the_papers_60000_parameters():
    assert LeNet5().parameter_count() == 60_000


# --- C3 stays sparse under training ------------------------------------------------------------

OPTIMIZERS = {
    "adam": lambda params: torch.optim.Adam(params, lr=1e-3, weight_decay=1e-2),
    "sgd_momentum": lambda params: torch.optim.SGD(params, lr=1e-2, momentum=0.9, weight_decay=1e-2),
    "adamw": lambda params: torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2),
}


@pytest.mark.parametrize("init", list(INITS))
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
def test_absent_c3_weights_stay_zero_under_training(optimizer, init):
    model = LeNet5(c3="paper", init=init)
    absent = absent_c3_weights(model)
    present = ~absent
    initial = model.c3.conv.weight.detach().clone()
    assert (initial[absent] == 0).all()
    opt = OPTIMIZERS[optimizer](model.parameters())
    for _ in range(20):
        images, labels = batch(8)
        opt.zero_grad()
        model.loss(model(images), labels).backward()
        opt.step()

    weight = model.c3.conv.weight.detach()
    effective = weight * model.c3.conv.mask
    assert torch.isfinite(weight).all()
    assert (weight[absent] == 0).all(), "raw weights of absent connections moved"
    assert (effective[absent] == 0).all(), "effective weights of absent connections moved"
    assert (weight[present] != initial[present]).all(), "present C3 weights did not train"
    assert model.parameter_count() == 60_000


# --- refusals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", list(AXES))
def test_bad_name_lists_the_options(axis):
    with pytest.raises(ValueError) as excinfo:
        LeNet5(**{axis: "swishy"})
    message = str(excinfo.value)
    assert "swishy" in message
    for option in AXES[axis]:
        assert option in message, f"{option!r} missing from: {message}"


@pytest.mark.parametrize("shape", [(2, 1, 28, 28), (2, 3, 32, 32), (2, 1, 32, 28)])
def test_rejects_inputs_that_are_not_1x32x32(shape):
    model = LeNet5()
    with pytest.raises(ValueError, match=str(INPUT_SIZE)) as excinfo:
        model(torch.rand(shape))
    assert str(tuple(shape)) in str(excinfo.value)


# --- standardize on the real training images ----------------------------------------------------

DATASET_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def data_dir() -> Path:
    return Path(os.environ.get("LENET5_DATA_DIR") or REPO_ROOT.parent / "shared" / "data")


def read_idx_images(path: Path) -> torch.Tensor:
    raw = path.read_bytes()
    magic, count, rows, cols = struct.unpack(">IIII", raw[:16])
    assert magic == 2051, f"{path} is not an idx3 image file"
    return torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8).view(count, rows, cols)


@pytest.mark.parametrize("dataset", list(DATASET_FOLDERS))
def test_standardize_gives_zero_mean_unit_std_on_the_training_images(dataset, build_preset):
    path = data_dir() / DATASET_FOLDERS[dataset] / "raw" / "train-images-idx3-ubyte"
    if not path.is_file():
        pytest.skip(f"{path} not found (set LENET5_DATA_DIR to the folder holding {dataset})")
    images = read_idx_images(path)
    assert images.shape == (60_000, 28, 28)

    model = build_preset("model=modern", f"data={dataset}")
    assert isinstance(model, LeNet5)
    total = total_sq = 0.0
    count = 0
    with torch.no_grad():
        for chunk in images.split(10_000):
            x = F.pad(chunk.float().div(255), (2, 2, 2, 2)).unsqueeze(1)  # background is 0
            assert x.shape[-2:] == (INPUT_SIZE, INPUT_SIZE)
            z = model.normalize(x).double()
            total += z.sum().item()
            total_sq += z.square().sum().item()
            count += z.numel()
    mean = total / count
    std = (total_sq / count - mean**2) ** 0.5
    assert abs(mean) < 1e-3, mean
    assert abs(std - 1) < 1e-3, std


@pytest.mark.parametrize("pooling", list(POOLINGS))
def test_channels_last_changes_layout_not_results(pooling):
    torch.manual_seed(1)
    plain = LeNet5(pooling=pooling, head="linear")
    torch.manual_seed(1)
    fast = LeNet5(pooling=pooling, head="linear", channels_last=True)
    assert plain.state_dict().keys() == fast.state_dict().keys()
    fast.load_state_dict(plain.state_dict())
    images, _ = batch(4)
    torch.testing.assert_close(fast(images), plain(images), atol=1e-5, rtol=1e-5)
