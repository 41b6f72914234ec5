"""The run sequence, for one seed or K (``seeds=K``), as functions the tests call too:
config -> datamodule + module -> trainer -> run folder (checkpoints, logs, metrics.json)."""

import json
import os
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.tree import Tree

from lenet5.atomic import write_whole
from lenet5.errors import UserError
from lenet5.extras import require_for_loggers
from lenet5.results.console import report_results, route_library_logs
from lenet5.results.mlflow_logging import log_to_mlflow
from lenet5.results.plots import (
    EpochHistory,
    log_to_tensorboard,
    read_history,
    write_pictures,
)
from lenet5.results.wandb_logging import finish_wandb, log_test_results, summarize_wandb
from lenet5.run_files import CONFIG, HISTORY, LAST_CHECKPOINT, METRICS, MISCLASSIFIED
from lenet5.serving.checkpoints import class_names
from lenet5.training.after_fit import test_packed, test_single
from lenet5.training.checkpoint_io import AtomicCheckpointIO
from lenet5.training.divergence import StopOnDivergence
from lenet5.training.init_from import start_from
from lenet5.training.module import LeNet5Module
from lenet5.training.packed import PackedLeNet5Module, build_seed_models
from lenet5.training.packed_data import PackedDataModule
from lenet5.training.resume import ExtendSchedules, check_resumable, clear_record, keep_csv_history
from lenet5.training.setup import configure_torch, trainer_settings
from lenet5.training.signals import StopOnSignal
from lenet5.training.spawned import LeaveProcessGroup
from lenet5.training.val_record import ValidationRecord
from lenet5.validation import check_devices, check_train_config

NVML_CUDA_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def output_dir() -> Path:
    return Path(HydraConfig.get().runtime.output_dir)


@rank_zero_only
def print_config(cfg: DictConfig) -> None:
    tree = Tree("config", guide_style="dim")

    def add(branch: Tree, node: Any) -> None:
        for key, value in node.items():
            if isinstance(value, DictConfig):
                add(branch.add(f"[bold]{key}[/]"), value)
            else:
                branch.add(f"{key}: [cyan]{value}[/]")

    add(tree, cfg)
    Console().print(tree)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Written whole or not at all."""
    write_whole(path, json.dumps(payload, indent=2, sort_keys=True) + "\n")


def choose_seed(cfg: DictConfig) -> int:
    """Every integer (0 included) is used as given; null draws one, recorded in the config."""
    if cfg.seed is None:
        with open_dict(cfg):
            cfg.seed = random.SystemRandom().randrange(2**31)
    elif not isinstance(cfg.seed, int) or isinstance(cfg.seed, bool):
        raise UserError(f"seed={cfg.seed!r}: give an integer, or null for a random seed")
    return cfg.seed


def resolve_checkpoint(ckpt_path: str | None, run_dir: Path) -> str | None:
    if ckpt_path is None:
        return None
    if ckpt_path == "last":
        candidate = run_dir / LAST_CHECKPOINT
        if not candidate.is_file():
            raise UserError(
                f"ckpt_path=last: no {candidate}. Resume a run inside its own folder: "
                f"hydra.run.dir=<that run's folder> ckpt_path=last"
            )
        return str(candidate)
    if not Path(ckpt_path).is_file():
        raise UserError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    return ckpt_path


def scaled_lr(cfg: DictConfig) -> float:
    """``optimizer.lr`` times ``lr_scale``: one knob that means the same for every optimizer, so a
    study can pick each variant's rate on the hold-out from the same relative candidates."""
    return float(cfg.optimizer.lr) * cfg.get("lr_scale", 1.0)


def instantiate_all(group: DictConfig | None) -> list[Any]:
    """Instantiate each entry of a callbacks/logger group, skipping the ones set to null."""
    return [instantiate(entry) for entry in (group or {}).values() if entry is not None]


@contextmanager
def without_nvml_cuda_check() -> Iterator[None]:
    """Lightning has torch check CUDA through NVML (so that forked processes may still use the
    GPU), a check torch does not cache and every optimizer step repeats: 0.15 ms a step on a CPU
    with a CUDA build of torch, 1% of a LeNet step. Training on a CPU never needs it; whatever
    runs next in this process (a sweep's next job, say, on a GPU) gets it back."""
    saved = os.environ.pop(NVML_CUDA_CHECK, None)
    try:
        yield
    finally:
        if saved is not None:
            os.environ[NVML_CUDA_CHECK] = saved


def train(cfg: DictConfig) -> dict[str, float]:
    """``fit_and_test``, then the W&B run ended even on failure: Lightning would otherwise
    adopt it in the next job of a sweep run in this process."""
    try:
        return fit_and_test(cfg)
    finally:
        finish_wandb(failed=sys.exc_info()[0] is not None)


def choose_seeds(cfg: DictConfig) -> list[int]:
    """``seed``, and with ``seeds=K`` the K seeds seed, seed+1, ..., trained together."""
    first = choose_seed(cfg)
    return [first + k for k in range(cfg.get("seeds", 1))]


def build(cfg: DictConfig, seeds: list[int]) -> tuple[L.LightningDataModule, L.LightningModule]:
    """The datamodule and module: one network, or K seeds' networks stacked with each seed's
    own data order (lenet5.training.packed). Each network is built right after its seed, then
    given the weights of ``init_from`` where the config names a checkpoint."""
    optimizer = instantiate(cfg.optimizer, lr=scaled_lr(cfg))
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    config = OmegaConf.to_container(cfg.model, resolve=True)
    # init_from: a new run from a checkpoint's weights; a resume (ckpt_path) restores its own.
    init_from = cfg.get("init_from") if cfg.get("ckpt_path") is None else None
    if len(seeds) == 1:
        L.seed_everything(seeds[0], workers=True, verbose=False)
        module = LeNet5Module(model=config, optimizer=optimizer, scheduler=scheduler)
        if init_from:
            start_from(init_from, [module.model])
        return instantiate(cfg.data), module
    models = build_seed_models(config, seeds)
    if init_from:
        start_from(init_from, models)  # every seed starts from the same weights
    L.seed_everything(seeds[0], workers=True, verbose=False)
    module = PackedLeNet5Module(models, seeds, optimizer=optimizer, scheduler=scheduler)
    return PackedDataModule(instantiate(cfg.data), seeds), module


def run_callbacks(cfg: DictConfig, datamodule: Any, run_dir: Path, resuming: bool, packed: bool) -> list:
    """The config's callbacks (``--cfg job`` lists them; each can be set to null), then the
    ones every run gets, one seed or K: they keep its work safe and its record whole."""
    callbacks = instantiate_all(cfg.get("callbacks"))
    if not datamodule.has_validation or packed:
        # Nothing held out (the paper's set-up: the last weights are tested), or K seeds, each
        # of which keeps its own best weights: no checkpoint is chosen by a monitored score.
        callbacks = [c for c in callbacks if getattr(c, "monitor", None) is None]
    return [
        *callbacks,
        EpochHistory(run_dir / HISTORY),  # history.csv, rewritten every epoch
        StopOnSignal(run_dir / LAST_CHECKPOINT),  # SIGTERM/SIGINT/SIGUSR1: a resumable stop
        StopOnDivergence(),  # a loss blowing up ends the run with advice
        ExtendSchedules(resuming=resuming),  # a resume given more epochs stretches its schedule
        LeaveProcessGroup(),  # ddp_spawn children leave their process group before exiting
    ]


def completed_epochs(run_dir: Path) -> int:
    """The epochs whose rows history.csv holds: under ddp_spawn the fit ran in child processes
    and this process's trainer counted none of them."""
    return max((int(row["epoch"]) + 1 for row in read_history(run_dir / HISTORY)), default=0)


def fit_and_test(cfg: DictConfig) -> dict[str, float]:
    """Fit, test the best-val weights (the last ones where nothing is held out) on the official
    test set, write metrics.json and the pictures (curves, confusion matrix, misclassified
    digits), also to W&B if it logs. ``seeds=K`` takes the same sequence with K networks."""
    run_dir = output_dir()
    check_train_config(cfg)
    check_devices(cfg)
    require_for_loggers(cfg.get("logger"))
    seeds = choose_seeds(cfg)
    ckpt_path = resolve_checkpoint(cfg.get("ckpt_path"), run_dir)
    print_config(cfg)
    route_library_logs()
    configure_torch(cfg)
    if rank_zero_only.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_whole(run_dir / CONFIG, OmegaConf.to_yaml(cfg, resolve=True))

    datamodule, module = build(cfg, seeds)
    packed = len(seeds) > 1
    record = ValidationRecord()
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        default_root_dir=str(run_dir),
        callbacks=[*run_callbacks(cfg, datamodule, run_dir, ckpt_path is not None, packed), record],
        logger=instantiate_all(cfg.get("logger")) or False,
        plugins=[AtomicCheckpointIO()],
        **trainer_settings(cfg),
    )
    if packed and trainer.world_size > 1:
        raise UserError("seeds>1 runs in one process: use a single-device trainer (trainer=cpu or gpu)")
    if ckpt_path is not None:
        check_resumable(ckpt_path, module, cfg.trainer.max_epochs, datamodule)
        keep_csv_history(trainer)  # before anything opens the CSV writer, which deletes the file
    parameters = (module.template if packed else module.model).parameter_count()
    for logger in trainer.loggers:
        logger.log_hyperparams({**OmegaConf.to_container(cfg, resolve=True), "parameters": parameters})

    started = time.perf_counter()
    with without_nvml_cuda_check() if isinstance(trainer.accelerator, CPUAccelerator) else nullcontext():
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    train_seconds = time.perf_counter() - started

    if packed:
        tested = test_packed(trainer, module, datamodule, run_dir)
    else:
        tested = test_single(trainer, module, datamodule, record)
    if trainer.is_global_zero:
        summary = {
            **tested.metrics,
            "seed": seeds[0],
            "epochs": completed_epochs(run_dir),
            "train_seconds": round(train_seconds, 2),
            "parameters": parameters,
            **tested.summary,
        }
        write_json(run_dir / METRICS, summary)
        clear_record(run_dir)  # an interruption this run resumed from is over
        names = class_names(cfg.data.dataset)
        pictures = write_pictures(run_dir, tested.outcome, names, run_dir / HISTORY)
        optimized = tested.metrics.get(cfg.optimized_metric)
        log_to_tensorboard(trainer.loggers, pictures, optimized, trainer.global_step)
        log_test_results(trainer.loggers, tested.outcome, names, run_dir / MISCLASSIFIED)
        summarize_wandb(trainer.loggers, summary)
        log_to_mlflow(trainer.loggers, pictures, tested.outcome, names, summary)
        report_results(summary, run_dir)
    return tested.metrics
