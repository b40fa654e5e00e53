"""The numpy reference of the boundary metrics' kernel (boundary.cc):
boundary_counts, written straight from the definitions - bands from
min/max filters over the label map, contour matching from a dilation per
class - and held bit for bit against its native twin in
coreseg.kernels.boundary. Re-exported by coreseg.reference. Clarity over
speed; numpy only."""

from __future__ import annotations

import numpy as np

from .boundary import BOUNDARY_COLUMNS, bad_value_error, boundary_args

__all__ = ["boundary_counts", "boundary_band"]

# Below every label (labels are int32 at most): what "outside the image" holds.
_OUTSIDE = -(1 << 62)


def _window(a: np.ndarray, radius: int, axis: int, reduce, pad) -> np.ndarray:
    """reduce (np.minimum or np.maximum) over [i - radius, i + radius]
    along `axis`, with `pad` outside the array."""
    n = a.shape[axis]
    radius = min(radius, n)  # past the far side, the window sees no more of the array
    widths = [(0, 0)] * a.ndim
    widths[axis] = (radius, radius)
    padded = np.pad(a, widths, constant_values=pad)
    out = a.copy()
    for k in range(2 * radius + 1):
        out = reduce(out, np.take(padded, np.arange(k, k + n), axis=axis))
    return out


def _square(a: np.ndarray, radius: int, reduce, pad) -> np.ndarray:
    return _window(_window(a, radius, 1, reduce, pad), radius, 0, reduce, pad)


def boundary_band(labels: np.ndarray, distance: int) -> np.ndarray:
    """(h, w) bool: the pixels whose (2 distance + 1)^2 square holds another
    label or a pixel outside the image (each class's band, all at once)."""
    labels = labels.astype(np.int64)
    if distance == 0 or labels.size == 0:
        return np.zeros(labels.shape, bool)
    low = _square(labels, distance, np.minimum, _OUTSIDE)
    high = _square(labels, distance, np.maximum, _OUTSIDE)
    return (low != labels) | (high != labels)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within Chebyshev distance `radius` of a pixel of `mask`."""
    if radius == 0 or mask.size == 0:
        return mask.copy()
    return _square(mask, radius, np.maximum, False)


def boundary_counts(gt, pred, num_classes, distance, tolerance, ignore_index=None, out=None):
    gt, pred, num_classes, distance, tolerance, ignore_index, out = boundary_args(
        gt, pred, num_classes, distance, tolerance, ignore_index, out)
    g = gt.astype(np.int64)
    p = pred.astype(np.int64)
    # The first value that is neither a class nor ignore_index, raster order, gt first.
    allowed = [((a >= 0) & (a < num_classes)) | (ignore_index is not None and a == ignore_index) for a in (g, p)]
    bad = np.stack([~allowed[0].ravel(), ~allowed[1].ravel()], axis=1).ravel()
    if bad.any():
        i = int(np.argmax(bad))
        which = i % 2
        raise bad_value_error(("gt", "pred")[which], int((g, p)[which].ravel()[i // 2]), num_classes, ignore_index)

    counted = g != ignore_index if ignore_index is not None else np.ones(g.shape, bool)
    p_class = (p >= 0) & (p < num_classes)  # pred's ignore_index is no class

    def per_class(mask, labels):
        return np.bincount(labels[mask], minlength=num_classes)

    band_g, band_p = boundary_band(g, distance), boundary_band(p, distance)
    contour_g, contour_p = boundary_band(g, 1), boundary_band(p, 1)
    result = np.zeros((num_classes, len(BOUNDARY_COLUMNS)), np.int64)
    result[:, 0] = per_class(band_g & counted, g)
    result[:, 1] = per_class(band_p & counted & p_class, p)
    result[:, 2] = per_class(band_g & band_p & counted & (g == p), g)
    result[:, 3] = per_class(contour_p & counted & p_class, p)
    result[:, 5] = per_class(contour_g & counted, g)
    for c in np.union1d(g[contour_g & counted], p[contour_p & counted & p_class]):
        gt_c, pred_c = contour_g & (g == c), contour_p & (p == c)
        result[c, 4] = np.count_nonzero(pred_c & counted & _dilate(gt_c, tolerance))
        result[c, 6] = np.count_nonzero(gt_c & counted & _dilate(pred_c, tolerance))
    out[...] = result
    return out
