"""A hostile user's run folders: a finished run overwritten by a fresh run, two resumes of one
folder at once, a resume with another model or data than its checkpoint's. Each is refused with
one ``error:`` line and a non-zero exit, the folder unchanged byte for byte, within a timeout.

Real run folders throughout: one finished run on the tiny data shared by every refusal (each
must leave it as it was), and a run of their own for the tests where a resume goes on.
"""

import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lenet5.data.datamodule import MNISTDataModule
from lenet5.errors import UserError
from lenet5.training import run_folder
from lenet5.training.module import LeNet5Module
from lenet5.training.resume import check_resumable
from lenet5.training.run_folder import LOCK_FILE
from support import QUICK, REPO, train_once


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(process, expected: str, status: int = 2) -> None:
    assert process.returncode == status, process.stderr[-2000:]
    assert "Traceback" not in process.stderr, process.stderr[-2000:]
    lines = [line for line in process.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, process.stderr[-2000:]
    assert expected in lines[0], lines[0]


@pytest.fixture(scope="module")
def finished_once(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> Path:
    return train_once(tmp_path_factory.mktemp("finished"), tiny_data, "trainer.max_epochs=1")


@pytest.fixture(scope="module")
def checkpoint(finished_once: Path) -> Path:
    return finished_once / "checkpoints" / "last.ckpt"


# --- 1. a fresh run into a folder that holds a run ----------------------------------------------


@pytest.mark.parametrize("holds", ["finished", "checkpoints only"])
def test_a_fresh_run_never_overwrites_a_run(train_cli_in_process, finished_once, tmp_path, holds) -> None:
    folder = finished_once
    if holds == "checkpoints only":  # an interrupted run's folder: checkpoints, no metrics.json
        folder = tmp_path / "interrupted"
        for name, content in files(finished_once).items():
            if name != "metrics.json":
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                (folder / name).write_bytes(content)
    before = files(folder)
    process, _ = train_cli_in_process(run_dir=folder)
    refused(process, "ckpt_path=last")
    assert "choose another hydra.run.dir" in process.stderr
    assert files(folder) == before


def test_the_command_line_refuses_to_overwrite(run_cli, finished_once) -> None:
    before = files(finished_once)
    process = run_cli("train.py", *QUICK, f"hydra.run.dir={finished_once}", timeout=120)
    refused(process, f"hydra.run.dir={finished_once} holds a finished run (metrics.json)")
    assert files(finished_once) == before


def test_a_failed_or_empty_folder_is_run_into(train_cli_in_process, tmp_path) -> None:
    failed = tmp_path / "failed"  # a real failed run: diverged at its first step, nothing saved
    process, _ = train_cli_in_process("optimizer.lr=1e10", run_dir=failed)
    assert process.returncode == 1 and (failed / "failure.json").is_file()
    assert not list(failed.rglob("*.ckpt"))
    empty = tmp_path / "empty"
    empty.mkdir()
    for folder in (failed, empty):
        process, _ = train_cli_in_process("trainer.limit_train_batches=2", run_dir=folder)
        assert process.returncode == 0, process.stderr[-2000:]
        assert (folder / "metrics.json").is_file() and not (folder / LOCK_FILE).exists()


# --- 2. one process at a time in a folder -------------------------------------------------------


@pytest.fixture
def held(tmp_path: Path):
    """The folder's lock held by this test process, as a running training holds it."""
    handles = []

    def hold(folder: Path) -> None:
        handle = open(folder / LOCK_FILE, "a+")  # noqa: SIM115 - held until the test ends
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        handles.append(handle)

    yield hold
    for handle in handles:
        Path(handle.name).unlink()
        handle.close()


@pytest.mark.parametrize(
    "overrides", [("ckpt_path=last", "trainer.max_epochs=2"), ()], ids=["resume", "fresh"]
)
def test_a_folder_being_trained_is_refused(train_cli_in_process, finished_once, tmp_path, held, overrides):
    folder = finished_once if overrides else tmp_path / "new"
    folder.mkdir(exist_ok=True)
    held(folder)
    before = files(folder)
    process, _ = train_cli_in_process(*overrides, run_dir=folder)
    refused(process, f"{folder} is being trained by another process (pid {os.getpid()}); wait for it")
    assert files(folder) == before


def test_two_resumes_at_once_one_trains_the_other_is_refused(
    run_cli, train_cli_in_process, hermetic_env, tmp_path
) -> None:
    _, run = train_cli_in_process(run_dir=tmp_path / "run")
    rows = (run / "csv" / "metrics.csv").read_text().splitlines()
    go = tmp_path / "go"  # the first resume waits at its start for it: the second comes meanwhile
    env = {
        **hermetic_env,
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), hermetic_env.get("PYTHONPATH", "")]),
    }
    resume = [*QUICK, f"hydra.run.dir={run}", "ckpt_path=last"]
    wait = ["+callbacks.wait._target_=wait_for_file.WaitForFile", f"+callbacks.wait.path={go}"]
    first = subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *resume, "trainer.max_epochs=2", *wait],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / LOCK_FILE).is_file() or not (run / LOCK_FILE).read_text().strip():
            assert first.poll() is None and time.monotonic() < deadline, "the first resume never locked"
            time.sleep(0.05)
        second = run_cli("train.py", *resume, "trainer.max_epochs=3", timeout=120)
    finally:
        go.touch()
    _, stderr = first.communicate(timeout=600)
    assert first.returncode == 0, stderr[-2000:]
    refused(second, f"{run} is being trained by another process (pid {first.pid})")
    assert json.loads((run / "metrics.json").read_text())["epochs"] == 2
    assert (run / "csv" / "metrics.csv").read_text().splitlines()[: len(rows)] == rows
    assert not (run / "failure.json").exists() and not (run / LOCK_FILE).exists()


def test_a_lock_file_left_by_a_killed_run_does_not_block(train_cli_in_process, tmp_path) -> None:
    _, run = train_cli_in_process(run_dir=tmp_path / "run")
    (run / LOCK_FILE).write_text("999999\n")  # its holder died: the kernel released the lock
    process, _ = train_cli_in_process("ckpt_path=last", "trainer.max_epochs=2", run_dir=run)
    assert process.returncode == 0, process.stderr[-2000:]
    assert not (run / LOCK_FILE).exists()


def test_without_fcntl_runs_go_unlocked(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(run_folder, "fcntl", None)
    with run_folder.owned_folder(tmp_path / "run", str(tmp_path / "run"), fresh=True):
        assert not (tmp_path / "run" / LOCK_FILE).exists()


# --- 3. a resume with other settings than its checkpoint's --------------------------------------

CHANGED = [
    ("model", "activation", "tanh"),
    ("model", "pooling", "max"),
    ("model", "head", "linear"),
    ("model", "rbf_j", 5.0),
    ("data", "dataset", "fashion_mnist"),
    ("data", "val_size", 50),
    ("data", "split_seed", 1),
    ("data", "augment", "affine"),
    ("data", "batch_size", 25),
    ("data", "mean", 0.5),
]
ALLOWED = [
    ("model", "channels_last", True),
    ("model", "init", "xavier"),
    ("data", "eval_batch_size", 7),
    ("data", "root", "/elsewhere"),
    ("data", "download", True),
]


def modules(checkpoint: Path, group: str, key: str, value) -> tuple[LeNet5Module, MNISTDataModule]:
    """This run's module and datamodule: the checkpoint's settings with one changed."""
    saved = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model, data = dict(saved["hyper_parameters"]["model"]), dict(saved["datamodule_hyper_parameters"])
    {"model": model, "data": data}[group][key] = value
    return LeNet5Module(model=model), MNISTDataModule(**data)


@pytest.mark.parametrize("group, key, value", CHANGED, ids=[f"{g}.{k}" for g, k, _ in CHANGED])
def test_a_resume_with_other_settings_is_refused(checkpoint, group, key, value) -> None:
    module, datamodule = modules(checkpoint, group, key, value)
    with pytest.raises(UserError) as raised:
        check_resumable(str(checkpoint), module, 2, datamodule)
    message = str(raised.value)
    assert f"{group}.{key} is " in message and f"{value} here" in message
    assert f"resume with the checkpoint's settings ({group}.{key}=" in message
    assert "\n" not in message


@pytest.mark.parametrize("group, key, value", ALLOWED, ids=[f"{g}.{k}" for g, k, _ in ALLOWED])
def test_settings_that_do_not_change_what_is_trained_may_change(checkpoint, group, key, value) -> None:
    module, datamodule = modules(checkpoint, group, key, value)
    check_resumable(str(checkpoint), module, 2, datamodule)


def test_the_command_line_refuses_another_activation(train_cli_in_process, finished_once) -> None:
    before = files(finished_once)
    overrides = ("ckpt_path=last", "trainer.max_epochs=2", "model.activation=tanh")
    process, _ = train_cli_in_process(*overrides, run_dir=finished_once)
    refused(process, "model.activation is scaled_tanh in the checkpoint, tanh here; resume with")
    assert files(finished_once) == before


@pytest.mark.parametrize("override", ["data=fashion_mnist", "data.val_size=50", "data.augment=affine"])
def test_the_command_line_refuses_other_data(train_cli_in_process, finished_once, override) -> None:
    before = files(finished_once)
    process, _ = train_cli_in_process(
        "ckpt_path=last", "trainer.max_epochs=2", override, run_dir=finished_once
    )
    refused(process, "in the checkpoint")
    assert files(finished_once) == before
