"""Datasets as they come: photos and their ground truth, paired by name.

Layouts read (`coreseg eval MODEL ...`):

``--images DIR --gt DIR``
    Photos in one folder, ground truth in another, matched by stem
    (``2007_000033.jpg`` with ``2007_000033.png``).
``--list FILE``
    One ``IMAGE GT`` pair a line, or ``IMAGES_DIR GT_DIR`` (paths relative
    to the file's folder; ``#`` starts a comment; a tab between the two
    allows spaces in paths).
PASCAL VOC
    ``JPEGImages/``, ``SegmentationClass/`` (palette PNGs) and
    ``ImageSets/Segmentation/SPLIT.txt``; the 21 VOC classes, 255 ignored
    (the object borders), as the devkit defines.
Cityscapes
    ``leftImg8bit/SPLIT/CITY/*_leftImg8bit.png`` and
    ``gtFine/SPLIT/CITY/*_gtFine_labelTrainIds.png``; the 19 train ids,
    255 ignored, as cityscapesScripts defines.

Ground truth is a palette ("P") PNG whose palette index is the class id,
an 8- or 16-bit id PNG, or a colour-coded PNG with a colour table
(CamVid's ``class_dict.csv``, or a Datagen-style JSON table for 16-bit
colour).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..modelfiles.presets import preset
from .groundtruth import GroundTruthError, read_class_dict_csv, read_color_table

__all__ = ["Pair", "GroundTruthSpec", "Dataset", "find_dataset", "folder_pairs", "list_pairs", "voc_dataset",
           "cityscapes_dataset", "read_ground_truth", "read_colors", "detect_layout", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif")
#: The "void" value VOC and Cityscapes give pixels no class is scored on.
DATASET_IGNORE = 255
_SHOWN = 5  # names listed in an error before "(and N more)"


class Pair(NamedTuple):
    """A photo and its ground truth (a tuple: pickles small, and names
    itself first as every eval item does).

    Attributes
    ----------
    name : str
        The image's name in reports (its stem).
    image, gt : str
        File paths.
    """

    name: str
    image: str
    gt: str


@dataclass(frozen=True)
class GroundTruthSpec:
    """How to read a dataset's ground truth (picklable: sent to workers).

    Attributes
    ----------
    names : tuple of str or None
        The dataset's classes, index = id; None: the model's own (the
        ground truth's ids are taken to be the model's).
    ignore_index : int or None
        The ground-truth value no pixel is scored on.
    colors : (n, 3) uint8 or uint16 ndarray or None
        The colour of each class in colour-coded ground truth; None for id
        and palette PNGs.
    palette : (n, 3) uint8 ndarray or None
        The colours the dataset draws its classes in (VOC's, Cityscapes',
        the colour table's), for pictures; None: coreseg's default.
    """

    names: tuple | None = None
    ignore_index: int | None = None
    colors: np.ndarray | None = None
    palette: np.ndarray | None = None


@dataclass
class Dataset:
    """Pairs and how to read them.

    Attributes
    ----------
    pairs : list of Pair
    spec : GroundTruthSpec
    layout : str
        "voc", "cityscapes", "folders" or "list".
    description : str
        Where the pairs came from, for the report.
    """

    pairs: list
    spec: GroundTruthSpec
    layout: str
    description: str


def _some(names, k: int = _SHOWN) -> str:
    names = list(names)
    return ", ".join(names[:k]) + (f" (and {len(names) - k} more)" if len(names) > k else "")


def _stem_files(folder: Path, flag: str, suffixes=IMAGE_SUFFIXES, strip: str = "") -> dict[str, Path]:
    """{stem: path} of the files in `folder` with one of `suffixes`, `strip`
    removed from the end of stems; two files of one stem are an error."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder ({flag})")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if not path.is_file() or path.suffix.lower() not in suffixes or path.name.startswith("."):
            continue
        stem = path.stem.removesuffix(strip) if strip else path.stem
        if stem in files:
            raise ValueError(f"{files[stem]} and {path} have the same name {stem!r} ({flag}): remove or rename one")
        files[stem] = path
    return files


def _unmatched(images: dict, gts: dict, where_images: str, where_gt: str) -> str | None:
    """The error for stems on one side only, naming a few of each and how many."""
    no_gt = sorted(set(images) - set(gts))
    no_image = sorted(set(gts) - set(images))
    if not no_gt and not no_image:
        return None
    parts = []
    if no_gt:
        parts.append(f"{len(no_gt)} image(s) in {where_images} have no ground truth in {where_gt}: {_some(no_gt)}")
    if no_image:
        parts.append(f"{len(no_image)} ground truth file(s) in {where_gt} have no image in {where_images}: "
                     f"{_some(no_image)}")
    return "; ".join(parts) + " (images and ground truth are matched by file name without its extension)"


def folder_pairs(images, gt) -> list[Pair]:
    """Pairs of the photos in `images` and the PNGs in `gt`, by stem.

    Raises
    ------
    FileNotFoundError
        A folder that is not there, or one without a file.
    ValueError
        Files on one side only (a few names of each side, and how many),
        or two files of one name on a side.
    """
    images, gt = Path(images), Path(gt)
    photos = _stem_files(images, "--images")
    truth = _stem_files(gt, "--gt", (".png",))
    if not truth:
        raise FileNotFoundError(f"{gt}: no .png ground truth (--gt)")
    error = _unmatched(photos, truth, str(images), str(gt))
    if error:
        raise ValueError(error)
    return [Pair(stem, str(photos[stem]), str(truth[stem])) for stem in sorted(truth)]


def list_pairs(path) -> list[Pair]:
    """Pairs from a list file: ``IMAGE GT`` a line, relative to the file's
    folder (a tab between them when paths hold spaces), or ``IMAGES_DIR
    GT_DIR`` (their files matched by stem, as `folder_pairs`); blank lines
    and ``#`` comments skipped. Every error names the file and line; missing
    files are listed together (a few, and how many)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file (--list)") from None
    base, pairs, missing, names = path.parent, [], [], {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not line:
            continue
        fields = line.split("\t") if "\t" in line else line.split()
        fields = [f.strip() for f in fields if f.strip()]
        if len(fields) != 2:
            raise ValueError(f"{path}:{number}: expected 'IMAGE GT' (two paths; a tab between them when they "
                             f"hold spaces), got {line!r}")
        image, gt = (base / f for f in fields)
        if image.is_dir() and gt.is_dir():  # IMAGES_DIR GT_DIR: their files, matched by stem
            found = folder_pairs(image, gt)
        else:
            missing += [str(p) for p in (image, gt) if not p.is_file()]
            found = [Pair(image.stem, str(image), str(gt))]
        for pair in found:
            if pair.name in names:
                raise ValueError(f"{path}:{number}: image name {pair.name!r} is also on line {names[pair.name]}: "
                                 "each image once (names are file names without their extension)")
            names[pair.name] = number
            pairs.append(pair)
    if missing:
        raise FileNotFoundError(f"{path}: {len(missing)} listed file(s) are not there: {_some(missing)}")
    if not pairs:
        raise ValueError(f"{path}: no 'IMAGE GT' line")
    return pairs


def _split_file(folder: Path, split: str | None, flag: str = "--split") -> tuple[Path | None, str]:
    """The split's list in a folder of SPLIT.txt files: `split`, else val,
    else none (every image)."""
    available = sorted(p.stem for p in folder.glob("*.txt")) if folder.is_dir() else []
    if split is None:
        return (folder / "val.txt", "val") if "val" in available else (None, "all")
    if split not in available:
        raise FileNotFoundError(f"{folder / (split + '.txt')}: no such split ({flag}); "
                                f"the splits there: {', '.join(available) or 'none'}")
    return folder / f"{split}.txt", split


def voc_dataset(root, split: str | None = None) -> Dataset:
    """A PASCAL VOC tree: the split's stems (``ImageSets/Segmentation/SPLIT.txt``;
    default val when there is one, else every ground truth), JPEGImages/STEM.jpg
    with SegmentationClass/STEM.png, the 21 VOC classes, 255 ignored."""
    root = Path(root)
    photos = _stem_files(root / "JPEGImages", "VOC JPEGImages")
    truth = _stem_files(root / "SegmentationClass", "VOC SegmentationClass", (".png",))
    listed, split_name = _split_file(root / "ImageSets" / "Segmentation", split)
    if listed is not None:
        stems = [s for s in (line.strip() for line in listed.read_text().splitlines()) if s]
        missing_image = [s for s in stems if s not in photos]
        missing_gt = [s for s in stems if s not in truth]
        if missing_image or missing_gt:
            parts = [f"{len(m)} without {what}: {_some(m)}" for m, what in
                     ((missing_image, f"a photo in {root / 'JPEGImages'}"),
                      (missing_gt, f"ground truth in {root / 'SegmentationClass'}")) if m]
            raise FileNotFoundError(f"{listed}: of its {len(stems)} images, " + "; ".join(parts))
    else:
        # JPEGImages holds every photo, SegmentationClass a few: a photo
        # without ground truth is not an error, ground truth without a photo is.
        error = _unmatched({s: photos[s] for s in truth if s in photos}, truth, str(root / "JPEGImages"),
                           str(root / "SegmentationClass"))
        if error:
            raise ValueError(error)
        stems = sorted(truth)
    if not stems:
        raise FileNotFoundError(f"{root}: a VOC tree without an image to score (split {split_name})")
    names, palette = preset("voc")
    pairs = [Pair(s, str(photos[s]), str(truth[s])) for s in stems]
    return Dataset(pairs, GroundTruthSpec(tuple(names), DATASET_IGNORE, palette=palette[:, :3]), "voc",
                   f"PASCAL VOC at {root}, split {split_name} ({len(pairs)} images)")


def cityscapes_dataset(root, split: str | None = None) -> Dataset:
    """A Cityscapes tree: leftImg8bit/SPLIT/CITY/X_leftImg8bit.png with
    gtFine/SPLIT/CITY/X_gtFine_labelTrainIds.png (default split val when there
    is one), the 19 train ids, 255 ignored."""
    root = Path(root)
    splits = sorted(p.name for p in (root / "leftImg8bit").iterdir() if p.is_dir())
    if split is None:
        split = "val" if "val" in splits else None
        if split is None:
            raise FileNotFoundError(f"{root / 'leftImg8bit'}: no val split; choose one with --split "
                                    f"({', '.join(splits) or 'none there'})")
    elif split not in splits:
        raise FileNotFoundError(f"{root / 'leftImg8bit' / split}: no such split (--split); the splits there: "
                                f"{', '.join(splits) or 'none'}")
    photos, truth, raw_ids = {}, {}, []
    for city in sorted(p for p in (root / "leftImg8bit" / split).iterdir() if p.is_dir()):
        photos.update(_stem_files(city, "Cityscapes leftImg8bit", (".png",), "_leftImg8bit"))
        gt_city = root / "gtFine" / split / city.name
        if gt_city.is_dir():
            truth.update({s: p for s, p in _stem_files(gt_city, "Cityscapes gtFine", (".png",),
                                                       "_gtFine_labelTrainIds").items()
                          if p.name.endswith("_gtFine_labelTrainIds.png")})
            raw_ids += list(gt_city.glob("*_gtFine_labelIds.png"))
    if not truth and raw_ids:
        raise FileNotFoundError(f"{root / 'gtFine' / split}: *_gtFine_labelIds.png but no "
                                "*_gtFine_labelTrainIds.png; make them with cityscapesScripts' "
                                "createTrainIdLabelImgs (CITYSCAPES_DATASET={root})")
    error = _unmatched(photos, truth, str(root / "leftImg8bit" / split), str(root / "gtFine" / split))
    if error:
        raise ValueError(error)
    if not truth:
        raise FileNotFoundError(f"{root}: a Cityscapes tree without an image to score (split {split})")
    names, palette = preset("cityscapes")
    pairs = [Pair(s, str(photos[s]), str(truth[s])) for s in sorted(truth)]
    return Dataset(pairs, GroundTruthSpec(tuple(names), DATASET_IGNORE, palette=palette[:, :3]), "cityscapes",
                   f"Cityscapes at {root}, split {split} ({len(pairs)} images)")


def detect_layout(root) -> tuple[str, Path] | None:
    """("voc" | "cityscapes", the tree's root) when `root` is one of them, or
    holds exactly one (VOCdevkit/VOC2012 say), else None."""
    root = Path(root)

    def kind(folder: Path) -> str | None:
        if (folder / "JPEGImages").is_dir() and (folder / "SegmentationClass").is_dir():
            return "voc"
        if (folder / "leftImg8bit").is_dir() and (folder / "gtFine").is_dir():
            return "cityscapes"
        return None

    found = kind(root)
    if found:
        return found, root
    nested = [(k, f) for f in [*root.glob("*/"), *root.glob("*/*/")] if f.is_dir() and (k := kind(f))]
    return nested[0] if len(nested) == 1 else None


def find_dataset(root, split: str | None = None) -> Dataset | None:
    """The VOC or Cityscapes dataset at `root` (see `detect_layout`), else None."""
    found = detect_layout(root)
    if found is None:
        return None
    layout, tree = found
    return voc_dataset(tree, split) if layout == "voc" else cityscapes_dataset(tree, split)


def read_colors(path) -> tuple[list[str], np.ndarray]:
    """A colour table: CamVid's ``class_dict.csv`` (name,r,g,b; 8-bit) or a
    Datagen-style JSON table (16-bit, with its "version")."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return read_color_table(path)
    return read_class_dict_csv(path)


def _png_depth(path: Path) -> int | None:
    """A PNG's bit depth per sample, from its header (None: not a PNG)."""
    with open(path, "rb") as f:
        head = f.read(25)
    return head[24] if len(head) == 25 and head[:8] == b"\x89PNG\r\n\x1a\n" else None


def read_ground_truth(path, colors: np.ndarray | None = None) -> np.ndarray:
    """One ground-truth image as class ids.

    Parameters
    ----------
    path : str or os.PathLike
        A one-channel PNG (palette: the index is the id; 1-, 8- or 16-bit
        ids), or a colour-coded PNG (8- or 16-bit RGB) when `colors` is
        given.
    colors : (n, 3) uint8 or uint16 ndarray, optional
        Each class's colour; an 8-bit table reads 16-bit PNGs as its colours
        times 257.

    Returns
    -------
    (H, W) uint8 or int32 ndarray

    Raises
    ------
    GroundTruthError
        A colour PNG without a table (or ids with one), or colours the
        table does not have (how many pixels, which colours).
    """
    from ..kernels import decode_colors
    from .groundtruth import _read_png, _to_rgb
    from .scoring import LABEL_PNG_MODES, read_label_png
    from ..files.images import open_image

    path = Path(path)
    with open_image(path) as im:
        mode = im.mode
    if colors is None:
        if mode not in LABEL_PNG_MODES:
            raise GroundTruthError(f"{path}: a {mode} image; colour-coded ground truth needs its colour table "
                                   "(--gt-colors class_dict.csv, or a JSON table), and class ids come as a "
                                   "palette or one-channel PNG")
        return read_label_png(path)
    if mode in LABEL_PNG_MODES and mode != "P":
        raise GroundTruthError(f"{path}: one-channel ({mode}) ids, but a colour table was given (--gt-colors, or "
                               "a class_dict.csv found beside the ground truth): give --gt-colors none for id PNGs")
    if mode == "P" or _png_depth(path) != 16:
        with open_image(path) as im:
            rgb = np.asarray(im.convert("RGB"))
        table = colors if colors.dtype == np.uint8 else None
        if table is None:
            raise GroundTruthError(f"{path}: 8-bit colour, but its colour table is 16-bit")
    else:
        rgb = _to_rgb(_read_png(path), path)[..., :3]
        table = colors.astype(np.uint16) * 257 if colors.dtype == np.uint8 else colors
    try:
        return decode_colors(np.ascontiguousarray(rgb), table)
    except ValueError as e:
        raise GroundTruthError(f"{path}: {e}") from None
