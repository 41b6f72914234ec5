"""Reading MNIST-style IDX files through torchvision, with errors that say what to fix."""

from pathlib import Path

import torch
from torchvision import datasets

from lenet5.errors import UserError

DATASETS = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}
FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
ROOT_VARIABLE = "LENET5_DATA_DIR"
CLASSES = 10


def dataset_class(name: str) -> type[datasets.MNIST]:
    if name not in DATASETS:
        raise UserError(f"data.dataset={name!r} is not known; choose one of: {', '.join(DATASETS)}")
    return DATASETS[name]


def raw_folder(name: str, root: str | Path) -> Path:
    return Path(root).expanduser().resolve() / dataset_class(name).__name__ / "raw"


def _missing_message(name: str, root: str | Path, reason: str) -> str:
    return (
        f"{name} not found: {raw_folder(name, root)} must hold {', '.join(FILES)} ({reason}). "
        f"Point data.root or ${ROOT_VARIABLE} at the folder that contains "
        f"{dataset_class(name).__name__}/raw/, or allow data.download=true with internet access."
    )


def ensure_downloaded(name: str, root: str | Path, download: bool) -> None:
    """Download the four files when they are missing and downloading is allowed."""
    folder = raw_folder(name, root)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if not missing:
        return
    if not download:
        raise UserError(_missing_message(name, root, f"missing {', '.join(missing)}; download=false"))
    try:
        dataset_class(name)(str(Path(root).expanduser()), train=True, download=True)
    except Exception as error:  # noqa: BLE001 - any network failure means the same thing here
        reason = f"download failed: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
        raise UserError(_missing_message(name, root, reason)) from error


def file_identity(name: str, root: str | Path) -> tuple:
    """What tells one copy of the files from another: paths, sizes, modification times."""
    folder = raw_folder(name, root)
    stats = []
    for file in FILES:
        try:
            stat = (folder / file).stat()
        except OSError:
            return (str(folder), None)  # missing: load_split says so
        stats.append((file, stat.st_size, stat.st_mtime_ns))
    return (str(folder), tuple(stats))


def load_split(name: str, root: str | Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(images uint8 (N, 28, 28), labels int64 (N,)) of the official train or test split."""
    folder = raw_folder(name, root)
    missing = [f for f in FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(_missing_message(name, root, f"missing {', '.join(missing)}"))
    prefix = "train" if train else "t10k"
    try:
        data = dataset_class(name)(str(Path(root).expanduser()), train=train, download=False)
        images, labels = data.data, data.targets
    except Exception as error:  # noqa: BLE001 - torchvision's reader fails with bare asserts
        raise UserError(
            f"cannot read {folder}/{prefix}-*-ubyte: not a valid IDX file (truncated, or a wrong "
            f"magic number); replace the file with an intact copy"
        ) from error
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(images) != len(labels):
        raise UserError(
            f"{folder}/{prefix}-*-ubyte: expected N 28x28 images and N labels, "
            f"got images {tuple(images.shape)} and {len(labels)} labels"
        )
    labels = labels.long()
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= CLASSES):
        bad = int(labels[(labels < 0) | (labels >= CLASSES)][0])
        raise UserError(
            f"{folder}/{prefix}-labels-idx1-ubyte: label {bad} found; labels must be 0 to {CLASSES - 1}"
        )
    return images, labels
