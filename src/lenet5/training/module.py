"""The LightningModule: a LeNet5 built from its config, trained with its head's loss.

The model's config, the optimizer's and the scheduler's travel in the checkpoint's
hyperparameters, so ``LeNet5Module.load_from_checkpoint(path)`` rebuilds the network and
trains on without Hydra. Nothing here needs Hydra either: the optimizer and scheduler are
plain callables or their configs as dicts.
"""

import inspect
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torchmetrics.classification import MulticlassAccuracy

from lenet5.models import LeNet5, build_model
from lenet5.training.recipe import Spec, default_recipe, factory, record
from lenet5.training.sdlm import SDLMCurvature, online_step

NUM_CLASSES = 10


class LeNet5Module(L.LightningModule):
    def __init__(
        self,
        model: LeNet5 | dict[str, Any],
        optimizer: Spec = None,
        scheduler: Spec = None,
    ):
        """``model``: a LeNet5, or its config (the ``model`` config group, ``_target_``
        optional). ``optimizer``: called with the parameters, e.g. ``torch.optim.Adam`` or
        ``functools.partial(torch.optim.SGD, lr=0.01)``, or its config as a dict
        (``{"_target_": "torch.optim.SGD", "lr": 0.01}``, the ``optimizer`` group's form).
        ``scheduler``: called with the optimizer (and ``total_steps``/``epochs`` when it takes
        them, as this project's schedules do), returning a scheduler or Lightning's scheduler
        dict; or its config as a dict. Neither given: train.py's default recipe (Adam at 0.003
        with the one-cycle schedule, read from the configs); an optimizer without a scheduler:
        a constant rate.

        The hyperparameters hold the model's config, the optimizer's and the scheduler's as
        plain data, so ``LeNet5Module.load_from_checkpoint(path)`` rebuilds the network and
        trains on with the same recipe, without Hydra; they may name only torch.optim's classes
        and this project's schedules (lenet5.training.recipe), nothing else to run. A callable
        that cannot be written down (a lambda, a function of one's own) is used as given, with a
        warning: its checkpoint records null, and a module loaded from it trains with the default
        recipe unless handed one (``load_from_checkpoint(path, optimizer=...)``)."""
        super().__init__()
        self.model: LeNet5 = model if isinstance(model, LeNet5) else build_model(model)
        if optimizer is None:
            default_optimizer, default_scheduler = default_recipe()
            optimizer, scheduler = default_optimizer, default_scheduler if scheduler is None else scheduler
        self.save_hyperparameters(
            {
                "model": {"_target_": "lenet5.models.LeNet5", **self.model.config},
                "optimizer": record(optimizer, "optimizer"),
                "scheduler": record(scheduler, "scheduler"),
            }
        )
        self.optimizer_factory, self.scheduler_factory = factory(optimizer), factory(scheduler)
        self.val_acc = MulticlassAccuracy(NUM_CLASSES, average="micro")
        self.test_acc = MulticlassAccuracy(NUM_CLASSES, average="micro")
        # A list: test_step keeps the network's outputs there (run.py draws its pictures from them).
        self.test_outputs: list[torch.Tensor] | None = None

    @classmethod
    def load_from_checkpoint(
        cls, checkpoint_path: Any, *args: Any, weights_only: bool = True, **kwargs: Any
    ) -> Any:
        """Lightning's, reading the file as data only (``weights_only``, where Lightning's own
        default unpickles anything): this module's hyperparameters are plain data. Keyword
        arguments replace the recorded ones (``optimizer=``, ``scheduler=``)."""
        return super().load_from_checkpoint(checkpoint_path, *args, weights_only=weights_only, **kwargs)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Scores per class, larger = more likely, whatever the head (for ``rbf``, minus the
        paper's penalties)."""
        return self.model(images)

    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        """Class probabilities (N, classes) of a batch of images, or of (images, labels)."""
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        return self.model.probabilities(self.model(images))

    def _step(
        self, batch: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        images, labels = batch
        output = self.model(images)
        return self.model.loss(output, labels), self.model.predict(output), labels

    def on_train_epoch_start(self) -> None:
        # Running sums on the device: a step adds to them without a sync or a logging call.
        self.train_loss_sum = torch.zeros((), device=self.device)
        self.train_correct = torch.zeros((), dtype=torch.long, device=self.device)
        self.train_seen = 0

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.automatic_optimization:
            loss, predictions, labels = self._step(batch)
        else:  # SDLM online: one update per pattern of the chunk
            loss, predictions, labels = online_step(self, batch, batch_idx)
        # In place: ``+=`` would assign through nn.Module.__setattr__, slow on every step.
        self.train_loss_sum.add_(loss.detach(), alpha=len(labels))
        self.train_correct.add_((predictions == labels).sum())
        self.train_seen += len(labels)
        # Loggers write only every log_every_n_steps steps, so the step value is handed over
        # then: a self.log call costs about 1 ms, a tenth of a LeNet step on a CPU.
        if (self.global_step + 1) % self.trainer.log_every_n_steps == 0:
            self._check_finite(loss, f"batch {batch_idx}")
            self.log("train/loss_step", loss, prog_bar=True)
        return loss

    def on_train_epoch_end(self) -> None:
        mean_loss = self.train_loss_sum / self.train_seen
        self._check_finite(mean_loss, "mean of the epoch")
        # Shards are equal under DDP, so the mean of the processes' means is the epoch's mean.
        self.log("train/loss", mean_loss, prog_bar=True, sync_dist=True)
        self.log("train/acc", self.train_correct / self.train_seen, prog_bar=True, sync_dist=True)

    def _check_finite(self, loss: torch.Tensor, where: str) -> None:
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"training loss is {loss.item()} at epoch {self.current_epoch}, {where}: lower "
                f"optimizer.lr, or try another model/init"
            )

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        loss, predictions, labels = self._step(batch)
        self.val_acc(predictions, labels)
        self.log("val/loss", loss, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log("val/acc", self.val_acc, on_epoch=True, prog_bar=True)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch
        output = self.model(images)
        if self.test_outputs is not None:
            self.test_outputs.append(output.detach())
        loss, predictions = self.model.loss(output, labels), self.model.predict(output)
        self.test_acc(predictions, labels)
        self.log("test/loss", loss, on_epoch=True, sync_dist=True)
        self.log("test/acc", self.test_acc, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        self._log_evaluated_epoch()

    def on_test_epoch_end(self) -> None:
        # The same on every rank (compute() syncs); sync_dist only spares DDP users a warning.
        self.log("test/error", 1.0 - self.test_acc.compute(), sync_dist=True)
        self._log_evaluated_epoch()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.weights_epoch = checkpoint.get("epoch")

    def _log_evaluated_epoch(self) -> None:
        """An evaluation outside fit (the after-fit validate and test of the best checkpoint) is
        logged at the epoch its weights come from: Lightning would otherwise file it under
        ``current_epoch``, one past the last epoch trained, a phantom epoch in every logger."""
        if self.trainer.state.fn == TrainerFn.FITTING or not self.trainer.loggers:
            return
        epoch = getattr(self, "weights_epoch", None)
        self.log("epoch", float(max(self.current_epoch - 1, 0) if epoch is None else epoch), sync_dist=True)

    def configure_callbacks(self) -> list[L.Callback]:
        # SDLM's curvature is re-estimated before each pass; for other optimizers it does nothing.
        # (validate and test after fit find it already there.)
        if any(isinstance(callback, SDLMCurvature) for callback in self.trainer.callbacks):
            return []
        return [SDLMCurvature()]

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(self.parameters())
        # SDLM's online=true makes its updates itself, pattern by pattern (lenet5.training.sdlm).
        self.automatic_optimization = not getattr(optimizer, "online", False)
        if self.scheduler_factory is None:
            return optimizer
        offered = {"total_steps": self.trainer.estimated_stepping_batches, "epochs": self.trainer.max_epochs}
        scheduler = self.scheduler_factory(optimizer, **accepted(self.scheduler_factory, offered))
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


def accepted(factory: Callable[..., Any], offered: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments ``factory`` takes (all of them if it takes ``**kwargs``), so a
    plain ``torch.optim.lr_scheduler.StepLR`` partial works beside this project's schedules."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return offered
    return {name: value for name, value in offered.items() if name in parameters}
