"""Scoring a model on photos with their ground truth (`coreseg.evaluation.datasets`):
what `coreseg eval MODEL --images DIR --gt DIR` (or a VOC or Cityscapes
tree, or a list file) does for one image, here, in a worker process or in
a Ray actor.

The model's classes meet the dataset's by name (or by --map groups, see
`coreseg.metrics.align_classes`); a ground truth without names is read in
the model's own ids. The dataset's "void" value (255 in VOC and
Cityscapes) leaves pixels out, and photo pixels the model never saw
(outside a ``crop="center"``) are left out as well.
"""

from __future__ import annotations

import numpy as np

from .datasets import GroundTruthSpec, Pair, read_ground_truth
from .scoring import UNSEEN, ImageScore, score_maps, scored_classes, scored_prediction
from .worst import preview_of

__all__ = ["ImageScorer", "image_worker", "dataset_names"]


def dataset_names(spec: GroundTruthSpec, model_labels) -> list[str]:
    """The dataset's class names: its own, else the model's (ids 0-255 as
    names when it has none)."""
    if spec.names is not None:
        return list(spec.names)
    return list(model_labels) if model_labels else [str(i) for i in range(256)]


class ImageScorer:
    """Scores a model on one `Pair` (photo, ground truth) at a time.

    Parameters
    ----------
    model : Segmenter
    spec : GroundTruthSpec
        How the ground truth reads: its class names (None: the model's),
        its ignored value, its colour table.
    groups : dict, optional
        {model class: [dataset classes]} (`coreseg eval --map`).
    previews : bool
        Attach each score's `coreseg.evaluation.worst.Preview` (for worst/).

    Attributes
    ----------
    names : list of str
        The scored classes, index = id in the scores.
    ignore_index : int or None
        The value of ground-truth pixels left out, in scored ids: the
        dataset's own when it is no scored id (255 in VOC), else the scored
        id of the dataset class it names (that class then is out of every
        score too, as `ConfusionMatrix` says), else `UNSEEN`.
    """

    def __init__(self, model, spec: GroundTruthSpec, groups=None, previews: bool = False):
        self.model, self.spec, self.previews = model, spec, previews
        self.dataset_names = dataset_names(spec, model.labels)
        self.names, self.gt_lut, self.lut = scored_classes(model.labels, self.dataset_names, groups)
        ignore = spec.ignore_index
        if ignore is None:
            self.ignore_index = None
        elif 0 <= ignore < len(self.dataset_names):
            scored = int(self.gt_lut[ignore])
            others = [n for i, n in enumerate(self.dataset_names) if self.gt_lut[i] == scored and i != ignore]
            if others:
                raise ValueError(f"the ignored id {ignore} is dataset class {self.dataset_names[ignore]!r}, which "
                                 f"--map groups with {', '.join(others)}: the group cannot be both scored and "
                                 "ignored")
            self.ignore_index = scored
        else:
            self.ignore_index = ignore if ignore >= len(self.names) else UNSEEN

    def _ground_truth(self, pair: Pair) -> np.ndarray:
        """The pair's ground truth in scored ids (`ignore_index` where ignored)."""
        gt = read_ground_truth(pair.gt, self.spec.colors)
        ids = gt.astype(np.int32, copy=False)
        n, ignore = len(self.dataset_names), self.spec.ignore_index
        ignored = ids == ignore if ignore is not None else np.zeros(ids.shape, bool)
        bad = ((ids < 0) | (ids >= n)) & ~ignored
        if bad.any():
            value = int(ids[bad].max())
            hint = (" (no --names: the ground truth's ids are read as the model's; give the dataset's classes "
                    "with --names FILE|LIST|PRESET)" if self.spec.names is None else "")
            raise ValueError(f"{pair.gt} has id {value} ({int((ids == value).sum())} pixels), but the dataset has "
                             f"{n} classes (ids 0..{n - 1}){hint}; a value that means 'no class': --ignore-index "
                             f"{value}")
        if ignore is None or 0 <= ignore < n:  # an ignored class maps to its scored id, ignored there
            return self.gt_lut[ids]
        out = self.gt_lut[np.where(ignored, 0, ids)]
        out[ignored] = self.ignore_index
        return out

    def maps(self, pair):
        """(photo, ground truth, prediction) of a pair: the photo as read
        ((H, W, 3|4) uint8), both maps (H, W) int32 in scored ids, the
        prediction -1 where the model never saw the photo.

        Raises
        ------
        ValueError
            A photo and ground truth of different sizes (naming both), ids
            the dataset does not have, colours its table does not have.
        """
        from ..files.images import read_image

        pair = Pair(*pair) if not isinstance(pair, Pair) else pair
        gt = self._ground_truth(pair)
        photo = read_image(pair.image)
        if photo.shape[:2] != gt.shape:
            raise ValueError(f"{pair.image} is {photo.shape[1]}x{photo.shape[0]}, but its ground truth {pair.gt} is "
                             f"{gt.shape[1]}x{gt.shape[0]}: a photo and its ground truth must have one size")
        seg = self.model.predict(photo)
        try:
            pred = scored_prediction(seg, gt.shape, self.lut)
        except ValueError as e:
            raise ValueError(f"{pair.image}: {e}") from None
        return photo, gt, pred

    def __call__(self, pair) -> ImageScore:
        pair = Pair(*pair) if not isinstance(pair, Pair) else pair
        photo, gt, pred = self.maps(pair)
        score = score_maps(pair.name, gt, pred, len(self.names), self.names, self.ignore_index)
        score.preview = preview_of(photo, gt, pred) if self.previews else None
        return score


def image_worker(model_path: str, load_kwargs: dict, spec: GroundTruthSpec, groups, threads: int | None,
                 previews: bool = False):
    """What a worker process builds (coreseg.scaleout.workers): the model
    loaded there, with the threads it may use (and `ImageScorer`'s
    `previews`)."""
    from .scoring import worker_model

    return ImageScorer(worker_model(model_path, threads, load_kwargs), spec, groups, previews)

