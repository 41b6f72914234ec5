"""A full disk leaves the previous state and one line: nothing half-written, no temp files."""

import errno
import json
from pathlib import Path

import pytest
import torch

from lenet5.atomic import write_whole
from lenet5.errors import UserError
from lenet5.serving import export
from lenet5.training.module import LeNet5Module


def disk_full_after(limit: int):
    """A write_text/write_bytes that writes `limit` bytes, then fails as a full disk does."""

    def write(self: Path, data, *args, **kwargs):
        with open(self, "wb") as handle:
            handle.write((data.encode() if isinstance(data, str) else data)[:limit])
        raise OSError(errno.ENOSPC, "No space left on device")

    return write


@pytest.mark.parametrize("method", ["write_text", "write_bytes"])
def test_write_whole_keeps_the_previous_file(tmp_path: Path, monkeypatch, method: str) -> None:
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"test/acc": 0.99}))
    monkeypatch.setattr(Path, method, disk_full_after(5))
    new = json.dumps({"test/acc": 0.5, "padding": "x" * 100})
    with pytest.raises(UserError, match="metrics.json: not written.*no space left"):
        write_whole(path, new if method == "write_text" else new.encode())
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"test/acc": 0.99}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_export_on_a_full_disk_leaves_no_file(tmp_path: Path, monkeypatch, capsys) -> None:
    module = LeNet5Module(model={"_target_": "lenet5.models.LeNet5"})
    ckpt = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, ckpt)

    def full(*args, **kwargs):
        Path(args[1]).write_bytes(b"PK\x03\x04 half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch.jit, "save", full)
    out = tmp_path / "model.pt"
    assert export.main([str(ckpt), "--format", "torchscript", "--output", str(out)]) == 2
    assert "no space left" in capsys.readouterr().err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["model.ckpt"]
