"""An uploaded image (the bytes of a PNG, a JPEG, ...) made model-ready exactly as
``python -m lenet5.predict`` prepares a file, so the page, the figure and predict agree.

Bytes from a browser are hostile until decoded: the pixel count is read from the header and
checked before any pixel is decoded (a few kilobytes of PNG can decode to gigabytes).
"""

import io

import torch
from PIL import ImageOps, UnidentifiedImageError

from lenet5.errors import UserError
from lenet5.serving.checkpoints import first_line
from lenet5.serving.predict import ImageTooLarge, grey_of, open_checked, to_digit


def digit_from_bytes(data: bytes, name: str = "upload") -> torch.Tensor:
    """(1, 1, 32, 32) in the training convention, or a UserError naming what is wrong. Images
    over predict's ``MAX_PIXELS`` are refused from their header."""
    if not data:
        raise UserError(f"{name}: empty, not an image")
    try:
        with open_checked(io.BytesIO(data), name, len(data)) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
        return to_digit(grey_of(image), name)
    except UserError:
        raise
    except UnidentifiedImageError as error:
        raise UserError(f"{name}: not an image PIL can read (PNG, JPEG, ...)") from error
    except MemoryError as error:
        raise ImageTooLarge(f"{name}: image too large to decode ({first_line(error)})") from error
    except (OSError, SyntaxError, ValueError) as error:
        raise UserError(f"{name}: truncated or damaged image ({first_line(error)})") from error
    except Exception as error:  # noqa: BLE001 - PIL and numpy fail many ways on hostile bytes
        problem = f"{type(error).__name__}: {first_line(error)}"
        raise UserError(f"{name}: cannot read this image ({problem})") from error


__all__ = ["ImageTooLarge", "digit_from_bytes"]  # the server catches ImageTooLarge from here
