"""Ground truth in colour-coded form: Datagen datapoints (16-bit PNG + JSON
colour table) and CamVid-style ``class_dict.csv`` tables.

A Datagen datapoint folder holds ``semantic_segmentation_metadata.json``
(a ``"version"`` and nested objects whose leaves are ``{"R", "G", "B"}`` on
a 0-65535 scale; the dotted path of a leaf is the class name, e.g.
``human.head.eye.left.eyeball``) and ``camera/semantic_segmentation.png``
(16-bit RGB). Each table lists only what is in its scene, so a dataset's
class ids come from one fixed list: `DatagenClasses`.

Reading PNGs needs OpenCV (Pillow drops 16-bit colour to 8 bits):
``pip install 'coreseg[groundtruth]'``.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..files.safe_io import check_pixels, png_size, read_json
from ..kernels import decode_colors

__all__ = ["GroundTruth", "DatagenClasses", "load_datapoint", "read_color_table", "read_class_dict_csv",
           "SUPPORTED_VERSIONS", "GroundTruthError", "datapoint_folders"]

SUPPORTED_VERSIONS = ("1.0.0",)
METADATA = "semantic_segmentation_metadata.json"
SEGMENTATION = Path("camera") / "semantic_segmentation.png"
PHOTO = Path("camera") / "visible_spectrum_01.png"


class GroundTruthError(ValueError):
    """Ground truth that cannot be read, naming the file and why."""


def _cv2():
    try:
        import cv2
    except ImportError:
        raise ImportError("reading 16-bit ground truth needs OpenCV: pip install 'coreseg[groundtruth]'") from None
    return cv2


def _leaves(node, prefix, path):
    for key, value in node.items():
        if not prefix and key == "version":
            continue
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict) and set(value) == {"R", "G", "B"}:
            rgb = [value[c] for c in "RGB"]
            if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535 for v in rgb):
                raise GroundTruthError(f"{path}: {name} has a colour outside 0..65535: {value}")
            yield name, tuple(rgb)
        elif isinstance(value, dict):
            yield from _leaves(value, name, path)
        else:
            raise GroundTruthError(f"{path}: {name} is neither a class group nor an R/G/B colour: {value!r}")


def read_color_table(path, versions=SUPPORTED_VERSIONS) -> tuple[list[str], np.ndarray]:
    """A Datagen colour table: (names, (n, 3) uint16 colours), in file order.

    Raises
    ------
    GroundTruthError
        Not JSON, a missing or unsupported ``version`` (pass the `versions`
        you accept), malformed leaves, or one colour for two classes.
    """
    path = Path(path)
    try:
        data = read_json(path)
    except FileNotFoundError:
        raise GroundTruthError(f"{path}: no such file") from None
    except ValueError as e:
        raise GroundTruthError(str(e)) from None
    if not isinstance(data, dict):
        raise GroundTruthError(f"{path}: expected a JSON object")
    version = data.get("version")
    if version is None:
        raise GroundTruthError(f"{path}: no \"version\"; coreseg reads versions {', '.join(versions)}")
    if version not in versions:
        raise GroundTruthError(f"{path}: version {version!r} is not one coreseg understands "
                               f"({', '.join(versions)}); pass versions=[...] to accept it")
    entries = list(_leaves(data, "", path))
    names = [n for n, _ in entries]
    colors = np.array([c for _, c in entries], np.uint16).reshape(len(entries), 3)
    seen = {}
    for name, color in entries:
        if color in seen:
            raise GroundTruthError(f"{path}: {seen[color]} and {name} have the same colour {color}")
        seen[color] = name
    return names, colors


def read_class_dict_csv(path) -> tuple[list[str], np.ndarray]:
    """A CamVid-style ``class_dict.csv`` (``name,r,g,b`` with a header):
    (names, (n, 3) uint8 colours)."""
    path = Path(path)
    names, colors = [], []
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise GroundTruthError(f"{path}: no such file") from None
    for line, row in enumerate(rows, 1):
        if not row:
            continue
        if line == 1 and not all(v.strip().lstrip("-").isdigit() for v in row[1:]):
            continue  # the header
        if len(row) != 4:
            raise GroundTruthError(f"{path}:{line}: expected name,r,g,b, got {row}")
        try:
            rgb = [int(v) for v in row[1:]]
        except ValueError:
            raise GroundTruthError(f"{path}:{line}: r, g, b must be integers, got {row[1:]}") from None
        if not all(0 <= v <= 255 for v in rgb):
            raise GroundTruthError(f"{path}:{line}: r, g, b must be in 0..255, got {rgb}")
        names.append(row[0].strip())
        colors.append(rgb)
    return names, np.array(colors, np.uint8).reshape(len(colors), 3)


class DatagenClasses:
    """One fixed class list for a Datagen dataset: the sorted union of the
    names in its colour tables, with each name's colour.

    Parameters
    ----------
    names : list of str
    colors : (n, 3) uint16 ndarray
    """

    def __init__(self, names, colors):
        self.names = list(names)
        self.colors = np.asarray(colors, np.uint16).reshape(len(self.names), 3)
        self._index = {n: i for i, n in enumerate(self.names)}

    @classmethod
    def from_dataset(cls, folders, versions=SUPPORTED_VERSIONS) -> "DatagenClasses":
        """The union over datapoint folders (each with its metadata JSON). A
        name given two colours by two files is an error."""
        colors = {}
        for folder in folders:
            path = Path(folder) / METADATA
            names, table = read_color_table(path, versions)
            for name, color in zip(names, map(tuple, table.tolist())):
                if colors.setdefault(name, color) != color:
                    raise GroundTruthError(f"{path}: {name} is {color} here but {colors[name]} elsewhere")
        names = sorted(colors)
        return cls(names, np.array([colors[n] for n in names], np.uint16).reshape(len(names), 3))

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"{name!r} is not one of the dataset's {len(self.names)} classes") from None


@dataclass
class GroundTruth:
    """One datapoint.

    Attributes
    ----------
    labels : (h, w) int32 ndarray
        Class ids (into `names`).
    names : list of str
        Class names, index = id.
    colors : (n, 3) uint16 ndarray
        The colour of each class in the map (0-65535).
    image : (h, w, 3|4) uint8 ndarray or None
        The photo, converted to 8 bits, if the datapoint has one.
    path : pathlib.Path
    version : str
    """

    labels: np.ndarray
    names: list
    colors: np.ndarray
    image: np.ndarray | None
    path: Path
    version: str


def _read_png(path: Path) -> np.ndarray:
    cv2 = _cv2()
    if not path.is_file():
        raise GroundTruthError(f"{path}: no such file")
    size = png_size(path)  # the header, before OpenCV decodes anything
    if size is not None:
        try:
            check_pixels(*size, path)
        except ValueError as e:
            raise GroundTruthError(str(e)) from None
    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None:
        raise GroundTruthError(f"{path}: not a readable PNG")
    return data


def _to_rgb(data: np.ndarray, path: Path) -> np.ndarray:
    # OpenCV gives BGR(A); the tables are RGB. cvtColor swaps in one pass
    # (numpy's data[..., [2, 1, 0]] gathers, about 5x as slow at 1280x960).
    if data.ndim == 3 and data.shape[2] in (3, 4):
        cv2 = _cv2()
        return cv2.cvtColor(data, cv2.COLOR_BGR2RGB if data.shape[2] == 3 else cv2.COLOR_BGRA2RGB)
    raise GroundTruthError(f"{path}: expected a colour image, got shape {data.shape}")


def _photo_8bit(data: np.ndarray) -> np.ndarray:
    """A photo as OpenCV read it (grey, BGR or BGRA; 8 or 16 bits) as
    uint8 grey, RGB or RGBA."""
    if data.ndim == 3 and data.shape[2] in (3, 4):
        cv2 = _cv2()
        data = cv2.cvtColor(data, cv2.COLOR_BGR2RGB if data.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
    if data.dtype == np.uint16:  # round(v / 257): 65535 -> 255 exactly
        data = ((data.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.ascontiguousarray(data)


def load_datapoint(folder, classes: DatagenClasses | None = None, versions=SUPPORTED_VERSIONS) -> GroundTruth:
    """Read one Datagen datapoint.

    Parameters
    ----------
    folder : str or os.PathLike
        Holds semantic_segmentation_metadata.json and camera/.
    classes : DatagenClasses, optional
        The dataset's class list to map into; without it the ids follow this
        file's own table.
    versions : sequence of str
        Metadata versions to accept.

    Raises
    ------
    GroundTruthError
        Missing files, unsupported version, colours not in the table (how
        many pixels, which colours), or names not in `classes`.
    """
    folder = Path(os.fspath(folder))
    meta_path = folder / METADATA
    names, colors = read_color_table(meta_path, versions)
    seg = _to_rgb(_read_png(folder / SEGMENTATION), folder / SEGMENTATION)
    if seg.dtype != np.uint16:
        raise GroundTruthError(f"{folder / SEGMENTATION}: expected 16-bit colour, got {seg.dtype}")
    try:
        local = decode_colors(seg, colors)
    except ValueError as e:
        raise GroundTruthError(f"{folder / SEGMENTATION}: {e}") from None
    if classes is not None:
        lut = np.array([classes.index(n) for n in names], np.int32)
        labels = lut[local] if len(lut) else local
        names, colors = classes.names, classes.colors
    else:
        labels = local
    photo = folder / PHOTO
    image = _photo_8bit(_read_png(photo)) if photo.is_file() else None
    version = read_json(meta_path)["version"]
    return GroundTruth(labels, list(names), colors, image, folder, version)


def datapoint_folders(root) -> list[Path]:
    """The datapoint folders below `root` (those with the metadata JSON).

    Raises
    ------
    FileNotFoundError
        When `root` is not a folder (a typo must not look like an empty dataset).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    if (root / METADATA).is_file():
        return [root]
    return sorted(p.parent for p in root.glob(f"*/{METADATA}"))
