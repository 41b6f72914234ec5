"""More devices than the machine has: more CPU processes than cores, a GPU where there is none.
Refused in one ``error:`` line, exit status 2, before any process starts (a test that would
start them kills its whole process group at its timeout)."""

import os
import re
import signal
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf

from lenet5 import validation
from lenet5.errors import UserError
from support import QUICK, REPO


def one_line(process, expected: str, status: int) -> None:
    assert process.returncode == status, process.stderr[-2000:]
    assert "Traceback" not in process.stderr, process.stderr[-2000:]
    lines = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and expected in lines[0], process.stderr[-2000:]


DEVICES = [
    ("auto", "auto", None),
    ("cpu", 2, None),
    ("cpu", "2", None),
    ("cpu", 64, "trainer.devices=64: this process may use 2 CPU cores"),
    ("auto", 3, "trainer.devices=3"),
    ("cpu", -1, "trainer.devices=-1"),
    ("cpu", 0, "trainer.devices=0"),
    ("cpu", [0, 1], "trainer.devices=[0, 1]"),
    ("gpu", 1, "trainer.accelerator=gpu: no such GPU here"),
    ("cuda", "auto", "trainer.accelerator=cuda"),
    ("mps", 1, "trainer.accelerator=mps"),
]


@pytest.mark.parametrize("accelerator, devices, expected", DEVICES, ids=[f"{a}-{d}" for a, d, _ in DEVICES])
def test_devices_the_machine_lacks_are_refused(monkeypatch, accelerator, devices, expected) -> None:
    monkeypatch.setattr(validation, "available_cores", lambda: 2)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    cfg = OmegaConf.create({"trainer": {"accelerator": accelerator, "devices": devices}})
    if expected is None:
        validation.check_devices(cfg)
        return
    with pytest.raises(UserError) as raised:
        validation.check_devices(cfg)
    assert expected in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "count, expected",
    [(1, None), (2, "trainer.devices=2: 1 cuda GPU(s) here"), ("0,1", "trainer.devices=0,1")],
)
def test_gpus_the_machine_lacks_are_refused(monkeypatch, count, expected) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    cfg = OmegaConf.create({"trainer": {"accelerator": "gpu", "devices": count}})
    if expected is None:
        validation.check_devices(cfg)
    else:
        with pytest.raises(UserError, match=re.escape(expected)):
            validation.check_devices(cfg)


def run_group(command: list[str], timeout: float, **kwargs) -> SimpleNamespace:
    """A command in a process group of its own, the whole group killed on timeout: DDP's
    children must not outlive the test."""
    process = subprocess.Popen(command, start_new_session=True, stderr=subprocess.PIPE, text=True, **kwargs)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return SimpleNamespace(returncode=process.returncode, stderr=stderr)


@pytest.mark.parametrize("override", ["trainer.devices={cores_plus_one}", "trainer.accelerator=gpu"])
def test_the_command_line_refuses_devices(tmp_path, hermetic_env, override) -> None:
    if override.endswith("gpu") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    word = override.format(cores_plus_one=validation.available_cores() + 1)
    command = [sys.executable, str(REPO / "train.py"), *QUICK, f"hydra.run.dir={tmp_path / 'run'}", word]
    process = run_group(command, timeout=120, cwd=tmp_path, env=hermetic_env)
    one_line(process, word.split("=")[0], 2)
