"""Kernels over class maps: render_mask, colorize, resize_labels, and
composite (a class map over a photo) (label_kernels.cc, composite.cc)."""

from __future__ import annotations

import numpy as np

from .. import _native
from . import _args, _arrays

__all__ = ["render_mask", "colorize", "resize_labels", "composite"]


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
    labels = _arrays.labels_array(labels)
    ids = _args.selected_ids(selected)
    color = _args.rgba(color, "color")
    out = _arrays.out_array(out, labels.shape + (4,), np.uint8, inputs=(labels,))
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
    labels = _arrays.labels_array(labels)
    palette = _arrays.palette_array(palette)
    out = _arrays.out_array(out, labels.shape + (4,), np.uint8, inputs=(labels,))
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
    labels = _arrays.labels_array(labels)
    w, h = _args.size_arg(size, minimum=0)
    out = _arrays.out_array(out, (h, w), labels.dtype, inputs=(labels,))
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
    image = _arrays.image_array(image)
    labels = _arrays.labels_array(labels)
    palette = _arrays.palette_array(palette)
    opacity = _args.opacity_arg(opacity)
    outline = None if outline is None else list(_args.rgba(outline, "outline"))
    out = _arrays.out_array(out, image.shape, np.uint8, inputs=(image, labels), allow_same=image)
    _native.composite(image, labels, palette, opacity, outline, out)
    return out
