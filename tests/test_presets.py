"""The debug presets, callbacks=none and logger lists, each from train.py's command line on tiny
data, and Hydra's own help that docs/hydra.md shows (--cfg job, --info, tab completion, an
experiment file of one's own through --config-dir)."""

import csv
import json
from pathlib import Path

import lightning as L
import torch
from omegaconf import OmegaConf

from lenet5.run_files import CHECKPOINTS, CSV_LOGS, HISTORY, LAST_CHECKPOINT, METRICS
from support import QUICK

EXPECTED_SECONDS = 45.0  # ten runs of train.py's command line in this process, on tiny data

# QUICK without its trainer.max_epochs=1, so each preset's own number of epochs holds.
SMALL = [override for override in QUICK if not override.startswith("trainer.max_epochs=")]


def history(folder: Path) -> list[dict[str, str]]:
    with open(folder / HISTORY, newline="") as file:
        return list(csv.DictReader(file))


def metrics(folder: Path) -> dict:
    return json.loads((folder / METRICS).read_text())


class AnomalyProbe(L.Callback):
    """Records whether torch's anomaly detection is on while the run trains."""

    seen: list[bool] = []

    def on_train_batch_end(self, *args, **kwargs) -> None:
        AnomalyProbe.seen.append(torch.is_anomaly_enabled())


class BatchProbe(L.Callback):
    """Records the labels of every training batch, epoch by epoch."""

    seen: dict[int, list[torch.Tensor]] = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        BatchProbe.seen.setdefault(trainer.current_epoch, []).append(batch[1].clone())


def test_fdr_runs_one_batch_of_each_and_writes_no_checkpoint_nor_logs(train_cli_in_process) -> None:
    process, folder = train_cli_in_process("debug=fdr")
    assert process.returncode == 0, process.stderr[-2000:]
    assert "Running in `fast_dev_run` mode" in (folder / "train.log").read_text()
    assert not (folder / CHECKPOINTS).exists() and not (folder / CSV_LOGS).exists()
    assert metrics(folder)["best_checkpoint"] == "" and len(history(folder)) == 1
    assert "test accuracy" in process.stdout + (folder / "train.log").read_text()


def test_overfit_trains_on_the_same_batches_with_no_val_monitoring(
    train_cli_in_process, tmp_path: Path
) -> None:
    BatchProbe.seen.clear()
    folder = tmp_path / "run"
    probe = "+callbacks.probe._target_=test_presets.BatchProbe"
    # model=modern learns its 3 batches in 15 epochs, the preset's 60 are for the paper's network.
    overrides = ["model=modern", "trainer.max_epochs=15", probe, f"hydra.run.dir={folder}"]
    process, _ = train_cli_in_process("debug=overfit", *SMALL, *overrides, exact=True)
    assert process.returncode == 0, process.stderr[-2000:]
    assert sorted(BatchProbe.seen) == list(range(15))
    first = BatchProbe.seen[0]
    assert len(first) == 3
    assert all(all(map(torch.equal, first, BatchProbe.seen[epoch])) for epoch in BatchProbe.seen)
    rows = history(folder)
    assert float(rows[-1]["train/loss"]) < float(rows[0]["train/loss"]) / 2
    assert sorted(p.name for p in (folder / CHECKPOINTS).iterdir()) == ["last.ckpt"]  # none by val/acc
    assert metrics(folder)["best_checkpoint"] == ""  # the last weights are tested
    assert OmegaConf.load(folder / "config.yaml").trainer.overfit_batches == 3


def test_overfit_with_seeds_keeps_every_seed_on_its_same_batches(
    train_cli_in_process, tmp_path: Path
) -> None:
    BatchProbe.seen.clear()
    probe = "+callbacks.probe._target_=test_presets.BatchProbe"
    overrides = ["seeds=2", "trainer.max_epochs=3", probe, f"hydra.run.dir={tmp_path / 'run'}"]
    process, _ = train_cli_in_process("debug=overfit", *SMALL, *overrides, exact=True)
    assert process.returncode == 0, process.stderr[-2000:]
    first = BatchProbe.seen[0]
    assert all(all(map(torch.equal, first, BatchProbe.seen[epoch])) for epoch in (1, 2))


def test_profiler_writes_its_report_into_the_run_folder(train_cli_in_process) -> None:
    process, folder = train_cli_in_process("debug=profiler")
    assert process.returncode == 0, process.stderr[-2000:]
    report = (folder / "fit-profile.txt").read_text()
    assert "FIT Profiler Report" in report and "run_training_epoch" in report
    assert len(history(folder)) == 1


def test_limit_trains_fractions_of_each_split_for_three_epochs(train_cli_in_process, tmp_path: Path) -> None:
    # 500 training images in batches of 10: 10% is 5 batches an epoch.
    folder = tmp_path / "run"
    small = [*SMALL, "data.batch_size=10", "data.eval_batch_size=10", f"hydra.run.dir={folder}"]
    process, _ = train_cli_in_process("debug=limit", *small, exact=True)
    assert process.returncode == 0, process.stderr[-2000:]
    assert len(history(folder)) == 3
    checkpoint = torch.load(folder / LAST_CHECKPOINT, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 3 * 5


def test_anomaly_turns_torch_s_anomaly_detection_on_while_training(train_cli_in_process) -> None:
    AnomalyProbe.seen.clear()
    probe = "+callbacks.probe._target_=test_presets.AnomalyProbe"
    process, folder = train_cli_in_process("debug=[fast,anomaly]", probe)
    assert process.returncode == 0, process.stderr[-2000:]
    assert AnomalyProbe.seen and all(AnomalyProbe.seen)
    assert OmegaConf.load(folder / "config.yaml").trainer.detect_anomaly is True
    AnomalyProbe.seen.clear()
    process, _ = train_cli_in_process("debug=fast", probe, run_dir=folder.parent / "plain")
    assert process.returncode == 0 and AnomalyProbe.seen and not any(AnomalyProbe.seen)


def test_callbacks_none_leaves_no_checkpoint_anywhere_and_tests_the_last_weights(
    train_cli_in_process,
) -> None:
    process, folder = train_cli_in_process("debug=fast", "callbacks=none", "logger=[csv,tensorboard]")
    assert process.returncode == 0, process.stderr[-2000:]
    assert not list(folder.rglob("*.ckpt"))
    assert metrics(folder)["best_checkpoint"] == "" and len(history(folder)) == 1
    # logger=[csv,tensorboard]: both loggers write.
    assert (folder / CSV_LOGS / "metrics.csv").is_file()
    assert list((folder / "tensorboard").glob("events.out.tfevents.*"))


def test_cfg_job_prints_the_composed_config_and_trains_nothing(train_cli_in_process) -> None:
    process, folder = train_cli_in_process("model=modern", "--cfg", "job")
    assert process.returncode == 0, process.stderr[-2000:]
    cfg = OmegaConf.create(process.stdout)
    assert cfg.model.activation == "relu" and cfg.init_from is None and "hydra" not in cfg
    assert not folder.exists()


def test_info_shows_the_defaults_list_and_the_search_path(train_cli_in_process) -> None:
    process, _ = train_cli_in_process("--info")
    assert process.returncode == 0, process.stderr[-2000:]
    assert "Config search path" in process.stdout and "Defaults List" in process.stdout
    assert "optimizer/adam" in process.stdout


def test_tab_completion_script_for_bash(train_cli_in_process) -> None:
    process, _ = train_cli_in_process("-sc", "install=bash", exact=True)
    assert process.returncode == 0, process.stderr[-2000:]
    assert "hydra_bash_completion" in process.stdout and "complete" in process.stdout


def test_an_experiment_file_of_one_s_own_through_config_dir(train_cli_in_process, tmp_path: Path) -> None:
    mine = tmp_path / "my_configs" / "experiment"
    mine.mkdir(parents=True)
    (mine / "mine.yaml").write_text(
        "# @package _global_\ndefaults:\n  - override /model: modern\n"
        "optimizer:\n  lr: 0.001\ntrainer:\n  max_epochs: 2\n  limit_train_batches: 3\n"
    )
    folder = tmp_path / "run"
    process, _ = train_cli_in_process(
        "experiment=mine",
        "logger=none",
        *SMALL,
        f"hydra.run.dir={folder}",
        "--config-dir",
        str(mine.parent),
        exact=True,
    )
    assert process.returncode == 0, process.stderr[-2000:]
    cfg = OmegaConf.load(folder / "config.yaml")
    assert cfg.model.activation == "relu" and cfg.optimizer.lr == 0.001
    assert len(history(folder)) == 2
    checkpoint = torch.load(folder / LAST_CHECKPOINT, map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == 2 * 3
