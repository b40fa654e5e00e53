"""Background effects: blend (a photo over a background by a matte), blur
(a Gaussian-like blur for large radii at memory speed) and upsample_matte
(the alpha matte at the photo's resolution from a model's probabilities)
(effects.cc, matte.cc). Their numpy twins are in coreseg.reference."""

from __future__ import annotations

import numpy as np

from .. import _native
from . import _args, _arrays

__all__ = ["blend", "blur", "upsample_matte", "MAX_BLUR_RADIUS"]

MAX_BLUR_RADIUS = _args.MAX_BLUR_RADIUS


def blend(foreground, background, alpha, out=None):
    """Blend a foreground over a background by a per-pixel alpha.

    Per colour channel, with composite's exact rounding::

        t = fg * a + bg * (255 - a)
        out = (t + 128 + ((t + 128) >> 8)) >> 8     # round(t / 255)

    so ``a = 255`` gives the foreground and ``a = 0`` the background exactly.
    An RGBA foreground's alpha channel passes through (as composite keeps
    the image's); the background's alpha is never used.

    Parameters
    ----------
    foreground : (H, W, 3) or (H, W, 4) uint8 ndarray
        The photo (RGB or RGBA).
    background : (H, W, C) uint8 ndarray, or a colour
        An image of the foreground's shape, or one colour for every pixel:
        (r, g, b[, a]) ints in 0..255, "#RRGGBB[AA]", or a 1-D array.
    alpha : (H, W) uint8 ndarray
        The matte, 255 = foreground (e.g. from `upsample_matte`). Rows must
        be packed; a view whose rows are not is copied once.
    out : (H, W, C) uint8 ndarray, optional
        Where to write; may be `foreground` or `background` itself (in
        place). Allocated when None.

    Returns
    -------
    blended : (H, W, C) uint8 ndarray

    Examples
    --------
    >>> import numpy as np, coreseg
    >>> fg = np.full((1, 3, 3), 200, np.uint8)
    >>> coreseg.blend(fg, (0, 0, 100), np.array([[255, 128, 0]], np.uint8))[0].tolist()
    [[200, 200, 200], [100, 100, 150], [0, 0, 100]]
    """
    fg = _arrays.image_array(foreground, "foreground")
    bg = _args.background_arg(background, fg)
    a = _arrays.alpha_array(alpha, fg.shape[:2])
    image_bg = isinstance(bg, np.ndarray)
    out = _arrays.out_array(out, fg.shape, np.uint8, inputs=(fg, a) + ((bg,) if image_bg else ()),
                            allow_same=(fg, bg) if image_bg else fg)
    _native.blend(fg, bg if image_bg else list(bg), a, out)
    return out


def blur(image, radius, out=None):
    """Blur an image with a Gaussian, fast at large radii.

    The image is reduced by an integer factor f = floor(radius / 2.5)
    (1..255) into block means, blurred small by a sampled Gaussian (one
    pass along each axis), and enlarged back bilinearly on the half-pixel
    grid of `upsample_argmax`, all in fixed point (`coreseg.reference.
    blur_plan` gives the factor and the taps; `coreseg.reference.blur` is
    the exact specification). The work at full resolution is one read of
    the image and one write of the result, whatever the radius.

    Every channel is blurred alike (RGBA is not premultiplied). Edges are
    clamped (the border pixels repeat).

    Parameters
    ----------
    image : (H, W, 3) or (H, W, 4) uint8 ndarray
    radius : float
        In pixels of `image`, 0 < radius <= MAX_BLUR_RADIUS (1024): the
        standard deviation of the Gaussian the blur approximates (as CSS
        ``filter: blur()`` and Pillow's ``GaussianBlur(radius)``). The stages'
        variances are chosen to add up to radius**2, and the measured
        standard deviation (of a blurred edge, averaged over its position
        in the reduction's blocks) is within 1.5% of `radius` from 1 pixel
        up. OpenCV's ``GaussianBlur(img, (0, 0), radius)`` is the same
        blur within a few levels (under one on average). A radius far
        beyond the image tends to its mean colour.
    out : (H, W, C) uint8 ndarray, optional
        Where to write; may be `image` itself (in place). Allocated when
        None.

    Returns
    -------
    blurred : (H, W, C) uint8 ndarray

    Examples
    --------
    >>> import numpy as np, coreseg
    >>> flat = np.full((20, 30, 3), 77, np.uint8)
    >>> bool((coreseg.blur(flat, 8.0) == 77).all())  # a flat image stays flat
    True
    """
    image = _arrays.image_array(image)
    radius = _args.blur_radius(radius)
    out = _arrays.out_array(out, image.shape, np.uint8, inputs=(image,), allow_same=image)
    _native.blur(image, radius, out)
    return out


def upsample_matte(planes, size, reduce="sum", out=None):
    """An alpha matte at the photo's resolution from per-class probabilities.

    The planes are combined per pixel, interpolated bilinearly to `size`
    on exactly `upsample_argmax`'s grid (half-pixel centres, as
    ``torch.nn.functional.interpolate(mode="bilinear",
    align_corners=False)``) and its fixed point, and rounded to a byte:

    - each probability is quantised to ``q = round(p * 32767)`` (NaN and
      p < 0 count as 0, p > 1 as 1), and combined: ``min(sum(q), 32767)``
      for ``reduce="sum"``, ``max(q)`` for ``reduce="max"``;
    - the interpolated value ``v = sum q * wy * wx`` (weights in 1/256, so
      ``v`` is an exact integer up to ``D = 32767 * 65536``);
    - ``alpha = floor((255 * v + D // 2) / D)``: 255 * v / D rounded half up.

    Parameters
    ----------
    planes : (K, h, w) or (1, K, h, w) ndarray of float32 or float16
        Probabilities in [0, 1] of the classes that make the foreground:
        the selected classes of one-of-N scores (reduce="sum"), a binary
        model's foreground plane, the channels of a multi-label model
        (reduce="max"), or a 0/1 plane of a class map (a feathered edge).
        Rows must be packed; planes and rows may be strided. At most
        65536 planes.
    size : (width, height)
        Output size in pixels; 0 gives an empty matte.
    reduce : {"sum", "max"}, optional
    out : (height, width) uint8 ndarray, optional

    Returns
    -------
    alpha : (height, width) uint8 ndarray
        255 = foreground; feed it to `blend`.

    Examples
    --------
    >>> import numpy as np, coreseg
    >>> p = np.array([[[0.0, 1.0]]], np.float32)  # one plane, 1x2
    >>> coreseg.upsample_matte(p, (4, 1)).tolist()
    [[0, 64, 191, 255]]
    """
    planes = _arrays.scores_array(planes, "planes")
    w, h = _args.size_arg(size, minimum=0)
    reduce = _args.matte_reduce(reduce)
    out = _arrays.out_array(out, (h, w), np.uint8, inputs=(planes,))
    _native.upsample_matte(planes, reduce, out)
    return out
