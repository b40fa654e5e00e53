"""The model-independent API: `load` a model, `Segmenter.predict` an image,
get a `Segmentation` (coreseg.segmentation).

Backends: ONNX Runtime (coreseg.backends.onnx, any OS) and Core ML
(macOS 13+). `load` picks one from the file type."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from ..kernels import _args
from ..files.images import as_image
from ..results.geometry import CROP_MODES, Placement, place
from ..modelfiles.info import ModelError, ModelInfo
from ..results.segmentation import Segmentation

__all__ = ["load", "Segmenter", "Segmentation", "BackendUnavailableError", "CoreMLError", "COMPUTE_UNITS"]

COMPUTE_UNITS = ("all", "cpu", "cpu_gpu", "cpu_ne")
_COREML_SUFFIXES = (".mlpackage", ".mlmodel", ".mlmodelc")


class BackendUnavailableError(RuntimeError):
    """The backend a model needs cannot run here (e.g. Core ML off macOS)."""


class CoreMLError(RuntimeError):
    """Core ML failed (compiling, loading or predicting), with Core ML's own
    description of why."""


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

    def stream(self, frames, *, smoothing=None, overlay=None, queue: int = 2, workers: int = 2):
        """Segment a sequence of frames, several in flight at once.

        The stages of consecutive frames overlap on threads (the kernels
        and both backends release the GIL): while the model runs one frame,
        others are prepared, smoothed and drawn. Results come in input
        order; memory stays bounded however long the stream.

        Parameters
        ----------
        frames : iterable
            (H, W, 3|4) uint8 arrays, PIL images, paths, or the frames of a
            `coreseg.video.VideoReader` (their times are kept). Pulled on a
            thread of its own, never more than ``workers + queue`` ahead of
            the consumer; a camera generator works as it is.
        smoothing : {None, "ema", "hysteresis"} or a smoother, optional
            Temporal smoothing against flicker (`coreseg.smoothing`):
            "ema" averages the per-class scores (models with scores),
            "hysteresis" holds a pixel's class until a new one wins 3
            frames in a row (any model). `coreseg.smoothing.EMA(alpha=...)`
            and `Hysteresis(frames=..., margin=...)` set the parameters.
            Both restart at a scene cut.
        overlay : bool or dict, optional
            Also draw each frame's overlay (`Segmentation.overlay`); a dict
            gives its options (opacity, outline, classes, palette, smooth).
            Overlay buffers are reused once no reference to them is left.
        queue : int
            Frames each stage may hold beyond its workers (0..64).
        workers : int
            Frames in flight in each parallel stage (predict, overlay).

        Yields
        ------
        coreseg.stream.StreamFrame
            index, time, image, segmentation and overlay of each frame.

        Raises
        ------
        coreseg.pipeline.FrameError
            A frame failed: `index` says which, `__cause__` why. Frames
            before it have been yielded.

        Closing the iterator early (``break``) stops every thread.

        Examples
        --------
        >>> import numpy as np, coreseg
        >>> model = coreseg.load("demo")
        >>> frames = (np.full((48, 64, 3), i * 20, np.uint8) for i in range(5))
        >>> [f.index for f in model.stream(frames, smoothing="hysteresis")]
        [0, 1, 2, 3, 4]
        """
        from ..frames.stream import stream

        return stream(self, frames, smoothing=smoothing, overlay=overlay, queue=queue, workers=workers)

    def _stream_view(self, workers: int) -> "Segmenter":
        """The model `stream` runs with `workers` frames in flight (backends
        may tune it; see OnnxSegmenter)."""
        return self

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
        from .. import _coreml  # noqa: F401  (built on Apple platforms only)
    except ImportError:
        return False
    return True


def load(model, backend: str = "auto", compute_units: str = "all", providers=None, *, crop: str = "fill",
         labels=None, size=None, layout=None, mean=None, std=None, color_layout=None, output=None,
         output_layout=None, output_activation=None, threshold=None, threads=None,
         session_options=None) -> Segmenter:
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
    threads : int, optional
        ONNX Runtime: the threads one inference uses (intra-op). Default:
        every core this process may use. With several frames in flight
        (`Segmenter.stream`), fewer threads per frame are faster; `stream`
        sees to it unless `threads` is given. Core ML schedules its own
        work, and refuses this.
    session_options : onnxruntime.SessionOptions, optional
        Used as they are instead of coreseg's (explicit intra-op threads,
        no spinning, no pinning: see `coreseg.backends.onnx.session_options`).

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
        from ..evaluation import scenes as demo

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
        if threads is not None or session_options is not None:
            raise ValueError("threads, session_options: Core ML schedules its own work; these are for ONNX Runtime")
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

        if threads is not None:
            threads = _args.int_arg(threads, "threads", 1, 256)
            if session_options is not None:
                raise ValueError("threads and session_options: give the threads in the session options")
        return OnnxSegmenter(path, providers=providers, crop=crop, labels=labels, size=size, threads=threads,
                             session_options=session_options, **contract)
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    raise ModelError(f"{path}: cannot load a '{suffix or path.name}' file with backend={backend!r} "
                     "(expected .onnx for 'onnx'; .mlpackage, .mlmodel or .mlmodelc for 'coreml')")
