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

from . import _args, kernels
from ._images import as_image
from .contract import OutputContract
from .geometry import CROP_MODES, Placement, place
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
        The class map at the model's output resolution, over the model's
        whole input (with ``crop="fit"``, the padding too).
    image_size : (int, int)
        (width, height) of the image that was segmented.
    names : list of str or None
        Class names, index = class id (None: the model has none).
    palette : (n, 4) uint8 ndarray
        Colours of the class ids (the model's, shared and read-only).
    timings : dict of str to float
        Seconds spent in "preprocess", "inference" and "postprocess"
        (floats only).
    placement : coreseg.geometry.Placement or None
        Where the image went in the model's input (None: stretched over all
        of it). `full_labels`, `overlay` and `areas` use it to describe the
        image, not the model's input.
    raw : ndarray or None
        The model's raw segmentation output (batch of 1), kept for `scores`.
    output : coreseg.contract.OutputContract or None
        How to read `raw`.
    io : dict of str to bool
        How the backend moved the data. Core ML: "wrapped_input" (the
        caller's pixels went to Core ML as they were), "offered_output_backing"
        and "used_output_backing" (Core ML wrote into `raw` itself rather
        than into memory of its own, which was then copied). Core ML may
        decline a backing; neither flag says no copy happened inside it.
    """

    labels: np.ndarray
    image_size: tuple[int, int]
    names: list[str] | None
    palette: np.ndarray
    timings: dict = field(default_factory=dict)
    placement: Placement | None = None
    raw: np.ndarray | None = field(default=None, repr=False)
    output: OutputContract | None = field(default=None, repr=False)
    io: dict = field(default_factory=dict, repr=False)
    _scores: np.ndarray | None = field(default=None, init=False, repr=False)

    @property
    def scores(self) -> np.ndarray | None:
        """(C, h, w) float32 per-class probabilities at the model's
        resolution: the softmax of logits, the model's own probabilities, or
        ``[1 - p, p]`` for a binary model's foreground probability p. None
        for models that return a class map. Computed on first use."""
        if self._scores is None and self.raw is not None and self.output is not None:
            self._scores = self.output.scores(self.raw)
        return self._scores

    def confidence(self) -> np.ndarray:
        """(h, w) float32 probability of the winning class at each pixel.

        Raises
        ------
        ValueError
            When the model gives no scores (it returns a class map).
        """
        scores = self._require_scores("confidence")
        return scores.max(axis=0)

    def _require_scores(self, what: str) -> np.ndarray:
        scores = self.scores
        if scores is None:
            raise ValueError(f"{what} needs per-class scores, and this model returns a class map only")
        return scores

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

    def _source_and_target(self):
        """(the image rect the model saw, the labels covering it, and where
        in the output that is: None without a placement, else (rect, True if
        the rect is in input pixels because the output grid does not fall
        on whole input pixels and the output had to be resized first))."""
        w, h = self.image_size
        p = self.placement
        if p is None:
            return (0, 0, w, h), self.labels, None
        ow, oh = self.labels.shape[1], self.labels.shape[0]
        rect = p.output_rect((ow, oh))
        if rect is None:  # e.g. a letterbox offset that is not a whole output pixel
            labels = kernels.resize_labels(self.labels, p.canvas_size)
            rect, scale_scores = p.target, True
        else:
            labels, scale_scores = self.labels, False
        x, y, rw, rh = rect
        return p.source, labels[y : y + rh, x : x + rw], (rect, scale_scores)

    def full_labels(self, out=None, *, smooth: bool = False) -> np.ndarray:
        """The class map at the image's own resolution.

        Parameters
        ----------
        smooth : bool
            False: nearest neighbour (`resize_labels`) from the model's map.
            True: bilinear upsampling of the scores and the argmax per pixel
            (`upsample_argmax`), so edges follow the object; needs a model
            that gives scores.
        out : (height, width) int32 ndarray, optional

        Returns
        -------
        labels : (height, width) int32 ndarray
            Pixels the model never saw (outside a ``crop="center"``) are -1.
        """
        w, h = self.image_size
        out = _args.out_array(out, (h, w), np.int32)
        (sx, sy, sw, sh), labels, where = self._source_and_target()
        if (sx, sy, sw, sh) != (0, 0, w, h):
            out[...] = -1
        region = out[sy : sy + sh, sx : sx + sw]
        if not smooth:
            kernels.resize_labels(labels, (sw, sh), out=region)
            return out
        scores = self.output.decision_scores(self._require_scores("full_labels(smooth=True)"))
        if where is not None:
            (x, y, rw, rh), through_input = where
            if through_input:
                scores = _upsample_scores(scores, self.placement.canvas_size)
            scores = scores[:, y : y + rh, x : x + rw]
        kernels.upsample_argmax(scores, (sw, sh), out=region)
        return out

    def overlay(self, image, opacity=0.6, outline=None, classes=None, palette=None, out=None, *,
                smooth: bool = False) -> np.ndarray:
        """The image with class colours blended on at full resolution.

        Parameters
        ----------
        image : (H, W, 3|4) uint8 ndarray, PIL image or path
            The image that was segmented (its size is checked).
        opacity : float in [0, 1]
        outline : colour, optional
            Outline the class boundaries in this colour.
        classes : names or ids, optional
            Only these classes (like the selected label of Apple's sample).
        palette : (n, 4) uint8 array_like, optional
            Colours instead of the model's.
        smooth : bool
            Composite through `full_labels(smooth=True)`: edges follow the
            object instead of the model's pixel grid.
        out : ndarray like `image`, optional

        Pixels the model never saw (outside a ``crop="center"``) are left
        as they are.
        """
        img = as_image(image)
        if (img.shape[1], img.shape[0]) != tuple(self.image_size):
            raise ValueError(f"image is {img.shape[1]}x{img.shape[0]}, but the segmentation is of a "
                             f"{self.image_size[0]}x{self.image_size[1]} image")
        pal = (self.palette if palette is None else np.asarray(palette, np.uint8)).copy()
        if classes is not None:
            keep = np.zeros(len(pal), bool)
            keep[[i for i in self.class_ids(classes) if 0 <= i < len(pal)]] = True
            pal[~keep, 3] = 0
        (sx, sy, sw, sh), labels, _ = self._source_and_target()
        if smooth:
            labels = self.full_labels(smooth=True)[sy : sy + sh, sx : sx + sw]
        if (sx, sy, sw, sh) == (0, 0, img.shape[1], img.shape[0]):
            return kernels.composite(img, labels, pal, opacity, outline, out=out)
        out = _args.out_array(out, img.shape, np.uint8)
        if out is not img:
            out[...] = img
        region = out[sy : sy + sh, sx : sx + sw]
        kernels.composite(region, labels, pal, opacity, outline, out=region)
        return out

    def mask(self, classes, color=(255, 255, 0, 255)) -> np.ndarray:
        """RGBA mask at model resolution: `color` on the given classes."""
        return kernels.render_mask(self.labels, self.class_ids(classes), color)

    def areas(self) -> dict[int, float]:
        """Share of pixels (0..1) of every class present, by class id, over
        the part of the image the model saw (a letterbox's padding is not
        counted)."""
        _, labels, _ = self._source_and_target()
        if labels.size == 0:
            return {}
        low, high = int(labels.min()), int(labels.max())
        if low >= 0 and high < (1 << 24):
            counts = kernels.class_histogram(labels, high + 1)
            ids = np.flatnonzero(counts)
            n = counts[ids]
        else:  # negative or huge ids: count them as they are
            ids, n = np.unique(labels, return_counts=True)
        return {int(i): float(c) / labels.size for i, c in zip(ids, n)}


def _upsample_scores(scores: np.ndarray, size) -> np.ndarray:
    """Scores resampled to `size` (bilinear, half-pixel centres) in float32:
    used only when an output grid does not fall on whole input pixels."""
    w, h = size
    c, sh, sw = scores.shape

    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)

    y0, y1, ly = axis(sh, h)
    x0, x1, lx = axis(sw, w)
    rows = scores[:, y0] * (1 - ly)[:, None] + scores[:, y1] * ly[:, None]
    return np.ascontiguousarray(rows[:, :, x0] * (1 - lx) + rows[:, :, x1] * lx, dtype=np.float32)


class Segmenter:
    """A loaded segmentation model. Use `load` to make one.

    Attributes
    ----------
    info : ModelInfo
        Inputs, outputs, labels and colours of the model.
    backend : str
        "onnx" or "coreml".
    crop : {"fill", "fit", "center"}
        How images are placed in the model's input (coreseg.geometry).
    """

    backend = "?"

    def __init__(self, info: ModelInfo, crop: str = "fill"):
        if crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {', '.join(CROP_MODES)}, got {crop!r}")
        self.info = info
        self.crop = crop
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

    @property
    def has_scores(self) -> bool:
        """Whether results carry per-class scores (`Segmentation.scores`), so
        `full_labels(smooth=True)` works."""
        out = getattr(self, "output", None)
        return out is not None and out.kind != "labels" and out.activation != "none"

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
            RGB(A); placed in the model's input as `crop` says and resampled
            with `resize_image`.

        Returns
        -------
        Segmentation
        """
        img = as_image(image)
        t0 = time.perf_counter()
        placement = self._place(img)
        feed = self._preprocess(img, placement)
        t1 = time.perf_counter()
        raw = self._infer(feed)
        t2 = time.perf_counter()
        labels = self._postprocess(raw)
        t3 = time.perf_counter()
        return self._segmentation(labels, img, placement, raw,
                                  {"preprocess": t1 - t0, "inference": t2 - t1, "postprocess": t3 - t2})

    def predict_batch(self, images) -> list[Segmentation]:
        """Segment several images (batched where the backend can)."""
        return [self.predict(im) for im in images]

    def __repr__(self) -> str:
        w, h = self.input_size or ("any", "any")
        return f"<{type(self).__name__} {self.info.path.name} {w}x{h} {self.backend}>"

    def _segmentation(self, labels, img, placement, raw, timings) -> Segmentation:
        return Segmentation(labels, (img.shape[1], img.shape[0]), self.info.labels, self._palette, timings,
                            placement=None if placement.mode == "fill" else placement, raw=raw,
                            output=getattr(self, "output", None))

    def _canvas_size(self, img: np.ndarray) -> tuple[int, int]:
        """The model input size an image is fed at."""
        return self.input_size or (img.shape[1], img.shape[0])

    def _stride(self) -> tuple[int, int]:
        """Input pixels per output pixel, when the output is smaller."""
        return (1, 1)

    def _place(self, img: np.ndarray) -> Placement:
        return place((img.shape[1], img.shape[0]), self._canvas_size(img), self.crop, self._stride())

    # Backends implement these three.
    def _preprocess(self, image: np.ndarray, placement: Placement):
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


def load(model, backend: str = "auto", compute_units: str = "all", providers=None, *, crop: str = "fill",
         labels=None, size=None, layout=None, mean=None, std=None, color_layout=None, output=None,
         output_layout=None, output_activation=None, threshold=None) -> Segmenter:
    """Load a segmentation model for prediction.

    What the model's own metadata says is used; the keyword arguments say
    the rest, or override it. A model that cannot be read one way only is
    refused with a `ModelError` saying which argument settles it (see the
    model contract in coreseg.contract and the README).

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
    crop : {"fill", "fit", "center"}
        How an image is placed in the model's input, as Vision's
        VNImageCropAndScaleOption: stretched, letterboxed, or centre-cropped.
        Results always describe the image (coreseg.geometry).
    labels : list of str, optional
        Class names, index = class id, when the model has none (or to
        replace its own).
    size : (width, height) or "image", optional
        The input size, for models that take more than one. (width, height)
        must be one the model takes; "image" means each image's own size:
        ONNX models with dynamic axes take it as it is, Core ML models with
        a size range the nearest size within the range (aspect kept where
        the range allows), Core ML models with enumerated sizes the nearest
        of those. Default: an ONNX model with dynamic axes takes each
        image's own size; a Core ML model its default size.
    layout : {"NHWC", "NCHW"}, optional
        Where the input's colour channels are, when the shape cannot tell.
    mean, std : 3 numbers on the 0..1 scale, optional
        Normalisation of float inputs: ``(pixel / 255 - mean) / std``. `mean`
        may name a preset instead: "unit" (0..1, the default), "symmetric"
        (-1..1) or "imagenet".
    color_layout : {"RGB", "BGR"}, optional
    output : str, optional
        The name of the output to read (default: the first class map, else
        the first float scores).
    output_layout : {"NCHW", "NHWC"}, optional
        Where a float output's class axis is, when the shapes cannot tell.
    output_activation : {"logits", "softmax", "sigmoid", "none"}, optional
        What a float output holds (default: what the graph or metadata
        says, else "logits"; a single channel must be told).
    threshold : float, optional
        Binary (single-channel) models: foreground above it, in the output's
        units (default 0.5 for probabilities, 0.0 for logits).

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
    if crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {', '.join(CROP_MODES)}, got {crop!r}")
    if size is not None and not (isinstance(size, str) and size == "image"):
        size = _args.size_arg(size)
    contract = dict(layout=layout, mean=mean, std=std, color_layout=color_layout, output=output,
                    output_layout=output_layout, output_activation=output_activation, threshold=threshold)
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
        given = [k for k in ("layout", "mean", "std", "color_layout") if contract[k] is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: not used by Core ML models, whose image input says how its "
                             "pixels are laid out and scaled (Core ML converts them itself)")
        from .backends.coreml import CoreMLSegmenter

        return CoreMLSegmenter(path, compute_units, crop=crop, labels=labels, size=size, output=output,
                               output_layout=output_layout, output_activation=output_activation,
                               threshold=threshold)
    if suffix == ".onnx" and backend in ("auto", "onnx"):
        from .backends.onnx import OnnxSegmenter

        return OnnxSegmenter(path, providers=providers, crop=crop, labels=labels, size=size, **contract)
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    raise ModelError(f"{path}: cannot load a '{suffix or path.name}' file with backend={backend!r} "
                     "(expected .onnx for 'onnx'; .mlpackage, .mlmodel or .mlmodelc for 'coreml')")
