"""Items in flight: the ordered, bounded thread pipeline that
`Segmenter.stream` and `coreseg segment` run on.

Decoding (Pillow, OpenCV, PyAV), the native kernels, both backends and
encoding all release the GIL, so threads overlap the stages of consecutive
items: while the model runs one frame, the next is decoded and the last
one drawn and encoded. A feeder thread pulls items from the source, so a
slow source (a video decoder, a camera) runs beside the work too.

Memory is bounded: at most `window` items are taken from the source and
not yet handed to the consumer, so a slow consumer slows the source
instead of queueing frames without end.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future, ThreadPoolExecutor

#: Most worker threads a pipeline starts (coreseg's own thread-pool cap).
MAX_WORKERS = 64


class FrameError(RuntimeError):
    """A pipeline item failed. `index` is its position in the source (0
    for the first), `__cause__` the original exception."""

    def __init__(self, index: int, error: BaseException):
        super().__init__(f"frame {index}: {type(error).__name__}: {error}")
        self.index = index


class _SourceFailed(Exception):
    """The source iterator itself raised (wrapped so it reaches the consumer
    in order, after the items it did produce)."""


def ordered_map(fn, items, *, workers: int = 2, window: int | None = None):
    """``fn(item)`` for every item, computed on `workers` threads and yielded
    in the source's order.

    Parameters
    ----------
    fn : callable
        Called once per item on a worker thread.
    items : iterable
        Pulled on a feeder thread, never faster than the consumer takes
        results (see `window`).
    workers : int
        Items computed at once (1 to MAX_WORKERS).
    window : int, optional
        Items taken from the source and not yet yielded, at most; default
        ``workers + 1`` (one result may wait for an earlier one while every
        worker is busy).

    Yields
    ------
    ``fn(item)``, in order.

    Raises
    ------
    FrameError
        When ``fn`` raised for an item, once the items before it have been
        yielded; the error is its ``__cause__``. An exception of the source
        itself is raised as it is.

    Closing the generator early (``break``, an exception in the consumer,
    Ctrl-C) stops the feeder, cancels items not started, waits for those
    running and joins every thread before it returns. The source is closed
    (if it has a ``close``) when the feeder is done with it, at the end or
    at an early stop.
    """
    workers = int(workers)
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be 1..{MAX_WORKERS}, got {workers}")
    window = workers + 1 if window is None else int(window)
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    source = iter(items)
    slots = threading.Semaphore(window)
    stop = threading.Event()
    ordered: queue.SimpleQueue = queue.SimpleQueue()  # (index, Future) in source order; None at the end
    pool = ThreadPoolExecutor(workers, thread_name_prefix="coreseg-worker")

    def feed():
        index = 0
        try:
            while True:
                while not slots.acquire(timeout=0.05):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(source)
                except StopIteration:
                    return
                except BaseException as e:  # noqa: BLE001  (handed to the consumer)
                    failed: Future = Future()
                    failed.set_exception(_SourceFailed(e))
                    ordered.put((index, failed))
                    return
                ordered.put((index, pool.submit(fn, item)))
                index += 1
        finally:
            # The feeder owns the source: closing it here (a generator's
            # finally blocks, a chained ordered_map's threads) leaves
            # nothing running behind an early stop.
            close = getattr(source, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:  # noqa: BLE001  (a source failing to close must not hide the stream's end)
                    pass
            ordered.put(None)

    feeder = threading.Thread(target=feed, name="coreseg-feeder", daemon=True)
    feeder.start()
    try:
        while True:
            entry = ordered.get()
            if entry is None:
                return
            index, future = entry
            try:
                result = future.result()
            except _SourceFailed as e:
                error = e.args[0]
                raise error from error.__cause__  # as the source raised it (a chained FrameError keeps its cause)
            except Exception as e:
                raise FrameError(index, e) from e
            finally:
                slots.release()
            yield result
    finally:
        stop.set()
        feeder.join()
        pool.shutdown(wait=True, cancel_futures=True)
