"""The model-independent API: `load` a model, `Segmenter.predict` an image,
get a `Segmentation`.

Backends: ONNX Runtime (coreseg.backends.onnx, any OS) and Core ML
(macOS 13+). `load` picks one from the file type."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import kernels
from ._images import as_image
from .model_info import ModelError, ModelInfo

__all__ = ["load", "Segmenter", "Segmentation", "BackendUnavailableError", "CoreMLError", "COMPUTE_UNITS"]

COMPUTE_UNITS = ("all", "cpu", "cpu_gpu", "cpu_ne")
_COREML_SUFFIXES = (".mlpackage", ".mlmodel", ".mlmodelc")


class BackendUnavailableError(RuntimeError):
    """The backend a model needs cannot run here (e.g. Core ML off macOS)."""


class CoreMLError(RuntimeError):
    """Core ML failed (compiling, loading or predicting), with Core ML's own
    description of why."""


@dataclass
class Segmentation:
    """One image's segmentation.

    Attributes
    ----------
    labels : (h, w) int32 ndarray
        The class map at the model's resolution.
    image_size : (int, int)
        (width, height) of the image that was segmented.
    names : list of str or None
        Class names, index = class id (None: the model has none).
    palette : (n, 4) uint8 ndarray
        Colours of the class ids (the model's, shared and read-only).
    timings : dict of str to float
        Seconds spent in "preprocess", "inference" and "postprocess".
    """

    labels: np.ndarray
    image_size: tuple[int, int]
    names: list[str] | None
    palette: np.ndarray
    timings: dict = field(default_factory=dict)

    def class_ids(self, classes) -> list[int]:
        """Class ids from names and/or ids; unknown names raise KeyError
        listing the valid ones."""
        if isinstance(classes, (str, int, np.integer)):
            classes = [classes]
        ids = []
        for c in classes:
            if isinstance(c, str):
                if self.names is None or c not in self.names or c == "--":
                    valid = ", ".join(n for n in (self.names or []) if n != "--") or "(the model has no labels)"
                    raise KeyError(f"unknown label {c!r}; valid labels: {valid}")
                ids.append(self.names.index(c))
            else:
                ids.append(int(c))
        return ids

    def name(self, class_id: int) -> str:
        if self.names is not None and 0 <= class_id < len(self.names):
            return self.names[class_id]
        return str(class_id)

    def full_labels(self, out=None) -> np.ndarray:
        """The class map at the image's own resolution (nearest neighbour)."""
        return kernels.resize_labels(self.labels, self.image_size, out=out)

    def overlay(self, image, opacity=0.6, outline=None, classes=None, palette=None, out=None) -> np.ndarray:
        """The image with class colours blended on at full resolution.

        `classes` (names or ids) limits the overlay to those classes, like
        the selected label of Apple's sample."""
        pal = (self.palette if palette is None else np.asarray(palette, np.uint8)).copy()
        if classes is not None:
            keep = np.zeros(len(pal), bool)
            keep[[i for i in self.class_ids(classes) if 0 <= i < len(pal)]] = True
            pal[~keep, 3] = 0
        return kernels.composite(as_image(image), self.labels, pal, opacity, outline, out=out)

    def mask(self, classes, color=(255, 255, 0, 255)) -> np.ndarray:
        """RGBA mask at model resolution: `color` on the given classes."""
        return kernels.render_mask(self.labels, self.class_ids(classes), color)

    def areas(self) -> dict[int, float]:
        """Share of pixels (0..1) of every class present, by class id."""
        if self.labels.size == 0:
            return {}
        low, high = int(self.labels.min()), int(self.labels.max())
        if low >= 0 and high < (1 << 24):
            counts = kernels.class_histogram(self.labels, high + 1)
            ids = np.flatnonzero(counts)
            n = counts[ids]
        else:  # negative or huge ids: count them as they are
            ids, n = np.unique(self.labels, return_counts=True)
        return {int(i): float(c) / self.labels.size for i, c in zip(ids, n)}


class Segmenter:
    """A loaded segmentation model. Use `load` to make one.

    Attributes
    ----------
    info : ModelInfo
        Inputs, outputs, labels and colours of the model.
    backend : str
        "onnx" or "coreml".
    """

    backend = "?"

    def __init__(self, info: ModelInfo):
        self.info = info
        # Made once, not per frame; every Segmentation shares it, read-only.
        self._palette = info.palette()
        self._palette.setflags(write=False)

    @property
    def labels(self) -> list[str] | None:
        """Class names, index = class id ("--" = unused id)."""
        return self.info.labels

    @property
    def input_size(self) -> tuple[int, int] | None:
        """The model's input (width, height); None if any size is taken."""
        return self.info.input_size

    def palette(self) -> np.ndarray:
        """(n, 4) uint8 RGBA colours of the class ids (a copy)."""
        return self._palette.copy()

    def label_index(self, name: str) -> int:
        return self.info.label_index(name)

    def predict(self, image) -> Segmentation:
        """Segment one image.

        Parameters
        ----------
        image : (H, W, 3) or (H, W, 4) uint8 ndarray, PIL image, or path
            RGB(A); resampled to the model's input with `resize_image`.

        Returns
        -------
        Segmentation
        """
        img = as_image(image)
        t0 = time.perf_counter()
        feed = self._preprocess(img)
        t1 = time.perf_counter()
        raw = self._infer(feed)
        t2 = time.perf_counter()
        labels = self._postprocess(raw)
        t3 = time.perf_counter()
        return Segmentation(labels, (img.shape[1], img.shape[0]), self.info.labels, self._palette,
                            {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2})

    def predict_batch(self, images) -> list[Segmentation]:
        """Segment several images (batched where the backend can)."""
        return [self.predict(im) for im in images]

    def __repr__(self) -> str:
        w, h = self.input_size or ("any", "any")
        return f"<{type(self).__name__} {self.info.path.name} {w}x{h} {self.backend}>"

    # Backends implement these three.
    def _preprocess(self, image: np.ndarray):
        raise NotImplementedError

    def _infer(self, feed):
        raise NotImplementedError

    def _postprocess(self, raw) -> np.ndarray:
        raise NotImplementedError


def _coreml_available() -> bool:
    if sys.platform != "darwin":
        return False
    try:
        from . import _coreml  # noqa: F401  (built on Apple platforms only)
    except ImportError:
        return False
    return True


def load(model, backend: str = "auto", compute_units: str = "all", providers=None) -> Segmenter:
    """Load a segmentation model for prediction.

    Parameters
    ----------
    model : str or os.PathLike
        A ``.onnx`` file (ONNX Runtime, any OS), a Core ML ``.mlpackage``,
        ``.mlmodel`` or ``.mlmodelc`` (macOS 13+), or "demo" for the bundled
        demo model (Core ML where it can run, else ONNX).
    backend : {"auto", "onnx", "coreml"}
    compute_units : {"all", "cpu", "cpu_gpu", "cpu_ne"}
        Core ML compute units. ONNX Runtime runs on `providers`.
    providers : list of str, optional
        ONNX Runtime execution providers; default CPU.

    Raises
    ------
    ModelError
        The file is missing or not a usable segmentation model.
    BackendUnavailableError
        The model needs a backend that cannot run here.
    """
    if backend not in ("auto", "onnx", "coreml"):
        raise ValueError(f"backend must be 'auto', 'onnx' or 'coreml', got {backend!r}")
    if compute_units not in COMPUTE_UNITS:
        raise ValueError(f"compute_units must be one of {', '.join(COMPUTE_UNITS)}, got {compute_units!r}")
    if isinstance(model, str) and model == "demo":
        from . import demo

        use_coreml = backend == "coreml" or (backend == "auto" and _coreml_available())
        model = demo.model_path("mlpackage" if use_coreml else "onnx")
    path = Path(os.fspath(model))
    suffix = path.suffix.lower()
    if suffix in _COREML_SUFFIXES and backend in ("auto", "coreml"):
        if sys.platform == "darwin" and not _coreml_available():
            raise BackendUnavailableError(f"{path}: this build of coreseg has no Core ML backend "
                                          "(install a macOS wheel, or build on macOS 13+)")
        if not _coreml_available():
            raise BackendUnavailableError(
                f"{path}: Core ML runs on macOS 13 or later only, so this model cannot be run here. "
                "coreseg.inspect() reads it on any OS; to run it elsewhere, convert it to ONNX and "
                "load the .onnx file (pip install 'coreseg[onnx]')")
        from .backends.coreml import CoreMLSegmenter

        return CoreMLSegmenter(path, compute_units)
    if suffix == ".onnx" and backend in ("auto", "onnx"):
        from .backends.onnx import OnnxSegmenter

        return OnnxSegmenter(path, providers=providers)
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    raise ModelError(f"{path}: cannot load a '{suffix or path.name}' file with backend={backend!r} "
                     "(expected .onnx for 'onnx'; .mlpackage, .mlmodel or .mlmodelc for 'coreml')")
