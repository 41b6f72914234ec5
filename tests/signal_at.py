"""A test callback: the process signals itself at a given epoch and batch, as a scheduler would."""

import os
import signal

from lightning.pytorch.callbacks import Callback


class SignalAt(Callback):
    def __init__(self, epoch: int, batch: int, signum: str = "SIGTERM"):
        self.epoch, self.batch, self.signum = epoch, batch, getattr(signal, signum)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            os.kill(os.getpid(), self.signum)
