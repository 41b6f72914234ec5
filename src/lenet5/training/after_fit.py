"""What follows a fit, for one seed or K: the weights to test chosen, validated (from the fit's
own record where it measured them), tested through the trainer, and the test pass's outcome
kept for the pictures. Both return a ``Tested``; the run sequence (lenet5.run) does the rest.

The best checkpoint is read once, as data only (``weights_only``, through the run's checkpoint
IO, which checks it first): its weights go into the module, its epoch and validation record
are taken from the same read.
"""

import csv
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.loggers import CSVLogger

from lenet5.results.plots import Outcome, outcome_of_test_pass, predict_test_split
from lenet5.run_files import LAST_FILE, seed_checkpoints
from lenet5.training.checkpoint_io import AtomicCheckpointIO
from lenet5.training.packed import PackedLeNet5Module
from lenet5.training.packed_data import PackedDataModule, save_single_checkpoint
from lenet5.training.val_record import ValidationRecord

PER_SEED_KEYS = ("val/loss", "val/acc", "test/loss", "test/acc", "test/error")


@dataclass
class Tested:
    metrics: dict[str, float]  # what train() returns and the loggers get
    outcome: Outcome  # the pictured weights' pass over the whole test split
    summary: dict[str, Any] = field(default_factory=dict)  # metrics.json's extra keys


def continue_csv_header(trainer: L.Trainer) -> None:
    """Start the CSV writer from metrics.csv's columns. Under ddp_spawn each stage runs in new
    processes whose writer knows only its own columns, and rewriting the file with those fails."""
    for logger in trainer.loggers:
        if not isinstance(logger, CSVLogger):
            continue
        # Only where the writer is real: on other ranks Lightning hands out a stand-in.
        path = getattr(logger.experiment, "metrics_file_path", None)
        if isinstance(path, str) and os.path.isfile(path):
            with open(path, newline="") as handle:
                logger.experiment.metrics_keys = next(csv.reader(handle), [])


def _evaluate(trainer: L.Trainer, stage: str, module: L.LightningModule, datamodule: Any) -> dict:
    continue_csv_header(trainer)
    run = trainer.validate if stage == "validate" else trainer.test
    return run(module, datamodule=datamodule, verbose=False)[0]  # the module's current weights


def test_single(
    trainer: L.Trainer, module: L.LightningModule, datamodule: Any, record: ValidationRecord
) -> Tested:
    """The best-val checkpoint's weights (the final ones where nothing was monitored)."""
    chosen_by = trainer.checkpoint_callback
    best = chosen_by.best_model_path if chosen_by is not None and chosen_by.monitor else ""
    validated: dict[str, float] = {}
    epoch = None
    if best:
        checkpoint = AtomicCheckpointIO().load_checkpoint(best, map_location="cpu")
        module.load_state_dict(checkpoint["state_dict"])
        epoch = module.weights_epoch = checkpoint.get("epoch")
        validated = record.of_checkpoint(checkpoint)
    if datamodule.has_validation and not validated:
        validated = _evaluate(trainer, "validate", module, datamodule)
    module.test_outputs = []  # the pictures are drawn from this pass
    tested = _evaluate(trainer, "test", module, datamodule)
    metrics = {k: float(v) for k, v in {**validated, **tested}.items() if k != "epoch"}
    outcome = outcome_of_test_pass(module.model, module.test_outputs, datamodule)
    return Tested(
        metrics,
        outcome or predict_test_split(module.model, datamodule),
        {"best_epoch": None if epoch is None else epoch + 1, "best_checkpoint": best},  # 1-based
    )


def test_packed(
    trainer: L.Trainer, module: PackedLeNet5Module, datamodule: PackedDataModule, run_dir: Path
) -> Tested:
    """Per seed: its last and best-val weights written as a single run's checkpoints
    (``checkpoints/seed<S>/``), then all K best tested in one pass; metrics.json holds each
    seed's numbers and their mean and sample std. The pictures show the first seed's weights."""
    epochs, step = trainer.current_epoch, trainer.global_step
    last = [module.run_state(k) for k in range(len(module.seeds))]
    best = [entry["state"] if entry else state for entry, state in zip(module.best, last, strict=True)]
    per_seed = []
    recipe = (module.optimizer_factory, module.scheduler_factory)  # recorded as a single run's
    for k, seed in enumerate(module.seeds):
        path = run_dir / seed_checkpoints(seed) / LAST_FILE
        weights = module.single_model(last[k])
        save_single_checkpoint(path, weights, datamodule.inner.hparams, epochs, step, recipe)
        entry = module.best[k]
        if entry:
            path = path.with_name(f"epoch{entry['epoch']:02d}-val_acc{entry['acc']:.4f}.ckpt")
            weights = module.single_model(best[k])
            save_single_checkpoint(path, weights, datamodule.inner.hparams, entry["epoch"], step, recipe)
        per_seed.append({"seed": seed, "best_checkpoint": str(path)})

    module.load_run_states(best)
    # Validation: the numbers of the epoch each seed's best weights come from; a seed that never
    # validated during the fit is validated here.
    validated = datamodule.has_validation and any(entry is None for entry in module.best)
    if validated:
        _evaluate(trainer, "validate", module, datamodule)
    for k, entry in enumerate(module.best):
        if entry is not None:
            per_seed[k]["val/loss"], per_seed[k]["val/acc"] = entry["loss"], entry["acc"]
        elif validated:
            per_seed[k]["val/loss"] = float(module.evaluated["loss"][k])
            per_seed[k]["val/acc"] = float(module.evaluated["acc"][k])
    module.keep_outputs = 0
    _evaluate(trainer, "test", module, datamodule)
    for k, entry in enumerate(per_seed):
        entry["test/loss"] = float(module.evaluated["loss"][k])
        entry["test/acc"] = float(module.evaluated["acc"][k])
        entry["test/error"] = 1.0 - entry["test/acc"]

    metrics: dict[str, float] = {}
    for key in (key for key in PER_SEED_KEYS if key in per_seed[0]):
        values = [entry[key] for entry in per_seed]
        metrics[key], metrics[f"{key}_std"] = statistics.fmean(values), statistics.stdev(values)
    first = module.single_model(best[0])
    outcome = outcome_of_test_pass(first, module.kept_outputs, datamodule.inner)
    return Tested(
        metrics,
        outcome or predict_test_split(first, datamodule.inner),
        {
            "per_seed": per_seed,
            "seeds": list(module.seeds),
            "best_checkpoint": per_seed[0]["best_checkpoint"],
        },
    )
