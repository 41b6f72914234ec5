"""Constants and helpers the tests import (conftest.py is for fixtures: a second conftest in
tests/models would shadow it as a module)."""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from filelock import FileLock

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("LENET5_DATA_DIR", REPO.parent / "shared" / "data"))
TINY_TRAIN, TINY_TEST = 600, 200
FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}


def write_idx(path: Path, array: np.ndarray) -> None:
    """IDX: magic (0, 0, type 0x08 = uint8, ndim), big-endian int32 sizes, then the bytes."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


def read_real(folder: str, name: str, count: int) -> np.ndarray:
    path = REAL_DATA / folder / "raw" / name
    if not path.is_file():
        pytest.skip(f"real data not found at {path}; set LENET5_DATA_DIR")
    raw = np.fromfile(path, dtype=np.uint8)
    if name.endswith("idx3-ubyte"):
        return raw[16:].reshape(-1, 28, 28)[:count]
    return raw[8:][:count]


# Small, quick settings for tiny data; a test's own overrides come after and win.
QUICK = [
    "trainer.max_epochs=1",
    "data.val_size=100",
    "data.batch_size=50",
    "data.eval_batch_size=100",
    "data.download=false",
    "callbacks.progress_bar=null",
    "trainer.log_every_n_steps=1",
]


def subprocess_env(folder: Path, data: Path) -> dict[str, str]:
    """Environment for a subprocess: ``data`` as the data root, W&B offline and confined to
    ``folder``."""
    env = dict(os.environ)
    wandb = folder / "wandb_home"
    env.update(
        LENET5_DATA_DIR=str(data),
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


def train_once(folder: Path, data: Path, *overrides: str, timeout: float = 600) -> Path:
    """``train.py`` with QUICK and ``overrides`` on ``data``, into ``folder/run``, for a fixture
    that shares one finished run among many tests; that run folder."""
    command = [sys.executable, str(REPO / "train.py"), *QUICK, *overrides, f"hydra.run.dir={folder / 'run'}"]
    process = subprocess.run(
        command, cwd=folder, env=subprocess_env(folder, data), capture_output=True, text=True, timeout=timeout
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return folder / "run"


def built_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder ``build`` fills once per test session, for a session fixture too slow to repeat.
    Under pytest-xdist every worker runs its own session fixtures: the workers share the
    folder, in the session's common temporary folder, and the first to take the lock builds it
    while the others wait for it."""
    if "PYTEST_XDIST_WORKER" not in os.environ:
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    root = tmp_path_factory.getbasetemp().parent  # the session's, above each worker's own
    folder, done = root / name, root / f"{name}.done"
    with FileLock(root / f"{name}.lock"):
        if not done.is_file():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left behind
            folder.mkdir()
            build(folder)
            done.touch()
    return folder
