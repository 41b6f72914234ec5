"""The paper's distortions, on whole batches: small random translation, scaling, squeezing
(horizontal compression with vertical elongation, or the reverse) and horizontal shear."""

import torch
import torch.nn.functional as F


def random_affine(
    images: torch.Tensor,
    translate: float = 2.0,
    scale: float = 0.1,
    squeeze: float = 0.1,
    shear: float = 0.2,
) -> torch.Tensor:
    """``translate`` in pixels; ``scale``, ``squeeze`` and ``shear`` as fractions (uniform +-)."""
    n, _, h, w = images.shape

    def uniform(bound: float) -> torch.Tensor:
        return (torch.rand(n, device=images.device) * 2 - 1) * bound

    zoom = 1 + uniform(scale)
    stretch = 1 + uniform(squeeze)
    sx, sy = zoom * stretch, zoom / stretch  # squeezing keeps the area
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    # affine_grid maps output to input coordinates: dividing by the scale enlarges the digit.
    theta[:, 0, 0] = 1 / sx
    theta[:, 0, 1] = uniform(shear)
    theta[:, 1, 1] = 1 / sy
    theta[:, 0, 2] = uniform(translate) * 2 / w
    theta[:, 1, 2] = uniform(translate) * 2 / h
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
