"""Kernels for ground truth and scoring: decode_colors (colour-coded maps
to class ids), confusion_matrix and class_histogram (metrics_kernels.cc)."""

from __future__ import annotations

import numpy as np

from .. import _native
from . import _args, _arrays

__all__ = ["decode_colors", "confusion_matrix", "class_histogram"]


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
    rgb = _arrays.color_map(rgb)
    colors = _arrays.color_table(colors, rgb.dtype)
    unknown = _args.unknown_arg(unknown)
    out = _arrays.out_array(out, rgb.shape[:2], np.int32, inputs=(rgb,))
    sentinel = -1 if unknown is None else unknown
    missing = _native.decode_colors(rgb, colors, sentinel, out)
    if missing and unknown is None:
        raise _arrays.unknown_colors_error(rgb, out == -1)
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
    gt = _arrays.labels_array(gt, "gt")
    pred = _arrays.labels_array(pred, "pred")
    _arrays.same_shape(gt, pred)
    num_classes = _args.num_classes_arg(num_classes, _args.MAX_CONFUSION_CLASSES)
    ignore_index = _args.ignore_index_arg(ignore_index)
    ignore = ignore_index
    out = _arrays.out_array(out, (num_classes, num_classes), np.int64, inputs=(gt, pred))
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
        Any stride (reversed too); only its elements are written.

    Returns
    -------
    counts : (num_classes,) int64 ndarray

    Raises
    ------
    ValueError
        For a value outside [0, num_classes), naming it.
    """
    labels = _arrays.labels_array(labels)
    num_classes = _args.num_classes_arg(num_classes, 1 << 24)
    out = _arrays.out_array(out, (num_classes,), np.int64, inputs=(labels,))
    if out.flags.c_contiguous:
        _native.class_histogram(labels, num_classes, out)
    else:  # a strided or reversed out: the kernel counts into packed memory
        counts = np.empty(num_classes, np.int64)
        _native.class_histogram(labels, num_classes, counts)
        out[...] = counts
    return out
