"""Images in and out: numpy arrays, PIL images and files.

Pillow is imported only to read or write files (extra `coreseg[images]`)."""

from __future__ import annotations

import contextlib
import os
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..kernels import _arrays
from .safe_io import atomic_write, check_pixels, png_size


def pillow():
    try:
        from PIL import Image, ImageOps
    except ImportError:
        raise ImportError("reading and writing image files needs Pillow: pip install 'coreseg[images]'") from None
    return Image, ImageOps


def as_image(image, name: str = "image") -> np.ndarray:
    """An (H, W, 3) RGB or (H, W, 4) RGBA uint8 array from an array, a PIL
    image or an image file.

    PIL images and files are read the same way: EXIF orientation applied,
    greyscale made RGB, 16-bit and 32-bit integer pixels scaled to 8 bits
    (round(v * 255 / 65535)). Arrays are taken as they are, except that a
    2-D (or (h, w, 1)) uint8 greyscale array is made RGB like a greyscale
    file; float arrays are refused with how to convert them."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image)
    if type(image).__module__.startswith("PIL."):
        return pil_to_array(image)
    if isinstance(image, np.ndarray):
        if image.dtype.kind == "f":
            raise TypeError(f"{name} is a float image ({image.dtype}); coreseg takes uint8 pixels: convert one "
                            "in [0, 1] with (image * 255).round().astype(np.uint8)")
        if image.dtype == np.uint8 and (image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)):
            gray = image.reshape(image.shape[:2])  # greyscale, as a greyscale file is read
            return np.repeat(gray[..., None], 3, axis=2)
    return _arrays.image_array(image, name)


def pil_to_array(im) -> np.ndarray:
    """A PIL image as RGB(A) uint8 (see `as_image`)."""
    _, ImageOps = pillow()
    if im.getexif().get(0x0112, 1) != 1:  # transpose (a copy) only when EXIF says so
        im = ImageOps.exif_transpose(im)
    if im.mode.startswith("I"):  # I;16, I;16B, I;16L, I (32-bit): 16-bit greyscale PNGs and TIFFs
        grey = np.asarray(im)
        if grey.size and (grey.min() < 0 or grey.max() > 65535):
            raise ValueError(f"a {im.mode} image with values outside 0..65535 has no 8-bit meaning; "
                             "scale it to uint8 first")
        grey = ((grey.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if im.mode == "F":
        raise ValueError("a floating-point (mode F) image has no fixed 8-bit scale; convert it to uint8 first")
    mode = "RGBA" if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info else "RGB"
    return np.asarray(im if im.mode == mode else im.convert(mode))


def _heif_opener(path: Path) -> None:
    """Let Pillow open HEIC/HEIF photos (iPhones save HEIC by default)."""
    if path.suffix.lower() not in (".heic", ".heif"):
        return
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        raise ImportError(f"{path}: reading HEIC photos needs pillow-heif: pip install 'coreseg[heic]'") from None
    register_heif_opener()


@contextlib.contextmanager
def open_image(path):
    """An image file opened lazily (nothing decoded yet), after checking that
    it exists and declares no more pixels than coreseg decodes; every error
    names the file."""
    Image, _ = pillow()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    _heif_opener(path)
    _check_declared_size(path)
    try:
        with warnings.catch_warnings():
            # coreseg enforces its own limit (check_pixels) before decoding.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise ValueError(f"{path}: {e}") from None
    except (OSError, SyntaxError) as e:  # PIL raises SyntaxError for some corrupt files
        raise ValueError(f"{path}: not a readable image ({e})") from None
    with im:
        check_pixels(im.size[0], im.size[1], path)
        yield im


def read_image(path, *, min_size=None) -> np.ndarray:
    """Read an image file as RGB (or RGBA, if it has alpha) uint8.

    Parameters
    ----------
    path : str or path-like
        An image Pillow reads (HEIC/HEIF photos need the `heic` extra,
        pillow-heif). EXIF orientation is applied; see `as_image` for modes.
    min_size : (width, height), optional
        For when only a model input of this size is needed: a JPEG is decoded
        at the smallest of 1/1, 1/2, 1/4 and 1/8 scale (libjpeg's DCT
        scaling, several times faster than a full decode) whose sides are
        both at least these, in the displayed orientation. Other formats
        are decoded whole.

    Returns
    -------
    (H, W, 3) or (H, W, 4) uint8 ndarray

    Notes
    -----
    Colour and greyscale JPEGs are decoded by simplejpeg (libjpeg-turbo)
    straight into the returned array, then turned as EXIF says (a copy
    only then). Pillow keeps RGB as 4 bytes a pixel, so its array is a
    converted copy costing about as much as the decode again on a 12 MP
    photo. Both use libjpeg-turbo with the same settings: the pixels are
    the same bit for bit, which the tests check. Without simplejpeg
    (an `images` extra), Pillow decodes.
    """
    with open_image(path) as im:
        orientation = im.getexif().get(0x0112, 1) if im.format == "JPEG" else 1
        scale = _jpeg_scale(im, min_size, orientation)
        try:
            if im.format == "JPEG" and im.mode in ("RGB", "L"):
                array = _decode_jpeg(im.filename, im.size, scale, orientation)
                if array is not None:
                    return array
            if scale > 1:
                im.draft(im.mode, (im.size[0] // scale, im.size[1] // scale))  # size: ceil(side / scale)
            return pil_to_array(im)
        except (OSError, ValueError, SyntaxError) as e:  # truncated data, unsupported modes
            raise ValueError(f"{path}: not a readable image ({e})") from None


def _jpeg_scale(im, min_size, orientation: int) -> int:
    """The largest JPEG DCT scale-down (1, 2, 4 or 8) keeping both displayed
    sides (EXIF `orientation` applied) at least `min_size`."""
    if min_size is None or im.format != "JPEG":
        return 1
    min_w, min_h = (int(v) for v in min_size)
    if min_w < 1 or min_h < 1:
        raise ValueError(f"min_size must be positive (width, height), got {tuple(min_size)}")
    w, h = im.size
    if orientation in (5, 6, 7, 8):  # shown rotated a quarter turn
        w, h = h, w
    for scale in (8, 4, 2):
        if -(-w // scale) >= min_w and -(-h // scale) >= min_h:
            return scale
    return 1


def _decode_jpeg(filename, size, scale: int, orientation: int):
    """A JPEG of stored `size` (width, height) decoded by simplejpeg
    (libjpeg-turbo) straight into RGB at 1/scale, EXIF orientation applied;
    None without simplejpeg."""
    try:
        import simplejpeg
    except ImportError:
        return None
    with open(filename, "rb") as f:
        data = f.read()
    if not data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return None  # no end marker: Pillow says what is wrong (a decoder may fill in grey)
    width, height = size
    # The power-of-two scale Pillow's draft would take (libjpeg also has
    # 3/8, 5/8...: asking for exactly this size picks it).
    array = simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=-(-height // scale),
                                   min_width=-(-width // scale))
    return _orient(array, orientation)


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """An array as EXIF orientation 1-8 says it is shown (as Pillow's
    exif_transpose); copied only when it moves."""
    views = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: a[::-1].transpose(1, 0, 2),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: a[:, ::-1].transpose(1, 0, 2),
    }
    view = views.get(orientation)
    return array if view is None else np.ascontiguousarray(view(array))


def _check_declared_size(path) -> None:
    """A PNG's declared size against coreseg's limit, from its header alone
    (Pillow refuses the largest bombs at open, with its own limit)."""
    size = png_size(path)
    if size is not None:
        check_pixels(*size, path)


def check_image_file(path) -> None:
    """Check that an image file exists, is an image Pillow recognises and
    declares no more pixels than coreseg decodes, without decoding it."""
    with open_image(path):
        pass


#: Output formats of overlays: file suffix -> Pillow format.
IMAGE_FORMATS = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}
#: JPEG and WebP quality of overlays (visually lossless for photos).
QUALITY = 92
#: PNG compression of outputs: zlib level 1. An overlay or a label map is a
#: working file, not an archive: level 1 writes a 12 MP overlay several
#: times faster than Pillow's default (6) for a file about a fifth larger.
PNG_COMPRESS_LEVEL = 1


def png_bytes(array: np.ndarray) -> bytes:
    """An RGB/RGBA uint8 image as PNG bytes, compressed as `write_png`
    compresses it (the same bytes it writes)."""
    import io

    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an (h, w, 3|4) uint8 image, got {array.dtype} {array.shape}")
    buf = io.BytesIO()
    _save_pillow_png(array, buf)
    return buf.getvalue()


def _save_pillow_png(array: np.ndarray, file) -> None:
    """A uint8 image saved by Pillow as PNG into `file` (a path or a binary
    file), compressed at PNG_COMPRESS_LEVEL: `png_bytes` and `write_png`."""
    Image, _ = pillow()
    Image.fromarray(np.ascontiguousarray(array)).save(file, format="PNG", compress_level=PNG_COMPRESS_LEVEL)


def write_png(path, array: np.ndarray) -> None:
    """Write RGB/RGBA uint8 or a 2-D uint8/uint16 map as PNG (uint16 keeps
    all 16 bits), with fast compression."""
    ok = array.dtype.kind == "u" and (array.itemsize == 1 or (array.itemsize == 2 and array.ndim == 2))
    if not ok:
        raise ValueError(f"can write uint8 images or 2-D uint16 maps as PNG, got {array.dtype} {array.shape}")
    if array.ndim == 2:
        data = encode_gray_png(array)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
        return
    pillow()  # the extra's message before a temporary file is made
    atomic_write(path, lambda tmp: _save_pillow_png(array, tmp))


def encode_gray_png(array: np.ndarray) -> bytes:
    """A 2-D uint8 or uint16 map as PNG bytes (greyscale, 8 or 16 bits).

    Label maps and masks are runs of equal values: without PNG's per-row
    filters (which Pillow always tries, adaptively) zlib level 1 compresses
    them nearly as well, three times faster on a 12 MP map.
    """
    h, w = array.shape
    if not (1 <= w < 2**31 and 1 <= h < 2**31):
        raise ValueError(f"a PNG is 1 to 2^31-1 pixels a side, got {w}x{h}")
    depth = 8 * array.itemsize
    rows = np.zeros((h, 1 + w * array.itemsize), np.uint8)  # filter byte 0 (none), then the row
    rows[:, 1:] = np.ascontiguousarray(array, array.dtype.newbyteorder(">")).view(np.uint8).reshape(h, -1)
    header = struct.pack(">IIBBBBB", w, h, depth, 0, 0, 0, 0)  # greyscale, no interlace

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, PNG_COMPRESS_LEVEL)) + chunk(b"IEND", b""))


def write_image(path, array: np.ndarray, fmt: str) -> None:
    """Write an RGB/RGBA uint8 image as "png", "jpg" (quality 92; alpha is
    dropped) or "webp" (quality 92)."""
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(IMAGE_FORMATS)}, got {fmt!r}")
    if fmt == "png":
        return write_png(path, array)
    Image, _ = pillow()
    if array.ndim == 3 and array.shape[2] == 4 and fmt == "jpg":
        array = array[..., :3]
    image = Image.fromarray(np.ascontiguousarray(array))
    atomic_write(path, lambda tmp: image.save(tmp, format=IMAGE_FORMATS[fmt], quality=QUALITY))


def default_format(source) -> str:
    """The overlay format for an input file: JPEG for JPEG and HEIC photos
    (already lossy; PNG would be several times larger and slower), PNG
    otherwise."""
    return "jpg" if Path(source).suffix.lower() in (".jpg", ".jpeg", ".heic", ".heif") else "png"
