"""Checkpoints are data, never code: a crafted file cannot run anything in any entry point,
and a file whose bytes changed since it was written is refused in one line."""

import os
from pathlib import Path

import pytest
import torch

from lenet5.errors import UserError
from lenet5.serving.checkpoints import load_checkpoint
from lenet5.training.module import LeNet5Module
from support import QUICK


class WritesAFile:
    """Unpickling this calls os.mkdir(marker): what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


def genuine(path: Path) -> Path:
    module = LeNet5Module(model={"_target_": "lenet5.models.LeNet5"})
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    return path


@pytest.fixture
def crafted(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    path = tmp_path / "crafted.ckpt"
    payload = genuine(tmp_path / "base.ckpt")
    checkpoint = torch.load(payload, weights_only=True)
    checkpoint["hyper_parameters"]["callback"] = WritesAFile(marker)
    torch.save(checkpoint, path)
    return path, marker


@pytest.fixture
def foreign_target(tmp_path: Path) -> tuple[Path, Path]:
    """Plain data only, but the model's _target_ names a function that would create a folder."""
    marker = tmp_path / "pwned_by_target"
    path = tmp_path / "target.ckpt"
    checkpoint = torch.load(genuine(tmp_path / "base2.ckpt"), weights_only=True)
    checkpoint["hyper_parameters"]["model"] = {"_target_": "os.mkdir", "path": str(marker)}
    torch.save(checkpoint, path)
    return path, marker


@pytest.mark.parametrize(
    "command",
    [
        ("evaluate.py", "ckpt_path={ckpt}"),
        ("-m", "lenet5.predict", "{ckpt}", "{image}"),
        ("-m", "lenet5.export", "{ckpt}", "--output", "{out}"),
        ("train.py", *QUICK, "hydra.run.dir={run}", "ckpt_path={ckpt}"),
    ],
    ids=["evaluate", "predict", "export", "train-resume"],
)
@pytest.mark.parametrize("kind", ["pickled-code", "foreign-target"])
def test_a_crafted_checkpoint_runs_nothing(
    cli_in_process, tmp_path: Path, crafted, foreign_target, command, kind
) -> None:
    ckpt, marker = crafted if kind == "pickled-code" else foreign_target
    image = tmp_path / "digit.png"
    image.write_bytes(b"")  # never reached: the checkpoint is refused first
    args = [
        a.format(ckpt=ckpt, image=image, out=tmp_path / "out.onnx", run=tmp_path / "run") for a in command
    ]
    process = cli_in_process(*args)
    if kind == "foreign-target" and command[0] == "train.py":
        # A resume rebuilds the model from the run's own config, never from the file's: the
        # file's weights do not fit it, or it is trained on; in neither case runs its target.
        assert not marker.exists()
        return
    assert process.returncode == 2, process.stderr[-2000:]
    assert "Traceback" not in process.stderr
    assert str(ckpt) in process.stderr
    assert not marker.exists(), "loading the checkpoint ran code from it"


def test_changed_bytes_are_refused(tmp_path: Path) -> None:
    path = genuine(tmp_path / "model.ckpt")
    load_checkpoint(path)  # intact: loads
    data = bytearray(path.read_bytes())
    middle = len(data) // 2  # inside the weights' storage
    data[middle] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="changed since it was written.*CRC-32"):
        load_checkpoint(path)


def test_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    path = genuine(tmp_path / "model.ckpt")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(UserError, match=str(path)):
        load_checkpoint(path)
