"""``init_from=<file.ckpt>``: a new run that starts from a checkpoint's weights.

Only the weights are taken: the epoch counter, the optimizer's state and the schedule start
afresh from this run's config (fine-tuning, or the same network trained on other data), where
``ckpt_path`` resumes the checkpoint's own run with its schedule. The file is read as data only
and checked like any checkpoint evaluate or predict opens (lenet5.serving.checkpoints), and it
must hold the network this run builds: the model configs are compared, setting by setting.
"""

from pathlib import Path
from typing import Any

import torch

from lenet5.errors import UserError
from lenet5.models import LeNet5
from lenet5.serving.checkpoints import load_checkpoint

# How the network runs, not what it computes: a checkpoint fits whatever these are here.
RUN_SETTINGS = ("compile", "channels_last", "_target_")


def _text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def differences(saved: dict[str, Any], here: dict[str, Any]) -> list[str]:
    """``model.<key> is A in the checkpoint, B here`` for each setting that differs."""
    keys = [key for key in {**saved, **here} if key not in RUN_SETTINGS]
    return [
        f"model.{key} is {_text(saved.get(key))} in the checkpoint, {_text(here.get(key))} here"
        for key in keys
        if saved.get(key) != here.get(key)
    ]


def start_from(path: str, models: list[LeNet5]) -> None:
    """The checkpoint's weights in every one of ``models`` (one network, or a ``seeds=K`` run's
    K: they all start from the same weights and differ in their data order from then on)."""
    try:
        # Rebuilding the saved network draws from torch's generator: the run's own stream (its
        # seed's) stays as it would be without init_from.
        with torch.random.fork_rng(devices=[]):
            checkpoint = load_checkpoint(Path(path))
    except UserError as error:
        raise UserError(f"init_from={path}: {str(error).removeprefix(f'{path}: ')}") from error
    saved = checkpoint.module.model
    differ = differences(saved.config, models[0].config)
    if differ:
        raise UserError(
            f"init_from={path}: a checkpoint of another network ({'; '.join(differ[:3])}); "
            f"give this run the checkpoint's model settings, or start from a checkpoint of this model"
        )
    for model in models:
        model.load_state_dict(saved.state_dict())
