"""Train a LeNet-5 variant: ``lenet5-train model=classic``, ``python -m lenet5.train ...`` or, in
the repo, ``python train.py ...`` (see conf/train.yaml)."""

import logging
import sys

import hydra
from hydra.errors import InstantiationException
from omegaconf import DictConfig

from lenet5.config import CONFIG_DIR
from lenet5.errors import UserError
from lenet5.run import train
from lenet5.sweep import in_multirun, limit_threads, record_failure

log = logging.getLogger(__name__)


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    """A failing job of a multirun is recorded in its folder (failure.json) and returns None,
    so the sweep goes on; a single run fails loudly (exit status 2 for a UserError)."""
    limit_threads()
    try:
        metrics = train(cfg)
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
        raise
    return metrics.get(cfg.optimized_metric)


if __name__ == "__main__":
    main()
