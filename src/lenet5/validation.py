"""Every setting a user can type, checked before any work starts, by the one rule of its key.

Libraries check some of them late and in their own words (torch's "Invalid learning rate"
inside configure_optimizers, after the data loaded), and accept others silently (Lightning
replaces a seed outside 0..2**32-1 with a random one). Here each setting gets one line naming
the key, the value and what is allowed: ``check_settings`` applies RULES to a whole config, and
the constructors the settings reach (the datamodule, the model's parts, SDLM, the schedules)
apply the same rules with ``check``, so a value given from Python gets the same line. A key
added with ``+`` must be one the component it lands in accepts, so a typo is not silently ignored.

Constructors in lenet5.models import this module: it imports nothing heavy (omegaconf only
where a whole config is checked).
"""

import inspect
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from lenet5.errors import SettingError, UserError

if TYPE_CHECKING:
    from omegaconf import DictConfig

Check = tuple[Callable[[Any], bool], str]


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: Any) -> bool:
    return (_int(value) or isinstance(value, float)) and math.isfinite(value)


def integer(low: int, high: float = math.inf, also: tuple = ()) -> Check:
    text = f"an integer >= {low}" if high == math.inf else f"an integer from {low} to {int(high)}"
    extra = "".join(f" or {'null' if a is None else a}" for a in also)
    return (lambda v: v in also if not _int(v) else (low <= v <= high or v in also)), text + extra


def number(low: float, high: float = math.inf, low_open: bool = False, high_open: bool = False) -> Check:
    def ok(v: Any) -> bool:
        if not _number(v):
            return False
        above = v > low if low_open else v >= low
        below = v < high if high_open else v <= high
        return above and below

    if high < math.inf:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return ok, f"a number in {left}{low:g}, {high:g}{right}"
    if low == -math.inf:
        return ok, "a finite number"
    if low == 0 and low_open:
        return ok, "a positive number"
    return ok, f"a number {'>' if low_open else '>='} {low:g}"


def one_of(*options: str | None) -> Check:
    names = ["null" if o is None else o for o in options]
    return (lambda v: v in options), f"{', '.join(names[:-1])} or {names[-1]}"


def batches() -> Check:
    """Lightning's limit_*_batches: null, a count of batches, or a fraction of them."""
    ok = lambda v: v is None or (_int(v) and v >= 0) or (isinstance(v, float) and 0.0 <= v <= 1.0)  # noqa: E731
    return ok, "null, an integer >= 0 (batches) or a fraction in [0, 1]"


POSITIVE = number(0.0, low_open=True)
NON_NEGATIVE = number(0.0)
FINITE = number(-math.inf)
COUNT = integer(1)

RULES: dict[str, Check] = {
    "seed": integer(0, 2**32 - 1, also=(None,)),
    "seeds": COUNT,
    "init_from": (
        lambda v: v is None or (isinstance(v, str) and v != ""),
        "null or a checkpoint file's path",
    ),
    "lr_scale": POSITIVE,
    "float32_matmul_precision": one_of("highest", "high", "medium", None),
    "optimizer.lr": POSITIVE,
    "optimizer.weight_decay": NON_NEGATIVE,
    "optimizer.momentum": number(0.0, 1.0, high_open=True),
    "optimizer.eps": POSITIVE,
    "optimizer.mu": POSITIVE,
    "optimizer.samples": COUNT,
    "optimizer.online": (lambda v: isinstance(v, bool), "true or false"),
    "optimizer.curvature": one_of("pass", "running"),
    "optimizer.gamma": number(0.0, 1.0, low_open=True),
    "optimizer.every": COUNT,
    "scheduler.pct_start": number(0.0, 1.0, low_open=True, high_open=True),
    "scheduler.div_factor": POSITIVE,
    "scheduler.final_div_factor": POSITIVE,
    "scheduler.step_size": COUNT,
    "scheduler.gamma": POSITIVE,
    "trainer.max_epochs": integer(1, also=(-1,)),
    "trainer.min_epochs": integer(0, also=(None,)),
    "trainer.max_steps": integer(1, also=(-1,)),
    "trainer.limit_train_batches": batches(),
    "trainer.limit_val_batches": batches(),
    "trainer.limit_test_batches": batches(),
    "trainer.log_every_n_steps": COUNT,
    "trainer.accumulate_grad_batches": COUNT,
    "trainer.check_val_every_n_epoch": integer(1, also=(None,)),
    "trainer.gradient_clip_val": (lambda v: v is None or NON_NEGATIVE[0](v), "null or a number >= 0"),
    "data.val_size": integer(0),
    "data.batch_size": COUNT,
    "data.eval_batch_size": COUNT,
    "data.split_seed": integer(0, 2**63 - 1),
    "data.augment": one_of("none", "affine"),
    "data.mean": FINITE,
    "data.std": POSITIVE,
    "model.input_mean": FINITE,
    "model.input_std": POSITIVE,
    "model.rbf_j": POSITIVE,
    "callbacks.early_stopping.patience": integer(0),
    "callbacks.model_checkpoint.save_top_k": integer(-1),
    # SDLM's, ${data.batch_size} in its config: after data.batch_size, so that key is the one named.
    "optimizer.batch_size": COUNT,
}


def check(key: str, value: Any, rules: dict[str, Check] = RULES) -> Any:
    """``value`` when the rule of ``key`` allows it, else a SettingError naming both."""
    ok, allowed = rules[key]
    if not ok(value):
        raise SettingError(f"{key}={value!r}: give {allowed}")
    return value


def check_settings(
    cfg: "DictConfig", rules: dict[str, Check] = RULES, null_means_unset: tuple[str, ...] = ()
) -> None:
    """Every key of ``rules`` that ``cfg`` has; under the prefixes ``null_means_unset`` a null
    is no value (evaluate.py's ``data.*``: null keeps the checkpoint's setting)."""
    from omegaconf import OmegaConf

    for key in rules:
        missing = object()
        value = OmegaConf.select(cfg, key, default=missing, throw_on_missing=False)
        if value is missing or (key.startswith("scheduler.") and not cfg.get("scheduler")):
            continue
        if value is None and key.startswith(null_means_unset):
            continue
        check(key, value, rules)


def _accepts(target: str, name: str) -> bool:
    from hydra.utils import get_object

    try:
        component = get_object(target)
        signature = inspect.signature(component.__init__ if inspect.isclass(component) else component)
    except Exception:  # noqa: BLE001 - an unknown target is reported when it is instantiated
        return True
    parameters = signature.parameters.values()
    return name in signature.parameters or any(p.kind is p.VAR_KEYWORD for p in parameters)


def check_added_keys(cfg: "DictConfig", overrides: Iterable[str]) -> None:
    """``+key=value``: the key must be an argument of the component it is added to (a new entry
    of the callbacks or logger groups is a component of its own)."""
    from omegaconf import DictConfig, OmegaConf

    for override in overrides:
        if not override.startswith("+") or "=" not in override:
            continue
        key = override.lstrip("+").split("=", 1)[0]
        if "/" in key or key.startswith("hydra.") or key.startswith("~"):
            continue
        parts = key.split(".")
        if parts[0] in ("callbacks", "logger") and len(parts) <= 3:
            continue
        parent = OmegaConf.select(cfg, ".".join(parts[:-1])) if len(parts) > 1 else None
        target = parent.get("_target_") if isinstance(parent, DictConfig) else None
        if target and _accepts(str(target), parts[-1]):
            continue
        where = f"{'.'.join(parts[:-1])} ({target})" if target else "this config"
        raise SettingError(f"{override}: {parts[-1]!r} is not a setting of {where}; check the spelling")


def check_seeds(cfg: "DictConfig") -> None:
    """``seeds=K``: seeds seed..seed+K-1 must all be seeds, and clipping must act seed by seed."""
    count, first = cfg.get("seeds", 1), cfg.get("seed")
    if count > 1 and first is not None and first + count - 1 > 2**32 - 1:
        raise UserError(f"seed={first} with seeds={count}: the last seed must be <= {2**32 - 1}")
    trainer = cfg.get("trainer") or {}
    if count > 1 and trainer.get("gradient_clip_val") and trainer.get("gradient_clip_algorithm") != "value":
        raise UserError(
            "trainer.gradient_clip_val with seeds>1: clipping by norm mixes the seeds; "
            "set trainer.gradient_clip_algorithm=value, or use seeds=1"
        )


def check_online(cfg: "DictConfig") -> None:
    """``optimizer.online=true`` steps itself, pattern by pattern: Lightning's clipping and
    accumulation would not act on its updates (Lightning refuses them with a traceback)."""
    if not (cfg.get("optimizer") or {}).get("online"):
        return
    trainer = cfg.get("trainer") or {}
    if trainer.get("gradient_clip_val"):
        raise UserError(
            "trainer.gradient_clip_val with optimizer.online=true: online SDLM updates pattern by "
            "pattern and is not clipped; set trainer.gradient_clip_val=null, or optimizer.online=false"
        )
    if (trainer.get("accumulate_grad_batches") or 1) != 1:
        raise UserError(
            "trainer.accumulate_grad_batches with optimizer.online=true: online SDLM updates after "
            "every pattern; set trainer.accumulate_grad_batches=1, or optimizer.online=false"
        )


def check_train_config(cfg: "DictConfig") -> None:
    from hydra.core.hydra_config import HydraConfig

    check_settings(cfg)
    check_seeds(cfg)
    check_online(cfg)
    if HydraConfig.initialized():
        check_added_keys(cfg, HydraConfig.get().overrides.task)


def available_cores() -> int:
    """The cores this process may use (a SLURM allocation or taskset), not the machine's."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _requested(devices: Any, available: int, gpus: bool) -> int | None:
    """How many devices ``trainer.devices`` asks for: auto (one), a count (-1: all GPUs), or
    GPU indices as a list or a string ("0,1"); None where Lightning would refuse the value."""
    if devices == "auto":
        return 1
    if isinstance(devices, str):
        parts = [part.strip() for part in devices.split(",")]
        if not all(part.lstrip("-").isdigit() for part in parts if part):
            return None
        devices = int(parts[0]) if len(parts) == 1 else [int(part) for part in parts if part]
    if _int(devices):
        return available if devices == -1 and gpus else devices if devices >= 1 else None
    from omegaconf import OmegaConf

    if gpus and (OmegaConf.is_list(devices) or isinstance(devices, list | tuple)):
        indices = list(devices)
        valid = all(_int(i) and 0 <= i < available for i in indices) and len(set(indices)) == len(indices)
        return len(indices) if indices and valid else None
    return None


def check_devices(cfg: "DictConfig") -> None:
    """``trainer.accelerator`` names hardware this machine has and ``trainer.devices`` asks for
    no more of it than there is. Lightning would otherwise start 64 CPU processes on 2 cores
    (they crawl for minutes), or end in a traceback when asked for a GPU the machine lacks."""
    import torch

    trainer = cfg.get("trainer") or {}
    asked = str(trainer.get("accelerator", "auto") or "auto")
    devices = trainer.get("devices", "auto")
    cores = available_cores()
    cuda = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = torch.backends.mps.is_available()
    here = ", ".join([f"cpu ({cores} cores)"] + [f"cuda ({cuda} GPUs)"] * bool(cuda) + ["mps"] * mps)
    kind = {"auto": "cuda" if cuda else "mps" if mps else "cpu", "gpu": "mps" if mps and not cuda else "cuda"}
    accelerator = kind.get(asked.lower(), asked.lower())
    if (accelerator == "cuda" and not cuda) or (accelerator == "mps" and not mps):
        raise UserError(
            f"trainer.accelerator={asked}: no such GPU here (torch finds none); available: {here}; "
            f"use trainer.accelerator=cpu or auto"
        )
    if accelerator not in ("cpu", "cuda", "mps"):
        return  # tpu and the like: Lightning checks them
    available = {"cpu": cores, "cuda": cuda, "mps": 1}[accelerator]
    gpus = accelerator != "cpu"
    count = _requested(devices, available, gpus)
    if count is None or count > available:
        if gpus:
            have = f"{available} {accelerator} GPU(s) here"
            allowed = f"an integer from 1 to {available}, -1 for all, or GPU indices below {available}"
        else:
            have = f"this process may use {cores} CPU cores, one training process each"
            allowed = f"an integer from 1 to {cores}"
        raise UserError(f"trainer.devices={devices}: {have}; give {allowed}")
