"""What the entry points do, as functions the tests call too: config -> datamodule + module ->
trainer -> run folder (checkpoints, logs, metrics.json)."""

import csv
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
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.strategies.launchers import _MultiProcessingLauncher
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf, open_dict
from rich.console import Console
from rich.tree import Tree

from lenet5.atomic import write_whole
from lenet5.errors import UserError
from lenet5.results.console import checkpoint_epoch, report_results, route_library_logs
from lenet5.results.plots import (
    HISTORY,
    MISCLASSIFIED,
    EpochHistory,
    log_to_tensorboard,
    outcome_of_test_pass,
    predict_test_split,
    write_pictures,
)
from lenet5.results.wandb_logging import finish_wandb, log_test_results, summarize_wandb
from lenet5.serving.checkpoints import class_names, load_checkpoint
from lenet5.training.checkpoint_io import AtomicCheckpointIO
from lenet5.training.divergence import StopOnDivergence
from lenet5.training.module import LeNet5Module
from lenet5.training.resume import ExtendSchedules, check_resumable, keep_csv_history
from lenet5.training.setup import configure_torch, trainer_settings
from lenet5.training.signals import StopOnSignal
from lenet5.training.spawned import LeaveProcessGroup
from lenet5.training.val_record import ValidationRecord
from lenet5.validation import check_train_config

LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
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


def continue_csv_header(trainer: L.Trainer) -> None:
    """Start the CSV writer from metrics.csv's columns. Under ddp_spawn each stage runs in new
    processes whose writer knows only its own columns, and rewriting the file with those fails."""
    for logger in trainer.loggers:
        if isinstance(logger, CSVLogger) and os.path.isfile(logger.experiment.metrics_file_path):
            with open(logger.experiment.metrics_file_path, newline="") as handle:
                logger.experiment.metrics_keys = next(csv.reader(handle), [])


def completed_epochs(trainer: L.Trainer, run_dir: Path) -> int:
    """Under ddp_spawn the fit ran in child processes: this trainer counted no epoch, but the
    last checkpoint counts the epochs whose batches were all processed."""
    last = run_dir / LAST_CHECKPOINT
    if isinstance(trainer.strategy.launcher, _MultiProcessingLauncher) and last.is_file():
        loops = torch.load(last, map_location="cpu", weights_only=True)["loops"]
        return loops["fit_loop"]["epoch_progress"]["current"]["processed"]
    return trainer.current_epoch


def scaled_lr(cfg: DictConfig) -> float:
    """``optimizer.lr`` times ``lr_scale``: one knob that means the same for every optimizer, so a
    study can pick each variant's rate on the hold-out from the same relative candidates."""
    scale = cfg.get("lr_scale", 1.0)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale > 0:
        raise UserError(f"lr_scale={scale!r}: give a positive number (it multiplies optimizer.lr)")
    return float(cfg.optimizer.lr) * scale


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


def fit_and_test(cfg: DictConfig) -> dict[str, float]:
    """Fit, test the best-val checkpoint on the official test set, write metrics.json and the
    pictures (curves, confusion matrix, misclassified digits), also to W&B if it logs."""
    from lenet5.packed_run import fit_and_test_packed, packed_seeds  # it builds on this module

    if packed_seeds(cfg) > 1:
        return fit_and_test_packed(cfg)
    run_dir = output_dir()
    check_train_config(cfg)
    seed = choose_seed(cfg)
    ckpt_path = resolve_checkpoint(cfg.get("ckpt_path"), run_dir)
    print_config(cfg)
    route_library_logs()
    configure_torch(cfg)
    if rank_zero_only.rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_whole(run_dir / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))
    L.seed_everything(seed, workers=True, verbose=False)

    datamodule = instantiate(cfg.data)
    module = LeNet5Module(
        model=OmegaConf.to_container(cfg.model, resolve=True),
        optimizer=instantiate(cfg.optimizer, lr=scaled_lr(cfg)),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
    )
    callbacks = instantiate_all(cfg.get("callbacks"))
    if not datamodule.has_validation:
        # The paper's set-up: nothing held out, so nothing to monitor; the last weights are tested.
        callbacks = [c for c in callbacks if getattr(c, "monitor", None) is None]
    record = ValidationRecord()
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        default_root_dir=str(run_dir),
        callbacks=[
            *callbacks,
            record,
            EpochHistory(run_dir / HISTORY),
            StopOnSignal(run_dir / LAST_CHECKPOINT),
            StopOnDivergence(),
            ExtendSchedules(resuming=ckpt_path is not None),
            LeaveProcessGroup(),
        ],
        logger=instantiate_all(cfg.get("logger")) or False,
        plugins=[AtomicCheckpointIO()],
        **trainer_settings(cfg),
    )
    if ckpt_path is not None:
        check_resumable(ckpt_path, module, cfg.trainer.max_epochs)
        keep_csv_history(trainer)  # before anything opens the CSV writer, which deletes the file
    for logger in trainer.loggers:
        config = OmegaConf.to_container(cfg, resolve=True)
        logger.log_hyperparams({**config, "parameters": module.model.parameter_count()})

    started = time.perf_counter()
    with without_nvml_cuda_check() if isinstance(trainer.accelerator, CPUAccelerator) else nullcontext():
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path)
    train_seconds = time.perf_counter() - started

    # Validate and test the same weights: the best-val checkpoint (else the final ones).
    # A checkpoint callback that monitors nothing (last.ckpt alone) picks nothing: the final weights.
    chosen_by = trainer.checkpoint_callback
    best = chosen_by.best_model_path if chosen_by is not None and chosen_by.monitor else ""
    evaluate = {"datamodule": datamodule, "ckpt_path": best or None, "verbose": False}
    validated = record.of_checkpoint(best) if datamodule.has_validation else {}
    if datamodule.has_validation and not validated:
        continue_csv_header(trainer)
        validated = trainer.validate(module, **evaluate)[0]
    continue_csv_header(trainer)
    module.test_outputs = []  # the pictures are drawn from this pass
    tested = trainer.test(module, **evaluate)[0]

    metrics = {k: float(v) for k, v in {**validated, **tested}.items() if k != "epoch"}
    if trainer.is_global_zero:
        summary = {
            **metrics,
            "seed": seed,
            "epochs": completed_epochs(trainer, run_dir),
            "best_epoch": checkpoint_epoch(best),
            "train_seconds": round(train_seconds, 2),
            "best_checkpoint": best,
            "parameters": module.model.parameter_count(),
        }
        write_json(run_dir / "metrics.json", summary)
        # One pass of the tested weights over the test split, shared by the PNGs and W&B.
        outcome = outcome_of_test_pass(module.model, module.test_outputs, datamodule) or predict_test_split(
            (load_checkpoint(best).module if best else module).model, datamodule
        )
        names = class_names(cfg.data.dataset)
        pictures = write_pictures(run_dir, outcome, names, run_dir / HISTORY)
        log_to_tensorboard(trainer.loggers, pictures, metrics.get(cfg.optimized_metric), trainer.global_step)
        log_test_results(trainer.loggers, outcome, names, run_dir / MISCLASSIFIED)
        summarize_wandb(trainer.loggers, summary)
        report_results(summary, run_dir)
    return metrics
