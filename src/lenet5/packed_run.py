"""The run sequence of ``seeds=K`` (K > 1): seeds ``seed, seed+1, ..., seed+K-1`` of one variant
trained together (lenet5.training.packed), then per seed: its best-val weights tested, its own
checkpoints (``checkpoints/seed<S>/``, loadable as any single run's), and its metrics, in
metrics.json's ``per_seed`` list beside their mean and sample std.

The pictures and W&B's test results show the first seed's best weights.
"""

import statistics
import time
from contextlib import nullcontext

import lightning as L
from hydra.utils import instantiate
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import DictConfig, OmegaConf

from lenet5.errors import UserError
from lenet5.results.plots import (
    HISTORY,
    MISCLASSIFIED,
    EpochHistory,
    outcome_of_test_pass,
    predict_test_split,
    write_pictures,
)
from lenet5.results.wandb_logging import log_test_results
from lenet5.run import (
    choose_seed,
    instantiate_all,
    output_dir,
    print_config,
    scaled_lr,
    without_nvml_cuda_check,
    write_json,
)
from lenet5.serving.checkpoints import class_names
from lenet5.training.packed import (
    PackedDataModule,
    PackedLeNet5Module,
    build_seed_models,
    save_single_checkpoint,
)

KEYS = ("val/loss", "val/acc", "test/loss", "test/acc", "test/error")


def packed_seeds(cfg: DictConfig) -> int:
    """The ``seeds`` key: 1 = an ordinary run."""
    count = cfg.get("seeds", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise UserError(f"seeds={count!r}: give a positive integer (the number of seeds trained together)")
    if count > 1 and cfg.get("ckpt_path") is not None:
        raise UserError(
            "ckpt_path with seeds>1: a packed run cannot be resumed; train it again or use seeds=1"
        )
    clip = cfg.get("trainer", {}).get("gradient_clip_val")
    if count > 1 and clip and cfg.trainer.get("gradient_clip_algorithm") != "value":
        raise UserError(
            "trainer.gradient_clip_val with seeds>1: clipping by norm mixes the seeds; "
            "set trainer.gradient_clip_algorithm=value, or use seeds=1"
        )
    return count


def fit_and_test_packed(cfg: DictConfig) -> dict[str, float]:
    run_dir = output_dir()
    first = choose_seed(cfg)
    seeds = [first + k for k in range(cfg.seeds)]
    print_config(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)

    config = OmegaConf.to_container(cfg.model, resolve=True)
    models = build_seed_models(config, seeds)
    L.seed_everything(first, workers=True, verbose=False)
    inner = instantiate(cfg.data)
    datamodule = PackedDataModule(inner, seeds)
    module = PackedLeNet5Module(
        models,
        seeds,
        optimizer=instantiate(cfg.optimizer, lr=scaled_lr(cfg)),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
    )
    # Checkpoints are written per seed below; the trainer's would hold all K stacked.
    callbacks = [c for c in instantiate_all(cfg.get("callbacks")) if not isinstance(c, ModelCheckpoint)]
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        default_root_dir=str(run_dir),
        callbacks=[*callbacks, EpochHistory(run_dir / HISTORY)],
        logger=instantiate_all(cfg.get("logger")) or False,
        enable_checkpointing=False,
    )
    if trainer.world_size > 1:
        raise UserError("seeds>1 runs in one process: use a single-device trainer (trainer=cpu or gpu)")
    parameters = models[0].parameter_count()
    for logger in trainer.loggers:
        logger.log_hyperparams({**OmegaConf.to_container(cfg, resolve=True), "parameters": parameters})

    started = time.perf_counter()
    with without_nvml_cuda_check() if isinstance(trainer.accelerator, CPUAccelerator) else nullcontext():
        trainer.fit(module, datamodule=datamodule)
    train_seconds = time.perf_counter() - started

    # Per seed: last weights, best-val weights (the last where validation never ran).
    epochs, step = trainer.current_epoch, trainer.global_step
    last = [module.run_state(k) for k in range(len(seeds))]
    best = [entry["state"] if entry else state for entry, state in zip(module.best, last, strict=True)]
    per_seed = []
    for k, seed in enumerate(seeds):
        folder = run_dir / "checkpoints" / f"seed{seed}"
        save_single_checkpoint(
            folder / "last.ckpt", module.single_model(last[k]), inner.hparams, epochs, step
        )
        entry = module.best[k]
        path = folder / "last.ckpt"
        if entry:
            path = folder / f"epoch{entry['epoch']:02d}-val_acc{entry['acc']:.4f}.ckpt"
            save_single_checkpoint(path, module.single_model(best[k]), inner.hparams, entry["epoch"], step)
        per_seed.append({"seed": seed, "best_checkpoint": str(path)})

    module.load_run_states(best)
    module.eval()
    # Validation: the numbers of the epoch each run's best weights come from (the same weights,
    # the same pass); a run that never validated during fit is validated here.
    validate = getattr(inner, "has_validation", True) and any(entry is None for entry in module.best)
    if validate:
        inner.setup("validate")
        val_losses, val_accs, _ = module.evaluate(inner.val_dataloader())
    for k, entry in enumerate(module.best):
        if entry is not None:
            per_seed[k]["val/loss"], per_seed[k]["val/acc"] = entry["loss"], entry["acc"]
        elif validate:
            per_seed[k]["val/loss"], per_seed[k]["val/acc"] = float(val_losses[k]), float(val_accs[k])
    inner.setup("test")
    test_losses, test_accs, first_outputs = module.evaluate(inner.test_dataloader(), keep=0)
    for k in range(len(seeds)):
        per_seed[k]["test/loss"], per_seed[k]["test/acc"] = float(test_losses[k]), float(test_accs[k])
    for entry in per_seed:
        entry["test/error"] = 1.0 - entry["test/acc"]

    metrics = {}
    keys = [key for key in KEYS if key in per_seed[0]]
    for key in keys:
        values = [entry[key] for entry in per_seed]
        metrics[key] = statistics.fmean(values)
        metrics[f"{key}_std"] = statistics.stdev(values)
    write_json(
        run_dir / "metrics.json",
        {
            **metrics,
            "per_seed": per_seed,
            "seed": first,
            "seeds": seeds,
            "epochs": epochs,
            "train_seconds": round(train_seconds, 2),
            "best_checkpoint": per_seed[0]["best_checkpoint"],
            "parameters": parameters,
        },
    )
    for logger in trainer.loggers:
        logger.log_metrics({key: metrics[key] for key in keys}, step=step)
    first_model = module.single_model(best[0])
    outcome = outcome_of_test_pass(first_model, first_outputs, inner)
    outcome = outcome or predict_test_split(first_model, inner)
    names = class_names(cfg.data.dataset)
    write_pictures(run_dir, outcome, names, run_dir / HISTORY)
    log_test_results(trainer.loggers, outcome, names, run_dir / MISCLASSIFIED)
    return {key: metrics[key] for key in keys}
