"""What a run says, and where: library logs routed into the run's ``train.log``, library
advertising and set-up chatter dropped, and the results block that ends every run.

Lightning gives its loggers their own console handler (and stops them propagating) when it is
imported before logging is configured, which is always the case under Hydra: its lines then
reach the terminal but never the run's log file.
"""

import logging
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only

log = logging.getLogger(__name__)

LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
# Messages that tell the user nothing about this run (advertising, or advice this project's
# config already acted on: the float32 matmul precision is set explicitly, see conf/train.yaml).
NOISE = (
    "💡 Tip:",
    "that has Tensor Cores. To properly",
    "Skipping setting a default `ModelSummary` callback",
)


class DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(marker in message for marker in NOISE)


def route_library_logs() -> None:
    """Lightning's lines go through the root logger (Hydra's console and ``train.log``), minus noise."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler:
                logger.removeHandler(handler)
        logger.propagate = True
        if not any(isinstance(f, DropNoise) for f in logger.filters):
            logger.addFilter(DropNoise())
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, DropNoise) for f in rank_zero.filters):
        rank_zero.addFilter(DropNoise())


def results_block(summary: dict[str, Any], run_dir: Path, monitor: str = "val/acc") -> str:
    """The lines that end a run: what it reached, when, in how long, and where it all is."""
    lines = ["results"]
    if "test/acc" in summary:
        error = summary.get("test/error", 1.0 - summary["test/acc"])
        lines.append(f"  test accuracy   {summary['test/acc']:.2%}   (test error {error:.2%})")
    epochs = summary.get("epochs")
    best = summary.get("best_epoch")
    if best is not None:
        reached = f"   ({monitor} {summary[monitor]:.4f})" if monitor in summary else ""
        lines.append(f"  best epoch      {best} of {epochs}{reached}")
    if "train_seconds" in summary:
        lines.append(f"  training time   {summary['train_seconds']:.1f} s")
    lines.append(f"  run folder      {Path(run_dir).resolve()}")
    return "\n".join(lines)


@rank_zero_only
def report_results(summary: dict[str, Any], run_dir: Path, monitor: str = "val/acc") -> None:
    """Into the console and ``train.log`` alike (Hydra's handlers), so a log file states the result too."""
    log.info(results_block(summary, run_dir, monitor))
