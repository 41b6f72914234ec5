"""Shared fixtures: tiny datasets in the real IDX format, and a way to run the entry points.

The tiny files hold the first images of the real MNIST/Fashion-MNIST (from $LENET5_DATA_DIR,
../shared/data on CI) rewritten by our own IDX writer, so torchvision's reader and the whole
pipeline run exactly as on the full data, in seconds.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from support import FOLDERS, QUICK, REPO, TINY_TEST, TINY_TRAIN, read_real, write_idx


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with tiny MNIST and FashionMNIST in torchvision's layout."""
    root = tmp_path_factory.mktemp("tiny_data")
    for folder in FOLDERS.values():
        raw = root / folder / "raw"
        raw.mkdir(parents=True)
        for split, count in (("train", TINY_TRAIN), ("t10k", TINY_TEST)):
            write_idx(
                raw / f"{split}-images-idx3-ubyte",
                read_real(folder, f"{split}-images-idx3-ubyte", count),
            )
            write_idx(
                raw / f"{split}-labels-idx1-ubyte",
                read_real(folder, f"{split}-labels-idx1-ubyte", count),
            )
    return root


@pytest.fixture
def hermetic_env(tmp_path: Path, tiny_data: Path) -> dict[str, str]:
    """Environment for a subprocess: tiny data, W&B offline and confined to the test's folder."""
    env = dict(os.environ)
    wandb = tmp_path / "wandb_home"
    env.update(
        LENET5_DATA_DIR=str(tiny_data),
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DIR=str(wandb),
        WANDB_CACHE_DIR=str(wandb / "cache"),
        WANDB_CONFIG_DIR=str(wandb / "config"),
        WANDB_DATA_DIR=str(wandb / "data"),
        HYDRA_FULL_ERROR="0",
        PYTHONWARNINGS="ignore",
        # Tiny batches gain nothing from threads, and two threads per process oversubscribe
        # two cores as soon as anything else runs (DDP tests run two processes).
        OMP_NUM_THREADS="1",
    )
    return env


@pytest.fixture
def run_cli(tmp_path: Path, hermetic_env: dict[str, str]):
    """Run an entry point (a script at the repo root, or ``-m module``) in the repo folder."""

    def run(
        *args: str, timeout: float = 600, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess:
        command = [sys.executable, *(["-m", args[1]] if args[0] == "-m" else [str(REPO / args[0])])]
        rest = args[2:] if args[0] == "-m" else args[1:]
        return subprocess.run(
            [*command, *rest],
            cwd=tmp_path,
            env=env or hermetic_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    return run


@pytest.fixture
def train_run(tmp_path: Path, run_cli):
    """``train.py`` on tiny data into ``tmp_path/run`` (or ``run_dir``); returns (process, folder)."""

    def train(*overrides: str, run_dir: Path | None = None, check: bool = True):
        folder = run_dir or tmp_path / "run"
        process = run_cli("train.py", *QUICK, f"hydra.run.dir={folder}", *overrides)
        if check:
            assert process.returncode == 0, process.stderr[-3000:]
        return process, folder

    return train
