"""Train a LeNet-5 variant: ``lenet5-train model=classic``, ``python -m lenet5.train ...`` or, in
the repo, ``python train.py ...`` (see conf/train.yaml)."""

import logging
import sys

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from lenet5.config import CONFIG_DIR
from lenet5.errors import UserError
from lenet5.extras import require_for_overrides
from lenet5.run import train
from lenet5.sweep import in_multirun, limit_threads, record_failure, stop_after_signal
from lenet5.training.resume import resume_guard
from lenet5.training.run_folder import refuse
from lenet5.training.signals import RunInterrupted

log = logging.getLogger(__name__)


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """A failing job of a multirun is recorded in its folder (failure.json) and returns None,
    so the sweep goes on; a single run fails loudly (exit status 2 for a UserError)."""
    limit_threads()
    try:
        metrics = train(cfg)
    except RunInterrupted as interrupted:
        stop_after_signal(interrupted)
    except Exception as raised:
        # Hydra wraps what a config's target raises; a UserError inside still gets one line.
        wrapped = isinstance(raised, InstantiationException) and isinstance(raised.__cause__, UserError)
        error = raised.__cause__ if wrapped else raised
        if in_multirun():
            path = record_failure(cfg, error)
            log.error("job failed: %s: %s (recorded in %s)", type(error).__name__, error, path)
            return None
        if isinstance(error, UserError):
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        record_failure(cfg, error)
        if isinstance(error, FloatingPointError):  # a diverged loss: the advice, not a traceback
            print(f"error: FloatingPointError: {error}", file=sys.stderr)
            sys.exit(1)
        raise
    return metrics.get(cfg.optimized_metric)


def cli() -> None:
    """The command line: a sweeper that is not installed is one line, and a resume that fails
    leaves its run folder exactly as it was."""
    try:
        require_for_overrides(sys.argv[1:])
    except UserError as error:
        refuse(str(error))
    with resume_guard(sys.argv[1:]):
        main()


if __name__ == "__main__":
    cli()
