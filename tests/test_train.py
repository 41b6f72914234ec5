"""train.py end to end on tiny IDX files: outputs, resume, seeding, bad input."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from lenet5.run import without_nvml_cuda_check
from support import QUICK, REPO

PRESETS = ["classic", "d2l", "modern"]


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_trains_end_to_end(request: pytest.FixtureRequest, preset: str) -> None:
    # The first preset through a real command line; the others through the same cli() in this
    # process (an interpreter start each would check nothing more).
    runner = "train_run" if preset == PRESETS[0] else "train_cli_in_process"
    process, run = request.getfixturevalue(runner)(f"model={preset}")
    assert process.returncode == 0, process.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("val/acc", "val/loss", "test/acc", "test/error", "test/loss"):
        assert 0.0 <= metrics[key] < float("inf"), key
    assert metrics["test/error"] == pytest.approx(1 - metrics["test/acc"], abs=1e-6)
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert Path(metrics["best_checkpoint"]).is_file()
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["model"]["_target_"] == "lenet5.models.LeNet5"
    assert resolved["seed"] == 0
    # the resolved config is printed as a tree at start
    assert "config" in process.stdout and "activation" in process.stdout
    logged = (run / "csv" / "metrics.csv").read_text().splitlines()[0]
    for key in ("train/loss_step", "train/acc", "val/loss", "val/acc", "lr-"):
        assert key in logged


def test_fashion_mnist_and_affine_augmentation(train_in_process) -> None:
    _, run = train_in_process("model=modern", "data=fashion_mnist", "data.augment=affine")
    resolved = yaml.safe_load((run / "config.yaml").read_text())
    assert resolved["data"]["dataset"] == "fashion_mnist"
    # standardize takes the data config's statistics through interpolation
    assert resolved["model"]["input_mean"] == resolved["data"]["mean"] == pytest.approx(0.21899983)
    assert json.loads((run / "metrics.json").read_text())["test/acc"] > 0


@pytest.mark.parametrize("scheduler", ["none", "step", "paper", "onecycle"])
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_optimizer_and_scheduler_groups(train_in_process, optimizer: str, scheduler: str) -> None:
    metrics, run = train_in_process("model=modern", f"optimizer={optimizer}", f"scheduler={scheduler}")
    assert json.loads((run / "metrics.json").read_text())["test/acc"] == pytest.approx(metrics["test/acc"])


def _val_metrics(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    return {k: v for k, v in metrics.items() if k.startswith("val/")}


def test_same_seed_gives_identical_validation_metrics(train_run, train_in_process, tmp_path: Path) -> None:
    _, first = train_run("model=modern", "seed=0", run_dir=tmp_path / "a")
    _, second = train_run("model=modern", "seed=0", run_dir=tmp_path / "b")
    # Only the two same-seed runs need processes of their own (nothing carried over).
    _, other = train_in_process("model=modern", "seed=1", run_dir=tmp_path / "c")
    assert _val_metrics(first) == _val_metrics(second)
    assert _val_metrics(first) != _val_metrics(other)  # so seed=0 is not ignored
    assert json.loads((first / "metrics.json").read_text())["seed"] == 0


def test_null_seed_is_drawn_and_recorded(train_in_process) -> None:
    _, run = train_in_process("model=modern", "seed=null")
    seed = json.loads((run / "metrics.json").read_text())["seed"]
    assert isinstance(seed, int)
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == seed


def test_resume_after_sigkill_finishes_the_planned_epochs(tmp_path: Path, hermetic_env) -> None:
    run = tmp_path / "run"
    epochs = 40
    command = [sys.executable, str(REPO / "train.py"), *QUICK, f"hydra.run.dir={run}"]
    command += ["model=modern", f"trainer.max_epochs={epochs}"]
    last = run / "checkpoints" / "last.ckpt"
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=hermetic_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not last.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        process.kill()
    killed_at = torch.load(last, map_location="cpu", weights_only=False)["epoch"]  # loads: never half-written
    assert killed_at < epochs - 1
    assert not (run / "metrics.json").exists()

    resumed = subprocess.run(
        [*command, "ckpt_path=last"],
        cwd=tmp_path,
        env=hermetic_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Restored all states from the checkpoint" in resumed.stdout + resumed.stderr
    assert json.loads((run / "metrics.json").read_text())["epochs"] == epochs
    assert torch.load(last, map_location="cpu", weights_only=False)["epoch"] == epochs - 1


def test_atomic_checkpoint_survives_a_failed_save(tmp_path: Path, monkeypatch) -> None:
    from lenet5.training.checkpoint_io import AtomicCheckpointIO

    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"epoch": 1}, path)

    def dies_midway(obj, file):
        Path(file).write_bytes(b"half a checkpoint")  # the temporary file lenet5.atomic gave it
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def _one_line_error(process: subprocess.CompletedProcess, *fragments: str) -> None:
    assert process.returncode != 0
    errors = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, process.stderr[-3000:]
    assert "Traceback" not in process.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_misspelt_group_option_lists_the_options(train_cli_in_process) -> None:
    process, _ = train_cli_in_process("model/pooling=maxx")
    assert process.returncode != 0
    assert "Could not find 'model/pooling/maxx'" in process.stderr
    for option in ("avg", "max", "trainable"):
        assert option in process.stderr


def test_missing_data_root(train_cli_in_process, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    process, _ = train_cli_in_process(f"data.root={missing}")
    _one_line_error(
        process,
        str(missing / "MNIST" / "raw"),
        "train-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "LENET5_DATA_DIR",
    )


@pytest.mark.parametrize("damage", ["truncated", "wrong_magic"])
def test_broken_idx_file(train_cli_in_process, tiny_data: Path, tmp_path: Path, damage: str) -> None:
    root = tmp_path / "data"
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for source in (tiny_data / "MNIST" / "raw").iterdir():
        (raw / source.name).write_bytes(source.read_bytes())
    images = raw / "train-images-idx3-ubyte"
    content = images.read_bytes()
    images.write_bytes(
        content[: len(content) // 2] if damage == "truncated" else b"\x00\x00\x77\x77" + content[4:]
    )
    process, _ = train_cli_in_process(f"data.root={root}")
    _one_line_error(process, str(raw), "train-*-ubyte")


def test_val_size_larger_than_training_set(train_cli_in_process) -> None:
    process, _ = train_cli_in_process("data.val_size=100000")
    _one_line_error(process, "data.val_size=100000", "600")


def test_resume_last_without_a_checkpoint(train_cli_in_process) -> None:
    process, _ = train_cli_in_process("ckpt_path=last")
    _one_line_error(process, "ckpt_path=last")


@pytest.mark.parametrize("logger", ["none", "tensorboard"])
def test_other_loggers(train_in_process, logger: str) -> None:
    _, run = train_in_process("model=modern", f"logger={logger}")
    assert (run / "metrics.json").is_file()
    assert (run / "tensorboard").is_dir() == (logger == "tensorboard")


def test_cpu_training_drops_lightnings_per_step_nvml_check_and_gives_it_back(monkeypatch) -> None:
    monkeypatch.setenv("PYTORCH_NVML_BASED_CUDA_CHECK", "1")
    with pytest.raises(RuntimeError), without_nvml_cuda_check():
        assert "PYTORCH_NVML_BASED_CUDA_CHECK" not in os.environ
        raise RuntimeError("a failing fit")
    assert os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] == "1"
