"""What the experiment trackers (W&B, MLflow) are told about a run, the same for each: the config
as flat dotted keys, the run's short name and its group in a sweep, its tags, the final numbers,
and which checkpoints a tracker keeps as models."""

import sys
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode

from lenet5.errors import UserError


def flat_params(params: Any, prefix: str = "") -> dict[str, Any]:
    """``{"model": {"activation": "relu"}}`` -> ``{"model.activation": "relu"}``; values a tracker cannot
    store as they are (a callable, a path, a tensor) become their text."""
    if isinstance(params, Namespace):
        params = vars(params)
    if isinstance(params, Mapping):
        flat: dict[str, Any] = {}
        for key, value in params.items():
            flat.update(flat_params(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    plain = params is None or isinstance(params, bool | int | float | str)
    if not plain and isinstance(params, list | tuple):
        plain = all(v is None or isinstance(v, bool | int | float | str) for v in params)
    value = params if plain else getattr(params, "__name__", None) or str(params)
    return {prefix: list(value) if isinstance(value, tuple) else value}


NAME_LENGTH = 64
# Overrides that say where or how a run is kept, not what it is.
UNNAMED = ("hydra", "logger", "callbacks", "ckpt_path", "data.root", "data.download", "tags")


def swept_keys(hydra: Any) -> set[str]:
    """Keys the sweep varies: the sweeper's ``params`` and the command line's sweep overrides
    (``a=1,2``, ``range(...)``, ``choice(...)``), when this process holds that command line."""
    keys = set((hydra.sweeper.get("params") or {}).keys())
    try:
        arguments = [a for a in sys.argv[1:] if not a.startswith("-")]  # -m, --multirun
        parsed = OverridesParser.create().parse_overrides(arguments)
    except Exception:  # noqa: BLE001 - not Hydra's command line (a launcher's worker): no sweep known
        parsed = []
    return keys | {o.key_or_group for o in parsed if o.is_sweep_override()}


def short_name(overrides: list[str], swept: set[str]) -> str | None:
    """``activation=relu pooling=max seed=1``: the swept values (else every override that says
    what the run is), each key by its last part, no paths, at most NAME_LENGTH characters."""
    pairs = []
    for override in overrides:
        key, _, value = override.partition("=")
        key = key.lstrip("+~")
        if swept and key not in swept:
            continue
        if key.startswith(UNNAMED) or "/" in value:
            continue
        pairs.append(f"{key.replace('/', '.').split('.')[-1]}={value}")
    name = " ".join(pairs)
    return name[:NAME_LENGTH].rstrip() or None


def job_identity() -> tuple[str | None, str | None]:
    """(name, group) of this Hydra job: its swept values, and its sweep folder in a multirun."""
    if not HydraConfig.initialized():
        return None, None
    hydra = HydraConfig.get()
    multirun = hydra.mode == RunMode.MULTIRUN
    name = short_name(list(hydra.overrides.task), swept_keys(hydra) if multirun else set())
    group = hydra.sweep.dir if multirun else None
    return name, group


def run_tags(tags: Any) -> list[str]:
    """The config's top-level ``tags`` (a list of strings, in train.yaml), checked."""
    if isinstance(tags, str):
        raise UserError(f"tags={tags}: give a list of strings, e.g. tags=[baseline,relu]")
    tags = list(tags or [])
    bad = [t for t in tags if not isinstance(t, str) or not t.strip()]
    if bad:
        raise UserError(f"tags={tags}: give a list of non-empty strings, e.g. tags=[baseline,relu]")
    return tags


def final_numbers(summary: Mapping[str, Any]) -> dict[str, int | float]:
    """The run's closing numbers (test metrics, best epoch, time, parameters) a tracker keeps."""
    return {k: v for k, v in summary.items() if isinstance(v, int | float)}


def logs_this_checkpoint(checkpoint_callback: Any) -> bool:
    """Only the checkpoint callback that ranks checkpoints logs the model: Lightning gives its
    ``best`` alias to each callback's own best, which for ``last.ckpt`` is itself."""
    return getattr(checkpoint_callback, "monitor", None) is not None
