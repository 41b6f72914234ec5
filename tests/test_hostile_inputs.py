"""A hostile user's inputs across every entry point: each gets one line on stderr naming the key
or the file, exit status 2, and never a Python traceback.

train.py's cases run its Hydra main in this process (an interpreter start per case costs ten
seconds on a busy CI machine); a few of them also go through the command line, as users type them.
"""

import shutil
import struct
import sys
import zlib
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from lenet5.training.module import LeNet5Module
from support import QUICK, write_idx

TRAIN = [
    ("optimizer.lr=-1", "optimizer.lr"),
    ("optimizer.lr=abc", "optimizer.lr"),
    ("optimizer.lr=nan", "optimizer.lr"),
    ("optimizer.lr=inf", "optimizer.lr"),
    ("optimizer.weight_decay=-0.1", "optimizer.weight_decay"),
    ("optimizer=sgd optimizer.momentum=1.5", "optimizer.momentum"),
    ("seed=-1", "seed"),
    ("seed=4294967296", "seed"),
    ("seed=1.5", "seed"),
    ("trainer.max_epochs=0", "trainer.max_epochs"),
    ("trainer.max_epochs=ten", "trainer.max_epochs"),
    ("trainer.limit_train_batches=-3", "trainer.limit_train_batches"),
    ("trainer.limit_val_batches=2.5", "trainer.limit_val_batches"),
    ("trainer.log_every_n_steps=0", "trainer.log_every_n_steps"),
    ("+trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches"),
    ("data.val_size=-1", "data.val_size"),
    ("data.val_size=100000", "data.val_size"),
    ("data.batch_size=0", "data.batch_size"),
    ("data.batch_size=1.5", "data.batch_size"),
    ("data.eval_batch_size=-10", "data.eval_batch_size"),
    ("data.split_seed=-1", "data.split_seed"),
    ("data.std=0", "data.std"),
    ("data.dataset=cifar", "data.dataset"),
    ("data.augment=rotate", "data.augment"),
    ("scheduler.pct_start=0", "scheduler.pct_start"),
    ("scheduler.div_factor=-1", "scheduler.div_factor"),
    ("scheduler=step scheduler.step_size=0", "scheduler.step_size"),
    ("scheduler=step scheduler.gamma=-1", "scheduler.gamma"),
    ("+model.input_std=0", "model.input_std"),
    ("model.rbf_j=-1", "model.rbf_j"),
    ("callbacks=early_stopping callbacks.early_stopping.patience=-1", "callbacks.early_stopping.patience"),
    ("+trainer.bogus=1", "bogus"),
    ("+model.colour=red", "colour"),
    ("+data.colour=red", "colour"),
    ("+optimizer.bogus=1", "bogus"),
    ("ckpt_path=/nonexistent/x.ckpt", "ckpt_path"),
    ("ckpt_path={text}", "{text}"),
    ("ckpt_path={flipped}", "{flipped}"),
    ("ckpt_path=last", "ckpt_path=last"),
    ("data.root={bad_labels}", "labels-idx1-ubyte"),
    ("data.root={small_images}", "images"),
    ("trainer.limit_train_batches=0.0001", "trainer.limit_train_batches=0.0001 leaves none"),
    ("trainer.limit_test_batches=0.0001", "trainer.limit_test_batches=0.0001 leaves none"),
]
OTHERS = [
    (("evaluate.py",), "ckpt_path"),
    (("evaluate.py", "ckpt_path=/nonexistent/x.ckpt"), "/nonexistent/x.ckpt"),
    (("evaluate.py", "ckpt_path={flipped}"), "{flipped}"),
    (("evaluate.py", "ckpt_path={text}"), "{text}"),
    (("evaluate.py", "ckpt_path={genuine}", "data.eval_batch_size=0"), "data.eval_batch_size"),
    (("evaluate.py", "ckpt_path={genuine}", "trainer.limit_test_batches=-1"), "trainer.limit_test_batches"),
    (("-m", "lenet5.predict", "/nonexistent/x.ckpt", "{digit}"), "/nonexistent/x.ckpt"),
    (("-m", "lenet5.predict", "{flipped}", "{digit}"), "CRC"),
    (("-m", "lenet5.predict", "{genuine}", "{bomb}"), "{bomb}"),
    (("-m", "lenet5.predict", "{genuine}", "{text}"), "{text}"),
    (("-m", "lenet5.predict", "{genuine}", "{digit}", "--top", "0"), "--top"),
    (("-m", "lenet5.export", "{flipped}"), "{flipped}"),
    (("-m", "lenet5.export", "{genuine}", "--format", "pdf"), "--format"),
    (("-m", "lenet5.export", "{genuine}", "--output", "/nonexistent/dir/m.onnx"), "/nonexistent/dir"),
    (("-m", "lenet5.report", "/nonexistent/sweep"), "/nonexistent/sweep"),
    (("-m", "lenet5.report", "{text}"), "{text}"),
    (("-m", "lenet5.report", "{empty}"), "{empty}"),
]


def bomb_png(path: Path, side: int = 40_000) -> None:
    """A PNG header claiming side x side pixels: a few bytes that would decode to gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, tiny_data: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hostile")
    module = LeNet5Module(model={"_target_": "lenet5.models.LeNet5"})
    genuine = root / "genuine.ckpt"
    data = {"dataset": "mnist", "root": str(tiny_data), "download": False, "val_size": 100}
    torch.save(
        {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
         "datamodule_hyper_parameters": data},
        genuine,
    )  # fmt: skip
    flipped = root / "flipped.ckpt"
    content = bytearray(genuine.read_bytes())
    content[len(content) // 2] ^= 0x10
    flipped.write_bytes(bytes(content))
    text = root / "notes.txt"
    text.write_text("not a checkpoint, not an image\n")
    digit = root / "digit.png"
    canvas = np.zeros((28, 28), dtype=np.uint8)
    canvas[6:22, 12:16] = 255
    Image.fromarray(canvas).save(digit)
    bomb = root / "bomb.png"
    bomb_png(bomb)
    empty = root / "empty_sweep"
    empty.mkdir()
    bad_labels = root / "bad_labels"
    shutil.copytree(tiny_data, bad_labels)
    labels = bad_labels / "MNIST" / "raw" / "train-labels-idx1-ubyte"
    write_idx(labels, np.full(600, 11, dtype=np.uint8))
    small_images = root / "small_images"
    shutil.copytree(tiny_data, small_images)
    write_idx(small_images / "MNIST" / "raw" / "train-images-idx3-ubyte", np.zeros((600, 27, 27), np.uint8))
    return {
        "genuine": genuine, "flipped": flipped, "text": text, "digit": digit, "bomb": bomb,
        "empty": empty, "bad_labels": bad_labels, "small_images": small_images,
    }  # fmt: skip


def check(process, expected: str) -> None:
    assert process.returncode == 2, process.stderr[-2000:]
    assert "Traceback" not in process.stderr, process.stderr[-2000:]
    lines = [line for line in process.stderr.splitlines() if line.startswith(("error:", "usage:"))]
    assert lines, process.stderr[-2000:]
    assert expected in process.stderr, process.stderr[-2000:]


@pytest.fixture(scope="module")
def train_main():
    from lenet5.train import main  # what train.py, python -m lenet5.train and lenet5-train run

    return main


@pytest.mark.parametrize("overrides, expected", TRAIN, ids=[case[0] for case in TRAIN])
def test_train_refuses(
    train_main, tmp_path: Path, files, monkeypatch, capsys, tiny_data: Path, overrides: str, expected: str
) -> None:
    names = {k: str(v) for k, v in files.items()}
    args = [a.format(**names) for a in overrides.split()]
    monkeypatch.setenv("LENET5_DATA_DIR", str(tiny_data))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["train.py", *QUICK, f"hydra.run.dir={tmp_path / 'run'}", *args])
    with pytest.raises(SystemExit) as exited:
        train_main()
    stderr = capsys.readouterr().err
    check(SimpleNamespace(returncode=exited.value.code, stderr=stderr), expected.format(**names))


@pytest.mark.parametrize("index", [0, 9, 31, 36, 39])
def test_train_refuses_on_the_command_line(run_cli, tmp_path: Path, files, index: int) -> None:
    overrides, expected = TRAIN[index]
    names = {k: str(v) for k, v in files.items()}
    args = [a.format(**names) for a in overrides.split()]
    process = run_cli("train.py", *QUICK, f"hydra.run.dir={tmp_path / 'run'}", *args)
    check(process, expected.format(**names))


@pytest.mark.parametrize("command, expected", OTHERS, ids=[" ".join(c) for c, _ in OTHERS])
def test_tools_refuse(cli_in_process, files, command: tuple[str, ...], expected: str) -> None:
    names = {k: str(v) for k, v in files.items()}
    check(cli_in_process(*[a.format(**names) for a in command]), expected.format(**names))


@pytest.mark.parametrize("index", [1, 8, 13])
def test_tools_refuse_on_the_command_line(run_cli, tmp_path: Path, files, index: int) -> None:
    command, expected = OTHERS[index]
    names = {k: str(v) for k, v in files.items()}
    args = [a.format(**names) for a in command]
    if args[0] == "evaluate.py":
        args.append(f"hydra.run.dir={tmp_path / 'eval'}")
    check(run_cli(*args), expected.format(**names))


def test_predict_classifies_the_readable_images_around_bad_ones(run_cli, files) -> None:
    process = run_cli("-m", "lenet5.predict", str(files["genuine"]), str(files["bomb"]), str(files["digit"]))
    assert process.returncode == 2 and "Traceback" not in process.stderr
    assert str(files["bomb"]) in process.stderr and "too large" in process.stderr
    assert str(files["digit"]) in process.stdout
