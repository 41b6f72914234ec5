"""What a job does not compute twice gives the same numbers as computing it again: the best
checkpoint's validation metrics recorded during the fit, and the pictures' predictions kept
from the test pass."""

import functools
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lenet5.data import MNISTDataModule
from lenet5.results.plots import outcome_of_test_pass, predict_test_split
from lenet5.training.module import LeNet5Module
from lenet5.training.val_record import ValidationRecord

MODELS = {
    "modern": {"activation": "relu", "pooling": "max", "c3": "full", "head": "linear"},
    "paper": {"activation": "scaled_tanh", "pooling": "trainable", "c3": "paper", "head": "rbf"},
}


def trained(tiny_data: Path, tmp_path: Path, model: dict, **trainer_args):
    torch.manual_seed(0)
    module = LeNet5Module(dict(model), optimizer=functools.partial(torch.optim.Adam, lr=3e-3))
    record = ValidationRecord()
    checkpoint = ModelCheckpoint(dirpath=tmp_path, monitor="val/acc", mode="max", save_top_k=1)
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=3,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[record, checkpoint],
        **trainer_args,
    )
    data = MNISTDataModule(
        root=str(tiny_data), download=False, val_size=100, batch_size=50, eval_batch_size=64
    )
    trainer.fit(module, datamodule=data)
    return module, data, trainer, record, checkpoint.best_model_path


def read(path: str) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize("model", MODELS)
def test_the_recorded_validation_is_the_best_checkpoints(tiny_data: Path, tmp_path: Path, model: str) -> None:
    module, data, trainer, record, best = trained(tiny_data, tmp_path, MODELS[model])
    assert len(record.epochs) == 3
    recorded = record.of_checkpoint(read(best))
    validated = trainer.validate(module, datamodule=data, ckpt_path=best, verbose=False)[0]
    assert set(recorded) == {"val/loss", "val/acc"}
    assert recorded == pytest.approx(validated, rel=1e-6)


def test_a_checkpoint_of_another_fit_is_not_recorded(tiny_data: Path, tmp_path: Path) -> None:
    """A resumed fit (a new record) validates a best checkpoint from before the resume again."""
    *_, record, best = trained(tiny_data, tmp_path, MODELS["modern"])
    assert record.of_checkpoint(read(best))
    assert ValidationRecord().of_checkpoint(read(best)) == {}


def test_the_record_travels_in_the_checkpoint(tiny_data: Path, tmp_path: Path) -> None:
    """What the parent of ddp_spawn sees: its record object learnt nothing during the fit (the
    children had pickled copies), but the checkpoints carry this fit's record."""
    *_, record, best = trained(tiny_data, tmp_path, MODELS["modern"])
    checkpoint = read(best)
    recorded = record.of_checkpoint(checkpoint)
    record.epochs.clear()
    assert record.of_checkpoint(checkpoint) == recorded
    checkpoint["callbacks"][record.state_key]["epochs"].pop(checkpoint["epoch"])
    assert record.of_checkpoint(checkpoint) == {}


@pytest.mark.parametrize("seeds", ["seeds=1", "seeds=2"])
def test_after_the_fit_the_best_checkpoint_is_read_once_as_data(train_in_process, monkeypatch, seeds) -> None:
    """Every torch.load of a run is weights_only; after the fit the best checkpoint is read once
    (its weights, epoch and validation record from the same read), and not at all for K seeds,
    whose best weights are in memory."""
    loads: list[tuple[str, object]] = []
    original = torch.load

    def counted(path, *args, **kwargs):
        loads.append((str(path), kwargs.get("weights_only")))
        return original(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counted)
    _, folder = train_in_process("trainer.max_epochs=2", seeds)
    assert all(weights_only is True for _, weights_only in loads), loads
    best = [path for path, _ in loads if "val_acc" in Path(path).name]
    assert len(best) == (1 if seeds == "seeds=1" else 0), loads


@pytest.mark.parametrize("model", MODELS)
def test_the_pictures_come_from_the_test_pass(tiny_data: Path, tmp_path: Path, model: str) -> None:
    module, data, trainer, _, best = trained(tiny_data, tmp_path, MODELS[model])
    module.test_outputs = []
    tested = trainer.test(module, datamodule=data, ckpt_path=best, verbose=False)[0]
    kept = outcome_of_test_pass(module.model, module.test_outputs, data)
    with torch.no_grad():
        again = predict_test_split(module.model, data)
    assert kept is not None and len(kept.labels) == 200
    assert torch.equal(kept.predictions, again.predictions)
    torch.testing.assert_close(kept.probabilities, again.probabilities)
    assert kept.accuracy == pytest.approx(tested["test/acc"])


def test_a_partial_test_pass_leaves_the_pictures_to_their_own_pass(tiny_data: Path, tmp_path: Path) -> None:
    module, data, trainer, _, best = trained(tiny_data, tmp_path, MODELS["modern"], limit_test_batches=1)
    module.test_outputs = []
    trainer.test(module, datamodule=data, ckpt_path=best, verbose=False)
    assert outcome_of_test_pass(module.model, module.test_outputs, data) is None


def test_the_jobs_of_a_process_read_the_files_once(tiny_data: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "data"
    shutil.copytree(tiny_data, root)
    first = MNISTDataModule(root=str(root), download=False, val_size=100)
    first.setup("fit")
    again = MNISTDataModule(root=str(root), download=False, val_size=100)
    again.setup("fit")
    assert again.splits["train"][0] is first.splits["train"][0]
    other_split = MNISTDataModule(root=str(root), download=False, val_size=50)
    other_split.setup("fit")
    assert len(other_split.splits["val"][1]) == 50
    labels = root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte"
    content = bytearray(labels.read_bytes())
    content[8] = (content[8] + 1) % 10  # the first test label changes: a new copy of the files
    labels.write_bytes(bytes(content))
    changed = MNISTDataModule(root=str(root), download=False, val_size=50)
    changed.setup("fit")
    assert changed.splits["test"][1][0] == (other_split.splits["test"][1][0] + 1) % 10
