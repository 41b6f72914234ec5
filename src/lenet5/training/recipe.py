"""The optimizer and schedule of a LeNet5Module as plain data, so a checkpoint can train on.

A recipe entry is a config of the ``optimizer`` or ``scheduler`` group without ``_partial_``
(``{"_target_": "torch.optim.Adam", "lr": 0.003}``). The module keeps it in its hyperparameters,
``LeNet5Module.load_from_checkpoint`` hands it back, and only then is it turned into a callable:
by name, from an allow-list of torch's optimizers and schedulers and this project's, so a
checkpoint's hyperparameters can name nothing else to run. ``functools.partial`` of one of
those with plain arguments is recorded the same way; any other callable cannot be, and is used
as it is, unrecorded.
"""

import functools
import importlib
import inspect
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from lenet5.errors import UserError

CONF = Path(__file__).resolve().parents[1] / "conf"
PROJECT_TARGETS = {
    "lenet5.training.sdlm.SDLM",
    "lenet5.training.schedules.one_cycle",
    "lenet5.training.schedules.step",
    "lenet5.training.schedules.paper",
}
PLAIN = (bool, int, float, str, type(None))
TORCH_MODULES = ("torch.optim", "torch.optim.lr_scheduler")

Spec = dict[str, Any] | Callable[..., Any] | None


def _allowed(target: str) -> Callable[..., Any]:
    """The class or function ``target`` names, if it is one a recipe may name."""
    module_name, _, name = target.rpartition(".")
    found = None
    if target in PROJECT_TARGETS or module_name in TORCH_MODULES:
        try:
            found = getattr(importlib.import_module(module_name), name)
        except (ImportError, AttributeError):
            found = None
    kinds = (torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler)
    if found is not None and (
        target in PROJECT_TARGETS or (inspect.isclass(found) and issubclass(found, kinds))
    ):
        return found
    raise UserError(
        f"_target_={target}: a recipe names a torch.optim optimizer or scheduler, or one of "
        f"{', '.join(sorted(PROJECT_TARGETS))}"
    )


def _public_name(function: Any) -> str | None:
    """The name a recipe spells for ``function`` (torch.optim.Adam, not torch.optim.adam.Adam),
    or None if it is none a recipe may name."""
    name = getattr(function, "__name__", "")
    for module_name in TORCH_MODULES:
        if name and getattr(importlib.import_module(module_name), name, None) is function:
            return f"{module_name}.{name}" if _allowed_quietly(f"{module_name}.{name}") else None
    qualified = f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"
    return qualified if qualified in PROJECT_TARGETS else None


def _allowed_quietly(target: str) -> bool:
    try:
        _allowed(target)
    except UserError:
        return False
    return True


def _plain(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return all(_plain(item) for item in value)
    return isinstance(value, PLAIN)


def _as_lists(arguments: dict[str, Any]) -> dict[str, Any]:
    """Tuples (Adam's betas) as lists: the hyperparameters also go to YAML files."""
    return {key: list(value) if isinstance(value, tuple) else value for key, value in arguments.items()}


def record(spec: Spec, what: str) -> dict[str, Any] | None:
    """``spec`` as plain data for the hyperparameters; None, with a warning, for a callable that
    cannot be written down (a lambda, a function of one's own)."""
    if spec is None:
        return None
    if isinstance(spec, dict) or OmegaConf.is_dict(spec):
        entry = OmegaConf.to_container(spec, resolve=True) if OmegaConf.is_dict(spec) else dict(spec)
        entry.pop("_partial_", None)
        _allowed(str(entry.get("_target_")))
        return _as_lists(entry)
    partial = isinstance(spec, functools.partial)
    target = _public_name(spec.func if partial else spec)
    # Hydra's partials keep a list setting (Adam's betas) as a ListConfig.
    arguments = {
        key: OmegaConf.to_container(value) if OmegaConf.is_config(value) else value
        for key, value in (spec.keywords if partial else {}).items()
    }
    if target is not None and not (partial and spec.args) and all(map(_plain, arguments.values())):
        return {"_target_": target, **_as_lists(arguments)}
    warnings.warn(
        f"LeNet5Module: the {what} {spec!r} cannot be recorded in the hyperparameters, so a module "
        f"loaded from its checkpoint trains with the default recipe unless given one "
        f"(load_from_checkpoint(path, {what}=...)); a config dict or a functools.partial of a "
        f"torch.optim class with plain arguments is recorded",
        stacklevel=3,
    )
    return None


def factory(spec: Spec) -> Callable[..., Any] | None:
    """The callable a recipe entry stands for (a callable is returned as it is)."""
    if spec is None or callable(spec):
        return spec
    entry = dict(spec)
    target = _allowed(str(entry.pop("_target_", None)))
    return functools.partial(target, **entry)


def default_recipe() -> tuple[dict[str, Any], dict[str, Any] | None]:
    """train.py's optimizer and scheduler (conf/train.yaml's defaults list: adam and onecycle),
    read from the configs themselves so Python and the command line train alike."""
    defaults = OmegaConf.load(CONF / "train.yaml").defaults
    chosen = {key: value for entry in defaults if OmegaConf.is_dict(entry) for key, value in entry.items()}
    optimizer = OmegaConf.load(CONF / "optimizer" / f"{chosen['optimizer']}.yaml")
    scheduler = OmegaConf.load(CONF / "scheduler" / f"{chosen['scheduler']}.yaml")
    return record(optimizer, "optimizer"), record(scheduler, "scheduler") if "_target_" in scheduler else None
