"""Images in and out: numpy arrays, PIL images and files.

Pillow is imported only to read or write files (extra `coreseg[images]`)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import _args


def pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError("reading and writing image files needs Pillow: pip install 'coreseg[images]'") from None
    return Image, ImageOps


def as_image(image, name: str = "image") -> np.ndarray:
    """An (H, W, 3) RGB or (H, W, 4) RGBA uint8 array from an array, a PIL
    image or an image file (EXIF orientation applied)."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if type(image).__module__.startswith("PIL."):
        mode = "RGBA" if image.mode in ("RGBA", "LA", "PA") else "RGB"
        return np.asarray(image.convert(mode))
    return _args.image_array(image, name)


def read_image(path) -> np.ndarray:
    """Read an image file as RGB (or RGBA, if it has alpha) uint8."""
    Image, ImageOps = pillow()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            mode = "RGBA" if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info else "RGB"
            return np.asarray(im.convert(mode))
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable image ({e})") from None


def write_png(path, array: np.ndarray) -> None:
    """Write RGB/RGBA uint8 or a 2-D uint8/uint16 map as PNG (uint16 keeps
    all 16 bits)."""
    Image, _ = pillow()
    if array.dtype not in (np.uint8, np.uint16) or (array.dtype == np.uint16 and array.ndim != 2):
        raise ValueError(f"can write uint8 images or 2-D uint16 maps as PNG, got {array.dtype} {array.shape}")
    # Pillow picks mode I;16 for 2-D uint16 and writes all 16 bits.
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG")
