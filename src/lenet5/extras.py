"""The optional parts of lenet5 and the extra (pyproject.toml) that installs each. The core install
trains, evaluates, predicts and reports; a command that needs an extra which is not installed
says so in one line, before it starts: ``lenet5-export needs the 'export' extra: pip install
'lenet5[export]'``.

Modules are looked up (importlib.util.find_spec), never imported: asking costs nothing."""

import importlib.util
from collections.abc import Iterable, Mapping
from typing import Any

from lenet5.errors import UserError

# extra -> the modules it installs that lenet5 imports.
EXTRAS = {
    "export": ("onnx", "onnxscript", "onnxruntime"),
    "demo": ("starlette", "uvicorn", "python_multipart"),
    "optuna": ("optuna", "sqlalchemy", "hydra_plugins.hydra_optuna_sweeper"),
    "mlflow": ("mlflow",),
    "tensorboard": ("tensorboard",),
}
# A logger's _target_ (conf/logger/) -> the extra it needs.
LOGGER_EXTRAS = {
    "lightning.pytorch.loggers.TensorBoardLogger": "tensorboard",
    "lenet5.results.mlflow_logging.RunLogger": "mlflow",
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing; a module set to None
        return False


def missing(extra: str) -> list[str]:
    return [module for module in EXTRAS[extra] if not installed(module)]


def require(extra: str, what: str) -> None:
    """One line (a UserError) when ``what`` (a command, an override) lacks ``extra``."""
    absent = missing(extra)
    if absent:
        raise UserError(
            f"{what} needs the '{extra}' extra (no module {', '.join(absent)}): pip install 'lenet5[{extra}]'"
        )


def require_for_loggers(loggers: Mapping[str, Any] | None) -> None:
    """The extras of the config's loggers (``logger=[csv,mlflow]``), before anything is built."""
    for name, entry in (loggers or {}).items():
        extra = LOGGER_EXTRAS.get(str((entry or {}).get("_target_")))
        if extra:
            require(extra, f"logger={name}")


def require_for_overrides(overrides: Iterable[str]) -> None:
    """The Optuna sweeper for ``hparams_search=...`` or ``hydra/sweeper=optuna`` on the command
    line: without it Hydra stops with a traceback about a missing config."""
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        if (key == "hparams_search" and value not in ("", "null")) or (
            key == "hydra/sweeper" and value == "optuna"
        ):
            require("optuna", override)
