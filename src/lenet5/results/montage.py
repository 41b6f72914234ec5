"""misclassified.png drawn with Pillow: the digits scaled up, a caption over each, a title.

Every job of a sweep draws it once. As a matplotlib figure its 36 two-line captions went through
matplotlib's text layout and rendering (0.15 s, the largest share of a short job's pictures);
Pillow draws the same page in a few milliseconds, in the font matplotlib uses (DejaVu Sans).
"""

import math
from functools import cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from lenet5.atomic import save_whole

COLUMNS = 6
SCALE = 3  # a 32x32 digit is drawn 96x96, nearest neighbour: the pixels the network saw
CELL_WIDTH = 160  # room for "pred Ankle boot (100%)", Fashion-MNIST's longest caption
CAPTION, GAP, TITLE = 34, 14, 40  # pixels: caption band, space under a digit, title band
MIN_HEIGHT = 220


@cache
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    from matplotlib import font_manager

    try:
        return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)
    except OSError:  # no TrueType file found: Pillow's own font
        return ImageFont.load_default(size)


def draw_montage(images: torch.Tensor, captions: list[tuple[str, str]], title: str, path: Path) -> None:
    """``images`` (N, 1, H, W) in [0, 1], ink high; one (upper, lower) caption line pair each."""
    count = len(captions)
    rows = max(1, math.ceil(count / COLUMNS))
    size = images.shape[-1] * SCALE
    cell_height = CAPTION + size + GAP
    width, height = COLUMNS * CELL_WIDTH, max(MIN_HEIGHT, TITLE + rows * cell_height)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    draw.text((width / 2, TITLE / 2), title, fill=0, font=font(15), anchor="mm")
    for slot, (upper, lower) in enumerate(captions):
        left = (slot % COLUMNS) * CELL_WIDTH
        top = TITLE + (slot // COLUMNS) * cell_height
        centre = left + CELL_WIDTH / 2
        draw.text((centre, top + CAPTION / 2 - 8), upper, fill=0, font=font(12), anchor="mm")
        draw.text((centre, top + CAPTION / 2 + 7), lower, fill=0, font=font(12), anchor="mm")
        pixels = (255 * (1 - images[slot, 0].clamp(0, 1))).round().to(torch.uint8).numpy()
        digit = Image.fromarray(np.ascontiguousarray(pixels), mode="L").resize(
            (size, size), Image.Resampling.NEAREST
        )
        x0, y0 = int(centre - size / 2), top + CAPTION
        page.paste(digit, (x0, y0))
        draw.rectangle((x0 - 1, y0 - 1, x0 + size, y0 + size), outline=200)
    save_whole(path, lambda partial: page.save(partial, format="PNG", compress_level=1))
