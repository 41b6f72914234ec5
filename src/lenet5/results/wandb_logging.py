"""Weights & Biases for ``logger=wandb``: never a login prompt, one run per job, the config as
flat dotted keys, and the test results as a confusion matrix, a per-class table and the grid
of misclassified digits.

wandb is imported only when a run is actually logged, so other loggers pay nothing for it.
"""

import logging
import netrc
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.utilities.logger import (
    _convert_json_serializable,
    _convert_params,
    _flatten_dict,
    _sanitize_callable_params,
)
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from lenet5.results.plots import Outcome, per_class_accuracy

log = logging.getLogger(__name__)


def has_credentials() -> bool:
    """An API key in the environment or in ~/.netrc (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def choose_mode(mode: str | None) -> str | None:
    """The config's mode if given, else $WANDB_MODE (left for wandb to read), else online with
    credentials and offline without: wandb would otherwise stop and ask for a key."""
    if mode is not None or os.environ.get("WANDB_MODE"):
        return mode
    if has_credentials():
        return "online"
    log.info("wandb: no credentials (WANDB_API_KEY or `wandb login`), logging offline")
    return "offline"


def job_identity() -> tuple[str | None, str | None]:
    """(name, group) of this Hydra job: its overrides, and its sweep folder in a multirun."""
    if not HydraConfig.initialized():
        return None, None
    hydra = HydraConfig.get()
    name = hydra.job.override_dirname or None
    group = hydra.sweep.dir if hydra.mode == RunMode.MULTIRUN else None
    return name, group


class RunLogger(WandbLogger):
    """WandbLogger with the mode passed to ``wandb.init`` rather than Lightning's ``offline``
    flag: that flag forbids ``log_model``, while an offline run can hold the checkpoint
    artifacts and ``wandb sync`` uploads them with the rest."""

    def __init__(
        self, mode: str | None = None, name: str | None = None, group: str | None = None, **kwargs: Any
    ):
        default_name, default_group = job_identity()
        mode = choose_mode(mode)
        if mode is not None:
            kwargs["mode"] = mode
        super().__init__(name=name or default_name, group=group or default_group, **kwargs)

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Flat keys (``model.activation``, ``optimizer.lr``) that the W&B UI can group runs by."""
        params = _convert_json_serializable(_sanitize_callable_params(_convert_params(params)))
        self.experiment.config.update(_flatten_dict(params, delimiter="."), allow_val_change=True)


@rank_zero_only
def log_test_results(loggers: list[Logger], outcome: Outcome, names: list[str], grid: Path) -> None:
    """Test-time pictures for each W&B logger; ``grid`` is the misclassified.png already drawn."""
    runs = [logger.experiment for logger in loggers if isinstance(logger, WandbLogger)]
    if not runs:
        return
    import wandb

    table = wandb.Table(columns=["class", "label", "images", "correct", "accuracy"])
    for c, (images, correct, accuracy) in enumerate(per_class_accuracy(outcome, len(names))):
        table.add_data(c, names[c], images, correct, accuracy)
    for run in runs:
        run.log(
            {
                "test/confusion_matrix": wandb.plot.confusion_matrix(
                    y_true=outcome.labels.tolist(), preds=outcome.predictions.tolist(), class_names=names
                ),
                "test/per_class": table,
                "test/misclassified": wandb.Image(str(grid), caption="true / predicted (confidence)"),
            }
        )


def finish_wandb(failed: bool) -> None:
    """End this job's run. Lightning's WandbLogger adopts any run still open in the process, so
    without this the next job of a sweep (or of a reused joblib worker) would log into it."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)
