"""A Lightning callback that records when training starts and how long each training epoch
takes, so the benchmark can time train.py's real code path from outside the process.

An epoch runs from ``on_train_epoch_start`` to the end of its last training batch: validation
is left out, as in the hand-written loop. Times are wall-clock (``time.time``) so that the
parent process can subtract its own launch time to get the start-up time. Each epoch's CPU
time (``time.process_time``, all of the process's threads) is kept beside it: on one thread it
is the work done, whatever else the machine runs.
"""

import json
import time
from pathlib import Path

import lightning as L


class EpochTimer(L.Callback):
    def __init__(self, path: str | None = None):
        """``path``: a JSON file written at the end of fit (None: keep the times in memory)."""
        self.path = Path(path) if path else None
        self.first_step: float | None = None
        self.epochs: list[float] = []
        self.cpu_epochs: list[float] = []
        self._epoch_start = self._last_batch_end = 0.0
        self._cpu_start = self._cpu_last_batch_end = 0.0
        self.validation = 0.0  # seconds in validation loops during fit, after the first step
        self._validation_start = 0.0
        self.fit_start: float | None = None
        self.fit_end: float | None = None
        self.test_start: float | None = None  # train.py's test of the best weights, after the fit
        self.test_end: float | None = None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_start = time.time()

    def on_validation_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validation_start = time.time()

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:  # that counts as start-up
            self.validation += time.time() - self._validation_start

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start, self._cpu_start = time.time(), time.process_time()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.first_step is None:
            self.first_step = time.time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self._last_batch_end, self._cpu_last_batch_end = time.time(), time.process_time()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.epochs.append(self._last_batch_end - self._epoch_start)
        self.cpu_epochs.append(self._cpu_last_batch_end - self._cpu_start)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.fit_end = time.time()
        self._write()

    def on_test_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.test_start = time.time()

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.test_end = time.time()
        self._write()

    def _write(self) -> None:
        if self.path is not None:
            record = {
                "first_step": self.first_step,
                "epochs": self.epochs,
                "cpu_epochs": self.cpu_epochs,
                "validation": self.validation,
                "fit_start": self.fit_start,
                "fit_end": self.fit_end,
                "test_start": self.test_start,
                "test_end": self.test_end,
            }
            self.path.write_text(json.dumps(record))
