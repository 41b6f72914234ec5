"""One rule per setting: a value refused from Python (a constructor) gets the line the command
line gets (check_settings), and the configs take the run folder's file names from one table."""

from collections.abc import Callable

import pytest
import torch
from omegaconf import OmegaConf

from lenet5 import run_files
from lenet5.data.datamodule import AUGMENTATIONS, MNISTDataModule
from lenet5.errors import SettingError, UserError
from lenet5.models import LeNet5
from lenet5.models.heads import RBFHead
from lenet5.models.normalization import make_normalization
from lenet5.training import schedules
from lenet5.training.sdlm import SDLM
from lenet5.validation import RULES, check, check_settings


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)


CASES: list[tuple[str, object, Callable[[], object]]] = [
    ("data.batch_size", 0, lambda: MNISTDataModule(batch_size=0)),
    ("data.eval_batch_size", None, lambda: MNISTDataModule(eval_batch_size=None)),
    ("data.val_size", -1, lambda: MNISTDataModule(val_size=-1)),
    ("data.augment", "rotate", lambda: MNISTDataModule(augment="rotate")),
    ("data.std", 0.0, lambda: MNISTDataModule(std=0.0)),
    ("model.rbf_j", -1.0, lambda: RBFHead(j=-1.0)),
    ("model.rbf_j", 0.0, lambda: LeNet5(head="rbf", rbf_j=0.0)),
    ("model.input_std", 0.0, lambda: make_normalization("standardize", 0.1, 0.0)),
    ("optimizer.mu", -1.0, lambda: SDLM([torch.nn.Parameter(torch.zeros(1))], mu=-1.0)),
    ("optimizer.samples", 0, lambda: SDLM([torch.nn.Parameter(torch.zeros(1))], samples=0)),
    ("scheduler.pct_start", 1.0, lambda: schedules.one_cycle(optimizer(), 10, 1, pct_start=1.0)),
    ("scheduler.gamma", -1.0, lambda: schedules.step(optimizer(), 10, 1, gamma=-1.0)),
]


def nested(key: str, value: object) -> dict:
    *parents, last = key.split(".")
    node: dict = {last: value}
    for parent in reversed(parents):
        node = {parent: node}
    return node


@pytest.mark.parametrize("key, value, build", CASES, ids=[f"{k}={v}" for k, v, _ in CASES])
def test_a_constructor_refuses_in_the_command_lines_words(key: str, value: object, build) -> None:
    with pytest.raises(SettingError) as from_python:
        build()
    with pytest.raises(SettingError) as from_config:
        check_settings(OmegaConf.create(nested(key, value)))
    assert str(from_python.value) == str(from_config.value)
    assert str(from_python.value).startswith(f"{key}={value!r}: give ")


def test_a_setting_error_is_a_user_error_and_a_value_error() -> None:
    with pytest.raises(UserError):
        check("seeds", 0)
    with pytest.raises(ValueError, match=r"^lr_scale=-1: give a positive number$"):
        check("lr_scale", -1)
    assert check("data.batch_size", 64) == 64


def test_the_augment_rule_names_every_augmentation() -> None:
    ok, allowed = RULES["data.augment"]
    assert all(ok(name) for name in AUGMENTATIONS) and allowed == " or ".join(AUGMENTATIONS)


def test_evaluate_reads_a_null_data_setting_as_the_checkpoints() -> None:
    cfg = OmegaConf.create({"data": {"eval_batch_size": None}})
    check_settings(cfg, null_means_unset=("data.",))
    with pytest.raises(SettingError, match="data.eval_batch_size=None"):
        check_settings(cfg)


def test_the_configs_take_file_names_from_the_table() -> None:
    import lenet5.config  # noqa: F401 - registers ${run_file:...}

    cfg = OmegaConf.create({"last": "${run_file:LAST_CHECKPOINT}", "bad": "${run_file:seed_checkpoints}"})
    assert cfg.last == run_files.LAST_CHECKPOINT == "checkpoints/last.ckpt"
    with pytest.raises(Exception, match="no file name 'seed_checkpoints'"):
        _ = cfg.bad
