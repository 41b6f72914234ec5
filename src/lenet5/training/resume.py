"""Resuming a run (``hydra.run.dir=<run> ckpt_path=last``) without damaging its folder.

- ``resume_guard`` wraps the whole entry point: Hydra rewrites ``.hydra/`` and the run rewrites
  ``config.yaml`` before training starts, so the folder is snapshotted first. A resume that fails
  before saving any checkpoint puts every file back byte for byte and removes the new ones; one
  that trained keeps the first run's ``config.yaml`` and ``.hydra/``, and records the resume's
  own (``resume-N.yaml``: its overrides and the settings it changed; ``.hydra/resume-N/``).
- ``keep_csv_history``: Lightning's CSV writer deletes ``metrics.csv`` when it opens a folder
  that has one; its rows are put back and the writer continues after them.
- ``ExtendSchedules``: a finished run given more epochs continues with its one-cycle schedule
  rebuilt for the new length (at the same step); given no more epochs it is refused in one line.
- A single run given its folder (``hydra.run.dir=...``) holds that folder's lock for its whole
  life, so a second run there is refused, and without ``ckpt_path`` it may not run into a folder
  that holds a finished run or checkpoints (Hydra would rewrite every file of it).
"""

import copy
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import CSVLogger
from torch.optim.lr_scheduler import OneCycleLR

from lenet5.atomic import write_whole
from lenet5.cluster import restart
from lenet5.errors import UserError
from lenet5.run_files import (
    CHECKPOINT_SUFFIX,
    CONFIG,
    CSV_METRICS,
    FAILURE,
    HYDRA,
    INTERRUPTED,
    RESUME_RECORDS,
    resume_hydra,
    resume_record,
)
from lenet5.training.checkpoint_io import first_line, verify_integrity
from lenet5.training.run_folder import LOCK_FILE, option, owned_folder, runs_nothing

SNAPSHOT_LIMIT = 64 * 2**20  # files larger than this are compared by size and mtime only
# Settings a resume may change, since none changes what is trained: how the network runs
# (channels_last, compile), how its first weights were drawn (init: the checkpoint's replace
# them), the evaluation batch size, and where the data files are (root, download).
MAY_CHANGE = frozenset(
    {"model.channels_last", "model.compile", "model.init"}
    | {"data.eval_batch_size", "data.root", "data.download"}
)


def keep_csv_history(trainer: L.Trainer) -> None:
    for logger in trainer.loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / CSV_METRICS
        kept = path.read_bytes() if path.is_file() else None
        writer = logger.experiment  # opening it deletes metrics.csv
        if kept:
            write_whole(path, kept)
            writer.metrics_keys = kept.decode().splitlines()[0].split(",")


class ExtendSchedules(Callback):
    """A resumed run's one-cycle schedules take the shape this run's ``configure_optimizers``
    gave them (its total steps) at the step the checkpoint reached, through the schedulers' own
    ``state_dict``/``load_state_dict``. Lightning calls ``on_fit_start`` after
    ``configure_optimizers`` and before it loads the checkpoint's scheduler states, which
    would otherwise bring back the old run's length."""

    def __init__(self, resuming: bool):
        self.resuming = resuming
        self.built: list[tuple[int, dict[str, Any]] | None] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.built = [
            (config.scheduler.total_steps, copy.deepcopy(config.scheduler.state_dict()))
            if self.resuming and isinstance(config.scheduler, OneCycleLR)
            else None
            for config in trainer.lr_scheduler_configs
        ]

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for config, built in zip(trainer.lr_scheduler_configs, self.built, strict=True):
            scheduler = config.scheduler
            if built is not None and scheduler.total_steps != built[0]:
                reached = scheduler.last_epoch
                scheduler.load_state_dict(built[1])
                scheduler.last_epoch = reached
        self.built = []


def _text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def _differences(saved: Any, current: Any, prefix: str) -> list[tuple[str, Any, Any]]:
    """(setting, checkpoint's value, this run's) for each setting both know and that differs;
    a setting the checkpoint lacks (written by an older version) is not compared."""
    if not isinstance(saved, dict):
        return []
    found = []
    for key, value in dict(current).items():
        name = f"{prefix}.{key}"
        if not key.startswith("_") and name not in MAY_CHANGE and key in saved and saved[key] != value:
            found.append((name, saved[key], value))
    return found


def check_resumable(
    path: str,
    module: L.LightningModule,
    max_epochs: int | None,
    datamodule: L.LightningDataModule | None = None,
) -> None:
    """Before anything is written: the checkpoint is intact, it was trained with this run's
    model (and data, given the datamodule) settings, its weights fit this run's model, and there
    are epochs left to train (else Lightning would silently train nothing)."""
    verify_integrity(Path(path))
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        weights = checkpoint["state_dict"]
        done = checkpoint["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"]
    except Exception as error:  # noqa: BLE001 - pickle, zip and a missing key mean the same here
        raise UserError(
            f"{path}: not a resumable lenet5 training checkpoint ({first_line(error)})"
        ) from error
    saved_model = (checkpoint.get("hyper_parameters") or {}).get("model")
    differ = _differences(saved_model, module.hparams.get("model", {}), "model")
    if datamodule is not None:
        differ += _differences(checkpoint.get("datamodule_hyper_parameters"), datamodule.hparams, "data")
    if differ:
        said = "; ".join(
            f"{key} is {_text(old)} in the checkpoint, {_text(new)} here" for key, old, new in differ[:3]
        )
        fix = " ".join(f"{key}={_text(old)}" for key, old, _ in differ)
        raise UserError(f"{path}: {said}; resume with the checkpoint's settings ({fix})")
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in weights.items() if isinstance(v, torch.Tensor)}
    if expected != found:
        differ = sorted(k for k in {*expected, *found} if expected.get(k) != found.get(k))
        raise UserError(
            f"{path}: its weights do not fit this run's model ({', '.join(differ[:3])} differ); "
            f"resume with the model settings the run was trained with"
        )
    if max_epochs is not None and 0 <= max_epochs <= done:
        raise UserError(
            f"trainer.max_epochs={max_epochs}: this run already trained {done} epochs; "
            f"give trainer.max_epochs > {done} to extend it"
        )


def snapshot(folder: Path) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink() and path != folder / LOCK_FILE:
            stat = path.stat()
            small = stat.st_size <= SNAPSHOT_LIMIT and path.suffix != CHECKPOINT_SUFFIX
            files[str(path.relative_to(folder))] = (
                path.read_bytes() if small else (stat.st_size, stat.st_mtime_ns)
            )
    return files


def _trained(folder: Path, before: dict[str, Any]) -> bool:
    """A checkpoint was written or replaced: the resume made progress worth keeping (a hidden
    one is a temporary file that lenet5.atomic never moved into place)."""
    for path in folder.rglob(f"*{CHECKPOINT_SUFFIX}"):
        if path.name.startswith("."):
            continue
        stat = path.stat()
        if before.get(str(path.relative_to(folder))) != (stat.st_size, stat.st_mtime_ns):
            return True
    return False


def restore(folder: Path, before: dict[str, Any]) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        name = str(path.relative_to(folder))
        if name == LOCK_FILE:
            continue
        if path.is_file() and name not in before:
            path.unlink()
        elif path.is_dir() and not any(k.startswith(name + os.sep) for k in before):
            shutil.rmtree(path, ignore_errors=True)
    for name, content in before.items():
        path = folder / name
        if isinstance(content, bytes) and (not path.is_file() or path.read_bytes() != content):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_whole(path, content)


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(node, dict):
        return {prefix: node}
    out: dict[str, Any] = {}
    for key, value in node.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def keep_first_config(
    folder: Path, before: dict[str, Any], argv: list[str], finished: bool = False, extra: dict | None = None
) -> None:
    """The first run's config.yaml and .hydra/ stay; the resume's are recorded beside them (with
    ``extra``: what started it, a SLURM restart say). A finished resume moves the interruption or
    failure it resumed from into its record."""
    number = 1 + sum(1 for _ in folder.glob(RESUME_RECORDS))
    changes = {}
    old, new = before.get(CONFIG), folder / CONFIG
    if isinstance(old, bytes) and new.is_file():
        first, now = _flat(yaml.safe_load(old) or {}), _flat(yaml.safe_load(new.read_text()) or {})
        changes = {
            k: {"before": first.get(k), "after": now.get(k)}
            for k in sorted({*first, *now})
            if first.get(k) != now.get(k)
        }
        write_whole(new, old)
    record: dict[str, Any] = {"command": ["python", "train.py", *argv], "changed": changes, **(extra or {})}
    earlier = {name: before[name] for name in (INTERRUPTED, FAILURE) if finished and name in before}
    for name, content in earlier.items():
        try:
            record[name.removesuffix(".json")] = json.loads(content)
        except (TypeError, ValueError):  # not JSON, or too large to have been kept
            record[name.removesuffix(".json")] = None
    write_whole(folder / resume_record(number), yaml.safe_dump(record, sort_keys=False))
    for name, content in before.items():
        if name.startswith(HYDRA + os.sep) and isinstance(content, bytes):
            current = folder / name
            if current.is_file() and current.read_bytes() != content:
                target = folder / resume_hydra(number) / current.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(current, target)
                write_whole(current, content)
    for name in earlier:
        clear_record(folder, name)


def clear_record(run_dir: Path, name: str = INTERRUPTED) -> None:
    """Remove a run folder's interrupted.json (or failure.json) once a run there finished."""
    (Path(run_dir) / name).unlink(missing_ok=True)


SAFE_VALUE = re.compile(r"[A-Za-z0-9_./@%+-]+")


def hydra_quote(value: str) -> str:
    """``value`` as one value of Hydra's override grammar: as it is where that is safe, else
    single-quoted (a backslash before a quote, and before the closing quote, doubled; the quote
    escaped; ``${`` escaped so OmegaConf does not read it as an interpolation)."""
    if SAFE_VALUE.fullmatch(value):
        return value
    quoted = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value.replace("${", "\\${"))
    quoted = re.sub(r"(\\+)$", lambda m: m.group(1) * 2, quoted)
    return f"'{quoted}'"


def resume_command_words(overrides: list[str], run_dir: Path | str) -> list[str]:
    """The words of the command that resumes a run: its overrides (``ckpt_path`` and
    ``hydra.run.dir`` replaced) in its folder from its last checkpoint. ``shlex.join`` of them
    is the line to paste into a shell."""
    replaced = {"ckpt_path", "hydra.run.dir"}
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in replaced]
    return ["python", "train.py", *kept, f"hydra.run.dir={hydra_quote(str(run_dir))}", "ckpt_path=last"]


@contextmanager
def resume_guard(argv: list[str]) -> Iterator[None]:
    """Around a single run's whole entry point (Hydra writes into the folder before the run):
    the folder given is locked; a resume that fails is undone; a fresh run may not overwrite."""
    argv = restart.resume_after_restart(argv)  # a SLURM job started again resumes its folder
    run_dir, ckpt = option(argv, "hydra.run.dir"), option(argv, "ckpt_path")
    if runs_nothing(argv) or not isinstance(run_dir, str) or not run_dir or "${" in run_dir:
        yield  # no folder given (a new one per run), or one Hydra has yet to resolve
        return
    folder = Path(run_dir)
    resuming = ckpt is not None and folder.is_dir()
    with owned_folder(folder, run_dir, fresh=ckpt is None):
        if not resuming:
            yield
            return
        with _restored_on_failure(folder, argv):
            yield


@contextmanager
def _restored_on_failure(folder: Path, argv: list[str]) -> Iterator[None]:
    before = snapshot(folder)
    extra = restart.record() if restart.restart_count() else None
    try:
        yield
    except BaseException as raised:
        failed = not (isinstance(raised, SystemExit) and raised.code in (0, None))
        if failed and not _trained(folder, before):
            restore(folder, before)
        else:
            keep_first_config(folder, before, argv, finished=not failed, extra=extra)
        raise
    keep_first_config(folder, before, argv, finished=True, extra=extra)
