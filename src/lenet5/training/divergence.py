"""A run whose training has blown up stops with advice instead of publishing a broken network.

NaN and infinity in the loss are caught by the module itself. Three signs cover the rest, for
every head (the paper's RBF loss stays bounded however far the network is thrown, so the loss
alone cannot tell):

- the loss exceeds the first batch's ``GROWTH`` times (a linear head's explosion);
- the parameters' norm is not finite or exceeds its value at the start of the fit ``GROWTH``
  times (a learning rate of 1e10 throws every weight by about that much in one step; healthy
  runs of every shipped configuration stayed under 6x in three epochs);
- after ``MIN_SEEN`` patterns of an epoch, its training accuracy is at chance (at most
  ``CHANCE_FACTOR`` / classes) while its mean loss is ``WORSE`` times the first batch's or more
  (the RBF head thrown into saturation: loss 74 -> 170 at 10% accuracy; a slow start, such as
  d2l's sigmoid network, stays at chance with the loss flat, not above the start).

The checks run on the steps that are logged anyway and once an epoch, so they add no device
sync to the other steps. Under DDP the processes agree on stopping, so none waits for the rest.
"""

import math
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

GROWTH = 1000.0  # the loss or the parameters' norm this many times its start
WORSE = 1.5  # an epoch's mean loss this many times the first batch's, at chance accuracy
CHANCE_FACTOR = 1.5  # "at chance": accuracy at most this many times 1 / classes
MIN_SEEN = 1000  # patterns of an epoch before its accuracy is judged
ADVICE = "lower optimizer.lr, keep a warm-up (scheduler=onecycle), or try another model/init"


def parameter_norm(module: torch.nn.Module) -> float:
    norms = [p.detach().norm() for p in module.parameters() if p.requires_grad]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


class StopOnDivergence(Callback):
    def __init__(self, growth: float = GROWTH, classes: int = 10):
        self.growth, self.classes = growth, classes
        self.first: float | None = None  # the first batch's loss
        self.first_norm: float | None = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.first_norm = parameter_norm(pl_module) or None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        logged = trainer.global_step % max(trainer.log_every_n_steps, 1) == 0
        if not logged and self.first is not None:
            return
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        reason = None
        if isinstance(loss, torch.Tensor):
            value = float(loss.detach())
            if self.first is None:
                self.first = abs(value) or 1e-12
            elif value > self.growth * self.first:
                reason = f"training loss blew up from {self.first:.4g} to {value:.4g} (over {self.growth:g}x)"
        if logged:
            reason = reason or self._weights_or_accuracy(pl_module)
        self._stop_if(trainer, reason)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Runs before the module's own hook, while the epoch's sums are still there.
        self._stop_if(trainer, self._weights_or_accuracy(pl_module))

    def _weights_or_accuracy(self, pl_module: L.LightningModule | None) -> str | None:
        if pl_module is None:
            return None
        if self.first_norm is not None:
            norm = parameter_norm(pl_module)
            if not math.isfinite(norm) or norm > self.growth * self.first_norm:
                grew = f"from {self.first_norm:.4g} to {norm:.4g} (over {self.growth:g}x)"
                return f"the weights' norm blew up {grew}"
        seen = getattr(pl_module, "train_seen", 0)
        correct = getattr(pl_module, "train_correct", None)
        total = getattr(pl_module, "train_loss_sum", None)
        if self.first is None or not isinstance(correct, torch.Tensor) or correct.ndim or seen < MIN_SEEN:
            return None  # seeds=K modules keep K sums: this callback is not theirs
        accuracy, mean_loss = float(correct) / seen, float(total) / seen
        if accuracy <= CHANCE_FACTOR / self.classes and mean_loss >= WORSE * self.first:
            return (
                f"training accuracy is at chance ({accuracy:.1%} of {seen} patterns) and the loss "
                f"rose from {self.first:.4g} to {mean_loss:.4g}"
            )
        return None

    def _stop_if(self, trainer: L.Trainer, reason: str | None) -> None:
        strategy = getattr(trainer, "strategy", None)
        if strategy is not None and trainer.world_size > 1:
            if not strategy.reduce_boolean_decision(reason is not None, all=False):
                return
            reason = reason or "training diverged in another process"
        if reason is None:
            return
        lr = trainer.optimizers[0].param_groups[0]["lr"] if trainer.optimizers else float("nan")
        raise FloatingPointError(
            f"{reason} at epoch {trainer.current_epoch}, step {trainer.global_step}, "
            f"learning rate {lr:.3g}: {ADVICE}"
        )
