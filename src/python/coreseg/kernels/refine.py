"""Edge refinement of mattes: refine_matte, a guided filter with the photo
as the guide, computed small and enlarged (refine.cc). Its numpy twin,
the exact specification, is coreseg.reference.refine_matte
(reference_refine.py)."""

from __future__ import annotations

import numpy as np

from .. import _native
from . import _args, _arrays
from .reference_refine import DEFAULT_REFINE_EPS, DEFAULT_REFINE_RADIUS

__all__ = ["refine_matte", "MAX_REFINE_RADIUS"]

MAX_REFINE_RADIUS = _args.MAX_REFINE_RADIUS


def refine_matte(matte, guide, radius=DEFAULT_REFINE_RADIUS, eps=DEFAULT_REFINE_EPS, out=None):
    """A matte pulled onto the photo's own edges (a guided filter).

    A model's mask is a few hundred pixels wide and enlarged to the photo:
    its edge is where the model put it, blurred by the enlargement. The
    guided filter (He et al., "Guided Image Filtering") fits the matte, in
    every window of about ``2 * radius`` pixels, as a linear function of
    the photo's luma, ``q = A * Y + b``, and averages the fits: where the
    window holds an edge of the photo, the matte's step moves onto it;
    where the photo is flat, the matte is smoothed. It is computed small
    and enlarged (the "fast guided filter"): the photo and the matte are
    reduced by ``s = floor(radius / 2)`` into block means, A and b solved
    there over windows of ``2 * round(radius / s) + 1`` small pixels,
    enlarged bilinearly on `upsample_argmax`'s half-pixel grid, and applied
    to the full-resolution luma. All in integer arithmetic
    (`coreseg.reference.refine_matte` is the exact specification); the
    work at full resolution is two reads of the photo and the matte and
    one write.

    Parameters
    ----------
    matte : (H, W) uint8 ndarray
        The alpha matte, 255 = foreground (e.g. `upsample_matte`'s). Rows
        must be packed; a view whose rows are not is copied once.
    guide : (H, W, 3) or (H, W, 4) uint8 ndarray
        The photo (RGB or RGBA; alpha is not used). Its luma is
        ``(77 R + 150 G + 29 B + 128) >> 8``.
    radius : float, optional
        In pixels of the photo, 1 <= radius <= MAX_REFINE_RADIUS (1024): how
        far from its edge the matte may move. About twice the size of one
        model pixel in the photo suits a model's matte (what
        `Segmentation.matte` uses). Default 8.
    eps : float, optional
        The regulariser, a variance of values in 0..1 (the paper's units),
        1e-6 <= eps <= 100. Edges of the photo whose contrast (standard
        deviation over a window) is well above ``sqrt(eps)`` are followed;
        fainter ones are smoothed over. Large eps tends to a box blur of
        the matte. Default 1e-3 (about 8 levels of 255).
    out : (H, W) uint8 ndarray, optional
        Where to write; may be `matte` itself (in place). Allocated when
        None.

    Returns
    -------
    refined : (H, W) uint8 ndarray

    Examples
    --------
    >>> import numpy as np
    >>> from coreseg.kernels import refine_matte  # also coreseg.refine_matte
    >>> photo = np.zeros((6, 20, 3), np.uint8); photo[:, 8:] = 200  # an edge at x = 8
    >>> soft = np.tile(np.clip((np.arange(20) - 6) * 32, 0, 255).astype(np.uint8), (6, 1))
    >>> soft[0, 5:12].tolist()  # the model's edge: a ramp from x = 6 to 14
    [0, 0, 32, 64, 96, 128, 160]
    >>> refine_matte(soft, photo, radius=2)[0, 5:12].tolist()  # now a step at x = 8
    [5, 8, 15, 96, 115, 137, 162]
    """
    guide = _arrays.image_array(guide, "guide")
    matte = _arrays.alpha_array(matte, guide.shape[:2], "matte", of="guide")
    radius = _args.refine_radius(radius)
    eps = _args.refine_eps(eps)
    out = _arrays.out_array(out, matte.shape, np.uint8, inputs=(matte, guide), allow_same=matte)
    _native.refine_matte(matte, guide, radius, eps, out)
    return out
