"""A training loss that grows by orders of magnitude stops the run with advice.

NaN and infinity are caught by the module itself; a loss that explodes while staying finite
(a learning rate far too high, say) would otherwise train on for hours and report nonsense.
The check runs on the steps that are logged anyway, so it adds no device sync of its own.
"""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

GROWTH = 1000.0  # stop when the loss exceeds its first logged value this many times


class StopOnDivergence(Callback):
    def __init__(self, growth: float = GROWTH):
        self.growth = growth
        self.first: float | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if (trainer.global_step % max(trainer.log_every_n_steps, 1)) != 0:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        value = float(loss.detach())
        if self.first is None:
            self.first = abs(value) or 1e-12
            return
        if value > self.growth * self.first:
            lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
            raise FloatingPointError(
                f"training loss blew up from {self.first:.4g} to {value:.4g} (over {self.growth:g}x) "
                f"at epoch {trainer.current_epoch}, step {trainer.global_step}, learning rate {lr:.3g}: "
                f"lower optimizer.lr, keep a warm-up (scheduler=onecycle), or try another model/init"
            )
