"""`Segmenter.stream`: segment a sequence of frames (a video, a camera, a
list of images) at the model's speed.

Three stages, connected by `coreseg.pipeline.ordered_map`:

1. on `workers` threads: the frame made an array, `predict`, and a
   thumbnail for scene cuts;
2. in order, on one thread: temporal smoothing (`coreseg.smoothing`),
   which needs the frames one after the other;
3. on `workers` threads: the overlay at the frame's resolution, into
   buffers reused from a small pool.

So several frames are in flight at once (with ONNX Runtime, each on a
session with its share of the cores), and a frame is decoded, drawn and
consumed while the next ones run through the model: the loop runs at the
pace of its busiest resource, not at the sum of its stages. Memory is
bounded by `workers + queue` frames per stage whatever the stream's length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import _args
from ..kernels._buffers import BufferPool
from ..files.images import as_image
from .pipeline import MAX_WORKERS, FrameError, OrderedMap
from ..results.segmentation import Segmentation
from .smoothing import Hysteresis, smoother, thumbnail
from .video import Frame as VideoFrame


@dataclass
class StreamFrame:
    """One result of `Segmenter.stream`.

    Attributes
    ----------
    index : int
        Position in the stream, from 0.
    time : float or None
        Presentation time in seconds (frames from `coreseg.video`), else None.
    image : (H, W, 3|4) uint8 ndarray
        The frame.
    segmentation : Segmentation
        Its segmentation (smoothed, with `smoothing`).
    overlay : (H, W, 3|4) uint8 ndarray or None
        The frame with class colours, with `overlay`. Its buffer is reused
        for a later frame once no reference to it is left: keep the array
        (or a view of it) as long as you need it, or copy it.
    """

    index: int
    time: float | None
    image: np.ndarray
    segmentation: Segmentation
    overlay: np.ndarray | None = None


def _overlay_options(overlay, model, smoothing) -> dict | None:
    if overlay is None or overlay is False:
        return None
    options = {} if overlay is True else dict(overlay)
    unknown = set(options) - {"opacity", "outline", "classes", "palette", "smooth"}
    if unknown:
        raise TypeError(f"overlay options are opacity, outline, classes, palette and smooth; got {sorted(unknown)}")
    # Smooth edges from the scores when the model has them, unless the
    # labels were smoothed on their own (hysteresis keeps no scores).
    options.setdefault("smooth", model.has_scores and not isinstance(smoothing, Hysteresis))
    return options


def stream(model, frames, *, smoothing=None, overlay=None, queue: int = 2, workers: int = 2):
    """See `Segmenter.stream`. Arguments are checked here, at the call; the
    frames are read once the result is iterated.

    Closing the result (``close``, ``break``, an error, Ctrl-C) returns
    promptly whatever the source does (see `coreseg.frames.pipeline`)."""
    smooth_fn = smoother(smoothing)
    options = _overlay_options(overlay, model, smooth_fn)
    queue = _args.int_arg(queue, "queue", 0, 64)
    workers = _args.int_arg(workers, "workers", 1, MAX_WORKERS)
    return _run(model._stream_view(workers), frames, smooth_fn, options, workers, workers + queue)


def _owned(frame):
    """A frame that outlives the source's next pull: a camera generator
    usually fills one buffer and yields it again and again, so an array (or
    a frame object's ``image`` array, or a PIL image) is copied as it is
    pulled. Frames `coreseg.video.VideoReader` decoded own their arrays
    already, and paths are read later."""
    if isinstance(frame, np.ndarray):
        return frame.copy()
    if isinstance(frame, VideoFrame):
        return frame
    image = getattr(frame, "image", None)
    if isinstance(image, np.ndarray):
        return _Copied(image.copy(), getattr(frame, "time", None))
    if type(frame).__module__.startswith("PIL.") and hasattr(frame, "copy"):
        return frame.copy()
    return frame


@dataclass
class _Copied:
    image: np.ndarray
    time: float | None


class _Smoothed:
    """Stage 2: the predicted frames of `results`, smoothed in order on the
    thread that pulls them (the overlay stage's feeder, or the consumer).
    `close` is safe from any thread: it closes `results`."""

    def __init__(self, results, smooth_fn):
        self._results, self._smooth_fn = results, smooth_fn

    def __iter__(self):
        return self

    def __next__(self) -> StreamFrame:
        frame, thumb = next(self._results)
        if self._smooth_fn is not None:
            try:
                frame.segmentation = self._smooth_fn(frame.segmentation, thumb)
            except Exception as e:
                self.close()
                raise FrameError(frame.index, e) from e
        return frame

    def close(self) -> None:
        self._results.close()


def _run(model, frames, smooth_fn, options, workers: int, window: int):
    pool = BufferPool()

    def predict(item):
        index, source = item
        image = as_image(getattr(source, "image", source), "frame")
        seg = model.predict(image)
        thumb = thumbnail(image) if smooth_fn is not None else None
        return StreamFrame(index, getattr(source, "time", None), image, seg), thumb

    def draw(frame: StreamFrame) -> StreamFrame:
        seg, image = frame.segmentation, frame.image
        opts = dict(options)
        labels = None
        if opts.pop("smooth"):
            labels = seg.full_labels(out=pool.take(image.shape[:2], np.int32), smooth=True)
        frame.overlay = seg.overlay(image, out=pool.take(image.shape, np.uint8), labels=labels, **opts)
        return frame

    # A list's (or an array's) frames stay as they are until the stream is
    # done; any other source may hand out the same buffer again.
    in_memory = isinstance(frames, (list, tuple, np.ndarray))
    own = None if in_memory else (lambda item: (item[0], _owned(item[1])))
    predicted = OrderedMap(predict, enumerate(frames), workers=workers, window=window, take=own,
                           stalls=not in_memory)
    last = results = _Smoothed(predicted, smooth_fn)
    if options is not None:
        last = results = OrderedMap(draw, results, workers=workers, window=window, upstream=(predicted,))
    try:
        yield from results
    finally:
        last.close()  # every stage, at once: also on break, an error or Ctrl-C
