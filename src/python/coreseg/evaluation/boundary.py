"""Boundary metrics over a dataset: Boundary IoU (Cheng et al., CVPR 2021)
and the boundary F-score (Csurka et al. 2013; the F of DAVIS), per class,
from integer counts that add up across images, processes and machines in
any order, bit for bit, like the confusion matrix.

Boundary IoU is the IoU of each class's boundary band - its pixels within
`distance` of its contour, the image border included - in the ground
truth and in the prediction: the official boundary-iou-api's
``mask_to_boundary``, with ``distance = max(1, round(0.02 * diagonal))``
by default, computed per image from its own size. It sees only the edges,
where mask IoU is dominated by the large interiors.

The boundary F-score matches 1-pixel contours: a predicted contour pixel
of a class is right when a ground-truth contour pixel of the class lies
within `tolerance` (a square: Chebyshev distance), and the reverse for
recall. Its default tolerance is DAVIS's, ``ceil(0.008 * diagonal)`` (18
pixels at 1920x1080), not the band's 2 % (44 pixels): contours are thin,
and at 2 % nearly every contour a model draws matches, so F would say
little about how well edges are placed.

Examples
--------
>>> import numpy as np
>>> gt = np.zeros((40, 40), np.int32); gt[10:30, 10:30] = 1
>>> pred = np.zeros((40, 40), np.int32); pred[10:30, 11:31] = 1
>>> b = BoundaryCounts(2, ["bg", "square"], distance=2, tolerance=1)
>>> b = b.add(gt, pred)                   # any number of images, any sizes
>>> b.iou().round(3).tolist(), b.f_score().round(3).tolist()
([0.832, 0.6], [1.0, 1.0])
>>> total = b + BoundaryCounts(2, ["bg", "square"], distance=2, tolerance=1)   # merge
"""

from __future__ import annotations

import math

import numpy as np

from ..kernels import BOUNDARY_COLUMNS, boundary_counts, resize_labels
from ..kernels import _args, _arrays
from ..kernels.boundary import bad_value_error
from .metrics import scored_classes

__all__ = ["BoundaryCounts", "merge_boundary", "boundary_distance", "boundary_tolerance", "DISTANCE_RATIO",
           "TOLERANCE_RATIO"]

#: Boundary IoU's band width as a share of the image diagonal (the paper's default).
DISTANCE_RATIO = 0.02
#: The F-score's matching tolerance as a share of the diagonal (DAVIS's).
TOLERANCE_RATIO = 0.008

_GT_BAND, _PRED_BAND, _INTER, _PRED_CONTOUR, _PRED_MATCHED, _GT_CONTOUR, _GT_MATCHED = range(len(BOUNDARY_COLUMNS))


def _diagonal(shape) -> float:
    h, w = shape
    return math.sqrt(h * h + w * w)


def boundary_distance(shape, ratio: float = DISTANCE_RATIO) -> int:
    """The band width for an image of `shape` (h, w), in pixels, as
    boundary-iou-api computes it: ``max(1, int(round(ratio * diagonal)))``
    (Python's round: halves to even). 44 at 1920x1080, 16 at 640x480."""
    return max(1, int(round(ratio * _diagonal(shape))))


def boundary_tolerance(shape, ratio: float = TOLERANCE_RATIO) -> int:
    """The contour matching tolerance for an image of `shape` (h, w), in
    pixels, as DAVIS computes it: ``ceil(ratio * diagonal)``, 1 at least.
    18 at 1920x1080, 7 at 640x480."""
    return max(1, math.ceil(ratio * _diagonal(shape)))


def _pixels_or_none(value, name: str):
    if value is None:
        return None
    if not _args.is_int(value) or value < 0:
        raise ValueError(f"{name} must be None (the default rule) or an integer number of pixels >= 0, got {value!r}")
    return int(value)


class BoundaryCounts:
    """Boundary IoU and boundary F-score counts accumulated over a dataset.

    Parameters
    ----------
    num_classes : int
        1..16384.
    names : list of str, optional
        Class names, index = id; "--" marks unused ids (left out of scores).
    ignore_index : int, optional
        Ground-truth value left out of every count (still a label of its
        own: pixels beside it are on a boundary). An id of a class also
        leaves that class out of every score and mean, as ConfusionMatrix.
    distance : int, optional
        Band width in pixels; default `boundary_distance` of each image.
    tolerance : int, optional
        Contour matching distance in pixels; default `boundary_tolerance`
        of each image.

    Attributes
    ----------
    counts : (num_classes, 7) int64 ndarray
        Columns as `coreseg.kernels.BOUNDARY_COLUMNS`.
    images : int
        Images added (merged ones included).
    """

    def __init__(self, num_classes: int, names=None, ignore_index: int | None = None, distance: int | None = None,
                 tolerance: int | None = None):
        self.num_classes = _args.num_classes_arg(num_classes, _args.MAX_CONFUSION_CLASSES)
        if names is not None and len(names) != self.num_classes:
            raise ValueError(f"names has {len(names)} entries for {self.num_classes} classes")
        self.names = list(names) if names is not None else [str(i) for i in range(self.num_classes)]
        self.ignore_index = _args.ignore_index_arg(ignore_index)
        self.distance = _pixels_or_none(distance, "distance")
        self.tolerance = _pixels_or_none(tolerance, "tolerance")
        self.counts = np.zeros((self.num_classes, len(BOUNDARY_COLUMNS)), np.int64)
        self.images = 0

    # Accumulating.
    def add(self, gt, pred, seen=None) -> "BoundaryCounts":
        """Add one image.

        Parameters
        ----------
        gt, pred : (h, w) ndarrays of int32, uint8 or uint16
            A prediction of another size is first mapped onto the ground
            truth with `resize_labels` (never interpolated).
        seen : (h, w) bool ndarray, optional
            The pixels the model saw (default: those where pred >= 0; a
            centre crop's outside is -1, `coreseg.scoring.prediction_at`).
            The others are counted nowhere, in neither map, and are a label
            of their own: a class's edge along them is a boundary.
        """
        gt = _arrays.labels_array(gt, "gt")
        pred = _arrays.labels_array(pred, "pred")
        if pred.shape != gt.shape:
            if seen is not None:
                raise ValueError(f"seen is for a prediction of the ground truth's shape {gt.shape}, "
                                 f"got a prediction of {pred.shape}")
            pred = resize_labels(pred, (gt.shape[1], gt.shape[0]))
        if seen is None:
            unseen = pred < 0 if pred.dtype.kind == "i" else None
        else:
            seen = np.asarray(seen)
            if seen.dtype != bool or seen.shape != gt.shape:
                raise ValueError(f"seen must be a bool array of shape {gt.shape}, got {seen.dtype} {seen.shape}")
            unseen = ~seen
        distance = self.distance if self.distance is not None else boundary_distance(gt.shape)
        tolerance = self.tolerance if self.tolerance is not None else boundary_tolerance(gt.shape)
        ignore = self.ignore_index
        if unseen is not None and unseen.any():
            gt, pred, ignore = self._mark_unseen(gt, pred, unseen)
        self.counts += boundary_counts(gt, pred, self.num_classes, distance, tolerance, ignore)
        self.images += 1
        return self

    def _mark_unseen(self, gt, pred, unseen):
        """(gt, pred, ignore): both maps with a value of no class where the
        model saw nothing, and the ground truth's own ignored pixels with
        it too, so one ignore value covers both."""
        mark = np.iinfo(np.int32).min
        g = gt.astype(np.int32)
        if self.ignore_index != mark and (g[~unseen] == mark).any():  # the mark would hide it
            raise bad_value_error("gt", mark, self.num_classes, self.ignore_index)
        if self.ignore_index is not None:
            g[gt == self.ignore_index] = mark
        g[unseen] = mark
        p = pred.astype(np.int32)
        p[unseen] = mark
        return g, p, mark

    def merge(self, other: "BoundaryCounts") -> "BoundaryCounts":
        """Add counts computed elsewhere (another process, another machine)
        with the same classes and the same distance and tolerance rules."""
        if not isinstance(other, BoundaryCounts):
            raise TypeError(f"cannot merge a {type(other).__name__} into BoundaryCounts")
        if other.num_classes != self.num_classes:
            raise ValueError(f"cannot merge {other.num_classes} classes into {self.num_classes}")
        if other.ignore_index != self.ignore_index:  # the pixels counted differ
            raise ValueError(f"cannot merge counts made with ignore_index {other.ignore_index} into counts made "
                             f"with ignore_index {self.ignore_index}")
        for name in ("distance", "tolerance"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                rule = lambda v: "the default rule" if v is None else f"{v} pixels"  # noqa: E731
                raise ValueError(f"cannot merge counts made with {name} {rule(theirs)} into counts made with "
                                 f"{rule(mine)}")
        self.counts += other.counts
        self.images += other.images
        return self

    def __add__(self, other: "BoundaryCounts") -> "BoundaryCounts":
        total = BoundaryCounts(self.num_classes, self.names, self.ignore_index, self.distance, self.tolerance)
        return total.merge(self).merge(other)

    def sparse(self):
        """(ids, values): the classes with a nonzero count, (k,) int64, and
        their rows, (k, 7) int64 - what to send between processes."""
        ids = np.flatnonzero(self.counts.any(axis=1)).astype(np.int64)
        return ids, self.counts[ids].copy()

    def add_sparse(self, ids, values) -> "BoundaryCounts":
        """Add rows from `sparse` (of this or fewer classes)."""
        ids = np.asarray(ids, np.int64)
        values = np.asarray(values, np.int64)
        if values.shape != (len(ids), len(BOUNDARY_COLUMNS)):
            raise ValueError(f"values must have shape ({len(ids)}, {len(BOUNDARY_COLUMNS)}), got {values.shape}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.num_classes):
            raise ValueError(f"class id {int(ids.max())} is beyond {self.num_classes} classes")
        if len(np.unique(ids)) != len(ids):
            raise ValueError("ids lists a class twice")
        self.counts[ids] += values
        return self

    # Scores per class: NaN where undefined or not scored.
    def scored(self) -> np.ndarray:
        """(num_classes,) bool: the classes scores and means include (not
        "--", not ignore_index), as the confusion matrix's."""
        return scored_classes(self.names, self.ignore_index)

    def _ratio(self, num, den) -> np.ndarray:
        num = num.astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.scored() & (den > 0), num / den, np.nan)

    def iou(self) -> np.ndarray:
        """Boundary IoU per class: |G_d & P_d| / |G_d | P_d|; NaN where
        neither map has the class."""
        c = self.counts
        return self._ratio(c[:, _INTER], c[:, _GT_BAND] + c[:, _PRED_BAND] - c[:, _INTER])

    def precision(self) -> np.ndarray:
        """Predicted contour pixels within tolerance of the ground truth's
        contour of the class, per class; NaN where never predicted."""
        return self._ratio(self.counts[:, _PRED_MATCHED], self.counts[:, _PRED_CONTOUR])

    def recall(self) -> np.ndarray:
        """Ground-truth contour pixels within tolerance of the predicted
        contour of the class; NaN where absent from the ground truth."""
        return self._ratio(self.counts[:, _GT_MATCHED], self.counts[:, _GT_CONTOUR])

    def f_score(self) -> np.ndarray:
        """2PR / (P + R) per class: 0 where only one map has the class (or
        nothing matches), NaN where neither has it."""
        c = self.counts
        p = c[:, _PRED_MATCHED] / np.maximum(c[:, _PRED_CONTOUR], 1)
        r = c[:, _GT_MATCHED] / np.maximum(c[:, _GT_CONTOUR], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            f = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
        present = (c[:, _PRED_CONTOUR] + c[:, _GT_CONTOUR]) > 0
        return np.where(self.scored() & present, f, np.nan)

    @staticmethod
    def _mean(values: np.ndarray) -> float:
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    def mean_iou(self) -> float:
        """Mean Boundary IoU over the scored classes present in either map."""
        return self._mean(self.iou())

    def mean_f_score(self) -> float:
        """Mean boundary F over the scored classes present in either map."""
        return self._mean(self.f_score())

    # Reports.
    def rows(self):
        """One dict per scored class: id, name, boundary_iou,
        boundary_precision, boundary_recall, boundary_f, and the counts."""
        iou, precision, recall, f = self.iou(), self.precision(), self.recall(), self.f_score()
        scored = self.scored()
        for i, name in enumerate(self.names):
            if scored[i]:
                yield {"id": i, "name": name, "boundary_iou": float(iou[i]),
                       "boundary_precision": float(precision[i]), "boundary_recall": float(recall[i]),
                       "boundary_f": float(f[i]),
                       **{k: int(v) for k, v in zip(BOUNDARY_COLUMNS, self.counts[i])}}

    def rule(self) -> str:
        """The distance and tolerance, in words."""
        d = f"{self.distance} px" if self.distance is not None else f"{DISTANCE_RATIO:.1%} of each image's diagonal"
        t = (f"{self.tolerance} px" if self.tolerance is not None
             else f"{TOLERANCE_RATIO:.1%} of each image's diagonal")
        return f"band {d}, contour tolerance {t}"

    def table(self, present_only: bool = False) -> str:
        """A per-class text table (Boundary IoU, boundary precision, recall
        and F), then the means."""
        def f(v):
            return "   -  " if not math.isfinite(v) else f"{v:6.3f}"

        rows = list(self.rows())
        width = max([len(r["name"]) for r in rows] + [len("mean boundary IoU")])
        lines = [f"{'class':{width}}  {'B-IoU':>6}  {'B-F':>6}  {'B-prec':>6}  {'B-rec':>6}"]
        for r in rows:
            if present_only and not (r["gt_contour"] or r["pred_contour"]):
                continue
            lines.append(f"{r['name']:{width}}  {f(r['boundary_iou'])}  {f(r['boundary_f'])}  "
                         f"{f(r['boundary_precision'])}  {f(r['boundary_recall'])}")
        lines += [f"{'mean boundary IoU':{width}}  {f(self.mean_iou())}",
                  f"{'mean boundary F':{width}}  {'':6}  {f(self.mean_f_score())}",
                  f"({self.rule()})"]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """Everything, JSON-ready (NaN as null)."""
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "distance": self.distance,
            "tolerance": self.tolerance,
            "rule": self.rule(),
            "images": self.images,
            "mean_boundary_iou": clean(self.mean_iou()),
            "mean_boundary_f": clean(self.mean_f_score()),
            "classes": [{k: clean(v) for k, v in r.items()} for r in self.rows()],
            "columns": list(BOUNDARY_COLUMNS),
            "counts": self.counts.tolist(),
        }

    def __repr__(self) -> str:
        return (f"BoundaryCounts({self.num_classes} classes, {self.images} images, {self.rule()}, "
                f"mean boundary IoU {self.mean_iou():.4f}, mean boundary F {self.mean_f_score():.4f})")


def merge_boundary(scores, num_classes: int, names=None, ignore_index: int | None = None, distance: int | None = None,
                   tolerance: int | None = None) -> BoundaryCounts:
    """The boundary counts of many images: each score's sparse rows added.

    Parameters
    ----------
    scores : iterable
        Objects with a ``boundary`` attribute holding `BoundaryCounts.sparse`
        of one image (``(ids, values)``), or None where it was not counted,
        and an ``image`` name (e.g. `coreseg.scoring.ImageScore`).
    num_classes, names, ignore_index, distance, tolerance
        As `BoundaryCounts`; the rules the images were counted with.
    """
    total = BoundaryCounts(num_classes, names, ignore_index, distance, tolerance)
    for s in scores:
        if s.boundary is None:
            continue
        try:
            total.add_sparse(*s.boundary)
        except ValueError as e:
            raise ValueError(f"{s.image}: {e}") from None
        total.images += 1
    return total
