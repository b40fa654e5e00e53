"""Scoring predictions against ground truth: confusion matrix and per-class
IoU. Rows of the confusion matrix are ground truth, columns prediction."""

from __future__ import annotations

import numpy as np

from . import _args

__all__ = ["confusion_matrix", "iou_per_class", "mean_iou"]


def confusion_matrix(gt, pred, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """(C, C) int64 counts: [i, j] = pixels of class i predicted as j.

    Parameters
    ----------
    gt, pred : (h, w) integer label maps of the same shape
    num_classes : int
    ignore_index : int, optional
        Ground-truth pixels with this value are left out.

    Raises
    ------
    ValueError
        For a value outside [0, num_classes) (other than `ignore_index` in
        `gt`), naming the array and the value; it is never dropped silently.
    """
    gt = _args.labels_array(gt, "gt")
    pred = _args.labels_array(pred, "pred")
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred must have the same shape, got {gt.shape} and {pred.shape}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be an integer >= 1, got {num_classes!r}")
    g = gt.astype(np.int64).ravel()
    p = pred.astype(np.int64).ravel()
    if ignore_index is not None:
        keep = g != ignore_index
        g, p = g[keep], p[keep]
    for name, a in (("gt", g), ("pred", p)):
        bad = (a < 0) | (a >= num_classes)
        if bad.any():
            raise ValueError(f"{name} has value {int(a[bad][0])} outside [0, {num_classes})")
    return np.bincount(g * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """IoU = TP / (TP + FP + FN) per class; NaN where a class is absent from
    both ground truth and prediction."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(cm: np.ndarray) -> float:
    """Mean IoU over the classes present in ground truth or prediction."""
    iou = iou_per_class(cm)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")
