"""resize_image: a photo into a model's input, Pillow's antialiased resample
in fixed point (resample.cc)."""

from __future__ import annotations

import numpy as np

from .. import _native
from . import _args, _arrays

__all__ = ["resize_image"]


def resize_image(image, size, layout="RGBA", out=None):
    """Resample a photo to a model's input size and byte order in one pass.

    Antialiased bilinear, with the filter of Pillow's
    ``Image.resize(BILINEAR)`` (its support widens with the scale when
    shrinking), in 14-bit fixed point; within 1 of Pillow per channel.
    RGBA channels are filtered independently (no premultiplication), so for
    opaque images this matches Pillow.

    Parameters
    ----------
    image : (H, W, 3) or (H, W, 4) uint8 ndarray
        RGB or RGBA. RGB input gets alpha 255 in 4-byte layouts.
    size : (width, height)
        Output size, each >= 1.
    layout : {"RGBA", "BGRA", "ARGB", "RGB", "BGR"}, optional
        Byte order of each output pixel: Core ML's kCVPixelFormatType_32BGRA
        is "BGRA", 32ARGB is "ARGB".
    out : (height, width, len(layout)) uint8 ndarray, optional

    Returns
    -------
    resized : (height, width, len(layout)) uint8 ndarray
    """
    image = _arrays.image_array(image)
    w, h = _args.size_arg(size)
    _args.resize_factor((image.shape[1], image.shape[0]), (w, h))
    order = _args.layout_arg(layout)
    out = _arrays.out_array(out, (h, w, len(order)), np.uint8, inputs=(image,))
    _native.resize_image(image, list(order), out)
    return out
