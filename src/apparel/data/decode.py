"""The one image decoder: bytes, a path or a PIL image → RGB, with the rules ingest applies.

Ingest, training, evaluation, the registered pyfunc and the service all decode here, so a photo is
read the same way wherever it comes from: EXIF orientation applied, CMYK/RGBA/palette/grey made RGB,
and an image whose header declares more than ``max_pixels`` refused before its pixels are decoded.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def _image_errors(max_pixels: int) -> Iterator[None]:
    """Pillow's errors as one-line :class:`ImageError`s."""
    try:
        yield
    except Image.DecompressionBombError as error:  # over Pillow's own limit: quote ours, the one users set
        declared = re.search(r"\((\d+) pixels\)", str(error))
        size = f"declared {int(declared.group(1)):,} pixels " if declared else ""
        raise ImageError(f"decompression bomb: {size}> data.max_image_pixels {max_pixels:,}") from error
    except (Image.UnidentifiedImageError, SyntaxError) as error:
        raise ImageError("not an image") from error
    except (OSError, ValueError) as error:
        if isinstance(error, ImageError):
            raise
        raise ImageError(f"unreadable: {error}") from error


def open_image(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The image with only its header read (``Image.open`` is lazy): size known, no pixel decoded yet.
    Raises :class:`ImageError` for a non-image or one declaring more than ``max_pixels``."""
    with _image_errors(max_pixels):
        image = _open(source)
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(f"decompression bomb: declared {width}x{height} = {width * height:,} pixels "
                             f"> data.max_image_pixels {max_pixels:,}")
        return image


def decode_rgb(image: Image.Image, max_pixels: int = DEFAULT_MAX_PIXELS, in_place: bool = True) -> Image.Image:
    """Decodes an image :func:`open_image` opened: upright RGB. ``in_place`` (for an image no caller holds)
    turns it upright without a second full-size copy, and an RGB image is not copied again by ``convert``:
    a full-size RGB image costs 4 bytes a pixel, so each copy saved is 160 MB at 40 Mpx."""
    with _image_errors(max_pixels):
        image.load()
        if in_place:
            ImageOps.exif_transpose(image, in_place=True)
            upright = image
        else:
            upright = ImageOps.exif_transpose(image)
        return upright if upright.mode == "RGB" else upright.convert("RGB")


def open_rgb(source: ImageSource, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """The decoded RGB image, upright; raises :class:`ImageError` saying why it is unusable."""
    image = open_image(source, max_pixels)
    return decode_rgb(image, max_pixels, in_place=image is not source)


def to_model_input(image: Image.Image, size: int) -> np.ndarray:
    """An RGB image as the size×size×3 uint8 array the models take."""
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR))
