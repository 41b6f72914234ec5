"""The lean training step (lenet5.training.lean) trains exactly as Lightning's automatic loop:
same weights, same global_step, same learning rates, for every kind of schedule; and where it
cannot apply, the fit stays on the automatic loop."""

import functools
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from lenet5.data import MNISTDataModule
from lenet5.training import schedules
from lenet5.training.lean import lean_blocker
from lenet5.training.module import LeNet5Module
from lenet5.training.sdlm import SDLM

MODEL = {"activation": "relu", "pooling": "max", "c3": "full", "head": "linear"}


class Record(Callback):
    """The optimisation mode, the step counter and the learning rate after every batch."""

    def __init__(self):
        self.steps, self.rates, self.automatic = [], [], None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.automatic = pl_module.automatic_optimization
        self.steps.append(trainer.global_step)
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def quiet_trainer(epochs: int, *callbacks: Callback, **trainer_args) -> L.Trainer:
    """A CPU trainer with nothing but the training loop and ``callbacks``."""
    return L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
        **trainer_args,
    )


def fit(tiny_data: Path, lean: bool, optimizer, scheduler, epochs: int = 2, **trainer_args):
    torch.manual_seed(0)
    module = LeNet5Module(dict(MODEL), optimizer=optimizer, scheduler=scheduler)
    module.lean = lean
    record = Record()
    trainer = quiet_trainer(epochs, record, *trainer_args.pop("callbacks", []), **trainer_args)
    data = MNISTDataModule(root=str(tiny_data), download=False, val_size=100, batch_size=64)
    trainer.fit(module, datamodule=data)
    return module, trainer, record


SCHEDULES = {
    "onecycle": functools.partial(schedules.one_cycle),
    "step-every-epoch": functools.partial(schedules.step, step_size=1, gamma=0.5),
    "paper": schedules.paper,
    "none": None,
}


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize(
    "optimizer",
    [
        functools.partial(torch.optim.Adam, lr=3e-3, fused=True),
        functools.partial(torch.optim.SGD, lr=0.05, momentum=0.9),
    ],
    ids=["adam", "sgd"],
)
def test_lean_steps_train_as_the_automatic_loop(tiny_data: Path, schedule: str, optimizer) -> None:
    lean, lean_trainer, lean_record = fit(tiny_data, True, optimizer, SCHEDULES[schedule])
    auto, auto_trainer, auto_record = fit(tiny_data, False, optimizer, SCHEDULES[schedule])
    assert lean_record.automatic is False and auto_record.automatic is True
    assert lean_trainer.global_step == auto_trainer.global_step == 16  # 500 images, batch 64, 2 epochs
    assert lean_record.steps == auto_record.steps
    assert lean_record.rates == pytest.approx(auto_record.rates, rel=1e-12)
    for (name, a), b in zip(lean.state_dict().items(), auto.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)


def test_sdlm_trains_on_the_lean_step(tiny_data: Path) -> None:
    """SDLM adds its curvature callback (an epoch-start hook): the lean step still applies."""
    optimizer = functools.partial(SDLM, lr=0.0005, batch_size=64, samples=50)
    lean, _, lean_record = fit(tiny_data, True, optimizer, schedules.paper, epochs=1)
    auto, _, _ = fit(tiny_data, False, optimizer, schedules.paper, epochs=1)
    assert lean_record.automatic is False
    for a, b in zip(lean.state_dict().values(), auto.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


class GradientWatcher(Callback):
    def on_after_backward(self, trainer, pl_module):
        self.seen = True


@pytest.mark.parametrize(
    ("trainer_args", "reason"),
    [
        ({"gradient_clip_val": 1.0}, "gradient clipping"),
        ({"accumulate_grad_batches": 2}, "gradient accumulation"),
        ({"callbacks": [GradientWatcher()]}, "GradientWatcher.on_after_backward"),
    ],
    ids=["clipping", "accumulation", "optimisation-hook"],
)
def test_what_the_lean_step_cannot_do_stays_on_the_automatic_loop(
    tiny_data: Path, trainer_args: dict, reason: str
) -> None:
    optimizer = functools.partial(torch.optim.Adam, lr=3e-3)
    callbacks = list(trainer_args.get("callbacks", []))
    module, trainer, record = fit(tiny_data, True, optimizer, schedules.one_cycle, epochs=1, **trainer_args)
    assert record.automatic is True
    assert lean_blocker(trainer) == reason
    assert all(getattr(callback, "seen", False) for callback in callbacks)


def test_a_plateau_schedule_stays_on_the_automatic_loop(tiny_data: Path) -> None:
    def plateau(optimizer, **_):
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
        return {"scheduler": scheduler, "monitor": "train/loss", "interval": "epoch"}

    optimizer = functools.partial(torch.optim.Adam, lr=3e-3)
    _, trainer, record = fit(tiny_data, True, optimizer, plateau, epochs=1)
    assert record.automatic is True and trainer.global_step == 8


def test_a_checkpoint_of_the_automatic_loop_resumes_on_the_lean_step(tiny_data: Path, tmp_path: Path) -> None:
    """global_step, the schedule and the weights continue from the checkpoint whichever loop
    wrote it: one automatic epoch then one lean epoch end where two automatic epochs end."""
    optimizer = functools.partial(torch.optim.Adam, lr=3e-3)
    halving = functools.partial(schedules.step, step_size=1, gamma=0.5)
    _, trainer, _ = fit(tiny_data, False, optimizer, halving, epochs=1)
    trainer.save_checkpoint(tmp_path / "auto.ckpt")
    straight, _, straight_record = fit(tiny_data, False, optimizer, halving, epochs=2)
    torch.manual_seed(0)
    module = LeNet5Module(dict(MODEL), optimizer=optimizer, scheduler=halving)
    record = Record()
    resumed = quiet_trainer(2, record)
    data = MNISTDataModule(root=str(tiny_data), download=False, val_size=100, batch_size=64)
    resumed.fit(module, datamodule=data, ckpt_path=tmp_path / "auto.ckpt")
    assert record.automatic is False
    assert record.steps == straight_record.steps[8:] == list(range(9, 17))
    assert record.rates == straight_record.rates[8:]
    for a, b in zip(module.state_dict().values(), straight.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_packed_seeds_train_on_the_lean_step_as_on_the_automatic_loop(tiny_data: Path) -> None:
    from lenet5.training.packed import PackedLeNet5Module, build_seed_models
    from lenet5.training.packed_data import PackedDataModule

    results = []
    for lean in (True, False):
        seeds = [0, 1]
        module = PackedLeNet5Module(
            build_seed_models(dict(MODEL), seeds),
            seeds,
            optimizer=functools.partial(torch.optim.Adam, lr=3e-3),
            scheduler=schedules.one_cycle,
        )
        module.lean = lean
        record = Record()
        trainer = quiet_trainer(1, record)
        inner = MNISTDataModule(root=str(tiny_data), download=False, val_size=100, batch_size=64)
        trainer.fit(module, datamodule=PackedDataModule(inner, seeds))
        results.append((module, record))
    (lean_module, lean_record), (auto_module, auto_record) = results
    assert lean_record.automatic is False and auto_record.automatic is True
    assert lean_record.steps == auto_record.steps and lean_record.rates == auto_record.rates
    for a, b in zip(lean_module.state_dict().values(), auto_module.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
