"""The GPU-ready paths, on the CPU: model.compile, channels-last, bf16-mixed, data moved once."""

import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from lenet5.data import MNISTDataModule, load_split, to_model_input
from lenet5.models import LeNet5
from lenet5.training.module import LeNet5Module

EXPECTED_SECONDS = 40  # inductor's C++ builds, on a fresh machine (tests/conftest.py's order)
# The three presets' choices: every kind of pooling, C3 and head the ablation can combine.
VARIANTS = {
    "classic": {},
    "d2l": dict(activation="sigmoid", pooling="avg", c3="full", head="linear", init="xavier"),
    "modern": dict(activation="relu", pooling="max", c3="full", head="linear", init="default"),
}


def test_compiled_training_checkpoint_loads_uncompiled(
    train_in_process, tiny_data: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    # In this process (inductor's C++ builds are the cost, not the command line), without a
    # pool of compile workers that each import torch first.
    monkeypatch.setattr("torch._inductor.config.compile_threads", 1)
    request.addfinalizer(torch._dynamo.reset)  # the graphs compiled here hold this test's modules
    # One batch size everywhere (500 / 50 train, 100 / 50 val, 200 / 50 test): fewer compiles.
    _, run = train_in_process("model=classic", "model.compile=true", "data.eval_batch_size=50")
    assert math.isfinite(json.loads((run / "metrics.json").read_text())["test/loss"])
    checkpoint = run / "checkpoints" / "last.ckpt"
    compiled = LeNet5Module.load_from_checkpoint(checkpoint).eval()
    assert compiled.hparams.model["compile"] is True
    config = {**compiled.hparams.model, "compile": False}
    plain = LeNet5Module.load_from_checkpoint(checkpoint, model=config).eval()
    bare = LeNet5(**{k: v for k, v in config.items() if k != "_target_"}).eval()
    weights = torch.load(checkpoint, weights_only=True)["state_dict"]
    bare.load_state_dict({k.removeprefix("model."): v for k, v in weights.items()})

    images = to_model_input(load_split("mnist", tiny_data, train=False)[0][:50])
    with torch.no_grad():
        expected = plain(images)
        assert plain.model._compiled_call_impl is None
        torch.testing.assert_close(bare(images), expected, rtol=0, atol=0)
        torch.testing.assert_close(compiled(images), expected, rtol=1e-5, atol=1e-5)
    assert compiled.model._compiled_call_impl is not None


@pytest.mark.parametrize("variant", VARIANTS)
def test_channels_last_computes_the_same_and_shares_weights(variant: str) -> None:
    torch.manual_seed(0)
    plain = LeNet5(**VARIANTS[variant])
    fast = LeNet5(**VARIANTS[variant], channels_last=True)
    fast.load_state_dict(plain.state_dict())
    assert fast.c1.conv.weight.is_contiguous(memory_format=torch.channels_last)
    images, labels = torch.rand(8, 1, 32, 32), torch.arange(8)
    for model in (plain, fast):
        model.loss(model(images), labels).backward()
    torch.testing.assert_close(fast(images), plain(images))
    for (name, p), q in zip(plain.named_parameters(), fast.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, msg=name)


def test_bf16_mixed_with_channels_last_trains(train_in_process) -> None:
    _, run = train_in_process("model=classic", "trainer.precision=bf16-mixed", "model.channels_last=true")
    assert math.isfinite(json.loads((run / "metrics.json").read_text())["test/loss"])


def test_splits_move_to_the_device_once(tiny_data: Path) -> None:
    datamodule = MNISTDataModule(root=str(tiny_data), download=False, val_size=100)
    datamodule.setup("fit")
    # The meta device stands in for a GPU: a move there is visible, and costs nothing.
    meta = SimpleNamespace(root_device=torch.device("meta"))
    datamodule.trainer = SimpleNamespace(strategy=meta, current_epoch=0)
    first = datamodule.train_dataloader().images
    assert first.device.type == "meta"
    assert datamodule.train_dataloader().images is first
    assert datamodule.splits["train"][0] is first
