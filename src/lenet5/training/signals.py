"""Stopping on a signal without losing work: SIGTERM (what SLURM and most schedulers send before
pre-empting a job), SIGINT (Ctrl+C) and SIGUSR1 (SLURM's ``--signal`` warning before the time
limit) end the run at the next optimizer-step boundary with a resumable ``last.ckpt``.

The handler only sets a flag: saving inside a signal handler could interrupt a half-done step
and write inconsistent weights and optimizer state. The callback checks the flag after each
training batch, saves there, and raises ``RunInterrupted``, which the entry point turns into
``interrupted.json`` (the resume command) and exit status 128 + signal (143 for SIGTERM).

In a SLURM job (Lightning's SLURM auto-requeue on: its default), SIGUSR1 is the warning
before the time limit (``--signal=USR1@N``): the run stops the same way and then requeues the
job itself (``scontrol requeue``), where Lightning would save in the middle of a step from
inside its signal handler. SLURM restarts the same job, which resumes from ``last.ckpt`` in
the same folder (lenet5.cluster.restart; the SLURM launcher for a sweep's jobs).

A checkpoint saved mid-epoch also holds where in the epoch it stopped and the epoch's running
loss and accuracy sums (this callback's state), so the resumed run skips the batches already
trained on and ends with the same weights and metrics as a run never interrupted.
"""

import os
import signal
import subprocess
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
    """Whether SIGUSR1 means "requeue this SLURM job": Lightning's SLURM auto-requeue is on in a
    parallel strategy's own cluster environment, else in the SLURMEnvironment Lightning builds
    when it detects a SLURM job."""
    environment = getattr(trainer.strategy, "cluster_environment", None)
    if environment is None and SLURMEnvironment.detect():
        environment = SLURMEnvironment()
    return isinstance(environment, SLURMEnvironment) and environment.auto_requeue


def slurm_job_id() -> str | None:
    """What ``scontrol requeue`` takes: ``<array job>_<task>`` in a job array, else the job id."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def requeue_slurm_job() -> bool:
    """Put this SLURM job back in the queue; SLURM then ends it (SIGTERM) and starts it again
    with SLURM_RESTART_COUNT one higher. That SIGTERM is ignored until Lightning's teardown
    puts back the process's own handler: the checkpoint is saved, the stop is being recorded."""
    job = slurm_job_id()
    if not job:
        return False
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        done = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        print(f"could not requeue SLURM job {job}: {error}", flush=True)
        return False
    if done.returncode != 0:
        print(f"could not requeue SLURM job {job}: {done.stderr.strip()}", flush=True)
        return False
    print(f"requeued SLURM job {job}: it resumes from the checkpoint when it starts again", flush=True)
    return True


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
        # SIGUSR1 too where Lightning's SLURM auto-requeue would take it (see the module's notes).
        for signum in SIGNALS:
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
        requeue = self.received == getattr(signal, "SIGUSR1", None) and slurm_requeues(trainer)
        self._restore()
        if requeue and trainer.is_global_zero:
            requeue_slurm_job()
        raise RunInterrupted(self.received, self.checkpoint, trainer.current_epoch, trainer.global_step)

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()
