"""Scoring a dataset one image at a time, wherever the image is scored: in
this process, in a worker process (`coreseg eval --jobs N`) or in a Ray
actor (coreseg.dist).

Each image gives an `ImageScore`: the nonzero cells of its confusion
matrix and its own mIoU, and the nonzero rows of its boundary counts
(`coreseg.evaluation.boundary`) and its own boundary mIoU. Scores merge by
adding integer counts, so the merged matrix and boundary counts are the
same, bit for bit, in whatever order and on however many processes or
machines the images were scored.

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

from ..drawing.image_outputs import UNSEEN
from ..kernels import resize_labels
from ..kernels._args import MAX_CONFUSION_CLASSES as MAX_CLASSES
from .boundary import BoundaryCounts
from .metrics import ConfusionMatrix, align_classes
from .worst import Preview, preview_of

__all__ = ["ImageScore", "merge_scores", "score_maps", "image_boundary", "DatapointScorer", "PairScorer", "read_label_png", "classes_seen",
           "scored_classes", "prediction_at", "scored_prediction", "seen_only", "example_map", "UNSEEN",
           "LABEL_PNG_MODES"]


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
    boundary : tuple or None
        `BoundaryCounts.sparse` of the image: (ids (k,) int64, rows (k, 7)
        int64); None when not counted. `coreseg.evaluation.boundary.merge_boundary`
        adds them up.
    boundary_miou : float or None
        The image's mean Boundary IoU (None when no class is present or
        boundaries were not counted).
    preview : coreseg.evaluation.worst.Preview or None
        What worst/ would draw of the image (a scorer's ``previews=True``).
    """

    image: str
    rows: np.ndarray
    cols: np.ndarray
    counts: np.ndarray
    num_classes: int
    miou: float | None
    boundary: tuple | None = None
    boundary_miou: float | None = None
    preview: Preview | None = None

    @classmethod
    def of(cls, image: str, cm: ConfusionMatrix, boundary: BoundaryCounts | None = None) -> "ImageScore":
        rows, cols = np.nonzero(cm.matrix)
        miou = cm.miou()
        bmiou = boundary.mean_iou() if boundary is not None else math.nan
        return cls(image, rows.astype(np.int64), cols.astype(np.int64), cm.matrix[rows, cols],
                   cm.num_classes, miou if math.isfinite(miou) else None,
                   boundary.sparse() if boundary is not None else None, bmiou if math.isfinite(bmiou) else None)


def image_boundary(gt, pred, num_classes: int, names=None, ignore_index: int | None = None) -> BoundaryCounts:
    """The boundary counts of one image, on its whole maps.

    Parameters
    ----------
    gt : (h, w) ndarray of int32, uint8 or uint16
        Ground truth in scored ids (`ignore_index` where ignored).
    pred : (h, w) ndarray of int32, uint8 or uint16
        Prediction in scored ids, -1 where the model never saw the pixel
        (left out, as the confusion matrix leaves it out via `seen_only`).
    num_classes, names, ignore_index
        As `BoundaryCounts`.

    Notes
    -----
    A predicted id >= `num_classes` over an ignored ground-truth pixel is
    taken as unseen there: the confusion matrix accepts it (the pixel
    counts nowhere), the boundary kernel would refuse it, and either way
    it is no class, so no class's boundary changes.
    """
    if ignore_index is not None:
        stray = (gt == ignore_index) & (pred >= num_classes)
        if stray.any():
            pred = np.where(stray, -1, pred).astype(np.int32)
    return BoundaryCounts(num_classes, names, ignore_index=ignore_index).add(gt, pred)


def score_maps(image: str, gt, pred, num_classes: int, names=None, ignore_index: int | None = None) -> ImageScore:
    """The `ImageScore` of one image's maps (same shape; pred -1 where
    unseen): its confusion matrix over the seen pixels and its boundary
    counts (`image_boundary`). The confusion matrix checks the ids first,
    so a bad id is refused in its words."""
    cm = ConfusionMatrix(num_classes, names, ignore_index=ignore_index).update(*seen_only(gt, pred))
    return ImageScore.of(image, cm, image_boundary(gt, pred, num_classes, names, ignore_index))


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


#: Pillow modes of one-channel label PNGs: 1-bit, 8-bit (grey or palette
#: indices), 16-bit and 32-bit.
LABEL_PNG_MODES = ("1", "L", "P", "I;16", "I;16B", "I;16L", "I")


def read_label_png(path) -> np.ndarray:
    """A one-channel label PNG (1-, 8-, 16- or 32-bit) as uint8 (1- and
    8-bit, a 1-bit PNG's pixels 0 and 1), else int32."""
    from ..files.images import open_image

    path = Path(path)
    with open_image(path) as im:  # checked: exists, readable, not a bomb
        if im.mode not in LABEL_PNG_MODES:
            raise ValueError(f"{path}: expected a one-channel label PNG (1-, 8- or 16-bit), got mode {im.mode} "
                             f"({len(im.getbands())} channels)")
        labels = np.asarray(im)
    if labels.dtype == bool:  # Pillow's 1-bit pixels: bools whose bytes may be 255
        return labels.astype(np.uint8)
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

    The two must have the same size (a prediction of another size, a
    transposed one say, is an error naming both files). Pixels a
    prediction marks as never seen (`UNSEEN`, what `coreseg segment` writes
    outside a centre crop) are left out of the scores. Every error names
    the files.

    Parameters
    ----------
    num_classes : int, optional
        Default: each image's largest id + 1 (scores then merge into the
        largest of them).
    names : list of str, optional
        With `num_classes`.
    ignore_index : int, optional
    previews : bool
        Attach each score's `Preview` (for worst/).
    """

    def __init__(self, num_classes: int | None = None, names=None, ignore_index: int | None = None,
                 previews: bool = False):
        self.num_classes, self.names, self.ignore_index, self.previews = num_classes, names, ignore_index, previews

    def maps(self, pair):
        """(None: no photo, ground truth, prediction) of a pair, the
        prediction's `UNSEEN` pixels -1."""
        _, gt_path, pred_path = pair
        gt, pred = read_label_png(gt_path), read_label_png(pred_path)
        if gt.shape != pred.shape:
            raise ValueError(f"{pred_path} is {pred.shape[1]}x{pred.shape[0]}, but its ground truth {gt_path} is "
                             f"{gt.shape[1]}x{gt.shape[0]}: a prediction must have its ground truth's size")
        if pred.dtype != np.uint8:  # an 8-bit map cannot hold UNSEEN
            pred = np.where(pred == UNSEEN, -1, pred).astype(np.int32)
        return None, gt, pred

    def __call__(self, pair) -> ImageScore:
        """pair: (image name, ground-truth path, prediction path)."""
        name, gt_path, pred_path = pair
        _, gt, pred = self.maps(pair)
        if self.num_classes:
            n = self.num_classes
        else:
            seen = seen_only(gt, pred)  # ids where the model saw nothing count no class
            n = classes_seen(*seen, ignore_index=self.ignore_index)
            if n > MAX_CLASSES:
                top, path = max((classes_seen(m, ignore_index=ignore) - 1, p) for m, p, ignore in
                                ((seen[0], gt_path, self.ignore_index), (seen[1], pred_path, None)))
                raise ValueError(f"{path} has id {top}, and at most {MAX_CLASSES} classes (ids 0..{MAX_CLASSES - 1}) "
                                 "are scored (an ignore value in the ground truth: --ignore-index)")
        names = self.names if self.num_classes else None
        try:
            score = score_maps(name, gt, pred, n, names, self.ignore_index)
        except ValueError as e:
            raise ValueError(f"{pred_path} against {gt_path}: {e}") from None
        score.preview = preview_of(None, gt, pred) if self.previews else None
        return score


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
    previews : bool
        Attach each score's `Preview` (for worst/).

    Attributes
    ----------
    names : list of str
        The scored classes, index = id in the scores.
    """

    def __init__(self, model, classes, groups=None, previews: bool = False):
        self.model, self.classes, self.previews = model, classes, previews
        self.names, self.gt_lut, self.lut = scored_classes(model.labels, classes.names, groups)

    def maps(self, folder):
        """(photo, ground truth, prediction) of one datapoint, both maps in
        the scored ids at the ground truth's size (-1 where the model never
        saw the photo); None when it has no photo."""
        from .groundtruth import load_datapoint

        folder = Path(folder)
        point = load_datapoint(folder, self.classes)
        if point.image is None:
            return None
        seg = self.model.predict(point.image)
        try:
            pred = scored_prediction(seg, point.labels.shape, self.lut)
        except ValueError as e:
            raise ValueError(f"{folder}: {e}") from None
        return point.image, self.gt_lut[point.labels], pred

    def __call__(self, folder) -> ImageScore | None:
        """The score of one datapoint folder; None when it has no photo."""
        maps = self.maps(folder)
        if maps is None:
            return None
        photo, gt, pred = maps
        score = score_maps(Path(folder).name, gt, pred, len(self.names), self.names)
        score.preview = preview_of(photo, gt, pred) if self.previews else None
        return score


def scored_prediction(seg, shape, lut: np.ndarray) -> np.ndarray:
    """`prediction_at` in scored ids: ``lut[id]``, -1 where unseen; a
    predicted id beyond `lut` (the model's labels) is a ValueError."""
    if seg.labels.size and int(seg.labels.max()) >= len(lut):
        raise ValueError(f"the model predicted id {int(seg.labels.max())}, beyond its {len(lut)} labels")
    pred = prediction_at(seg, shape)
    return np.where(pred >= 0, lut[np.maximum(pred, 0)], -1).astype(np.int32)


def prediction_at(seg, shape) -> np.ndarray:
    """What a `Segmentation` says about each pixel of a ground truth of
    `shape` (height, width): its class map at the photo's own resolution
    (`full_labels`: whatever the crop mode, a letterbox's padding is not
    in it), mapped onto the ground truth by nearest neighbour when the
    photo has another size. -1 where the model never saw the photo
    (outside a ``crop="center"``), and only there: a negative id from the
    model itself is a ValueError."""
    low = int(seg.labels.min()) if seg.labels.size else 0
    if low < 0:
        raise ValueError(f"the model predicted id {low}: class ids start at 0")
    full = seg.full_labels()
    if full.shape != tuple(shape):
        full = resize_labels(full, (shape[1], shape[0]))
    return full


def seen_only(gt: np.ndarray, pred: np.ndarray):
    """(gt, pred) without the pixels the model never saw (pred < 0): the
    arrays as they are when it saw every one, else the seen pixels as one
    row each. Scores describe what the model was shown, and nothing else."""
    seen = pred >= 0
    if seen.all():
        return gt, pred
    return gt[seen][None], pred[seen][None]


def scored_classes(model_labels, dataset_names, groups=None):
    """`coreseg.metrics.align_classes` of a model's labels (ids 0-255 when
    it has none) and a dataset's classes, refusing a pair that shares no
    class but background when no `groups` say how they meet: every other
    score would be 0. The error lists both and an example --map."""
    from ..kernels.palette import is_background

    model_names = model_labels or [str(i) for i in range(256)]
    dataset_set = set(dataset_names)
    shared = [n for n in model_names if n in dataset_set]
    if not groups and not any(not is_background(n) for n in shared):
        aside = ", background aside" if shared else ""
        hint = ""
        if not model_labels:
            hint = ("; the model has no labels (its ids are numbers): if its ids are the dataset's, name them "
                    "with --labels FILE|LIST|PRESET (voc, cityscapes, ade20k)")
        raise ValueError(f"none of the model's classes ({_some(model_names, 40)}) is a class of the dataset "
                         f"({_some(dataset_names, 40)}){aside}: every score would be 0. Say which dataset "
                         f"classes each model class stands for with --map, e.g. "
                         f"--map '{example_map(model_names, dataset_names)}'{hint}")
    return align_classes(model_names, dataset_names, groups or {})


def example_map(model_names, dataset_names) -> str:
    """An example --map for two class lists that share no name: the first
    model class that is not background given the dataset's most common
    top-level group ("human.*" for Datagen's "human.head.hair", ...) or its
    first two classes; background to background when both have one."""
    from ..kernels.palette import is_background

    objects = [n for n in model_names if not is_background(n) and n != "--"] or list(model_names)
    theirs = [n for n in dataset_names if not is_background(n) and n != "--"] or list(dataset_names)
    tops = {}
    for name in theirs:
        if "." in name:
            top = name.split(".", 1)[0]
            tops[top] = tops.get(top, 0) + 1
    members = f"{max(tops, key=tops.get)}.*" if tops else ",".join(theirs[:2])
    parts = [f"{objects[0]}={members}"]
    ours_bg = [n for n in model_names if is_background(n)]
    their_bg = [n for n in dataset_names if is_background(n)]
    if ours_bg and their_bg and ours_bg[0] not in dataset_names:
        parts.append(f"{ours_bg[0]}={their_bg[0]}")
    return ";".join(parts)


def _some(names, k: int = 8) -> str:
    names = list(names)
    return ", ".join(names[:k]) + (f", ... ({len(names) - k} more)" if len(names) > k else "")


# What a worker process builds (coreseg.scaleout.workers, coreseg.dist): the model
# is loaded there, with the threads that worker may use.

def datapoint_worker(model_path: str, load_kwargs: dict, classes, groups, threads: int | None,
                     previews: bool = False) -> DatapointScorer:
    return DatapointScorer(worker_model(model_path, threads, load_kwargs), classes, groups, previews)


def worker_model(model_path: str, threads: int | None, load_kwargs: dict):
    """The model, loaded in a worker process: what it assumes is not warned
    about again (the parent loaded it first and said so once, before the
    progress bar; a worker's warning would land on the bar's line)."""
    from ..running.loader import load_model

    return load_model(model_path, threads, assumptions=False, **load_kwargs)


def pair_worker(num_classes, names, ignore_index, previews: bool = False) -> PairScorer:
    return PairScorer(num_classes, names, ignore_index, previews)
