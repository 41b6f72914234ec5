"""Photo-like digit images: what a phone picture of a handwritten digit looks like after it is
turned grey. The handwriting is an MNIST digit's, redrawn large and smooth as a pen line;
then uneven light (a gradient and a vignette), sensor noise, grey paper, thick and thin pens,
and chalk on a board; each kind a function of the digit image and a seed."""

import numpy as np
from PIL import Image, ImageFilter

KINDS = ("gradient", "noise", "dark_grey_paper", "light_grey_paper", "thick_pen", "thin_pen", "chalkboard")


def stroke_mask(digit: np.ndarray, size: tuple[int, int], pen: str, rng: np.random.Generator) -> np.ndarray:
    """1 where the ink is: the 28x28 digit enlarged to a smooth pen line, off-centre, its
    strokes thickened or thinned, in an image of ``size``."""
    width, height = size
    side = int(min(size) * rng.uniform(0.5, 0.8))  # the 28x28 frame; the digit is 20/28 of it
    large = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    # A higher threshold of the smooth enlargement draws a thinner line that stays connected.
    level = 170 if pen == "thin" else 100
    pen_line = large.point(lambda v: 255 if v > level else 0)
    if pen == "thick":  # about 1.7 times the usual width
        pen_line = pen_line.filter(ImageFilter.MaxFilter(max(1, side // 40) * 2 + 1))
    pen_line = pen_line.filter(ImageFilter.GaussianBlur(side / 150))
    image = Image.new("L", size, 0)
    left = int(rng.uniform(0.1, 0.9) * (width - side))
    top = int(rng.uniform(0.1, 0.9) * (height - side))
    image.paste(pen_line, (left, top))
    return np.asarray(image, dtype=np.float32) / 255.0


def lighting(size: tuple[int, int], rng: np.random.Generator, strength: float) -> np.ndarray:
    """A linear gradient in a random direction times a vignette, 1 at the brightest."""
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x / width + np.sin(angle) * y / height
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    vignette = 1 - 0.3 * (((x / width - 0.5) ** 2 + (y / height - 0.5) ** 2) * 2)
    light = (1 - strength * ramp) * vignette
    return light / light.max()


def photo(digit: np.ndarray, kind: str, seed: int = 0) -> Image.Image:
    """``digit``: a 28x28 uint8 MNIST image (ink = 255)."""
    rng = np.random.default_rng([seed, int(digit.sum())])
    size = (int(rng.integers(160, 400)), int(rng.integers(160, 400)))
    pen = {"thick_pen": "thick", "thin_pen": "thin"}.get(kind, "normal")
    mask = stroke_mask(digit, size, pen, rng)
    paper, ink, noise, unevenness = {
        "gradient": (0.9, 0.1, 0.02, 0.6),
        "noise": (0.8, 0.15, 0.08, 0.2),
        "dark_grey_paper": (0.4, 0.05, 0.03, 0.4),
        "light_grey_paper": (0.7, 0.1, 0.03, 0.4),
        "thick_pen": (0.85, 0.1, 0.03, 0.4),
        "thin_pen": (0.85, 0.1, 0.03, 0.4),
        "chalkboard": (0.2, 0.85, 0.04, 0.4),
    }[kind]
    light = lighting(size, rng, unevenness)
    grey = light * (paper + mask * (ink - paper))
    grey = grey + rng.normal(0, noise, grey.shape)
    return Image.fromarray((np.clip(grey, 0, 1) * 255).round().astype(np.uint8), "L")
