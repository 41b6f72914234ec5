"""From a photograph (or a scan, or a drawing) of one digit to the ink map MNIST's digits are:
bright strokes of a steady width on a black ground.

A photo is not lit evenly, its paper is rarely white and its pen rarely MNIST's: so the
background is estimated locally (a median over a wide window follows a lighting gradient while
strokes, a minority of any window, do not move it), the ink is whatever departs from it in the
stronger direction (dark ink on paper or chalk on a board alike), the sensor noise is measured
and subtracted, and once the digit is scaled to MNIST's 20-pixel box its strokes are thickened
or thinned towards MNIST's width.
"""

import torch
import torch.nn.functional as F

# Working resolution (longer side, pixels): fine enough for a thin pen, coarse enough to average
# sensor noise away and keep the median windows cheap.
WORK = 128
# The background's resolution (longer side) and median window (a fraction of that side).
COARSE, WINDOW = 32, 0.45
# Ink is what rises this far above the background, as a fraction of the digit's contrast.
INK_LEVEL = 0.3
# Stroke width (pixels in the 20-pixel box) of MNIST's digits, measured the same way, and how far
# off it a digit may be before its strokes are thickened or thinned.
STROKE_WIDTH, STROKE_TOLERANCE = 2.3, (0.6, 0.5)


def _median_filter(image: torch.Tensor, size: int) -> torch.Tensor:
    pad = size // 2
    padded = F.pad(image, (pad, pad, pad, pad), mode="replicate")
    windows = F.unfold(padded, size)  # (1, size*size, H*W)
    return windows.median(dim=1).values.reshape(image.shape)


def background(image: torch.Tensor) -> torch.Tensor:
    """The paper's brightness under this light, at every pixel of ``image`` (1, 1, H, W)."""
    h, w = image.shape[-2:]
    scale = COARSE / max(h, w)
    coarse = F.interpolate(image, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")
    size = max(3, int(COARSE * WINDOW) | 1)
    smooth = _median_filter(coarse, size)
    smooth = F.avg_pool2d(F.pad(smooth, (1, 1, 1, 1), mode="replicate"), 3, 1)
    return F.interpolate(smooth, size=(h, w), mode="bilinear", align_corners=False)


def ink_map(grey: torch.Tensor) -> tuple[torch.Tensor, float]:
    """(ink >= 0 at working resolution, its contrast on the 0-1 scale) of a grey image (H, W)."""
    image = grey[None, None].float()
    h, w = image.shape[-2:]
    if max(h, w) > WORK:
        scale = WORK / max(h, w)
        image = F.interpolate(image, size=(max(1, round(h * scale)), max(1, round(w * scale))), mode="area")
    residual = image - background(image)
    low, high = torch.quantile(residual.flatten(), torch.tensor([0.005, 0.995])).tolist()
    ink = (-residual if -low > high else residual).clamp(min=0)
    # Noise: the spread of the residual over the background, which is most of the image.
    noise = float(residual.abs().median()) * 1.4826
    ink = F.avg_pool2d(F.pad(ink, (1, 1, 1, 1), mode="replicate"), 3, 1)
    ink = (ink - noise).clamp(min=0)  # a 3x3 mean leaves a third of the noise; this removes it
    contrast = float(ink.max())
    return ink[0, 0], contrast


def digit_box(ink: torch.Tensor, contrast: float) -> torch.Tensor:
    """The crop around the digit, normalized so its stroke cores are 1. Lone specks (fewer than
    a few inked neighbours) do not stretch the box."""
    mask = (ink > INK_LEVEL * contrast).float()
    crowded = F.avg_pool2d(F.pad(mask[None, None], (2, 2, 2, 2)), 5, 1)[0, 0] >= 0.2
    rows, cols = torch.nonzero(mask.bool() & crowded, as_tuple=True)
    if len(rows) == 0:
        rows, cols = torch.nonzero(mask.bool(), as_tuple=True)
    crop = ink[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    core = torch.quantile(crop[crop > INK_LEVEL * contrast], 0.9)
    return (crop / core).clamp(0, 1)


def stroke_width(digit: torch.Tensor) -> float:
    """Ink area over half its outline length: a stroke of width w and length L has area wL and
    an outline of about 2L. The outline is counted in pixel edges (ink beside no ink), which a
    slanted stroke lengthens by 4/pi on average; MNIST's width is measured the same way."""
    mask = F.pad((digit > 0.5).float(), (1, 1, 1, 1))
    edges = (mask[1:] != mask[:-1]).sum() + (mask[:, 1:] != mask[:, :-1]).sum()
    return float(2 * mask.sum() / edges.clamp(min=1) * 4 / torch.pi)


def scaled(image: torch.Tensor, box: int) -> torch.Tensor:
    """``image`` resized (anti-aliased) so its longer side is ``box`` pixels."""
    scale = box / max(image.shape)
    size = [max(1, round(side * scale)) for side in image.shape]
    return F.interpolate(image[None, None], size=size, mode="bilinear", antialias=True)[0, 0].clamp(0, 1)


def even_strokes(crop: torch.Tensor, box: int) -> torch.Tensor:
    """The digit in a ``box``-pixel box with MNIST's stroke width: its strokes are thickened (a
    3x3 max) or thinned (a 3x3 min) at twice the resolution, half a pixel a side at a time."""
    fine = scaled(crop, 2 * box)
    digit = scaled(fine, box)
    for _ in range(4):
        width = stroke_width(digit)
        padded = F.pad(fine[None, None], (1, 1, 1, 1))
        if width < STROKE_WIDTH - STROKE_TOLERANCE[0]:
            fine = F.max_pool2d(padded, 3, 1)[0, 0]
        elif width > STROKE_WIDTH + STROKE_TOLERANCE[1]:
            fine = -F.max_pool2d(-padded, 3, 1)[0, 0]
        else:
            break
        digit = scaled(fine, box)
    return digit / digit.max().clamp(min=1e-6)  # stroke cores at 1, as MNIST's
