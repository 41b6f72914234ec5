"""Shared fixtures for the model-family tests."""

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig

from lenet5.config import CONFIG_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _seed_and_one_thread():
    """Every test starts from the same random state, so a failure reproduces.

    The tensors here are tiny: intra-op threads only add overhead, and on a busy machine (a
    training run beside the tests) spinning thread pools make them hundreds of times slower.
    """
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def compose_config() -> Callable[..., DictConfig]:
    """Compose conf/summary.yaml (model + data) from the real conf/ directory."""

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            return compose(config_name="summary", overrides=list(overrides))

    return _compose


@pytest.fixture
def build_preset(compose_config) -> Callable[..., torch.nn.Module]:
    """Instantiate ``cfg.model`` for the given overrides, e.g. ``build_preset("model=classic")``."""

    def _build(*overrides: str) -> torch.nn.Module:
        return instantiate(compose_config(*overrides).model)

    return _build
