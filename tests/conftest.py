"""Shared fixtures: tiny datasets in the real IDX format, and a way to run the entry points.

The tiny files hold the first images of the real MNIST/Fashion-MNIST (from $LENET5_DATA_DIR,
../shared/data on CI) rewritten by our own IDX writer, so torchvision's reader and the whole
pipeline run exactly as on the full data, in seconds.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

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
