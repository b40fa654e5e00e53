"""Scoring segmentations: confusion matrix (native), per-class IoU, mIoU,
pixel and class accuracy, frequency-weighted IoU, Dice, with reports.

Rows of a confusion matrix are ground truth, columns prediction. A class
absent from both ground truth and prediction has IoU NaN and is left out of
means; every report lists classes one by one.
"""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np

from ..kernels import _args, _arrays
from ..files.safe_io import write_text
from ..kernels import confusion_matrix, resize_labels

__all__ = ["confusion_matrix", "ConfusionMatrix", "iou_per_class", "mean_iou", "align_classes", "check_groups"]

UNUSED = "--"


def scored_classes(names, ignore_index) -> np.ndarray:
    """(len(names),) bool: the classes per-class scores and means include:
    not named "--" and not `ignore_index` (ConfusionMatrix and
    BoundaryCounts alike)."""
    keep = np.array([name != UNUSED for name in names], bool)
    if ignore_index is not None and 0 <= ignore_index < len(names):
        keep[ignore_index] = False
    return keep


def iou_per_class(cm) -> np.ndarray:
    """IoU = TP / (TP + FP + FN) per class; NaN where a class is absent from
    both ground truth and prediction."""
    cm = np.asarray(cm, np.float64)
    tp = np.diag(cm)
    union = cm.sum(0) + cm.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(cm) -> float:
    """Mean IoU over the classes present in ground truth or prediction."""
    iou = iou_per_class(cm)
    return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")


class ConfusionMatrix:
    """A confusion matrix accumulated over a dataset.

    Parameters
    ----------
    num_classes : int
    names : list of str, optional
        Class names, index = id; "--" marks unused ids (left out of reports).
    ignore_index : int, optional
        Ground-truth value to leave out (e.g. 255 for "void"). An id of a
        class (inside [0, num_classes)) also leaves that class out of every
        per-class score, mean and table, as torchmetrics and mmsegmentation
        do: predicting it elsewhere still counts as an error.

    Examples
    --------
    >>> import numpy as np
    >>> gt = np.array([[0, 0, 1, 1]], np.int32)
    >>> pred = np.array([[0, 1, 1, 1]], np.int32)
    >>> cm = ConfusionMatrix(3, ["sky", "tree", "road"])
    >>> cm = cm.update(gt, pred)       # any number of times; sizes may differ
    >>> round(cm.miou(), 4), cm.iou().round(3).tolist()
    (0.5833, [0.5, 0.667, nan])
    >>> for i in (0, 1, -1):
    ...     print(cm.table().splitlines()[i])
    class                      IoU      F1   prec.  recall   pixels
    sky                      0.500   0.667   1.000   0.500   50.00%
    frequency-weighted IoU   0.583
    """

    def __init__(self, num_classes: int, names=None, ignore_index: int | None = None):
        self.num_classes = _args.num_classes_arg(num_classes, _args.MAX_CONFUSION_CLASSES)
        if names is not None and len(names) != self.num_classes:
            raise ValueError(f"names has {len(names)} entries for {self.num_classes} classes")
        self.names = list(names) if names is not None else [str(i) for i in range(self.num_classes)]
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.num_classes, self.num_classes), np.int64)

    def update(self, gt, pred) -> "ConfusionMatrix":
        """Add one image. A prediction of another size is first mapped onto
        the ground truth with `resize_labels` (labels are never
        interpolated)."""
        gt = _arrays.labels_array(gt, "gt")
        pred = _arrays.labels_array(pred, "pred")
        if pred.shape != gt.shape:
            pred = resize_labels(pred, (gt.shape[1], gt.shape[0]))
        self.matrix += confusion_matrix(gt, pred, self.num_classes, self.ignore_index)
        return self

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add counts computed elsewhere (e.g. in another process)."""
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        self.matrix += other.matrix
        return self

    def scored(self) -> np.ndarray:
        """(num_classes,) bool: the classes scores and means include (not
        "--", not ignore_index)."""
        return scored_classes(self.names, self.ignore_index)

    def _only_scored(self, values: np.ndarray) -> np.ndarray:
        return np.where(self.scored(), values, np.nan)

    # Per-class scores: NaN where undefined or not scored.
    def iou(self) -> np.ndarray:
        return self._only_scored(iou_per_class(self.matrix))

    def dice(self) -> np.ndarray:
        """Dice / F1 = 2TP / (2TP + FP + FN) per class."""
        m = self.matrix.astype(np.float64)
        tp = np.diag(m)
        denom = m.sum(0) + m.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._only_scored(np.where(denom > 0, 2 * tp / denom, np.nan))

    def class_accuracy(self) -> np.ndarray:
        """Recall per class, TP / ground-truth pixels; NaN where absent."""
        m = self.matrix.astype(np.float64)
        gt = m.sum(1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._only_scored(np.where(gt > 0, np.diag(m) / gt, np.nan))

    recall = class_accuracy

    def precision(self) -> np.ndarray:
        """TP / predicted pixels per class; NaN where never predicted."""
        m = self.matrix.astype(np.float64)
        predicted = m.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return self._only_scored(np.where(predicted > 0, np.diag(m) / predicted, np.nan))

    # Summaries.
    def miou(self) -> float:
        """Mean IoU over the scored classes present in ground truth or prediction."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")

    def mean_class_accuracy(self) -> float:
        acc = self.class_accuracy()
        return float(np.nanmean(acc)) if np.isfinite(acc).any() else float("nan")

    def frequency_weighted_iou(self) -> float:
        freq = self.matrix.sum(1) / max(self.matrix.sum(), 1)
        iou = self.iou()
        keep = (freq > 0) & np.isfinite(iou)
        return float((freq[keep] * iou[keep]).sum()) if keep.any() else float("nan")

    def _rows(self):
        gt = self.matrix.sum(1)
        total = max(int(gt.sum()), 1)
        iou, dice, acc, precision = self.iou(), self.dice(), self.class_accuracy(), self.precision()
        scored = self.scored()
        for i, name in enumerate(self.names):
            if not scored[i]:
                continue
            yield {"id": i, "name": name, "iou": iou[i], "dice": dice[i], "recall": acc[i],
                   "precision": precision[i], "gt_pixels": int(gt[i]), "gt_share": gt[i] / total,
                   "predicted_pixels": int(self.matrix[:, i].sum())}

    def table(self, present_only: bool = False) -> str:
        """A per-class text table ("--" ids left out), then the summaries."""
        def f(v):
            return "   -  " if not math.isfinite(v) else f"{v:6.3f}"

        summaries = [("mIoU", self.miou()), ("pixel accuracy", self.pixel_accuracy()),
                     ("mean class accuracy", self.mean_class_accuracy()),
                     ("frequency-weighted IoU", self.frequency_weighted_iou())]
        # Wide enough for the summaries' names too, so their values line up with the IoU column.
        width = max([len(r["name"]) for r in self._rows()] + [len(name) for name, _ in summaries])
        lines = [f"{'class':{width}}  {'IoU':>6}  {'F1':>6}  {'prec.':>6}  {'recall':>6}  {'pixels':>7}"]
        for r in self._rows():
            if present_only and not r["gt_pixels"] and not r["predicted_pixels"]:
                continue
            lines.append(f"{r['name']:{width}}  {f(r['iou'])}  {f(r['dice'])}  {f(r['precision'])}  "
                         f"{f(r['recall'])}  {r['gt_share'] * 100:6.2f}%")
        lines += [f"{name:{width}}  {f(value)}" for name, value in summaries]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Everything, JSON-ready (NaN as null)."""
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "num_classes": self.num_classes,
            "names": self.names,
            "ignore_index": self.ignore_index,
            "miou": clean(self.miou()),
            "pixel_accuracy": clean(self.pixel_accuracy()),
            "mean_class_accuracy": clean(self.mean_class_accuracy()),
            "frequency_weighted_iou": clean(self.frequency_weighted_iou()),
            "classes": [{k: clean(float(v)) if isinstance(v, (float, np.floating)) else v for k, v in r.items()}
                        for r in self._rows()],
            "confusion_matrix": self.matrix.tolist(),
        }

    def to_json(self, path=None) -> str:
        text = json.dumps(self.to_dict(), indent=2)
        if path is not None:
            write_text(path, text + "\n")
        return text

    def to_csv(self, path=None) -> str:
        """Per-class rows: id, name, iou, dice (F1), recall (TP / ground-truth
        pixels, what the table calls recall), precision, gt_pixels, gt_share,
        predicted_pixels."""
        buf = io.StringIO()
        writer = csv.DictWriter(buf, ["id", "name", "iou", "dice", "recall", "precision", "gt_pixels", "gt_share",
                                      "predicted_pixels"])
        writer.writeheader()
        for r in self._rows():
            writer.writerow({k: ("" if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()})
        if path is not None:
            write_text(path, buf.getvalue())
        return buf.getvalue()


def align_classes(model_names, dataset_names, groups=None):
    """Score a model on a dataset whose class ids mean other things.

    Parameters
    ----------
    model_names, dataset_names : list of str
        Class names, index = id.
    groups : dict of str to list of str, optional
        Model class -> the dataset classes it stands for (`coreseg eval --map`).

    Returns
    -------
    names : list of str
        The classes scored, each once: dataset classes (those a group claims
        replaced by the group), then model classes the dataset does not have
        ("model: NAME"), so predicting them counts against the score.
    gt_ids : (len(dataset_names),) int32 ndarray
        Where each dataset id goes: ``gt_ids[labels]``.
    model_ids : (len(model_names),) int32 ndarray
        Where each model id goes: ``model_ids[prediction]``.

    Raises
    ------
    ValueError
        A group that is not a model class or has no member, a member that is
        not a dataset class or is in two groups, or a group named like a
        dataset class that no group claims (the two would be one row).
    """
    groups = groups or {}
    check_groups(model_names, dataset_names, groups)
    claimed = {n: g for g, members in groups.items() for n in members}
    names = [n for n in dataset_names if n not in claimed] + list(groups)
    index = {n: i for i, n in enumerate(names)}
    gt_lut = np.array([index[claimed.get(n, n)] for n in dataset_names], np.int32)
    lut = np.zeros(len(model_names), np.int32)
    for i, name in enumerate(model_names):
        if name not in index:
            index[name] = len(names)
            names.append(f"model: {name}")
        lut[i] = index[name]
    return names, gt_lut, lut


def check_groups(model_names, dataset_names, groups) -> None:
    """Refuse groups (model class -> dataset classes) that `align_classes`
    could only read one way by guessing; see its Raises."""
    models, dataset = set(model_names), set(dataset_names)
    owner = {}
    for group, members in groups.items():
        if not isinstance(group, str) or group not in models:
            raise ValueError(f"group {group!r}: not a class of the model")
        if isinstance(members, str) or not all(isinstance(m, str) for m in members):
            raise ValueError(f"group {group!r}: expected a list of dataset class names, got {members!r}")
        if not members:
            raise ValueError(f"group {group!r}: no dataset class")
        for member in members:
            if member not in dataset:
                raise ValueError(f"group {group!r}: {member!r} is not a class of the dataset")
            if owner.setdefault(member, group) != group:
                raise ValueError(f"dataset class {member!r} is in two groups, {owner[member]!r} and {group!r}")
    for group in groups:
        if group in dataset and group not in owner:
            raise ValueError(f"group {group!r} is also a dataset class that no group includes: the two would "
                             f"be scored as one; include it ({group!r}: [{group!r}, ...]) or leave the group out")
