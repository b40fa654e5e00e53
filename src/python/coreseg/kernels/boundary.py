"""Boundary metrics' kernel: boundary_counts, the integer counts behind
Boundary IoU and the boundary F-score of every class (boundary.cc).
Its numpy twin is reference_boundary.boundary_counts."""

from __future__ import annotations

import numpy as np

from .. import _native
from . import _args, _arrays

__all__ = ["boundary_counts", "BOUNDARY_COLUMNS", "boundary_args"]

#: The columns of boundary_counts' result, in order.
BOUNDARY_COLUMNS = (
    "gt_band",  # pixels of the class's boundary band in the ground truth
    "pred_band",  # ... in the prediction
    "band_intersection",  # in both (the Boundary IoU's intersection)
    "pred_contour",  # predicted contour pixels (the F-score's precision: denominator)
    "pred_matched",  # ... with a ground-truth contour pixel of the class within `tolerance`
    "gt_contour",  # ground-truth contour pixels (recall: denominator)
    "gt_matched",  # ... with a predicted contour pixel of the class within `tolerance`
)


def _pixels_arg(value, name: str) -> int:
    if not _args.is_int(value):
        raise TypeError(f"{name} must be an integer number of pixels, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return min(int(value), 1 << 62)  # beyond the image, every size is the same


def boundary_args(gt, pred, num_classes, distance, tolerance, ignore_index, out):
    """boundary_counts' arguments checked, in the order both the kernel and
    its reference check them: (gt, pred, num_classes, distance, tolerance,
    ignore_index, out)."""
    gt = _arrays.labels_array(gt, "gt")
    pred = _arrays.labels_array(pred, "pred")
    _arrays.same_shape(gt, pred)
    num_classes = _args.num_classes_arg(num_classes, _args.MAX_CONFUSION_CLASSES)
    distance = _pixels_arg(distance, "distance")
    tolerance = _pixels_arg(tolerance, "tolerance")
    ignore_index = _args.ignore_index_arg(ignore_index)
    out = _arrays.out_array(out, (num_classes, len(BOUNDARY_COLUMNS)), np.int64, inputs=(gt, pred))
    return gt, pred, num_classes, distance, tolerance, ignore_index, out


def bad_value_error(which: str, value: int, num_classes: int, ignore_index) -> ValueError:
    """The error for a value that is neither a class nor ignore_index (the
    native kernel's words)."""
    tail = " that is not ignore_index" if ignore_index is not None else ""
    return ValueError(f"{which} has value {value} outside [0, {num_classes}){tail}")


def boundary_counts(gt, pred, num_classes, distance, tolerance, ignore_index=None, out=None):
    """Per-class counts for Boundary IoU and the boundary F-score of one image.

    The boundary band of class c in a map is the set of its pixels whose
    (2 distance + 1)^2 square holds a pixel of another label or outside
    the image: boundary-iou-api's ``mask_to_boundary`` (the mask minus its
    erosion by a 3x3 square `distance` times, the image padded with zeros).
    Contours are the bands of distance 1. A contour pixel is matched when
    the other map has a contour pixel of the same class within Chebyshev
    distance `tolerance` (a square of side 2 tolerance + 1).

    Parameters
    ----------
    gt, pred : (h, w) ndarrays of int32, uint8 or uint16, same shape
    num_classes : int
        1..16384.
    distance : int
        The band's width in pixels, >= 0 (0: empty bands).
    tolerance : int
        The contour matching distance in pixels, >= 0 (0: same pixel).
    ignore_index : int, optional
        Pixels whose ground truth has this value are left out of every
        count; they still differ from every class, so pixels beside them
        are on a boundary. `pred` may hold it too: no class (e.g. pixels
        the model never saw).
    out : (num_classes, 7) int64 ndarray, optional

    Returns
    -------
    counts : (num_classes, 7) int64 ndarray
        Pixels per class, columns as `BOUNDARY_COLUMNS`: gt_band,
        pred_band, band_intersection, pred_contour, pred_matched,
        gt_contour, gt_matched. Counts over images add up: Boundary IoU =
        intersection / (gt_band + pred_band - intersection), precision =
        pred_matched / pred_contour, recall = gt_matched / gt_contour.

    Raises
    ------
    ValueError
        For a value in either map outside [0, num_classes) that is not
        `ignore_index`, naming the array and the first such value (raster
        order, gt before pred). Unlike confusion_matrix, pred is checked
        under ignored pixels too: its boundaries there count.
    """
    gt, pred, num_classes, distance, tolerance, ignore_index, out = boundary_args(
        gt, pred, num_classes, distance, tolerance, ignore_index, out)
    if not out.flags.c_contiguous:  # e.g. rows of a wider array: the kernel fills one block
        out[...] = boundary_counts(gt, pred, num_classes, distance, tolerance, ignore_index)
        return out
    _native.boundary_counts(gt, pred, num_classes, distance, tolerance, ignore_index, out)
    return out
