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


def test_a_checkpoint_on_a_full_disk_keeps_the_previous_one(tmp_path: Path, monkeypatch) -> None:
    from lenet5.training.checkpoint_io import AtomicCheckpointIO

    path = tmp_path / "checkpoints" / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"epoch": 1}, path)
    real_save = torch.save

    def full(obj, file, *args, **kwargs):
        real_save({"epoch": 2, "padding": b"x" * 10_000}, file)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    with pytest.raises(UserError, match="last.ckpt: not written.*no space left"):
        AtomicCheckpointIO().save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert AtomicCheckpointIO().load_checkpoint(path) == {"epoch": 1}
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]


def test_history_rows_on_a_read_only_folder_are_one_line(tmp_path: Path, monkeypatch) -> None:
    import tempfile

    from lenet5.atomic import write_rows

    path = tmp_path / "history.csv"
    write_rows(path, ["epoch", "val/acc"], [{"epoch": 0, "val/acc": 0.9}])

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)  # as root, chmod would not stop the write
    with pytest.raises(UserError, match="history.csv: cannot write .Read-only file system"):
        write_rows(path, ["epoch"], [{"epoch": 1}])
    monkeypatch.undo()
    assert path.read_text().splitlines() == ["epoch,val/acc", "0,0.9"]
