"""Train a LeNet-5 variant: ``python train.py model=classic`` (see conf/train.yaml)."""

import sys

import hydra
from omegaconf import DictConfig

from lenet5.config import CONFIG_DIR
from lenet5.errors import UserError
from lenet5.run import train


@hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> float | None:
    try:
        metrics = train(cfg)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    return metrics.get(cfg.optimized_metric)


if __name__ == "__main__":
    main()
