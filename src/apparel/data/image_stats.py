"""What a photo looks like before the model's resize: size, shape, brightness, sharpness.

The request log records these per served image and the drift monitor compares them with the
reference, because a change in the photo pipeline (squashing to square, blur, exposure) shows here
long before it moves the embeddings.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFilter, ImageStat

STAT_COLUMNS = ("width", "height", "aspect", "brightness", "blur")
_BLUR_SIDE = 256  # sharpness is measured on a bounded copy: cost independent of the upload's size


def image_stats(image: Image.Image) -> dict[str, float]:
    """``width``/``height`` in pixels, ``aspect`` = width / height, ``brightness`` = mean luma in [0, 1],
    ``blur`` = variance of the Laplacian of the grey image (lower is blurrier)."""
    width, height = image.size
    grey = image.convert("L")
    brightness = ImageStat.Stat(grey).mean[0] / 255.0  # from the histogram: no float copy of a full-size image
    grey.thumbnail((_BLUR_SIDE, _BLUR_SIDE))
    laplacian = grey.filter(ImageFilter.Kernel((3, 3), (0, 1, 0, 1, -4, 1, 0, 1, 0), scale=1, offset=128))
    blur = float(np.asarray(laplacian, dtype=np.float32).var())
    return {"width": float(width), "height": float(height), "aspect": width / max(height, 1),
            "brightness": brightness, "blur": blur}
