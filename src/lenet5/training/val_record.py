"""The validation metrics of every epoch of a fit, kept so that the best checkpoint's need not be
computed again after the fit.

``run.py`` used to validate the best checkpoint once more after training: the same weights on
the same hold-out, so the same numbers as that epoch's own validation (deterministic kernels,
eval mode both times), for a whole extra pass over the hold-out in every job. A checkpoint this
fit did not validate (one from before a resume) is still validated again.

Under ``ddp_spawn`` the fit runs in child processes and this object in the parent sees none of
it, so the record also travels inside each checkpoint (callback state, written after this
callback's ``on_validation_end``: Lightning runs checkpoint callbacks last). The fit id tells
this fit's checkpoints from those of an earlier one: the child processes get a pickled copy
of this object, id included, and a resumed fit draws a new one. Without it a DDP job spawned
its processes a third time just to validate again, and each spawn is a chance for gloo's
teardown to abort a child.
"""

import uuid
from pathlib import Path
from typing import Any

import lightning as L
import torch
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

    def of_checkpoint(self, path: str | Path) -> dict[str, float]:
        """The validation metrics of the epoch whose weights ``path`` holds, as this fit measured
        them ({} if it did not)."""
        if not path or not Path(path).is_file():
            return {}
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        epoch = checkpoint.get("epoch")
        if epoch in self.epochs:
            return dict(self.epochs[epoch])
        saved = checkpoint.get("callbacks", {}).get(self.state_key, {})
        if saved.get("fit_id") != self.fit_id:
            return {}
        return dict(saved.get("epochs", {}).get(epoch, {}))
