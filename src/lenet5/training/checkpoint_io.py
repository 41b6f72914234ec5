"""Checkpoints written whole or not at all (lenet5.atomic): a run killed mid-save (SIGKILL, out
of memory, a pre-empted cluster job) or a full disk leaves the previous checkpoint intact.

Resuming reads them back as data only (``weights_only``) after checking the zip's CRC-32s, so
a crafted or damaged ``ckpt_path`` cannot run code nor be trained on silently."""

import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from lenet5.atomic import save_whole
from lenet5.errors import UserError, first_line


def verify_integrity(path: Path) -> None:
    """UserError unless every member of the checkpoint's zip matches the CRC-32 written with it
    (torch never checks them: changed bytes would load and be used as if nothing happened)."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise UserError(f"{path}: truncated checkpoint (an incomplete zip archive)") from error
    except Exception as error:  # noqa: BLE001 - zlib and struct fail their own ways on odd bytes
        raise UserError(f"{path}: damaged checkpoint ({first_line(error)})") from error
    if damaged is not None:
        raise UserError(
            f"{path}: checkpoint changed since it was written ({damaged} fails its CRC-32 check); "
            f"use an intact copy"
        )


class AtomicCheckpointIO(TorchCheckpointIO):
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None
    ) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        save_whole(path, lambda partial: torch.save(checkpoint, partial))

    def load_checkpoint(
        self, path: str | Path, map_location: Any = None, weights_only: bool | None = None
    ) -> Any:
        path = Path(path)
        verify_integrity(path)
        try:
            return torch.load(path, map_location=map_location, weights_only=True)
        except Exception as error:  # noqa: BLE001 - pickle refuses code in its own words
            raise UserError(
                f"{path}: not a lenet5 checkpoint, or one holding code ({first_line(error)})"
            ) from error
