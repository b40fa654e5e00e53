"""Scoring a dataset one image at a time, wherever the image is scored: in
this process, in a worker process (`coreseg eval --jobs N`) or in a Ray
actor (coreseg.dist).

Each image gives an `ImageScore`: the nonzero cells of its confusion
matrix and its own mIoU. Scores merge by adding integer counts, so the
merged matrix is the same, bit for bit, in whatever order and on however
many processes or machines the images were scored.

Examples
--------
>>> import numpy as np
>>> gt, pred = np.array([[0, 1]], np.int32), np.array([[0, 2]], np.int32)
>>> s = ImageScore.of("a", ConfusionMatrix(3).update(gt, pred))
>>> s.rows.tolist(), s.cols.tolist(), s.counts.tolist()
([0, 1], [0, 2], [1, 1])
>>> merge_scores([s, s], 3).matrix.tolist()
[[2, 0, 0], [0, 0, 2], [0, 0, 0]]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .metrics import ConfusionMatrix, align_classes

__all__ = ["ImageScore", "merge_scores", "DatapointScorer", "PairScorer", "read_label_png", "classes_seen", "scored_classes"]


@dataclass
class ImageScore:
    """One image's confusion-matrix counts, sparse, and its mIoU.

    Attributes
    ----------
    image : str
        The image's name.
    rows, cols : (k,) int64 ndarray
        Ground-truth and predicted ids of the nonzero cells.
    counts : (k,) int64 ndarray
        Pixels in each cell.
    num_classes : int
        The size of the image's own matrix.
    miou : float or None
        The image's mIoU (None when no class is present).
    """

    image: str
    rows: np.ndarray
    cols: np.ndarray
    counts: np.ndarray
    num_classes: int
    miou: float | None

    @classmethod
    def of(cls, image: str, cm: ConfusionMatrix) -> "ImageScore":
        rows, cols = np.nonzero(cm.matrix)
        miou = cm.miou()
        return cls(image, rows.astype(np.int64), cols.astype(np.int64), cm.matrix[rows, cols],
                   cm.num_classes, miou if math.isfinite(miou) else None)


def merge_scores(scores, num_classes: int | None = None, names=None,
                 ignore_index: int | None = None) -> ConfusionMatrix:
    """The confusion matrix of many images: their counts added.

    Parameters
    ----------
    scores : iterable of ImageScore
    num_classes : int, optional
        Default: the largest of the scores' own sizes (1 at least).
    names, ignore_index
        As `ConfusionMatrix`.
    """
    scores = list(scores)
    n = num_classes or max([s.num_classes for s in scores] + [1])
    cm = ConfusionMatrix(n, names, ignore_index=ignore_index)
    for s in scores:
        if s.num_classes > n:
            raise ValueError(f"{s.image}: its matrix has {s.num_classes} classes, more than {n}")
        cm.matrix[s.rows, s.cols] += s.counts  # each cell once per score: no repeated index
    return cm


def read_label_png(path) -> np.ndarray:
    """A one-channel (8- or 16-bit) label PNG as uint8, else int32."""
    from ..files.images import open_image

    path = Path(path)
    with open_image(path) as im:  # checked: exists, readable, not a bomb
        if im.mode not in ("L", "I;16", "I;16B", "I", "P"):
            raise ValueError(f"{path}: expected a one-channel label PNG, got mode {im.mode}")
        labels = np.asarray(im)
    return labels.astype(np.int32) if labels.dtype != np.uint8 else labels


def classes_seen(*maps, ignore_index=None) -> int:
    """1 + the largest id in the maps, the ignored value left out (1 at least)."""
    top = 0
    for labels in maps:
        values = labels[labels != ignore_index] if ignore_index is not None else labels
        if values.size:
            top = max(top, int(values.max()) + 1)
    return max(top, 1)


class PairScorer:
    """Scores a predicted label PNG against a ground-truth one.

    Parameters
    ----------
    num_classes : int, optional
        Default: each image's largest id + 1 (scores then merge into the
        largest of them).
    names : list of str, optional
        With `num_classes`.
    ignore_index : int, optional
    """

    def __init__(self, num_classes: int | None = None, names=None, ignore_index: int | None = None):
        self.num_classes, self.names, self.ignore_index = num_classes, names, ignore_index

    def __call__(self, pair) -> ImageScore:
        """pair: (image name, ground-truth path, prediction path)."""
        name, gt_path, pred_path = pair
        gt, pred = read_label_png(gt_path), read_label_png(pred_path)
        n = self.num_classes or classes_seen(gt, pred, ignore_index=self.ignore_index)
        names = self.names if self.num_classes else None
        return ImageScore.of(name, ConfusionMatrix(n, names, ignore_index=self.ignore_index).update(gt, pred))


class DatapointScorer:
    """Scores a model on Datagen datapoints: the model's classes against the
    dataset's, by name (or by `groups`, see `coreseg.metrics.align_classes`).

    Parameters
    ----------
    model : Segmenter
    classes : coreseg.groundtruth.DatagenClasses
        The dataset's class list.
    groups : dict, optional
        {model class: [dataset classes]}.

    Attributes
    ----------
    names : list of str
        The scored classes, index = id in the scores.
    """

    def __init__(self, model, classes, groups=None):
        self.model, self.classes = model, classes
        self.names, self.gt_lut, self.lut = scored_classes(model.labels, classes.names, groups)

    def __call__(self, folder) -> ImageScore | None:
        """The score of one datapoint folder; None when it has no photo."""
        from .groundtruth import load_datapoint

        folder = Path(folder)
        point = load_datapoint(folder, self.classes)
        if point.image is None:
            return None
        pred = self.model.predict(point.image).labels
        if pred.min() < 0 or pred.max() >= len(self.lut):
            raise ValueError(f"{folder}: the model predicted id {int(pred.max())}, beyond its {len(self.lut)} labels")
        cm = ConfusionMatrix(len(self.names), self.names).update(self.gt_lut[point.labels], self.lut[pred])
        return ImageScore.of(folder.name, cm)


def scored_classes(model_labels, dataset_names, groups=None):
    """`coreseg.metrics.align_classes` of a model's labels (ids 0-255 when
    it has none) and a dataset's classes, refusing a pair that shares no
    class: every score would be 0."""
    model_names = model_labels or [str(i) for i in range(256)]
    if not groups and not any(name in dataset_names for name in model_names):
        raise ValueError(f"none of the model's classes ({_some(model_names)}) is a class of the dataset "
                         f"({_some(dataset_names)}): every score would be 0")
    return align_classes(model_names, dataset_names, groups or {})


def _some(names, k: int = 8) -> str:
    return ", ".join(names[:k]) + (", ..." if len(names) > k else "")


# What a worker process builds (coreseg.scaleout.workers, coreseg.dist): the model
# is loaded there, with the threads that worker may use.

def datapoint_worker(model_path: str, load_kwargs: dict, classes, groups, threads: int | None) -> DatapointScorer:
    from ..running.loader import load_model

    return DatapointScorer(load_model(model_path, threads, **load_kwargs), classes, groups)


def pair_worker(num_classes, names, ignore_index) -> PairScorer:
    return PairScorer(num_classes, names, ignore_index)
