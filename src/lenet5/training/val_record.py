"""The validation metrics of every epoch of a fit, kept so that the best checkpoint's need not be
computed again after the fit.

``run.py`` used to validate the best checkpoint once more after training: the same weights on
the same hold-out, so the same numbers as that epoch's own validation (deterministic kernels,
eval mode both times), for a whole extra pass over the hold-out in every job. A checkpoint this
fit did not validate (one from before a resume) is still validated again.
"""

from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn


class ValidationRecord(Callback):
    def __init__(self):
        self.epochs: dict[int, dict[str, float]] = {}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        logged = trainer.callback_metrics
        self.epochs[trainer.current_epoch] = {k: float(v) for k, v in logged.items() if k.startswith("val/")}

    def of_checkpoint(self, path: str | Path) -> dict[str, float]:
        """The validation metrics of the epoch whose weights ``path`` holds ({} if not recorded)."""
        if not path or not self.epochs or not Path(path).is_file():
            return {}
        epoch = torch.load(path, map_location="cpu", weights_only=False).get("epoch")
        return dict(self.epochs.get(epoch, {}))
