"""Kernels over a model's scores: argmax (the class map) and upsample_argmax
(the class map at the photo's resolution, from bilinear scores)
(argmax.cc, upsample.cc)."""

from __future__ import annotations

import numpy as np

from .. import _native
from . import _args, _arrays

__all__ = ["argmax", "upsample_argmax"]


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
    logits = _arrays.logits_array(logits)
    out = _arrays.out_array(out, logits.shape[1:], np.int32, inputs=(logits,))
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
    scores = _arrays.scores_array(scores)
    w, h = _args.size_arg(size, minimum=0)
    out = _arrays.out_array(out, (h, w), np.int32, inputs=(scores,))
    _native.upsample_argmax(scores, out)
    return out
