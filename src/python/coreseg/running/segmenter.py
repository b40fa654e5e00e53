"""The model-independent API: `Segmenter.predict` an image, get a
`Segmentation` (coreseg.results.segmentation).

A `Segmenter` knows no backend: ONNX Runtime (backends/onnx.py, any OS)
and Core ML (backends/coreml.py, macOS 13+) subclass it, and
coreseg.running.loader's `load` picks one from the file type."""

from __future__ import annotations

import time

import numpy as np

from ..files.images import as_image
from ..results.geometry import CROP_MODES, Placement, place
from ..modelfiles.info import ModelInfo
from ..modelfiles.metadata_keys import NORMALIZATION_KEY, NORMALIZATIONS
from ..modelfiles.settings import arg
from ..results.segmentation import Segmentation

__all__ = ["Segmenter", "Segmentation", "BackendUnavailableError", "CoreMLError", "normalization_warning"]


class BackendUnavailableError(RuntimeError):
    """The backend a model needs cannot run here (e.g. Core ML off macOS)."""


class CoreMLError(RuntimeError):
    """Core ML failed (compiling, loading or predicting), with Core ML's own
    description of why."""


def normalization_warning(info: ModelInfo) -> str:
    """What `load` warns when a float input's normalisation is assumed: the
    assumption, and the two ways to state the truth."""
    presets = ", ".join(p for p in NORMALIZATIONS)
    return (f"{info.path.name}: nothing says how its float input is normalised, so coreseg assumes "
            f"{info.normalization!r} (pixels / 255, 0..1). A wrong guess gives a convincing wrong answer: state it "
            f"with {arg('normalization', 'PRESET')} ({presets}) or {arg('mean')}/{arg('std')}, or once for good "
            f"with `coreseg annotate MODEL --set {NORMALIZATION_KEY}=PRESET -o COPY`")


class Segmenter:
    """A loaded segmentation model. Use `load` to make one.

    Attributes
    ----------
    info : ModelInfo
        Inputs, outputs, labels and colours of the model.
    backend : str
        "onnx" or "coreml".
    crop : {"fill", "fit", "center"}
        How images are placed in the model's input (coreseg.results.geometry).
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

    def stream(self, frames, *, smoothing=None, overlay=None, background=None, queue: int = 2, workers: int = 2):
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
            the consumer. Frames from an iterator (a generator, a camera)
            are copied as they are pulled, so a camera that refills one
            buffer works as it is; a list's or tuple's frames are used as
            they are.
        smoothing : {None, "ema", "hysteresis"} or a smoother, optional
            Temporal smoothing against flicker (`coreseg.smoothing`):
            "ema" averages the per-class scores (models with scores),
            "hysteresis" holds a pixel's class until a new one wins 3
            frames in a row (any model). `coreseg.smoothing.EMA(alpha=...)`
            and `Hysteresis(frames=..., margin=...)` set the parameters.
            Both restart at a scene cut. The overlay and the background's
            matte are drawn from the smoothed segmentation, so with "ema"
            a soft edge does not flicker either.
        overlay : bool or dict, optional
            Also draw each frame's overlay (`Segmentation.overlay`); a dict
            gives its options (opacity, outline, classes, palette, color,
            smooth; smooth edges by default when the segmentation has
            scores, as `Segmentation.overlay` draws). Overlay buffers are
            reused once no reference to them is left.
        background : "blur", "transparent", a colour, a picture, True or dict, optional
            Also give each frame with its background replaced
            (`Segmentation.replace_background` of the smoothed
            segmentation, bit for bit), as ``StreamFrame.background``, an
            (H, W, 3|4) uint8 array ((H, W, 4) for "transparent"): what
            its `background` takes (True: "blur"), or a dict of its
            options (background, default "blur"; classes, blur, smooth,
            and any other keyword it takes, passed on). A picture (array,
            PIL image or path) is read once and scaled to cover the frame
            once, not per frame. Its buffers are reused as the overlay's;
            `overlay` may be asked too.
        queue : int
            Frames each stage may hold beyond its workers (0..64).
        workers : int
            Frames in flight in each parallel stage (predict, drawing).

        Yields
        ------
        coreseg.frames.stream.StreamFrame
            index, time, image, segmentation, overlay and background of
            each frame.

        Raises
        ------
        coreseg.pipeline.FrameError
            A frame failed: `index` says which, `__cause__` why. Frames
            before it have been yielded.

        Closing the iterator (``close()``, ``break``, an error, Ctrl-C)
        returns promptly; only a thread waiting inside the source's own
        ``next()`` is left, a daemon that drops what it gets.

        Examples
        --------
        >>> import numpy as np, coreseg
        >>> model = coreseg.load("demo")
        >>> frames = (np.full((48, 64, 3), i * 20, np.uint8) for i in range(5))
        >>> [f.index for f in model.stream(frames, smoothing="hysteresis")]
        [0, 1, 2, 3, 4]
        >>> frames = (np.full((48, 64, 3), i * 20, np.uint8) for i in range(3))
        >>> [f.background.shape for f in model.stream(frames, smoothing="ema",
        ...                                           background={"background": "#00FF00", "classes": ["sky"]})]
        [(48, 64, 3), (48, 64, 3), (48, 64, 3)]
        """
        from ..frames.stream import stream

        return stream(self, frames, smoothing=smoothing, overlay=overlay, background=background, queue=queue,
                      workers=workers)

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
