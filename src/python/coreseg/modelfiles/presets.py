"""Standard label sets and their standard palettes, for published
segmentation models that ship without class names.

Presets (`PRESETS`):

``"voc"``
    The 21 PASCAL VOC classes ("background" at id 0), coloured with the VOC
    devkit's bit-interleaved colour map (`coreseg.kernels.palette.default_palette`).
``"cityscapes"``
    The 19 Cityscapes train ids, names and colours from cityscapesScripts'
    ``cityscapesscripts/helpers/labels.py``.
``"cityscapes-bg"``
    The 20-class variant some exports use: "background" (black) at id 0,
    then the 19 Cityscapes classes shifted up by one.
``"ade20k"``
    The 150 ADE20K (SceneParsing) classes, without a background class,
    names and palette from mmsegmentation's ``ADE20KDataset``
    (``mmseg/datasets/ade.py``, ``METAINFO``).
"""

from __future__ import annotations

import difflib

import numpy as np

from ..kernels.palette import clear_background, default_palette

__all__ = ["PRESETS", "preset", "is_preset"]

PRESETS = ("voc", "cityscapes", "cityscapes-bg", "ade20k")

_VOC_LABELS = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)

# Train ids 0..18, in order, with their labels.py colours.
_CITYSCAPES = (
    ("road", (128, 64, 128)),
    ("sidewalk", (244, 35, 232)),
    ("building", (70, 70, 70)),
    ("wall", (102, 102, 156)),
    ("fence", (190, 153, 153)),
    ("pole", (153, 153, 153)),
    ("traffic light", (250, 170, 30)),
    ("traffic sign", (220, 220, 0)),
    ("vegetation", (107, 142, 35)),
    ("terrain", (152, 251, 152)),
    ("sky", (70, 130, 180)),
    ("person", (220, 20, 60)),
    ("rider", (255, 0, 0)),
    ("car", (0, 0, 142)),
    ("truck", (0, 0, 70)),
    ("bus", (0, 60, 100)),
    ("train", (0, 80, 100)),
    ("motorcycle", (0, 0, 230)),
    ("bicycle", (119, 11, 32)),
)

# mmseg spells id 7 'bed ' (trailing space); it is stripped below so the name
# matches what users type.
_ADE20K_LABELS = (
    'wall', 'building', 'sky', 'floor', 'tree', 'ceiling', 'road',
    'bed ', 'windowpane', 'grass', 'cabinet', 'sidewalk',
    'person', 'earth', 'door', 'table', 'mountain', 'plant',
    'curtain', 'chair', 'car', 'water', 'painting', 'sofa',
    'shelf', 'house', 'sea', 'mirror', 'rug', 'field', 'armchair',
    'seat', 'fence', 'desk', 'rock', 'wardrobe', 'lamp',
    'bathtub', 'railing', 'cushion', 'base', 'box', 'column',
    'signboard', 'chest of drawers', 'counter', 'sand', 'sink',
    'skyscraper', 'fireplace', 'refrigerator', 'grandstand',
    'path', 'stairs', 'runway', 'case', 'pool table', 'pillow',
    'screen door', 'stairway', 'river', 'bridge', 'bookcase',
    'blind', 'coffee table', 'toilet', 'flower', 'book', 'hill',
    'bench', 'countertop', 'stove', 'palm', 'kitchen island',
    'computer', 'swivel chair', 'boat', 'bar', 'arcade machine',
    'hovel', 'bus', 'towel', 'light', 'truck', 'tower',
    'chandelier', 'awning', 'streetlight', 'booth',
    'television receiver', 'airplane', 'dirt track', 'apparel',
    'pole', 'land', 'bannister', 'escalator', 'ottoman', 'bottle',
    'buffet', 'poster', 'stage', 'van', 'ship', 'fountain',
    'conveyer belt', 'canopy', 'washer', 'plaything',
    'swimming pool', 'stool', 'barrel', 'basket', 'waterfall',
    'tent', 'bag', 'minibike', 'cradle', 'oven', 'ball', 'food',
    'step', 'tank', 'trade name', 'microwave', 'pot', 'animal',
    'bicycle', 'lake', 'dishwasher', 'screen', 'blanket',
    'sculpture', 'hood', 'sconce', 'vase', 'traffic light',
    'tray', 'ashcan', 'fan', 'pier', 'crt screen', 'plate',
    'monitor', 'bulletin board', 'shower', 'radiator', 'glass',
    'clock', 'flag',
)

# Copied as is from mmseg (it repeats (140, 140, 140) for road and skyscraper).
_ADE20K_PALETTE = (
    [120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50],
    [4, 200, 3], [120, 120, 80], [140, 140, 140], [204, 5, 255],
    [230, 230, 230], [4, 250, 7], [224, 5, 255], [235, 255, 7],
    [150, 5, 61], [120, 120, 70], [8, 255, 51], [255, 6, 82],
    [143, 255, 140], [204, 255, 4], [255, 51, 7], [204, 70, 3],
    [0, 102, 200], [61, 230, 250], [255, 6, 51], [11, 102, 255],
    [255, 7, 71], [255, 9, 224], [9, 7, 230], [220, 220, 220],
    [255, 9, 92], [112, 9, 255], [8, 255, 214], [7, 255, 224],
    [255, 184, 6], [10, 255, 71], [255, 41, 10], [7, 255, 255],
    [224, 255, 8], [102, 8, 255], [255, 61, 6], [255, 194, 7],
    [255, 122, 8], [0, 255, 20], [255, 8, 41], [255, 5, 153],
    [6, 51, 255], [235, 12, 255], [160, 150, 20], [0, 163, 255],
    [140, 140, 140], [250, 10, 15], [20, 255, 0], [31, 255, 0],
    [255, 31, 0], [255, 224, 0], [153, 255, 0], [0, 0, 255],
    [255, 71, 0], [0, 235, 255], [0, 173, 255], [31, 0, 255],
    [11, 200, 200], [255, 82, 0], [0, 255, 245], [0, 61, 255],
    [0, 255, 112], [0, 255, 133], [255, 0, 0], [255, 163, 0],
    [255, 102, 0], [194, 255, 0], [0, 143, 255], [51, 255, 0],
    [0, 82, 255], [0, 255, 41], [0, 255, 173], [10, 0, 255],
    [173, 255, 0], [0, 255, 153], [255, 92, 0], [255, 0, 255],
    [255, 0, 245], [255, 0, 102], [255, 173, 0], [255, 0, 20],
    [255, 184, 184], [0, 31, 255], [0, 255, 61], [0, 71, 255],
    [255, 0, 204], [0, 255, 194], [0, 255, 82], [0, 10, 255],
    [0, 112, 255], [51, 0, 255], [0, 194, 255], [0, 122, 255],
    [0, 255, 163], [255, 153, 0], [0, 255, 10], [255, 112, 0],
    [143, 255, 0], [82, 0, 255], [163, 255, 0], [255, 235, 0],
    [8, 184, 170], [133, 0, 255], [0, 255, 92], [184, 0, 255],
    [255, 0, 31], [0, 184, 255], [0, 214, 255], [255, 0, 112],
    [92, 255, 0], [0, 224, 255], [112, 224, 255], [70, 184, 160],
    [163, 0, 255], [153, 0, 255], [71, 255, 0], [255, 0, 163],
    [255, 204, 0], [255, 0, 143], [0, 255, 235], [133, 255, 0],
    [255, 0, 235], [245, 0, 255], [255, 0, 122], [255, 245, 0],
    [10, 190, 212], [214, 255, 0], [0, 204, 255], [20, 0, 255],
    [255, 255, 0], [0, 153, 255], [0, 41, 255], [0, 255, 204],
    [41, 0, 255], [41, 255, 0], [173, 0, 255], [0, 245, 255],
    [71, 0, 255], [122, 0, 255], [0, 255, 184], [0, 92, 255],
    [184, 255, 0], [0, 133, 255], [255, 214, 0], [25, 194, 194],
    [102, 255, 0], [92, 0, 255],
)


def _rgba(rgb) -> np.ndarray:
    colors = np.full((len(rgb), 4), 255, np.uint8)
    colors[:, :3] = np.asarray(rgb, np.uint8).reshape(len(rgb), 3)
    return colors


def _cityscapes() -> tuple[list[str], np.ndarray]:
    return [name for name, _ in _CITYSCAPES], _rgba([rgb for _, rgb in _CITYSCAPES])


def _build(name: str) -> tuple[list[str], np.ndarray]:
    labels, colors = _named(name)
    return labels, clear_background(colors, labels)  # the background is left alone in overlays


def _named(name: str) -> tuple[list[str], np.ndarray]:
    if name == "voc":
        return list(_VOC_LABELS), default_palette(len(_VOC_LABELS))
    if name == "cityscapes":
        return _cityscapes()
    if name == "cityscapes-bg":
        labels, colors = _cityscapes()
        return ["background"] + labels, np.concatenate([_rgba([(0, 0, 0)]), colors])
    if name == "ade20k":
        return [label.strip() for label in _ADE20K_LABELS], _rgba(_ADE20K_PALETTE)
    raise AssertionError(name)  # PRESETS and _build out of step


def is_preset(value) -> bool:
    """Whether `value` is a string naming a preset (case-insensitive).

    Examples
    --------
    >>> is_preset("Cityscapes"), is_preset("coco"), is_preset(3)
    (True, False, False)
    """
    return isinstance(value, str) and value.strip().lower() in PRESETS


def preset(name: str) -> tuple[list[str], np.ndarray]:
    """The labels and colours of a standard label set.

    Parameters
    ----------
    name : str
        One of `PRESETS`, case-insensitive ("VOC" and "Cityscapes" work).

    Returns
    -------
    labels : list of str
        Class names; the index is the class id.
    colors : (n, 4) uint8 ndarray
        RGBA colour of each class, alpha 255.

    Both are fresh copies that the caller may modify.

    Raises
    ------
    ValueError
        If `name` is not a preset; the message lists the presets and
        suggests the closest one.

    Examples
    --------
    >>> labels, colors = preset("voc")
    >>> labels[15], colors[15].tolist()
    ('person', [192, 128, 128, 255])
    """
    if not is_preset(name):
        valid = ", ".join(repr(p) for p in PRESETS)
        hint = ""
        if isinstance(name, str):
            close = difflib.get_close_matches(name.strip().lower(), PRESETS, n=1, cutoff=0.5)
            if close:
                hint = f"; did you mean {close[0]!r}?"
        raise ValueError(f"unknown label preset {name!r}: valid presets are {valid}{hint}")
    return _build(name.strip().lower())
