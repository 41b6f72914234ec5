"""confusion_matrix.png drawn with Pillow: cells coloured by the share of the true class, the
counts in them, class names on both axes and a colour bar.

Every job of a sweep draws it once. As a matplotlib figure its hundred-odd texts went through
matplotlib's artists and text layout: 0.12 s, a tenth of a short job's fixed costs. Pillow draws
the same page in the same font (DejaVu Sans) and colour map (Blues) in a few milliseconds. The
page is sized from the longest class name, so Fashion-MNIST's names fit as the digits do.
"""

from pathlib import Path

import numpy as np
from matplotlib import colormaps
from PIL import Image, ImageDraw, ImageFont

from lenet5.atomic import save_whole
from lenet5.results.montage import font

CELL = 44  # pixels per class, both ways
BAR = 18  # colour bar width
Box = tuple[float, float, float, float]


class Page:
    """An RGB page that remembers the box around everything drawn on it (for the layout test)."""

    def __init__(self, width: int, height: int):
        self.image = Image.new("RGB", (width, height), "white")
        self.draw = ImageDraw.Draw(self.image)
        self.boxes: list[Box] = []

    def text(self, xy: tuple[float, float], text: str, size: int, anchor: str, fill="black") -> None:
        self.draw.text(xy, text, fill=fill, font=font(size), anchor=anchor)
        self.boxes.append(self.draw.textbbox(xy, text, font=font(size), anchor=anchor))

    def turned_text(self, corner: tuple[float, float], text: str, size: int, angle: int, align: str) -> None:
        """Text turned ``angle`` degrees anticlockwise; ``align``: which corner of the turned text's
        box is put at ``corner``: "top right" (slanted tick labels) or "centre"."""
        face: ImageFont.FreeTypeFont | ImageFont.ImageFont = font(size)
        left, top, right, bottom = face.getbbox(text)
        mask = Image.new("L", (int(right - left) + 2, int(bottom - top) + 2), 0)
        ImageDraw.Draw(mask).text((1 - left, 1 - top), text, fill=255, font=face)
        mask = mask.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
        x, y = corner
        x0, y0 = (x - mask.width, y) if align == "top right" else (x - mask.width / 2, y - mask.height / 2)
        x0, y0 = round(x0), round(y0)
        self.image.paste("black", (x0, y0), mask)
        self.boxes.append((x0, y0, x0 + mask.width, y0 + mask.height))

    def drawn(self) -> Box:
        x0, y0, x1, y1 = zip(*self.boxes, strict=True)
        return min(x0), min(y0), max(x1), max(y1)


def draw_confusion_matrix(matrix: np.ndarray, names: list[str], title: str, path: Path) -> Box:
    """``matrix``: counts, rows = true class, columns = predicted. Returns the box around what
    was drawn, in pixels (inside the page by construction; the tests check it)."""
    classes = len(names)
    # Colour by the share of each true class, so rare mistakes stay visible beside the diagonal.
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    colours = (colormaps["Blues"](shares)[..., :3] * 255).round().astype(np.uint8)
    widest = max(font(12).getlength(name) for name in names)
    slanted = max(map(len, names)) > 2
    name_depth = widest * 0.71 + 12 if slanted else 16  # below the matrix: the names at 45 degrees
    left, top = 36 + widest + 8, 44
    side = classes * CELL
    right, bottom = 108, name_depth + 44
    page = Page(round(left + side + right), round(top + side + bottom))

    page.text((left + side / 2, top / 2), title, 14, "mm")
    for (row, col), count in np.ndenumerate(matrix):
        x, y = left + col * CELL, top + row * CELL
        page.draw.rectangle((x, y, x + CELL - 1, y + CELL - 1), fill=tuple(colours[row, col]))
        if count:
            colour = "white" if shares[row, col] > 0.5 else "black"
            page.text((x + CELL / 2, y + CELL / 2), str(count), 11, "mm", fill=colour)
    page.draw.rectangle((left - 1, top - 1, left + side, top + side), outline="black")
    for k, name in enumerate(names):
        centre = k * CELL + CELL / 2
        page.text((left - 6, top + centre), name, 12, "rm")
        if slanted:
            page.turned_text((left + centre + 4, top + side + 4), name, 12, 45, "top right")
        else:
            page.text((left + centre, top + side + 4), name, 12, "mt")
    page.text((left + side / 2, top + side + name_depth + 8), "predicted", 13, "mt")
    page.turned_text((14, top + side / 2), "true", 13, 90, "centre")

    bar_left = left + side + 24
    gradient = (colormaps["Blues"](np.linspace(1, 0, side))[:, :3] * 255).round().astype(np.uint8)
    page.image.paste(Image.fromarray(np.repeat(gradient[:, None], BAR, axis=1)), (round(bar_left), top))
    page.draw.rectangle((bar_left - 1, top - 1, bar_left + BAR, top + side), outline="black")
    for tick in np.linspace(0, 1, 6):
        y = top + (1 - tick) * (side - 1)
        page.draw.line((bar_left + BAR, y, bar_left + BAR + 4, y), fill="black")
        page.text((bar_left + BAR + 7, y), f"{tick:.1f}", 11, "lm")
    page.turned_text((bar_left + BAR + 48, top + side / 2), "share of the true class", 12, 90, "centre")
    save_whole(path, lambda partial: page.image.save(partial, format="PNG", compress_level=1))
    return page.drawn()
