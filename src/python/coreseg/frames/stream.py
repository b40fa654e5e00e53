"""`Segmenter.stream`: segment a sequence of frames (a video, a camera, a
list of images) at the model's speed.

Three stages, connected by `coreseg.pipeline.ordered_map`:

1. on `workers` threads: the frame made an array, `predict`, and a
   thumbnail for scene cuts;
2. in order, on one thread: temporal smoothing (`coreseg.smoothing`),
   which needs the frames one after the other;
3. on `workers` threads: the overlay and the background effect
   (`Segmentation.replace_background`) at the frame's resolution, into
   buffers reused from a small pool.

So several frames are in flight at once (with ONNX Runtime, each on a
session with its share of the cores), and a frame is decoded, drawn and
consumed while the next ones run through the model: the loop runs at the
pace of its busiest resource, not at the sum of its stages. Memory is
bounded by `workers + queue` frames per stage whatever the stream's length.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass

import numpy as np

from .. import kernels
from ..kernels import _args
from ..kernels._buffers import BufferPool
from ..files.images import as_image
from .pipeline import MAX_WORKERS, FrameError, OrderedMap
from ..results.background import cover_picture, refine_radius
from ..results.segmentation import Segmentation
from .smoothing import smoother, thumbnail
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
    background : (H, W, 3|4) uint8 ndarray or None
        The frame with its background blurred, replaced or made transparent
        ((H, W, 4) for "transparent"), with `background`. Its buffer is
        reused as the overlay's is: keep the array as long as you need it,
        or copy it.
    """

    index: int
    time: float | None
    image: np.ndarray
    segmentation: Segmentation
    overlay: np.ndarray | None = None
    background: np.ndarray | None = None


def _overlay_options(overlay, model) -> dict | None:
    if overlay is None or overlay is False:
        return None
    options = {} if overlay is True else dict(overlay)
    unknown = set(options) - {"opacity", "outline", "classes", "palette", "smooth", "color"}
    if unknown:
        raise TypeError(f"overlay options are opacity, outline, classes, palette, color and smooth; "
                        f"got {sorted(unknown)}")
    _check_classes(model, options.get("classes"))
    # None: smooth edges when the frame's segmentation has scores, as
    # Segmentation.overlay decides (hysteresis, or a smoother of one's own,
    # may leave a class map alone).
    options.setdefault("smooth", None)
    return options


def _check_classes(model, classes) -> None:
    """Unknown class names, at the call rather than at the first frame."""
    if classes is None:
        return
    n = len(model.labels) if model.labels is not None else None
    for c in [classes] if isinstance(classes, (str, int, np.integer)) else classes:
        if isinstance(c, str):
            model.label_index(c)  # KeyError listing the valid labels
        elif isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            if n is not None and not 0 <= c < n:
                raise ValueError(f"class id {c} is not one of the model's ids 0..{n - 1}")
        else:
            raise TypeError(f"classes are names or ids, got {c!r}")


#: The options of `stream`'s background that stream itself reads; any other
#: keyword of `Segmentation.replace_background` (such as refine) is passed on.
_BACKGROUND_OWN = ("background", "classes", "blur", "smooth")


def _background_options(background, model) -> dict | None:
    """`stream`'s `background` as replace_background's keywords, checked, a
    picture read once (a path) and a colour parsed."""
    if background is None or background is False:
        return None
    if isinstance(background, dict):
        options = dict(background)
        options.setdefault("background", "blur")
    else:
        options = {"background": "blur" if background is True else background}
    known = set(inspect.signature(Segmentation.replace_background).parameters) - {"self", "image", "out"}
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"background options are {', '.join(sorted(known))} (those of "
                        f"Segmentation.replace_background); got {sorted(unknown)}")
    value = options["background"]
    if isinstance(value, str) and value in ("blur", "transparent"):
        pass
    elif isinstance(value, str) and value.startswith("#") or isinstance(value, (tuple, list)):
        options["background"] = _args.rgba(value, "background")  # replace_background takes the tuple as a colour
    else:
        options["background"] = as_image(value, "background")  # read once, not per frame
    if options.get("blur") is not None:
        if not (isinstance(options["background"], str) and options["background"] == "blur"):
            raise ValueError("the background option blur= is the radius of background='blur'")
        _args.blur_radius(options["blur"])
    if options.get("smooth") is not None and not isinstance(options["smooth"], bool):
        raise TypeError(f"the background option smooth= is True or False, got {options['smooth']!r}")
    if options.get("refine") not in (None, False, True):
        refine_radius(None, options["refine"])  # a radius: checked now (True's depends on each frame)
    _check_classes(model, options.get("classes"))
    return options


def stream(model, frames, *, smoothing=None, overlay=None, background=None, queue: int = 2, workers: int = 2):
    """See `Segmenter.stream`. Arguments are checked here, at the call; the
    frames are read once the result is iterated.

    Closing the result (``close``, ``break``, an error, Ctrl-C) returns
    promptly whatever the source does (see `coreseg.frames.pipeline`)."""
    smooth_fn = smoother(smoothing)
    options = _overlay_options(overlay, model)
    effect = _background_options(background, model)
    queue = _args.int_arg(queue, "queue", 0, 64)
    workers = _args.int_arg(workers, "workers", 1, MAX_WORKERS)
    return _run(model._stream_view(workers), frames, smooth_fn, options, effect, workers, workers + queue)


class _Backgrounds:
    """Draws a frame's background effect. A picture is scaled to cover the
    frame once per frame size (the last size's is kept), not per frame:
    at 1080p that resize costs more than the blend itself."""

    def __init__(self, options: dict, pool: BufferPool):
        self._options, self._pool = dict(options), pool
        self._extra = {k: v for k, v in options.items() if k not in _BACKGROUND_OWN}
        self._picture = options["background"] if isinstance(options["background"], np.ndarray) else None
        # A picture's frame is replace_background's matte and blend, done
        # here so the covered picture is not covered again: the options
        # replace_background hands to matte (refine) go to matte, the photo
        # as its image= when matte takes one. Others: replace_background.
        takes = set(inspect.signature(Segmentation.matte).parameters)
        self._own_blend = self._picture is not None and set(self._extra) <= takes - {"image", "out"}
        self._matte_image = "image" in takes
        self._lock = threading.Lock()
        self._covered = (None, None)  # (frame shape, picture covering it)

    def _cover(self, shape) -> np.ndarray:
        with self._lock:
            if self._covered[0] != shape:
                picture, channels = self._picture, shape[2]
                if picture.shape[2] != channels:  # as replace_background matches the frame's channels
                    picture = picture[..., :3] if picture.shape[2] == 4 else np.dstack(
                        [picture, np.full(picture.shape[:2], 255, np.uint8)])
                self._covered = (shape, cover_picture(picture, (shape[1], shape[0])))
            return self._covered[1]

    def __call__(self, seg: Segmentation, image: np.ndarray) -> np.ndarray:
        o, pool = self._options, self._pool
        back = o["background"]
        smooth, classes = o.get("smooth", True), o.get("classes")
        if self._picture is not None:
            back = self._cover(image.shape)
            if self._own_blend:
                photo = {"image": image} if self._matte_image else {}
                alpha = seg.matte(classes, smooth=smooth, out=pool.take(image.shape[:2], np.uint8), **photo,
                                  **self._extra)
                return kernels.blend(image, back, alpha, out=pool.take(image.shape, np.uint8))
        shape = (*image.shape[:2], 4) if isinstance(back, str) and back == "transparent" else image.shape
        return seg.replace_background(image, back, classes=classes, blur=o.get("blur"), smooth=smooth,
                                      out=pool.take(shape, np.uint8), **self._extra)


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


def _run(model, frames, smooth_fn, options, effect, workers: int, window: int):
    # Every frame in flight (and the consumer's) holds its overlay, its
    # background and their scratch arrays: room for all of them.
    pool = BufferPool(limit=max(16, 4 * (window + 2)))
    backgrounds = None if effect is None else _Backgrounds(effect, pool)

    def predict(item):
        index, source = item
        image = as_image(getattr(source, "image", source), "frame")
        seg = model.predict(image)
        thumb = thumbnail(image) if smooth_fn is not None else None
        return StreamFrame(index, getattr(source, "time", None), image, seg), thumb

    def draw(frame: StreamFrame) -> StreamFrame:
        seg, image = frame.segmentation, frame.image
        if options is not None:
            opts = dict(options)
            smooth = opts.pop("smooth")
            labels = None
            if smooth or (smooth is None and seg.scores is not None):
                labels = seg.full_labels(out=pool.take(image.shape[:2], np.int32), smooth=True)
            frame.overlay = seg.overlay(image, out=pool.take(image.shape, np.uint8), labels=labels,
                                        smooth=smooth, **opts)
        if backgrounds is not None:
            frame.background = backgrounds(seg, image)
        return frame

    # A list's (or an array's) frames stay as they are until the stream is
    # done; any other source may hand out the same buffer again.
    in_memory = isinstance(frames, (list, tuple, np.ndarray))
    own = None if in_memory else (lambda item: (item[0], _owned(item[1])))
    predicted = OrderedMap(predict, enumerate(frames), workers=workers, window=window, take=own,
                           stalls=not in_memory)
    last = results = _Smoothed(predicted, smooth_fn)
    if options is not None or backgrounds is not None:
        last = results = OrderedMap(draw, results, workers=workers, window=window, upstream=(predicted,))
    try:
        yield from results
    finally:
        last.close()  # every stage, at once: also on break, an error or Ctrl-C
