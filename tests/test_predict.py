"""``python -m lenet5.predict``: images of any size prepared like MNIST digits, rendered digits
read by a model trained on real MNIST, and one-line errors for bad files."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from lenet5.serving import predict
from lenet5.serving.predict import CANVAS, DIGIT_BOX, to_digit
from lenet5.training.module import LeNet5Module

MODEL = {
    "_target_": "lenet5.models.LeNet5",
    "activation": "relu",
    "pooling": "max",
    "c3": "full",
    "head": "linear",
    "init": "default",
    "normalization": "unit",
}


def render(digit: int, path: Path, size: tuple[int, int], dark_on_light: bool = True) -> Path:
    """A large digit in Pillow's own font (Aileron), centred, 60% of the shorter side high."""
    ink, paper = (0, 255) if dark_on_light else (255, 0)
    image = Image.new("L", size, paper)
    font = ImageFont.load_default(size=int(min(size) * 0.6))
    ImageDraw.Draw(image).text((size[0] / 2, size[1] / 2), str(digit), fill=ink, font=font, anchor="mm")
    image.save(path)
    return path


@pytest.fixture
def untrained_checkpoint(tmp_path: Path) -> Path:
    """A checkpoint as train.py writes one (model config, weights, data settings), untrained."""
    torch.manual_seed(0)
    path = tmp_path / "untrained.ckpt"
    module = LeNet5Module(model=MODEL)
    torch.save(
        {
            "hyper_parameters": {"model": MODEL},
            "state_dict": module.state_dict(),
            "datamodule_hyper_parameters": {"dataset": "mnist"},
        },
        path,
    )
    return path


@pytest.mark.parametrize("dark_on_light", [True, False])
@pytest.mark.parametrize("size", [(60, 40), (300, 300), (640, 480)])
def test_any_image_becomes_an_mnist_like_digit(tmp_path: Path, size, dark_on_light: bool) -> None:
    path = render(4, tmp_path / "four.png", size, dark_on_light)
    x = to_digit(predict.read_grey(path))
    assert x.shape == (1, 1, 32, 32) and x.dtype == torch.float32
    assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.9
    digit = x[0, 0, 2:-2, 2:-2]  # the 28x28 field inside the 2-pixel padding
    assert x[0, 0].sum() == pytest.approx(digit.sum())
    rows, cols = torch.nonzero(digit > 0.2, as_tuple=True)
    longest = max(rows.max() - rows.min(), cols.max() - cols.min()) + 1
    assert DIGIT_BOX - 2 <= longest <= DIGIT_BOX + 1
    grid = torch.arange(CANVAS, dtype=torch.float32)
    centre = ((digit.sum(1) * grid).sum() / digit.sum(), (digit.sum(0) * grid).sum() / digit.sum())
    assert all(abs(c - (CANVAS - 1) / 2) <= 1 for c in centre)


def test_the_same_digit_dark_or_light_gives_the_same_input(tmp_path: Path) -> None:
    dark = to_digit(predict.read_grey(render(7, tmp_path / "a.png", (200, 200), True)))
    light = to_digit(predict.read_grey(render(7, tmp_path / "b.png", (200, 200), False)))
    assert torch.allclose(dark, light, atol=2 / 255)


def test_bad_images_give_one_line_errors_and_the_rest_is_classified(
    run_cli, tmp_path: Path, untrained_checkpoint: Path
) -> None:
    good = render(3, tmp_path / "three.png", (120, 90))
    bad = {
        "missing.png": "no such file",
        "empty.png": "empty file, not an image",
        "notes.png": "not an image PIL can read",
        "cut.png": "truncated or damaged image",
        "blank.png": "no digit found",
    }
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.png").write_text("these are not pixels\n")
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:200])
    Image.new("RGB", (50, 50), "white").save(tmp_path / "blank.png")
    files = [str(tmp_path / name) for name in bad]
    process = run_cli("-m", "lenet5.predict", str(untrained_checkpoint), files[0], str(good), *files[1:])
    assert process.returncode == 2
    assert process.stdout.startswith(f"{good}: ") and len(process.stdout.splitlines()) == 1
    errors = process.stderr.strip().splitlines()
    assert len(errors) == len(bad), process.stderr
    for line, (name, problem) in zip(errors, bad.items(), strict=True):
        assert line.startswith(f"error: {tmp_path / name}: {problem}"), line


def test_json_output(tmp_path: Path, untrained_checkpoint: Path, capsys) -> None:
    good = render(5, tmp_path / "five.jpg", (100, 140))
    code = predict.main(
        [str(untrained_checkpoint), str(good), str(tmp_path / "gone.png"), "--json", "--top", "4"]
    )
    assert code == 2
    first, second = json.loads(capsys.readouterr().out)
    assert first["file"] == str(good) and first["label"] == str(first["class"])
    probabilities = [entry["probability"] for entry in first["top"]]
    assert len(probabilities) == 4 and probabilities == sorted(probabilities, reverse=True)
    assert first["top"][0]["class"] == first["class"]
    assert second == {"file": str(tmp_path / "gone.png"), "error": f"{tmp_path / 'gone.png'}: no such file"}


def test_bad_checkpoints(tmp_path: Path, untrained_checkpoint: Path, capsys) -> None:
    image = str(render(1, tmp_path / "one.png", (80, 80)))
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(untrained_checkpoint.read_bytes()[:3000])
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}}, foreign)
    text = tmp_path / "text.ckpt"
    text.write_text("hello")
    cases = {
        truncated: "truncated checkpoint",
        foreign: "not a lenet5 checkpoint (no LeNet-5 model config",
        text: "not a lenet5 checkpoint (not a PyTorch file)",
        tmp_path / "missing.ckpt": "no such file",
    }
    for path, problem in cases.items():
        assert predict.main([str(path), image]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert captured.err.startswith(f"error: {path}: {problem}") and captured.err.count("\n") == 1


@pytest.mark.slow
def test_rendered_digits_with_a_model_trained_on_real_mnist(
    run_cli, tmp_path: Path, real_mnist_checkpoint: Path
) -> None:
    checkpoint = str(real_mnist_checkpoint)
    sizes = [(64, 64), (200, 300), (480, 320), (128, 96), (300, 300)]
    images = [
        render(digit, tmp_path / f"digit{digit}.png", sizes[digit % 5], dark_on_light=digit % 3 != 0)
        for digit in range(10)
    ]
    process = run_cli("-m", "lenet5.predict", checkpoint, *map(str, images), "--json")
    assert process.returncode == 0, process.stderr[-3000:]
    results = json.loads(process.stdout)
    right = [result["class"] == digit for digit, result in enumerate(results)]
    assert sum(right) >= 8, json.dumps(results, indent=1)
