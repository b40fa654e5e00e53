"""The native kernels: render_mask, colorize, resize_labels, composite,
resize_image.

Each function normalises and checks its arguments (coreseg._args, shared
with coreseg.reference), then runs the C++ kernel in coreseg._native with
the GIL released, split over row bands on a small thread pool
(`set_num_threads`). Results are bit-identical to coreseg.reference and do
not depend on the thread count or the SIMD backend.

Arrays whose rows are not packed (e.g. ``labels[:, ::2]``,
``image[..., ::-1]``), whose elements are not aligned, or whose byte order
is not the machine's are copied once before the kernel runs; row strides
(crops, ``[::-1]`` row flips) are used as they are. `out=` arrays are
written as they are, so they must be in native byte order and aligned.

Limits, refused with a ValueError that names them: every side of every
array at most MAX_SIDE (2**24) elements; resize_image shrinks an axis at
most MAX_DOWNSCALE (2048) times in one pass; confusion_matrix counts at
most 16384 classes; at most MAX_THREADS (256) threads. A result larger
than the machine's memory is a MemoryError before anything is allocated.
"""

from __future__ import annotations

import numpy as np

from . import _args
from .. import _native
from ._args import MAX_DOWNSCALE, MAX_SIDE

#: Most threads set_num_threads takes.
MAX_THREADS = _native.MAX_THREADS

__all__ = [
    "render_mask",
    "colorize",
    "resize_labels",
    "composite",
    "resize_image",
    "argmax",
    "upsample_argmax",
    "decode_colors",
    "confusion_matrix",
    "class_histogram",
    "simd_backend",
    "set_num_threads",
    "get_num_threads",
    "MAX_SIDE",
    "MAX_DOWNSCALE",
    "MAX_THREADS",
]


def render_mask(labels, selected, color=(255, 255, 0, 255), out=None):
    """Paint the pixels of some classes in one colour (Apple's renderMask).

    Parameters
    ----------
    labels : (h, w) ndarray of int32, uint8 or uint16
        Class map, e.g. ``Segmentation.labels`` from a Core ML model.
    selected : int or sequence of int
        Class id(s) to paint. Ids that do not occur paint nothing.
    color : (r, g, b[, a]) ints in 0..255 or "#RRGGBB[AA]", optional
        Colour of the selected pixels; default opaque yellow.
    out : (h, w, 4) uint8 ndarray, optional
        Where to write the result (rows packed); allocated when None.

    Returns
    -------
    mask : (h, w, 4) uint8 ndarray
        RGBA: `color` where the label is selected, (0, 0, 0, 0) elsewhere.

    Examples
    --------
    >>> import numpy as np, coreseg
    >>> coreseg.render_mask(np.array([[1, 2]], np.int32), 2)[0].tolist()
    [[0, 0, 0, 0], [255, 255, 0, 255]]
    """
    labels = _args.labels_array(labels)
    ids = _args.selected_ids(selected)
    color = _args.rgba(color, "color")
    out = _args.out_array(out, labels.shape + (4,), np.uint8, inputs=(labels,))
    _native.render_mask(labels, ids, list(color), out)
    return out


def colorize(labels, palette, out=None):
    """Map every class id to its palette colour.

    Parameters
    ----------
    labels : (h, w) ndarray of int32, uint8 or uint16
    palette : (n, 4) or (n, 3) uint8 array_like
        RGBA (or RGB, alpha 255) colour of class ids 0..n-1, e.g.
        ``default_palette(n)`` or ``parse_colors(model_colors)``.
    out : (h, w, 4) uint8 ndarray, optional

    Returns
    -------
    rgba : (h, w, 4) uint8 ndarray
        ``palette[label]``; (0, 0, 0, 0) for labels outside [0, n).
    """
    labels = _args.labels_array(labels)
    palette = _args.palette_array(palette)
    out = _args.out_array(out, labels.shape + (4,), np.uint8, inputs=(labels,))
    _native.colorize(labels, palette, out)
    return out


def resize_labels(labels, size, out=None):
    """Resize a class map by nearest neighbour, never interpolating ids.

    The index mapping is Pillow's ``Image.resize(NEAREST)`` (and OpenCV's
    ``INTER_NEAREST_EXACT``): output index i reads source index
    ``floor((i + 0.5) * src / dst)``, accumulated in double precision.

    Parameters
    ----------
    labels : (h, w) ndarray of int32, uint8 or uint16
    size : (width, height)
        Output size in pixels; 0 gives an empty map.
    out : (height, width) ndarray of labels.dtype, optional

    Returns
    -------
    resized : (height, width) ndarray of labels.dtype
    """
    labels = _args.labels_array(labels)
    w, h = _args.size_arg(size, minimum=0)
    out = _args.out_array(out, (h, w), labels.dtype, inputs=(labels,))
    _native.resize_labels(labels, out)
    return out


def composite(image, labels, palette, opacity=1.0, outline=None, out=None):
    """Blend class colours onto a full-resolution image in one pass.

    `labels` may have any size: it is mapped onto the image with the
    `resize_labels` mapping without making the upscaled map. Each pixel is
    blended with its class colour, ``round((img*(255-a) + col*a) / 255)``
    exactly, with ``a = floor(palette_alpha * opacity + 0.5)``.

    Parameters
    ----------
    image : (H, W, 3) or (H, W, 4) uint8 ndarray
        RGB or RGBA photo; an alpha channel passes through unchanged.
    labels : (h, w) ndarray of int32, uint8 or uint16
    palette : (n, 4) or (n, 3) uint8 array_like
        Class colours; labels outside [0, n) leave the pixel as it was, and
        an entry with alpha 0 hides its class.
    opacity : float in [0, 1], optional
        Scales every palette alpha.
    outline : (r, g, b[, a]) or "#RRGGBB[AA]", optional
        Also draw class boundaries in this colour (blended over the fill at
        its own alpha, not scaled by `opacity`): pixels whose label differs
        from their right or lower neighbour at image resolution. This gives
        a cue that is not colour alone.
    out : (H, W, C) uint8 ndarray, optional
        Where to write; may be `image` itself (in place).

    Returns
    -------
    overlay : ndarray, same shape as `image`
    """
    image = _args.image_array(image)
    labels = _args.labels_array(labels)
    palette = _args.palette_array(palette)
    opacity = _args.opacity_arg(opacity)
    outline = None if outline is None else list(_args.rgba(outline, "outline"))
    out = _args.out_array(out, image.shape, np.uint8, inputs=(image, labels), allow_same=image)
    _native.composite(image, labels, palette, opacity, outline, out)
    return out


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
    image = _args.image_array(image)
    w, h = _args.size_arg(size)
    _args.resize_factor((image.shape[1], image.shape[0]), (w, h))
    order = _args.layout_arg(layout)
    out = _args.out_array(out, (h, w, len(order)), np.uint8, inputs=(image,))
    _native.resize_image(image, list(order), out)
    return out


def argmax(logits, out=None):
    """Class map from a model's logits: the first class with the largest
    score, read in place (the logits are not copied).

    Parameters
    ----------
    logits : (classes, h, w) or (1, classes, h, w) ndarray of float32 or float16
        Per-class scores, as ONNX segmentation models return them. NaN is
        never the largest; a pixel whose scores are all NaN or -inf gets 0.
    out : (h, w) int32 ndarray, optional

    Returns
    -------
    labels : (h, w) int32 ndarray
    """
    logits = _args.logits_array(logits)
    out = _args.out_array(out, logits.shape[1:], np.int32, inputs=(logits,))
    _native.argmax(logits, out)
    return out


def upsample_argmax(scores, size, out=None):
    """Class map at another size from per-class scores: bilinear
    interpolation of the scores, then the first class with the largest one.

    Edges follow the object at the output's resolution instead of the
    staircase of `resize_labels`. The sampling is that of
    ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``
    (half-pixel centres). To be exact on every SIMD path, scores are
    quantised to ``round(p * 32767)`` (NaN and p < 0 count as 0, p > 1 as 1)
    and the interpolation weights to 1/256; the interpolated values are then
    exact integers, so ties resolve to the lowest class id everywhere.

    Parameters
    ----------
    scores : (classes, h, w) or (1, classes, h, w) ndarray of float32 or float16
        Per-class probabilities in [0, 1], e.g. ``Segmentation.scores``.
        Rows must be packed; planes and rows may be strided (a crop is
        read in place).
    size : (width, height)
        Output size in pixels; 0 gives an empty map.
    out : (height, width) int32 ndarray, optional

    Returns
    -------
    labels : (height, width) int32 ndarray

    Examples
    --------
    >>> import numpy as np, coreseg
    >>> p = np.array([[[0.9, 0.2]], [[0.1, 0.8]]], np.float32)  # 2 classes, 1x2
    >>> coreseg.upsample_argmax(p, (4, 1)).tolist()
    [[0, 0, 1, 1]]
    """
    scores = _args.scores_array(scores)
    w, h = _args.size_arg(size, minimum=0)
    out = _args.out_array(out, (h, w), np.int32, inputs=(scores,))
    _native.upsample_argmax(scores, out)
    return out


def decode_colors(rgb, colors, unknown=None, out=None):
    """Class ids of a colour-coded map, such as Datagen's 16-bit ground truth.

    Parameters
    ----------
    rgb : (h, w, 3) ndarray of uint8 or uint16
        The colour-coded map (RGB order).
    colors : (n, 3) array_like of the same range
        The colour of each class id; no colour twice.
    unknown : int, optional
        The id to give pixels whose colour is not in `colors`. Without it
        such pixels are an error.
    out : (h, w) int32 ndarray, optional

    Returns
    -------
    ids : (h, w) int32 ndarray
        Row index into `colors` of each pixel's colour.

    Raises
    ------
    ValueError
        When colours are missing from the table: how many pixels and which
        colours (the first few).
    """
    rgb = _args.color_map(rgb)
    colors = _args.color_table(colors, rgb.dtype)
    unknown = _args.unknown_arg(unknown)
    out = _args.out_array(out, rgb.shape[:2], np.int32, inputs=(rgb,))
    sentinel = -1 if unknown is None else unknown
    missing = _native.decode_colors(rgb, colors, sentinel, out)
    if missing and unknown is None:
        raise _args.unknown_colors_error(rgb, out == -1)
    return out


def confusion_matrix(gt, pred, num_classes, ignore_index=None, out=None):
    """Counts of ground-truth class i predicted as j.

    Parameters
    ----------
    gt, pred : (h, w) ndarrays of int32, uint8 or uint16, same shape
    num_classes : int
        1..65536.
    ignore_index : int, optional
        Ground-truth pixels with this value are left out.
    out : (num_classes, num_classes) int64 ndarray, optional

    Returns
    -------
    matrix : (num_classes, num_classes) int64 ndarray
        Rows ground truth, columns prediction.

    Raises
    ------
    ValueError
        For a value outside [0, num_classes) that is not `ignore_index`,
        naming the array and the first such value (raster order); values are
        never dropped silently.
    """
    gt = _args.labels_array(gt, "gt")
    pred = _args.labels_array(pred, "pred")
    _args.same_shape(gt, pred)
    num_classes = _args.num_classes_arg(num_classes, _args.MAX_CONFUSION_CLASSES)
    ignore_index = _args.ignore_index_arg(ignore_index)
    ignore = ignore_index
    out = _args.out_array(out, (num_classes, num_classes), np.int64, inputs=(gt, pred))
    if not out.flags.c_contiguous:  # e.g. rows of a wider array: the kernel fills one block
        out[...] = confusion_matrix(gt, pred, num_classes, ignore)
        return out
    _native.confusion_matrix(gt, pred, num_classes, ignore, out)
    return out


def class_histogram(labels, num_classes, out=None):
    """Pixels of each class.

    Parameters
    ----------
    labels : (h, w) ndarray of int32, uint8 or uint16
    num_classes : int
    out : (num_classes,) int64 ndarray, optional

    Returns
    -------
    counts : (num_classes,) int64 ndarray

    Raises
    ------
    ValueError
        For a value outside [0, num_classes), naming it.
    """
    labels = _args.labels_array(labels)
    num_classes = _args.num_classes_arg(num_classes, 1 << 24)
    out = _args.out_array(out, (num_classes,), np.int64, inputs=(labels,))
    _native.class_histogram(labels, num_classes, out)
    return out


def ema_update(state, scores, alpha):
    """Exponential moving average of per-class scores, in place:
    ``state = (1 - alpha) * state + alpha * scores``.

    Computed in float32 (``1 - alpha`` rounded to float32, each product
    rounded before the sum, never fused), on every SIMD path as in numpy.
    ``alpha = 1`` gives the new scores exactly, ``alpha = 0`` keeps the
    state; in between, a frame's weight decays by ``1 - alpha`` per frame
    (a time constant of about ``1 / alpha`` frames).

    Parameters
    ----------
    state : (classes, h, w) float32 ndarray
        C-contiguous and writable: the smoothing state, updated in place
        (start it from the first frame's scores).
    scores : (classes, h, w) or (1, classes, h, w) ndarray of float32 or float16
        This frame's scores. Rows must be packed; planes and rows may be
        strided.
    alpha : float in [0, 1]

    Returns
    -------
    state : the same array
    """
    scores = _args.logits_array(scores, "scores")
    alpha = _args.unit_float(alpha, "alpha")
    _args.state_array(state, scores.shape, np.float32, inputs=(scores,))
    _native.ema_update(state, scores, alpha)
    return state


def hysteresis_update(state, labels, frames, scores=None, margin=None):
    """Label hysteresis, in place: a pixel changes class only when the new
    class has won `frames` consecutive frames, or (with scores and a
    margin) at once when its score beats the shown class's by `margin`.

    Per pixel, with ``x`` the new label and ``shown, candidate, count =
    state``::

        n1 = min(count, frames - 1) + 1 if x == candidate else 1
        switch = x != shown and (n1 >= frames or score[x] - score[shown] >= margin)
        shown = x if switch else shown
        count = 0 if x == shown (before) or switch else n1
        candidate = x

    Parameters
    ----------
    state : (3, h, w) int32 ndarray
        C-contiguous and writable: planes shown, candidate and count,
        updated in place (start it with `hysteresis_state`).
    labels : (h, w) int32 ndarray
        This frame's class map. Rows must be packed.
    frames : int in 1..2**20
        Consecutive frames a new class must win (1: no smoothing).
    scores : (classes, h, w) ndarray of float32 or float16, optional
        This frame's scores, for `margin`. Every label and shown class must
        then be a class of `scores`.
    margin : float, optional
        Score difference that switches a pixel at once (in the scores'
        units, e.g. 0.3 of probability); needs `scores`.

    Returns
    -------
    shown : (h, w) int32 ndarray
        The smoothed class map: a view of ``state[0]``.
    """
    labels, frames, scores, margin = _args.hysteresis_args(state, labels, frames, scores, margin)
    _native.hysteresis_update(state, labels, frames, scores, 0.0 if margin is None else margin)
    return state[0]


def hysteresis_state(labels) -> np.ndarray:
    """A (3, h, w) int32 `hysteresis_update` state that shows `labels`."""
    labels = _args.labels_array(labels)
    state = np.zeros((3, *labels.shape), np.int32)
    state[0] = labels
    state[1] = labels
    return state


def simd_backend() -> str:
    """The SIMD code in use: "scalar", "sse41", "avx2" or "neon".

    The best the CPU has is chosen at import; ``CORESEG_SIMD=scalar|sse41|
    avx2|neon`` in the environment forces one."""
    return _native.simd_backend()


def set_num_threads(n: int) -> None:
    """Use `n` threads (the caller's included) for large images; default:
    one per core, at most 64. Results never depend on it.

    `n` is 1..MAX_THREADS (256). If the system cannot start that many
    threads, the kernels run on those that did start."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {n!r}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"n must be in 1..{MAX_THREADS}, got {n}")
    _native.set_num_threads(int(n))


def get_num_threads() -> int:
    """The number of threads the kernels use."""
    return _native.get_num_threads()
