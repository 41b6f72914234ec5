"""What this project relies on from Lightning and torch beyond their documented API, or in an
order their documentation does not promise: each test fails when an upgrade changes it (the
ranges pinned in pyproject.toml are the ones these pass on)."""

import functools
from pathlib import Path

import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from lenet5.data import MNISTDataModule
from lenet5.training import schedules
from lenet5.training.module import LeNet5Module
from lenet5.training.resume import ExtendSchedules
from lenet5.training.spawned import spawns_processes

MODEL = {"activation": "relu", "pooling": "max", "c3": "full", "head": "linear"}
STEPS_PER_EPOCH = 8  # tiny data: 500 images, batch 64


class Record(Callback):
    """The one-cycle schedule's length and position where ExtendSchedules looks at it, and the
    learning rate after every batch."""

    def __init__(self):
        self.seen: dict[str, tuple[int, int]] = {}
        self.rates: list[float] = []

    def _note(self, hook: str, trainer: L.Trainer) -> None:
        scheduler = trainer.lr_scheduler_configs[0].scheduler
        self.seen[hook] = (scheduler.total_steps, scheduler.last_epoch)

    def on_fit_start(self, trainer, pl_module):
        self._note("fit_start", trainer)

    def on_train_start(self, trainer, pl_module):
        self._note("train_start", trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rates.append(trainer.optimizers[0].param_groups[0]["lr"])


def fit(tiny_data: Path, epochs: int, *callbacks: Callback, ckpt_path: Path | None = None) -> L.Trainer:
    torch.manual_seed(0)
    module = LeNet5Module(
        dict(MODEL), optimizer=functools.partial(torch.optim.Adam, lr=3e-3), scheduler=schedules.one_cycle
    )
    trainer = L.Trainer(
        accelerator="cpu",
        max_epochs=epochs,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    data = MNISTDataModule(root=str(tiny_data), download=False, val_size=100, batch_size=64)
    trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
    return trainer


@pytest.fixture(scope="module")
def one_epoch(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("one_epoch") / "one_epoch.ckpt"
    fit(tiny_data, 1).save_checkpoint(path)
    return path


def test_on_fit_start_sees_the_new_schedule_before_the_checkpoint_restores_the_old(
    tiny_data: Path, one_epoch: Path
) -> None:
    """ExtendSchedules keeps the schedule configure_optimizers built for the resumed run's
    length: it must be there, unstepped, at on_fit_start, and the checkpoint's by on_train_start
    (a OneCycleLR's state_dict carries its length). Without ExtendSchedules the old length
    stays and the ninth step is one past the end of the schedule."""
    record = Record()
    with pytest.raises(ValueError, match="Tried to step"):
        fit(tiny_data, 2, record, ckpt_path=one_epoch)
    assert record.seen == {"fit_start": (16, 0), "train_start": (8, 8)}


def test_a_resumed_one_cycle_schedule_continues_at_its_step_on_the_new_length(
    tiny_data: Path, one_epoch: Path
) -> None:
    """One epoch, resumed to two: after every step of the second epoch the learning rate is the
    one a two-epoch run has there."""
    straight = Record()
    fit(tiny_data, 2, straight)
    resumed = Record()
    trainer = fit(tiny_data, 2, ExtendSchedules(resuming=True), resumed, ckpt_path=one_epoch)
    assert trainer.global_step == 2 * STEPS_PER_EPOCH
    assert trainer.lr_scheduler_configs[0].scheduler.total_steps == 2 * STEPS_PER_EPOCH
    assert resumed.rates == pytest.approx(straight.rates[STEPS_PER_EPOCH:], rel=1e-12)


@pytest.mark.parametrize(("strategy", "spawns"), [("ddp_spawn", True), ("ddp", False), ("auto", False)])
def test_only_ddp_spawn_runs_its_stages_in_processes_of_lightnings_multiprocessing_launcher(
    strategy: str, spawns: bool
) -> None:
    """spawns_processes tells spawned children (which exit after each stage) from processes
    that go on to the next stage by the class of Lightning's launcher, a private one."""
    devices = 1 if strategy == "auto" else 2
    trainer = L.Trainer(accelerator="cpu", devices=devices, strategy=strategy, logger=False)
    assert spawns_processes(trainer) is spawns


def test_submitit_watcher_cache_is_what_the_squeue_watcher_fills() -> None:
    """hydra_plugins.lenet5_launchers.slurm.queue_watcher fills SlurmInfoWatcher's private cache
    from squeue, and replaces SlurmJob's class-level watcher, on a cluster without accounting."""
    from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

    from hydra_plugins.lenet5_launchers.slurm import queue_watcher

    watcher = queue_watcher(delay_s=600)
    assert isinstance(watcher, SlurmInfoWatcher) and isinstance(SlurmJob.watcher, SlurmInfoWatcher)
    for name in ("_registered", "_finished", "_info_dict", "_num_calls", "_last_status_check"):
        assert hasattr(watcher, name), name
    watcher.register_job("7")
    watcher._info_dict["7"] = {"JobID": "7", "State": "ENDED", "NodeList": ""}
    assert watcher.is_done("7", mode="cache")
    watcher._info_dict["7"] = {"JobID": "7", "State": "RUNNING", "NodeList": "n1"}
    assert not watcher.is_done("7", mode="cache")
