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

Closing returns promptly, whatever the source does: a source's ``next()``
is the one call coreseg cannot interrupt (a camera waiting for its next
frame, a network stream that stalled), so a feeder parked in it is left
behind, a daemon thread that ends when ``next()`` returns, dropping what it
got without looking at it (a list's, tuple's or range's feeder is always
joined: it cannot stall). Every other thread has ended when `close`
returns, and nothing runs `fn` (or `take`) after it.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor

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


def ordered_map(fn, items, *, workers: int = 2, window: int | None = None, take=None):
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
    take : callable, optional
        Called on the feeder thread with each item as it is pulled, before
        the next pull; its result goes to `fn`. `Segmenter.stream` copies
        frames here (a camera may refill its buffer on the next pull).
        Never called once the map is closed.

    Yields
    ------
    ``fn(item)``, in order.

    Raises
    ------
    FrameError
        When ``fn`` (or `take`) raised for an item, once the items before
        it have been yielded; the error is its ``__cause__``. An exception
        of the source itself is raised as it is.

    Closing the generator early (``break``, an exception in the consumer,
    Ctrl-C while it waits) cancels items not started, waits for those
    running and ends every thread it started before it returns, except a
    feeder parked in the source's ``next()`` (see the module's docstring).
    The source is closed (if it has a ``close``) by the feeder when it is
    done with it.
    """
    stage = OrderedMap(fn, items, workers=workers, window=window, take=take)
    try:
        yield from stage
    finally:
        stage.close()


def _cannot_stall(items) -> bool:
    """Sources whose next() never waits for anything: in memory."""
    return isinstance(items, (list, tuple, range)) or type(items).__name__ == "ndarray"


class OrderedMap:
    """`ordered_map`'s engine, an iterator: a stage of a chain. Threads
    start at the first ``next()``; `close` may be called from any thread,
    more than once, and a closed map's ``next()`` ends the iteration.

    `upstream` are the maps this one's source reads (the stages before it):
    `close` closes them first, so that this map's feeder is never left
    waiting on them. `stalls` says whether the source's ``next()`` may
    block for long (None: it may, unless `items` is a list, tuple, range
    or array); `close` waits for a feeder in one that cannot. Unlike a
    generator, an OrderedMap is not closed when it is dropped: whoever
    makes one closes it (`ordered_map` does)."""

    def __init__(self, fn, items, *, workers: int = 2, window: int | None = None, take=None, upstream=(),
                 stalls: bool | None = None):
        workers = int(workers)
        if not 1 <= workers <= MAX_WORKERS:
            raise ValueError(f"workers must be 1..{MAX_WORKERS}, got {workers}")
        window = workers + 1 if window is None else int(window)
        if window < 1:
            raise ValueError(f"window must be at least 1, got {window}")
        self._fn, self._items, self._take = fn, items, take
        self._workers, self._window = workers, window
        self._upstream = tuple(upstream)
        self._stalls = not _cannot_stall(items) if stalls is None else bool(stalls)
        self._slots = threading.Semaphore(window)
        self._ordered: queue.SimpleQueue = queue.SimpleQueue()  # (index, Future) in source order; None at the end
        self._state = threading.Condition()  # guards the flags below
        self._stop = False       # close has begun (a second close returns at once)
        self._pulling = False    # the feeder is inside the source's next()
        self._fed = False        # the feeder has finished
        self._started = False
        self._pool = None
        self._feeder = None

    def __iter__(self):
        return self

    def _start(self) -> None:
        self._started = True
        source = iter(self._items)
        self._items = None  # the feeder holds the source from now on
        self._pool = ThreadPoolExecutor(self._workers, thread_name_prefix="coreseg-worker")
        self._feeder = threading.Thread(target=self._feed, args=(source,), name="coreseg-feeder", daemon=True)
        self._feeder.start()

    def _feed(self, source) -> None:
        index = 0
        state = self._state
        try:
            while True:
                self._slots.acquire()  # close releases one to wake this
                with state:
                    if self._stop:
                        return
                    self._pulling = True
                try:
                    item = next(source)
                except StopIteration:
                    return
                except BaseException as e:  # noqa: BLE001  (handed to the consumer)
                    failed: Future = Future()
                    failed.set_exception(_SourceFailed(e))
                    self._ordered.put((index, failed))
                    return
                finally:
                    with state:
                        self._pulling = False
                        state.notify_all()
                        stopped = self._stop
                if stopped:  # closed while the source was pulled: drop the item, touch nothing
                    del item
                    return
                # From here until the next pull, close waits for this thread.
                if self._take is not None:
                    try:
                        item = self._take(item)
                    except Exception as e:  # noqa: BLE001  (this item's error, in order)
                        failed = Future()
                        failed.set_exception(e)
                        self._ordered.put((index, failed))
                        index += 1
                        continue
                try:
                    future = self._pool.submit(self._fn, item)
                except RuntimeError:  # the pool shut down: closed
                    return
                self._ordered.put((index, future))
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
            self._ordered.put(None)
            with state:
                self._fed = True
                state.notify_all()

    def __next__(self):
        with self._state:
            if self._stop:
                raise StopIteration
            if not self._started:
                self._start()  # under the lock: a close from another thread sees it started, or stops it first
        try:
            entry = self._ordered.get()
            with self._state:
                stopped = self._stop
            if entry is None or stopped:  # the end, or closed from another thread
                raise StopIteration
            index, future = entry
            try:
                return future.result()
            except _SourceFailed as e:
                error = e.args[0]
                raise error from error.__cause__  # as the source raised it (a chained FrameError keeps its cause)
            except CancelledError:  # closed from another thread while this waited
                raise StopIteration from None
            except Exception as e:
                raise FrameError(index, e) from e
            finally:
                self._slots.release()
        except BaseException:
            # The end, an error or an interrupt (Ctrl-C while waiting): stop
            # everything now, not when the iterator is collected.
            self.close()
            raise

    def close(self) -> None:
        """Stop: cancel items not started, wait for those running, end the
        threads. Returns without waiting for a source whose ``next()`` has
        not returned (that feeder ends when it does, dropping the item).
        Safe from any thread; a second call returns at once."""
        with self._state:
            if self._stop:
                return
            self._stop = True
            self._state.notify_all()
        self._slots.release()     # a feeder waiting for a slot sees the stop
        self._ordered.put(None)   # a consumer waiting on another thread sees the end
        for stage in self._upstream:
            stage.close()  # this feeder's source now returns at once
        if not self._started:
            return
        with self._state:
            if self._upstream or not self._stalls:  # the source returns promptly now
                self._state.wait_for(lambda: self._fed)
            else:
                self._state.wait_for(lambda: self._fed or self._pulling)
            fed = self._fed
        self._pool.shutdown(wait=True, cancel_futures=True)
        if fed:
            self._feeder.join()
