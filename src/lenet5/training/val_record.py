"""The validation metrics of every epoch of a fit, so that the best checkpoint's need not be
computed again after the fit: the same weights on the same hold-out give the same numbers as that
epoch's own validation (deterministic kernels, eval mode both times), and a second pass would cost
a whole pass over the hold-out in every job. A checkpoint this fit did not validate (one from
before a resume) is validated again.

Under ``ddp_spawn`` the fit runs in child processes and this object in the parent sees none of
it, so the record also travels inside each checkpoint (callback state, written after this
callback's ``on_validation_end``: Lightning runs checkpoint callbacks last). The fit id tells
this fit's checkpoints from those of an earlier one: the child processes get a pickled copy
of this object, id included, and a resumed fit draws a new one. Without it a DDP job would
spawn its processes a third time just to validate again.
"""

import uuid
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn


class ValidationRecord(Callback):
    def __init__(self):
        self.epochs: dict[int, dict[str, float]] = {}
        self.fit_id = uuid.uuid4().hex

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING:
            return
        logged = trainer.callback_metrics
        self.epochs[trainer.current_epoch] = {k: float(v) for k, v in logged.items() if k.startswith("val/")}

    def state_dict(self) -> dict[str, Any]:
        return {"fit_id": self.fit_id, "epochs": {epoch: dict(m) for epoch, m in self.epochs.items()}}

    # load_state_dict stays Callback's no-op: a resumed fit is a new fit, and the numbers it
    # would adopt were measured before the resume.

    def of_checkpoint(self, checkpoint: dict[str, Any]) -> dict[str, float]:
        """The validation metrics of the epoch whose weights ``checkpoint`` (as loaded) holds, as
        this fit measured them ({} if it did not)."""
        epoch = checkpoint.get("epoch")
        if epoch in self.epochs:
            return dict(self.epochs[epoch])
        saved = checkpoint.get("callbacks", {}).get(self.state_key, {})
        if saved.get("fit_id") != self.fit_id:
            return {}
        return dict(saved.get("epochs", {}).get(epoch, {}))
