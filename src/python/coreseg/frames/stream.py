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
from .pipeline import MAX_WORKERS, FrameError, ordered_map
from ..results.segmentation import Segmentation
from .smoothing import Hysteresis, smoother, thumbnail


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
    frames are read once the result is iterated."""
    smooth_fn = smoother(smoothing)
    options = _overlay_options(overlay, model, smooth_fn)
    queue = _args.int_arg(queue, "queue", 0, 64)
    workers = _args.int_arg(workers, "workers", 1, MAX_WORKERS)
    return _run(model._stream_view(workers), frames, smooth_fn, options, workers, workers + queue)


def _run(model, frames, smooth_fn, options, workers: int, window: int):
    pool = BufferPool()

    def predict(item):
        index, source = item
        image = as_image(getattr(source, "image", source), "frame")
        seg = model.predict(image)
        thumb = thumbnail(image) if smooth_fn is not None else None
        return StreamFrame(index, getattr(source, "time", None), image, seg), thumb

    def smoothed(results):
        try:
            for frame, thumb in results:
                if smooth_fn is not None:
                    try:
                        frame.segmentation = smooth_fn(frame.segmentation, thumb)
                    except Exception as e:
                        raise FrameError(frame.index, e) from e
                yield frame
        finally:
            results.close()  # a generator's for loop does not close what it iterates

    def draw(frame: StreamFrame) -> StreamFrame:
        seg, image = frame.segmentation, frame.image
        opts = dict(options)
        labels = None
        if opts.pop("smooth"):
            labels = seg.full_labels(out=pool.take(image.shape[:2], np.int32), smooth=True)
        frame.overlay = seg.overlay(image, out=pool.take(image.shape, np.uint8), labels=labels, **opts)
        return frame

    results = smoothed(ordered_map(predict, enumerate(frames), workers=workers, window=window))
    if options is not None:
        results = ordered_map(draw, results, workers=workers, window=window)
    yield from results
