"""The in-memory DataModule: splits, batches, sharding, augmentation; real MNIST where marked slow."""

import json
from pathlib import Path

import pytest
import torch

from lenet5.data import MNISTDataModule, random_affine
from lenet5.data.batches import TensorBatches
from support import REAL_DATA, TINY_TEST, TINY_TRAIN


@pytest.fixture
def tiny_module(tiny_data: Path) -> MNISTDataModule:
    module = MNISTDataModule(root=str(tiny_data), download=False, val_size=100, batch_size=64)
    module.setup()
    return module


def test_splits_have_the_documented_sizes_and_format(tiny_module: MNISTDataModule) -> None:
    sizes = {name: len(labels) for name, (_, labels) in tiny_module.splits.items()}
    assert sizes == {"train": TINY_TRAIN - 100, "val": 100, "test": TINY_TEST}
    images, _ = tiny_module.splits["train"]
    assert images.shape[1:] == (1, 32, 32) and images.dtype == torch.float32
    assert images.min() == 0 and images.max() == 1
    assert images[:, :, :2].abs().sum() == 0  # padded with background


def test_validation_hold_out_is_fixed_by_its_seed(tiny_data: Path) -> None:
    def val_labels(seed: int) -> torch.Tensor:
        module = MNISTDataModule(root=str(tiny_data), download=False, val_size=100, split_seed=seed)
        module.setup()
        return module.splits["val"][0]

    assert torch.equal(val_labels(1), val_labels(1))
    assert not torch.equal(val_labels(1), val_labels(2))


def test_batches_cover_the_epoch_and_reshuffle(tiny_module: MNISTDataModule) -> None:
    images, labels = tiny_module.splits["train"]
    epoch = [0]
    batches = TensorBatches(images, labels, 64, shuffle_seed=lambda: epoch[0])
    first = torch.cat([y for _, y in batches])
    assert len(list(batches)) == len(batches) == -(-len(labels) // 64)
    assert sorted(first.tolist()) == sorted(labels.tolist())
    epoch[0] = 1
    assert not torch.equal(first, torch.cat([y for _, y in batches]))


def test_each_process_gets_its_own_equal_shard(tiny_module: MNISTDataModule, monkeypatch) -> None:
    images, _ = tiny_module.splits["train"]
    ids = torch.arange(len(images))
    seen = []
    for rank in range(2):
        monkeypatch.setattr("lenet5.data.batches._rank_and_world", lambda rank=rank: (rank, 2))
        batches = TensorBatches(images, ids, 64, shuffle_seed=lambda: 7)
        seen.append(torch.cat([y for _, y in batches]))
        assert len(list(batches)) == len(batches)
    assert len(seen[0]) == len(seen[1])
    assert len(ids) % 2 == 0 and set(seen[0].tolist()).isdisjoint(seen[1].tolist())
    assert set(seen[0].tolist()) | set(seen[1].tolist()) == set(ids.tolist())


def test_affine_distortion_moves_ink_but_keeps_shape(tiny_module: MNISTDataModule) -> None:
    images, _ = tiny_module.splits["train"]
    batch = images[:32]
    torch.manual_seed(0)
    distorted = random_affine(batch)
    assert distorted.shape == batch.shape
    assert not torch.allclose(distorted, batch)
    assert 0 <= distorted.min() and distorted.max() <= 1
    ink_ratio = distorted.sum() / batch.sum()
    assert 0.7 < ink_ratio < 1.3


@pytest.mark.slow
def test_real_mnist_splits_are_disjoint_and_official() -> None:
    if not (REAL_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"real MNIST not at {REAL_DATA}")
    module = MNISTDataModule(root=str(REAL_DATA), download=False)
    module.setup()
    sizes = {name: len(labels) for name, (_, labels) in module.splits.items()}
    assert sizes == {"train": 55_000, "val": 5_000, "test": 10_000}
    flat = {name: images.flatten(1) for name, (images, _) in module.splits.items()}
    # no validation image is a training image (compare exact pixel content via hashing rows)
    train_rows = {hash(row.numpy().tobytes()) for row in flat["train"]}
    overlap = sum(hash(row.numpy().tobytes()) in train_rows for row in flat["val"])
    assert overlap <= 5  # MNIST has a handful of exact duplicate images; a leaked split would give 5,000


@pytest.mark.slow
def test_modern_one_epoch_on_real_mnist(train_run, hermetic_env) -> None:
    if not (REAL_DATA / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file():
        pytest.skip(f"real MNIST not at {REAL_DATA}")
    hermetic_env["LENET5_DATA_DIR"] = str(REAL_DATA)
    _, run = train_run(
        "model=modern", "data.val_size=5000", "data.batch_size=128", "data.eval_batch_size=1000"
    )
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test/acc"] >= 0.97, metrics
