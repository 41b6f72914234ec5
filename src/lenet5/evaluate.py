"""Test a checkpoint: ``lenet5-evaluate ckpt_path=path/to.ckpt``, ``python -m lenet5.evaluate ...`` or,
in the repo, ``python evaluate.py ...`` (see conf/evaluate.yaml).

The model and its dataset come from the checkpoint itself, so no model or data options are
needed; the metrics are printed and written with the pictures into this run's folder.
"""

import sys
from pathlib import Path

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from lenet5.config import CONFIG_DIR
from lenet5.data import MNISTDataModule
from lenet5.errors import UserError
from lenet5.results.plots import predict_test_split, write_pictures
from lenet5.run import output_dir, write_json
from lenet5.run_files import HISTORY, METRICS
from lenet5.serving.checkpoints import load_checkpoint
from lenet5.validation import check_settings


def evaluate(cfg: DictConfig) -> dict[str, float]:
    check_settings(cfg, null_means_unset=("data.",))  # null: the checkpoint's own setting
    if not cfg.ckpt_path:
        raise UserError("ckpt_path=<file.ckpt>: give the checkpoint to test (one written by train.py)")
    checkpoint = load_checkpoint(cfg.ckpt_path)
    if not checkpoint.data:
        raise UserError(f"{checkpoint.path}: no data settings saved in it; was it written by train.py?")
    settings = {**checkpoint.data, **{k: v for k, v in cfg.data.items() if v is not None}}
    datamodule = MNISTDataModule(**settings)
    run_dir = output_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    trainer = instantiate(
        cfg.trainer, default_root_dir=str(run_dir), logger=False, enable_checkpointing=False
    )
    tested = trainer.test(checkpoint.module, datamodule=datamodule, verbose=False)[0]
    metrics = {name: float(value) for name, value in tested.items()}
    if not trainer.is_global_zero:
        return metrics

    for name, value in sorted(metrics.items()):
        print(f"{name}: {value:.4f}")
    # A checkpoint inside a training run folder (<run>/checkpoints/) brings that run's curves.
    history = checkpoint.path.resolve().parent.parent / HISTORY
    outcome = predict_test_split(checkpoint.module.model, datamodule)
    pictures = write_pictures(run_dir, outcome, checkpoint.class_names, history)
    write_json(
        run_dir / METRICS,
        {
            **metrics,
            "checkpoint": str(Path(cfg.ckpt_path).resolve()),
            "dataset": checkpoint.dataset,
            "test_images": len(outcome.labels),
        },
    )
    print(f"wrote {METRICS} and {', '.join(p.name for p in pictures)} to {run_dir}")
    return metrics


@hydra.main(config_path=CONFIG_DIR, config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> float:
    try:
        return evaluate(cfg)["test/acc"]
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
