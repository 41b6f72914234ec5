"""predict on photo-like images (tests/photos.py): uneven light, noise, grey paper, thick and thin
pens, chalk on a board. The handwriting is real MNIST test digits', redrawn as pen lines."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lenet5.serving.predict import to_digit
from photos import KINDS, photo
from support import read_real


@pytest.fixture(scope="module")
def digits() -> list[np.ndarray]:
    """The first MNIST test image of each class, 0 to 9."""
    images = read_real("MNIST", "t10k-images-idx3-ubyte", 200)
    labels = read_real("MNIST", "t10k-labels-idx1-ubyte", 200)
    return [images[int(np.nonzero(labels == d)[0][0])] for d in range(10)]


def prepared(image) -> torch.Tensor:
    return to_digit(np.asarray(image, dtype=np.float32) / 255.0)[0, 0]


@pytest.mark.parametrize("kind", KINDS)
def test_a_photo_is_prepared_like_its_clean_digit(digits, kind: str) -> None:
    """The photo's model input overlaps the clean digit's (same handwriting, MNIST's framing),
    whatever the light, paper, pen or ink polarity."""
    for digit in digits:
        clean, seen = prepared(digit), prepared(photo(digit, kind))
        similarity = F.cosine_similarity(clean.flatten(), seen.flatten(), dim=0)
        assert similarity > 0.5, f"{kind}: similarity {float(similarity):.2f}"


@pytest.mark.slow
def test_photos_are_read_by_a_model_trained_on_real_mnist(
    run_cli, tmp_path: Path, real_mnist_checkpoint: Path, digits
) -> None:
    """At least 9 of the 10 digits right for each kind of photo."""
    checkpoint = str(real_mnist_checkpoint)
    paths = []
    for kind in KINDS:
        for label, digit in enumerate(digits):
            paths.append(tmp_path / f"{kind}-{label}.png")
            photo(digit, kind).save(paths[-1])
    process = run_cli("-m", "lenet5.predict", checkpoint, *map(str, paths), "--json")
    assert process.returncode == 0, process.stderr[-3000:]
    results = json.loads(process.stdout)
    for k, kind in enumerate(KINDS):
        classes = [result["class"] for result in results[10 * k : 10 * k + 10]]
        right = sum(c == label for label, c in enumerate(classes))
        assert right >= 9, f"{kind}: {right} of 10 right, read as {classes}"
