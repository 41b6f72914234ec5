"""Set-up: torch settings from the config (matmul precision, determinism, no progress bar when
dropped), and what `make install` runs (every extra, constraints.txt's versions, uv or pip)."""

import os
import subprocess

import pytest
import torch
from omegaconf import OmegaConf

from lenet5.errors import UserError
from lenet5.training.setup import configure_torch, trainer_settings
from support import REPO


@pytest.fixture(autouse=True)
def restore_precision():
    saved = torch.get_float32_matmul_precision()
    fill = torch.utils.deterministic.fill_uninitialized_memory
    yield
    torch.set_float32_matmul_precision(saved)
    torch.utils.deterministic.fill_uninitialized_memory = fill


@pytest.mark.parametrize("precision", ["highest", "high", "medium"])
def test_matmul_precision_from_config(precision, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    configure_torch(
        OmegaConf.create({"float32_matmul_precision": precision, "trainer": {"deterministic": True}})
    )
    assert torch.get_float32_matmul_precision() == precision
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.utils.deterministic.fill_uninitialized_memory is False  # ~25 fills a step


def test_bad_precision_is_a_user_error():
    with pytest.raises(
        UserError, match="float32_matmul_precision='fast': give highest, high, medium or null$"
    ):
        configure_torch(OmegaConf.create({"float32_matmul_precision": "fast"}))


def test_deterministic_by_default():
    from lenet5.config import CONFIG_DIR

    trainer = OmegaConf.load(f"{CONFIG_DIR}/trainer/default.yaml")
    assert trainer.deterministic is True


@pytest.mark.parametrize(("bar", "enabled"), [(None, False), ({"_target_": "x"}, True)])
def test_progress_bar_null_means_none(bar, enabled):
    assert trainer_settings(OmegaConf.create({"callbacks": {"progress_bar": bar}})) == {
        "enable_progress_bar": enabled
    }


def install_commands(venv, *settings: str) -> str:
    """What `make install` would run for a fresh ``venv`` (make -n)."""
    done = subprocess.run(
        ["make", "-n", "install", f"VENV={venv}", *settings],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_make_install_takes_every_extra_at_the_constraints_versions(tmp_path):
    commands = install_commands(tmp_path / "venv")
    target = "-c constraints.txt -e '.[all,dev]'"
    assert f"/bin/uv pip install --quiet --python {tmp_path}/venv/bin/python {target}" in commands
    assert f"{tmp_path}/venv/bin/python -m pip install --quiet {target}" in commands  # the fallback
    assert "UV_INDEX_STRATEGY=unsafe-best-match" in commands  # pip's choice among its indexes
    assert '[ "pip" = uv ]' in install_commands(tmp_path / "venv", "INSTALLER=pip")  # uv skipped
