"""train.yaml's ``tags`` (a list of strings, empty by default) reach both trackers: W&B's run tags
(an offline run here) and, through the same config, MLflow's (tests/test_mlflow.py reads those
back); anything but a list of strings is one line."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lenet5.config import CONFIG_DIR
from lenet5.errors import UserError
from lenet5.results.run_identity import run_tags, short_name


def composed(*overrides: str):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=list(overrides))


def test_tags_are_empty_by_default_and_reach_every_tracker_config():
    assert composed().tags == []
    cfg = composed("logger=[wandb,mlflow]", "tags=[ablation,relu]")
    assert list(cfg.logger.wandb.tags) == list(cfg.logger.mlflow.tags) == ["ablation", "relu"]


def test_a_wandb_run_gets_the_tags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from lenet5.results.wandb_logging import RunLogger, finish_wandb

    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "home" / name.lower()))
    monkeypatch.setenv("WANDB_SILENT", "true")
    logger = RunLogger(mode="offline", save_dir=str(tmp_path / "run"), tags=OmegaConf.create(["a", "b"]))
    try:
        assert tuple(logger.experiment.tags) == ("a", "b")
    finally:
        finish_wandb(failed=False)


@pytest.mark.parametrize("tags", ["baseline", ["ok", ""], [1, "x"]])
def test_bad_tags_are_one_line(tags):
    one_line = r"^tags=.*: give a list of (non-empty )?strings, e\.g\. tags=\[baseline,relu\]$"
    with pytest.raises(UserError, match=one_line):
        run_tags(tags)


def test_tags_are_not_part_of_a_run_name():
    assert short_name(["model/activation=relu", "tags=[a,b]"], set()) == "activation=relu"
