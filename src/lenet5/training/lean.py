"""The training step's optimisation without Lightning's closure machinery.

Lightning's automatic optimisation wraps every step in a closure, a LightningOptimizer, the
precision plugin's hooks and four rounds of callback hooks (before zero_grad, before and after
backward, before the optimizer step) over every callback: ~0.3 ms a step of Python, about what
the rest of the framework's per-step work costs together. A LeNet step on a CPU is 2-15 ms,
so the machinery alone moved b/a (train.py against a hand loop) by 5-10%.

``LeanSteps`` switches a module to manual optimisation and does in its training step what a
hand loop does (``zero_grad(set_to_none=True)``, ``backward``, ``step``), then what the loop
would have done after it: the step counters (``global_step``, both the manual and the automatic
one, so a checkpoint resumes in either mode) and the schedulers, on the batches where Lightning
steps them. Where this would change what a run does, the module stays on Lightning's automatic
loop (``lean_blocker`` says why): gradient clipping, gradient accumulation, a gradient scaler
(``16-mixed``), more than one device, a ReduceLROnPlateau schedule, an optimizer that needs a
closure (LBFGS), a callback with a hook in the optimisation (``on_before_backward``, ...).
"""

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, GradientAccumulationScheduler
from lightning.pytorch.plugins.precision import DoublePrecision, HalfPrecision, MixedPrecision, Precision
from lightning.pytorch.strategies import SingleDeviceStrategy

# Callback hooks the automatic loop calls inside the optimisation and a lean step does not.
OPTIMISATION_HOOKS = (
    "on_before_zero_grad",
    "on_before_backward",
    "on_after_backward",
    "on_before_optimizer_step",
)
PLAIN_PRECISION = (Precision, MixedPrecision, DoublePrecision, HalfPrecision)


def lean_blocker(trainer: L.Trainer) -> str | None:
    """Why this trainer's fit needs Lightning's automatic optimisation (None: it does not)."""
    if type(trainer.strategy) is not SingleDeviceStrategy:
        return f"strategy {type(trainer.strategy).__name__}"
    if trainer.gradient_clip_val:
        return "gradient clipping"
    if trainer.accumulate_grad_batches != 1:
        return "gradient accumulation"
    plugin = trainer.precision_plugin
    if type(plugin) not in PLAIN_PRECISION or getattr(plugin, "scaler", None) is not None:
        return f"precision plugin {type(plugin).__name__}"
    for callback in trainer.callbacks:
        if isinstance(callback, GradientAccumulationScheduler):
            return "GradientAccumulationScheduler"
        for hook in OPTIMISATION_HOOKS:
            if getattr(type(callback), hook, None) is not getattr(Callback, hook):
                return f"{type(callback).__name__}.{hook}"
    return None


class LeanSteps:
    """Mixin for a LightningModule with one optimizer whose ``training_step`` ends with
    ``if not self.automatic_optimization: self.lean_update(loss)``.

    ``lean = False`` (on the class or an instance) keeps Lightning's automatic loop."""

    lean = True

    @property
    def automatic_optimization(self) -> bool:
        trainer = self._trainer
        if trainer is None or not self.lean:
            return True
        decided = self.__dict__.get("_lean_decision")  # not nn.Module's slow attribute path
        if decided is None or decided[0] != id(trainer):
            decided = (id(trainer), lean_blocker(trainer))
            self.__dict__["_lean_decision"] = decided
        return decided[1] is not None

    @automatic_optimization.setter
    def automatic_optimization(self, value: bool) -> None:
        self.lean = not value

    def lean_schedules(self, configured: Any) -> Any:
        """``configure_optimizers``' result, passed through; a schedule the lean step cannot
        run (ReduceLROnPlateau, which waits for a monitored metric) or an optimizer that needs
        a closure puts this fit back on the automatic loop, before Lightning reads either."""
        if self.automatic_optimization:
            return configured
        optimizer = configured["optimizer"] if isinstance(configured, dict) else configured
        scheduler = configured.get("lr_scheduler") if isinstance(configured, dict) else None
        if isinstance(scheduler, dict):
            plateau = scheduler.get("reduce_on_plateau") or isinstance(
                scheduler.get("scheduler"), torch.optim.lr_scheduler.ReduceLROnPlateau
            )
        else:
            plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        if plateau or isinstance(optimizer, torch.optim.LBFGS):
            self.__dict__["_lean_decision"] = (id(self._trainer), "plateau schedule or LBFGS")
        return configured

    def on_train_start(self) -> None:
        # A checkpoint written by the automatic loop counts its steps there only.
        loop = self.trainer.fit_loop.epoch_loop
        manual = loop.manual_optimization.optim_step_progress.total
        automatic = loop.automatic_optimization.optim_progress.optimizer.step.total
        for tracker in (manual, automatic):
            tracker.ready = tracker.completed = max(manual.completed, automatic.completed)

    def lean_update(self, loss: torch.Tensor) -> None:
        """One optimizer step on ``loss``, then the counters and schedules as Lightning's loop."""
        trainer = self.trainer
        optimizer = trainer.optimizers[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loop = trainer.fit_loop.epoch_loop
        loop.manual_optimization.optim_step_progress.increment_ready()
        loop.manual_optimization.optim_step_progress.increment_completed()
        loop.automatic_optimization.optim_progress.optimizer.step.increment_ready()
        loop.automatic_optimization.optim_progress.optimizer.step.increment_completed()
        for config in trainer.lr_scheduler_configs:
            if config.interval == "step":
                index = loop.batch_idx + 1
            elif loop._num_ready_batches_reached():  # the epoch's last batch, as Lightning does
                index = trainer.current_epoch + 1
            else:
                continue
            if index % config.frequency == 0:
                loop.scheduler_progress.increment_ready()
                self.lr_scheduler_step(config.scheduler, None)
                loop.scheduler_progress.increment_completed()
