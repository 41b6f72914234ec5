"""Classify your own images: ``python -m lenet5.predict CKPT IMAGE... [--top K] [--json]``.

A photo or a drawing is not an MNIST digit until it is prepared like one: grey, the ink found
against the locally estimated background (uneven light, grey paper, dark or light ink: see
``lenet5.serving.photo``), cropped to the ink, scaled so its longer side is 20 pixels, its
strokes brought to MNIST's width, placed in 28x28 with its centre of mass in the middle, padded
to 32x32.
A file that cannot be read gets a one-line error; the other images are still classified.
"""

import argparse
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from lenet5.data import to_model_input
from lenet5.errors import UserError
from lenet5.models import LeNet5
from lenet5.serving.checkpoints import first_line, load_checkpoint
from lenet5.serving.photo import digit_box, even_strokes, ink_map

DIGIT_BOX, CANVAS = 20, 28
# The most pixels an image may have (16.8 megapixels, a 4096x4096 photo: 64 MB as grey floats,
# a few times that while decoding). Checked from the file's header before any pixel is decoded:
# a 100 kB PNG can hold 80 megapixels, which PIL's own limit (89 MP) lets through at 1.6 GB.
MAX_PIXELS = 4096 * 4096
# Below this contrast (on a 0-1 scale, noise removed) there is nothing to classify.
MIN_CONTRAST = 0.1


@torch.no_grad()
def classify(
    model: LeNet5, images: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """(predicted classes, class probabilities) for model-ready images, in batches."""
    model.eval()
    output = torch.cat([model(batch) for batch in images.split(batch_size)])
    return model.predict(output), model.probabilities(output)


class ImageTooLarge(UserError):
    """An image whose pixels are over MAX_PIXELS (or too many to decode in memory)."""


def too_large(name: str | Path, pixels: int, size: int, shape: str = "") -> str:
    """The one line for an image over MAX_PIXELS: which, how large, the limit."""
    return (
        f"{name}: image too large ({shape}{pixels / 1e6:.1f} megapixels in {size:,} bytes); "
        f"at most {MAX_PIXELS / 1e6:.1f} megapixels ({MAX_PIXELS} pixels) are read"
    )


def open_checked(source: Any, name: str | Path, size: int) -> Image.Image:
    """``Image.open`` (the header only), refused when the image is over MAX_PIXELS."""
    try:
        with warnings.catch_warnings():  # PIL's warning limit is above ours: checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(source)
    except Image.DecompressionBombError as error:  # over twice PIL's limit: PIL refuses it itself
        found = re.search(r"\((\d+) pixels\)", str(error))
        raise ImageTooLarge(too_large(name, int(found[1]) if found else MAX_PIXELS + 1, size)) from error
    width, height = opened.size
    if width * height > MAX_PIXELS:
        opened.close()
        raise ImageTooLarge(too_large(name, width * height, size, f"{width}x{height} = "))
    return opened


def read_grey(path: Path) -> np.ndarray:
    """The image as floats in [0, 1], transparent areas shown on white."""
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if not path.is_file():
        raise UserError(f"{path}: not a file")
    size = path.stat().st_size
    if size == 0:
        raise UserError(f"{path}: empty file, not an image")
    try:
        with open_checked(path, path, size) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except UnidentifiedImageError as error:
        raise UserError(f"{path}: not an image PIL can read (PNG, JPEG, ...)") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError(f"{path}: truncated or damaged image ({first_line(error)})") from error
    return grey_of(image)


def grey_of(image: Image.Image) -> np.ndarray:
    """A decoded image as grey floats in [0, 1], transparent areas shown on white."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        white = Image.new("RGBA", image.size, "white")
        image = Image.alpha_composite(white, image.convert("RGBA"))
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


def to_digit(grey: np.ndarray, name: str | Path = "image") -> torch.Tensor:
    """Any grey image -> (1, 1, 32, 32) in the training convention (see the module docstring)."""
    ink, contrast = ink_map(torch.from_numpy(np.ascontiguousarray(grey, dtype=np.float32)))
    if contrast < MIN_CONTRAST:
        raise UserError(f"{name}: no digit found (the image is blank)")
    crop = digit_box(ink, contrast)

    digit = even_strokes(crop, DIGIT_BOX)

    # Shift so the centre of mass lands on the canvas centre, as MNIST's digits were placed.
    h, w = digit.shape
    mass = digit.sum()
    centre_y = (digit.sum(dim=1) * torch.arange(h)).sum() / mass
    centre_x = (digit.sum(dim=0) * torch.arange(w)).sum() / mass
    middle = (CANVAS - 1) / 2
    top = min(max(round(float(middle - centre_y)), 0), CANVAS - h)
    left = min(max(round(float(middle - centre_x)), 0), CANVAS - w)
    canvas = torch.zeros(CANVAS, CANVAS)
    canvas[top : top + h, left : left + w] = digit
    return to_model_input(canvas.mul(255).round().to(torch.uint8)[None])


def prediction(path: str, probabilities: torch.Tensor, names: list[str], top: int) -> dict[str, Any]:
    values, classes = probabilities.topk(top)
    best = int(classes[0])
    return {
        "file": path,
        "class": best,
        "label": names[best],
        "top": [
            {"class": int(c), "label": names[int(c)], "probability": round(float(p), 6)}
            for p, c in zip(values, classes, strict=True)
        ],
    }


def describe(result: dict[str, Any]) -> str:
    ranked = ", ".join(f"{entry['label']} {entry['probability']:.1%}" for entry in result["top"])
    return f"{result['file']}: {result['label']}  ({ranked})"


def read_one(path: str) -> torch.Tensor:
    """One image, model-ready; whatever goes wrong with it is a UserError naming it, so the
    images after it are still classified. Images over MAX_PIXELS are refused before they are
    decoded."""
    try:
        return to_digit(read_grey(Path(path)), path)
    except UserError:
        raise
    except MemoryError as error:
        raise ImageTooLarge(f"{path}: image too large to decode in memory") from error
    except Exception as error:  # noqa: BLE001 - PIL and numpy fail many ways on hostile files
        raise UserError(
            f"{path}: cannot read this image ({type(error).__name__}: {first_line(error)})"
        ) from error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lenet5.predict",
        description="Classify PNG/JPEG images of any size with a lenet5 checkpoint.",
    )
    parser.add_argument("checkpoint", type=Path, help="a .ckpt file written by train.py")
    parser.add_argument("images", nargs="+", help="image files (dark ink on light, or light on dark)")
    parser.add_argument("--top", type=int, default=3, help="probabilities shown per image (default 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON list instead of text")
    args = parser.parse_args(argv)

    try:
        checkpoint = load_checkpoint(args.checkpoint)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    names = checkpoint.class_names
    if not 1 <= args.top <= len(names):
        parser.error(f"--top must be between 1 and {len(names)}")

    results: list[dict[str, Any] | None] = []
    inputs: list[torch.Tensor] = []
    for path in args.images:
        try:
            inputs.append(read_one(path))
            results.append(None)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            results.append({"file": path, "error": str(error)})
    if inputs:
        _, probabilities = classify(checkpoint.module.model, torch.cat(inputs))
        ranked = iter(probabilities)
        results = [
            result or prediction(path, next(ranked), names, args.top)
            for path, result in zip(args.images, results, strict=True)
        ]

    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            if "error" not in result:
                print(describe(result))
    return 2 if len(inputs) < len(args.images) else 0


if __name__ == "__main__":
    sys.exit(main())
