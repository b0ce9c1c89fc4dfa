"""The one image decoder: bytes, a path or a PIL image → RGB, with the rules ingest applies.

Ingest, training, evaluation, the registered pyfunc and the service all decode here, so a photo is
read the same way wherever it comes from: EXIF orientation applied, CMYK/RGBA/palette/grey made RGB,
and an image whose header declares more than ``max_pixels`` refused before its pixels are decoded.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

DEFAULT_MAX_PIXELS = 40_000_000  # DataConfig.max_image_pixels' default

ImageSource = bytes | str | Path | Image.Image


class ImageError(ValueError):
    """Why an input is not a usable image, in one line."""


def _open(source: ImageSource) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, bytes | bytearray | memoryview):
        if not len(source):
            raise ImageError("empty file")
        return Image.open(io.BytesIO(bytes(source)))
    return Image.open(source)


def open_rgb(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The decoded RGB image, upright; raises :class:`ImageError` saying why it is unusable."""
    try:
        image = _open(source)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(f"decompression bomb: declared {width}x{height}")
        image.load()
        return ImageOps.exif_transpose(image).convert("RGB")
    except Image.DecompressionBombError as error:
        raise ImageError(f"decompression bomb: {error}") from error
    except (Image.UnidentifiedImageError, SyntaxError) as error:
        raise ImageError("not an image") from error
    except (OSError, ValueError) as error:
        if isinstance(error, ImageError):
            raise
        raise ImageError(f"unreadable: {error}") from error


def to_model_input(image: Image.Image, size: int) -> np.ndarray:
    """An RGB image as the size×size×3 uint8 array the models take."""
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR))
