"""Segmentations as files other tools open: one mask per class, class
outlines as polygons, and COCO annotations.

- `class_masks`: {class id: (H, W) bool} for the classes present.
- `polygons`: each class's outlines as polygons with their holes (OpenCV's
  ``findContours`` with the two-level hierarchy; extra ``groundtruth``);
  `rasterize` draws them back.
- `coco_rle` / `CocoWriter`: COCO-format annotations, one per class per
  image, segmentation as RLE (pycocotools' encoder; extra ``coco``), with
  categories from the model's labels, loadable by pycocotools' ``COCO``.

Every function takes a class map at the image's resolution (e.g.
``Segmentation.full_labels()``); ids < 0 (pixels the model never saw) and
"--" labels are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .safe_io import write_text

__all__ = ["class_masks", "polygons", "rasterize", "coco_rle", "CocoWriter", "opencv"]


def _present(labels: np.ndarray, names) -> list[int]:
    ids = [int(i) for i in np.unique(labels) if i >= 0]
    return [i for i in ids if names is None or i >= len(names) or names[i] != "--"]


def class_masks(labels: np.ndarray, names=None) -> dict[int, np.ndarray]:
    """{class id: (H, W) bool mask} for every class present in `labels`."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be a 2-D class map, got shape {labels.shape}")
    return {i: labels == i for i in _present(labels, names)}


def opencv():
    try:
        import cv2
    except ImportError:
        raise ImportError("polygons need OpenCV: pip install 'coreseg[groundtruth]'") from None
    return cv2


def polygons(mask: np.ndarray) -> list[dict]:
    """Outlines of a boolean mask as polygons with holes.

    Returns
    -------
    list of {"outer": [[x, y], ...], "holes": [[[x, y], ...], ...]}
        Vertices are the centres of the region's own boundary pixels
        (OpenCV's convention), for outer rings and holes alike, in order
        around each ring. `rasterize` turns them back into the mask.
    """
    cv2 = opencv()
    mask = np.ascontiguousarray(mask, np.uint8)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    hierarchy = hierarchy[0]
    out = []
    for i, contour in enumerate(contours):
        if hierarchy[i][3] != -1:  # a hole: listed with its outer ring
            continue
        holes, child = [], hierarchy[i][2]
        while child != -1:
            holes.append(contours[child][:, 0, :].tolist())
            child = hierarchy[child][0]
        out.append({"outer": contour[:, 0, :].tolist(), "holes": holes})
    return out


def rasterize(polys: list[dict], shape) -> np.ndarray:
    """The (H, W) bool mask of `polygons`' output, bit for bit.

    Each polygon is drawn on its own (its outer ring filled, each hole
    cleared, then the holes' rings, the region's own pixels, drawn back)
    and the polygons are added: a region inside a hole of another (an
    island in a lake) is a polygon of its own, and clearing that hole must
    not clear it.
    """
    cv2 = opencv()
    h, w = shape
    out = np.zeros((h, w), np.uint8)
    for p in polys:
        outer = _ring(p["outer"])
        if not len(outer):
            continue
        # Drawn in the outer ring's bounding box (its holes lie inside it).
        x0, y0 = np.maximum(outer.min(axis=0)[0], 0)
        x1, y1 = np.minimum(outer.max(axis=0)[0] + 1, (w, h))
        if x1 <= x0 or y1 <= y0:
            continue
        layer = np.zeros((y1 - y0, x1 - x0), np.uint8)
        origin = np.array([x0, y0], np.int32)
        cv2.fillPoly(layer, [outer - origin], 1)
        holes = [_ring(hole) - origin for hole in p["holes"]]
        for hole in holes:  # one at a time: two holes' rings may share pixels
            if len(hole):
                cv2.fillPoly(layer, [hole], 0)
        for hole in holes:
            if len(hole):
                cv2.polylines(layer, [hole], True, 1)
        out[y0:y1, x0:x1] |= layer
    return out.astype(bool)


def _ring(points) -> np.ndarray:
    return np.asarray(points, np.int32).reshape(-1, 1, 2)


def _mask_api():
    try:
        from pycocotools import mask as mask_api
    except ImportError:
        raise ImportError("COCO export needs pycocotools: pip install 'coreseg[coco]'") from None
    return mask_api


def coco_rle(mask: np.ndarray) -> dict:
    """COCO's compressed RLE of a boolean mask: {"size": [H, W], "counts": str}."""
    rle = _mask_api().encode(np.asfortranarray(mask, np.uint8))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


class CocoWriter:
    """A COCO annotation file built image by image.

    Parameters
    ----------
    names : list of str
        Class names, index = class id: the categories (id = class id + 1,
        as COCO ids start at 1; "--" ids are not categories).
    """

    def __init__(self, names):
        if names is None:
            raise ValueError("COCO categories need class names, and the model has none: name its classes "
                             "(load(labels=[...]), or --labels on the command line)")
        _mask_api()  # the extra's message now, not after the first image
        self.names = list(names)
        self.images, self.annotations = [], []

    def add(self, file_name: str, labels: np.ndarray) -> None:
        """One image's class map (H, W) at its own resolution."""
        self.add_annotations(self.annotate(file_name, labels))

    def annotate(self, file_name: str, labels: np.ndarray) -> tuple[dict, list[dict]]:
        """(image, annotations) of one class map, without ids yet: the
        costly part of `add`, safe to run on several threads at once."""
        h, w = labels.shape
        image = {"file_name": file_name, "width": int(w), "height": int(h)}
        mask_api = _mask_api()
        annotations = []
        for class_id, mask in class_masks(labels, self.names).items():
            if class_id >= len(self.names):
                raise ValueError(f"{file_name}: class id {class_id} has no name (the model has {len(self.names)})")
            rle = coco_rle(mask)
            encoded = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
            x, y, bw, bh = (float(v) for v in mask_api.toBbox(encoded))
            annotations.append({"category_id": class_id + 1, "segmentation": rle, "area": float(mask.sum()),
                                "bbox": [x, y, bw, bh], "iscrowd": 0})
        return image, annotations

    def add_annotations(self, annotated: tuple[dict, list[dict]]) -> None:
        """Add what `annotate` made, numbering the image and its annotations
        in the order they are added."""
        image, annotations = annotated
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, **image})
        for a in annotations:
            self.annotations.append({"id": len(self.annotations) + 1, "image_id": image_id, **a})

    def to_dict(self) -> dict:
        categories = [{"id": i + 1, "name": n, "supercategory": ""} for i, n in enumerate(self.names) if n != "--"]
        return {"info": {"description": "coreseg segmentations"}, "images": self.images,
                "annotations": self.annotations, "categories": categories}

    def write(self, path) -> Path:
        path = Path(path)
        write_text(path, json.dumps(self.to_dict()) + "\n")
        return path
