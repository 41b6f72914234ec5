"""A test callback: training waits at its start until a file appears, so a test can act while
the run holds its folder (at most ``timeout`` seconds, then it goes on)."""

import time
from pathlib import Path

from lightning.pytorch.callbacks import Callback


class WaitForFile(Callback):
    def __init__(self, path: str, timeout: float = 120.0):
        self.path, self.timeout = Path(path), timeout

    def on_train_start(self, trainer, pl_module) -> None:
        deadline = time.monotonic() + self.timeout
        while not self.path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
