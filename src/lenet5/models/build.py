"""A LeNet5 from a config dict, without instantiating anything a file names.

A checkpoint or a YAML file carries the model's config; handing it to ``hydra.utils.instantiate``
would build whatever class its ``_target_`` names. Here the only class is LeNet5, and only its
own constructor arguments are accepted.
"""

import inspect
from collections.abc import Mapping
from typing import Any

from lenet5.models.lenet5 import LeNet5

TARGETS = {"lenet5.models.LeNet5", "lenet5.models.lenet5.LeNet5"}
ARGUMENTS = tuple(inspect.signature(LeNet5.__init__).parameters)[1:]


def model_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments of a LeNet5 config; ValueError naming what is not allowed."""
    config = dict(config)
    target = config.pop("_target_", "lenet5.models.LeNet5")
    if target not in TARGETS:
        raise ValueError(f"model _target_ {target!r} is not a lenet5 model (allowed: lenet5.models.LeNet5)")
    unknown = sorted(set(config) - set(ARGUMENTS))
    if unknown:
        raise ValueError(f"unknown model setting(s) {', '.join(unknown)}; allowed: {', '.join(ARGUMENTS)}")
    return config


def build_model(config: Mapping[str, Any]) -> LeNet5:
    return LeNet5(**model_config(config))
