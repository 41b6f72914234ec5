"""Process-wide torch settings and trainer arguments that follow from the config, applied before
the Trainer exists (and so before CUDA's first matmul reads its settings)."""

import os
from typing import Any

import torch
from omegaconf import DictConfig

from lenet5.validation import check


def configure_torch(cfg: DictConfig) -> None:
    """``float32_matmul_precision``: ``highest`` (plain float32, the default), ``high`` or
    ``medium`` (TF32/bfloat16 matmuls on GPUs with tensor cores: faster, less exact). Determinism
    is ``trainer.deterministic`` (true by default): Lightning then turns on torch's
    deterministic algorithms and sets CUBLAS_WORKSPACE_CONFIG before cuBLAS starts."""
    precision = check("float32_matmul_precision", cfg.get("float32_matmul_precision")) or "highest"
    torch.set_float32_matmul_precision(precision)
    trainer = cfg.get("trainer") or {}
    if trainer.get("deterministic"):
        # cuBLAS reads it when its first handle is made; Lightning sets it too, but only once
        # the Trainer exists, and anything touching the GPU earlier would be too soon.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        # Deterministic mode also fills every new tensor's memory with NaN, which matters only to
        # kernels reading memory they never wrote (a bug): ~25 fills a LeNet step, 0.15 ms on a
        # CPU. The algorithms stay the deterministic ones.
        torch.utils.deterministic.fill_uninitialized_memory = False


def trainer_settings(cfg: DictConfig) -> dict[str, Any]:
    """``callbacks.progress_bar=null`` means no bar at all, not Lightning's default one; with
    nothing held out (``data.val_size=0``) the validation loop is off, rather than handed an
    empty loader that Lightning warns about."""
    callbacks = cfg.get("callbacks") or {}
    settings: dict[str, Any] = {"enable_progress_bar": callbacks.get("progress_bar") is not None}
    if (cfg.get("data") or {}).get("val_size", 1) == 0:
        settings["limit_val_batches"] = 0
    return settings
