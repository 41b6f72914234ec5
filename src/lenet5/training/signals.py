"""Stopping on a signal without losing work: SIGTERM (what SLURM and most schedulers send before
pre-empting a job), SIGINT (Ctrl+C) and SIGUSR1 (SLURM's ``--signal`` warning before the time
limit) end the run at the next optimizer-step boundary with a resumable ``last.ckpt``.

The handler only sets a flag: saving inside a signal handler could interrupt a half-done step
and write inconsistent weights and optimizer state. The callback checks the flag after each
training batch, saves there, and raises ``RunInterrupted``, which the entry point turns into
``interrupted.json`` (the resume command) and exit status 128 + signal (143 for SIGTERM).

A checkpoint saved mid-epoch also holds where in the epoch it stopped and the epoch's running
loss and accuracy sums (this callback's state), so the resumed run skips the batches already
trained on and ends with the same weights and metrics as a run never interrupted.
"""

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.plugins.environments import SLURMEnvironment

# Looked up by name: a platform without one (SIGUSR1 on Windows) stops on the others.
SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGUSR1") if hasattr(signal, name))
# LeNet5Module's per-epoch running sums (train/loss and train/acc of the epoch).
RUNNING_SUMS = ("train_loss_sum", "train_correct", "train_seen")


def slurm_requeues(trainer: L.Trainer) -> bool:
    """Whether Lightning's SLURM auto-requeue owns SIGUSR1: a parallel strategy's own cluster
    environment, else the SLURMEnvironment Lightning builds when it detects a SLURM job."""
    environment = getattr(trainer.strategy, "cluster_environment", None)
    if environment is None and SLURMEnvironment.detect():
        environment = SLURMEnvironment()
    return isinstance(environment, SLURMEnvironment) and environment.auto_requeue


class RunInterrupted(Exception):
    """A signal stopped training; ``checkpoint`` resumes it."""

    def __init__(self, signum: int, checkpoint: Path, epoch: int, step: int):
        self.signum, self.checkpoint, self.epoch, self.step = signum, checkpoint, epoch, step
        name = signal.Signals(signum).name
        super().__init__(f"{name} received: stopped at epoch {epoch}, step {step}; saved {checkpoint}")

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class StopOnSignal(Callback):
    def __init__(self, checkpoint: str | Path):
        self.checkpoint = Path(checkpoint)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._module: L.LightningModule | None = None
        self._position: dict[str, Any] = {}  # where the checkpoint being saved or loaded stopped

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
            print(f"\n{signal.Signals(signum).name} received: stopping after this step", flush=True)

    def state_dict(self) -> dict[str, Any]:
        return dict(self._position)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._position = dict(state_dict)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._resume_mid_epoch(trainer, pl_module)
        # Installed after Lightning's own (which only flags SIGTERM); signals reach the main thread.
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in SIGNALS:
            if signum == getattr(signal, "SIGUSR1", None) and slurm_requeues(trainer):
                continue  # Lightning's SLURM auto-requeue saves an hpc checkpoint and requeues the job
            self._previous[signum] = signal.signal(signum, self._handle)

    def _resume_mid_epoch(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        position, self._position = self._position, {}
        if not position or position.get("epoch") != trainer.current_epoch:
            return
        loader = trainer.train_dataloader
        if hasattr(loader, "skip"):
            loader.skip = position["batches_done"]
        for name, value in position.get("sums", {}).items():
            setattr(pl_module, name, value.to(pl_module.device) if isinstance(value, torch.Tensor) else value)

    def _restore(self) -> None:
        # Only while ours is installed: Lightning's teardown puts back the process's own handlers
        # before the callbacks' teardown runs, and re-installing its handler then would leave
        # SIGTERM with a finished trainer (swallowed between the jobs of a sweep, and every
        # trainer of the process kept alive through the chain of handlers: ~300 MB a job).
        for signum, handler in self._previous.items():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, handler)
        self._previous.clear()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if self.received is None:
            return
        sums = {name: getattr(pl_module, name) for name in RUNNING_SUMS if hasattr(pl_module, name)}
        self._position = {"epoch": trainer.current_epoch, "batches_done": batch_idx + 1, "sums": sums}
        trainer.save_checkpoint(self.checkpoint, weights_only=False)  # the whole state, to resume
        self._position = {}
        self._restore()
        raise RunInterrupted(self.received, self.checkpoint, trainer.current_epoch, trainer.global_step)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()
