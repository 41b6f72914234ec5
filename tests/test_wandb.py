"""``logger=wandb`` offline: the run lands in the run folder with flat config keys, per-step and
per-epoch metrics and the test pictures; every job of a multirun is its own run, grouped."""

import json
import struct
from pathlib import Path

import pytest
from wandb.proto import wandb_internal_pb2

from lenet5.results import wandb_logging
from support import QUICK

# wandb's transaction log: LevelDB's log format (32 KiB blocks of checksummed, typed chunks)
# after a 7-byte ":W&B" header; each complete record is a protobuf Record.
BLOCK, HEADER = 32768, 7
FULL, LAST = 1, 4


def read_records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb transaction log"
    records, pending, position = [], b"", HEADER
    while position + HEADER <= len(data):
        if BLOCK - position % BLOCK < HEADER:  # a block's tail too short for a header is padding
            position += BLOCK - position % BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + HEADER])
        if kind == 0:
            break
        position += HEADER
        pending += data[position : position + length]
        position += length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def offline_run(run_dir: Path) -> dict:
    """The one offline run in ``run_dir``: its id, group, name, config and history keys."""
    logs = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 1, f"expected one offline run in {run_dir}/wandb, found {logs}"
    run: dict = {"config": {}, "history": set()}
    for record in read_records(logs[0]):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.update(id=record.run.run_id, group=record.run.run_group, name=record.run.display_name)
        elif kind == "config":
            run["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "history":
            run["history"].update(item.key or "/".join(item.nested_key) for item in record.history.item)
    return run


def test_offline_run_in_the_run_folder(train_run, tmp_path: Path) -> None:
    _, run_dir = train_run("logger=wandb", "model=modern")
    run = offline_run(run_dir)
    config = run["config"]
    assert config["model.activation"] == "relu"
    assert config["optimizer.lr"] > 0
    assert config["parameters"] == json.loads((run_dir / "metrics.json").read_text())["parameters"]
    history = run["history"]
    assert {"val/acc", "train/loss_step", "train/loss", "test/acc"} <= history
    assert any(key.startswith("test/confusion_matrix") for key in history)
    assert any(key.startswith("test/per_class") for key in history)
    assert any(key.startswith("test/misclassified") for key in history)
    assert run["group"] == ""  # a single run belongs to no sweep
    # Nothing under $WANDB_DIR or the working folder: the run's files are in its own folder.
    assert not list((tmp_path / "wandb_home").glob("**/offline-run-*"))
    assert not (tmp_path / "wandb").exists()


def test_multirun_jobs_are_distinct_runs_of_one_group(run_cli, tmp_path: Path) -> None:
    """Also the names end to end: the swept values only, not the fixed seed=1 (short_name's cases
    are in test_wandb_runs.py)."""
    sweep = tmp_path / "sweep"
    process = run_cli(
        "train.py",
        "-m",
        *QUICK,
        "logger=wandb",
        "model/activation=relu,tanh",
        "seed=1",
        f"hydra.sweep.dir={sweep}",
    )
    assert process.returncode == 0, process.stderr[-3000:]
    runs = [offline_run(sweep / str(job)) for job in (0, 1)]
    assert runs[0]["id"] != runs[1]["id"]
    assert runs[0]["group"] == runs[1]["group"] == str(sweep)
    for run, activation in zip(runs, ("relu", "tanh"), strict=True):
        assert run["config"]["model.activation"] == activation
        assert run["name"] == f"activation={activation}"  # the swept value, not every override


@pytest.fixture
def no_wandb_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))


@pytest.mark.usefixtures("no_wandb_settings")
def test_mode_offline_without_credentials_online_with_them(tmp_path: Path, monkeypatch) -> None:
    assert wandb_logging.choose_mode(None) == "offline"
    (tmp_path / "netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "0" * 40 + "\n")
    assert wandb_logging.choose_mode(None) == "online"


@pytest.mark.usefixtures("no_wandb_settings")
def test_mode_from_environment_or_config_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "0" * 40)
    assert wandb_logging.choose_mode(None) == "online"
    assert wandb_logging.choose_mode("disabled") == "disabled"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_logging.choose_mode(None) is None  # left for wandb to read from WANDB_MODE
