"""A test callback: a SLURM job waits at given points (which start of the job, epoch, batch),
after writing ``<marker>.<start>`` (its job id), until a signal reaches it, so that the test
can requeue or signal it mid-epoch from outside."""

import os
import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from lenet5.training.signals import StopOnSignal


class PauseAt(Callback):
    def __init__(self, stops: list[list[int]], marker: str, seconds: float = 600.0):
        self.stops = {tuple(stop) for stop in stops}
        self.marker, self.seconds = marker, seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        start = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
        if (start, trainer.current_epoch, batch_idx) not in self.stops:
            return
        stopper = next(c for c in trainer.callbacks if isinstance(c, StopOnSignal))
        Path(f"{self.marker}.{start}").write_text(f"{os.environ.get('SLURM_JOB_ID')}\n")
        deadline = time.monotonic() + self.seconds
        while stopper.received is None and time.monotonic() < deadline:
            time.sleep(0.1)
