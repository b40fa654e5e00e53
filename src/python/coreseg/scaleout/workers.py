"""Worker processes for datasets: what `coreseg eval --jobs N` and
`coreseg segment --jobs N` run on.

Each worker is a process of its own, spawned, or forked when a command
starts its workers before anything else (`start_method_at_startup`):
either way it inherits none of the parent's threads, sessions or locks. A `WorkerPool` starts
its workers first, so that they import what the work needs while the
parent gets ready; each then builds its state once, a model loaded in
that process, and takes one item at a time. With one item
per worker at a time the parent always knows which item a worker holds, so
when a worker dies (a crash in a native library, the out-of-memory killer,
a kill) that item alone is tried again once, on a new worker, and reported
as failed if it ends that one too. Results are merged by the parent only,
so nothing a dead worker had already returned is lost or counted twice.

Ray (coreseg.dist) is the engine for more than one machine; this module is
for the cores of one, with nothing to install.
"""

from __future__ import annotations

import collections
import importlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import warnings
from dataclasses import dataclass
from multiprocessing.connection import wait

from ..kernels.threads import THREADS_AT_IMPORT, os_threads, threads_per_worker, usable_cores
from .process_memory import keep_freed_memory

__all__ = ["Outcome", "WorkerDied", "WorkerStartError", "WorkerPool", "process_map", "default_jobs",
           "threads_per_worker", "start_method_at_startup", "ITEM_ERRORS"]

#: What an item's work may raise that fails that item only (an unreadable
#: file, an image the model refuses); anything else is a bug and stops a run.
ITEM_ERRORS = (OSError, ValueError, RuntimeError, ImportError)

#: Most worker processes a run starts.
MAX_JOBS = 256


class WorkerDied(RuntimeError):
    """An item's worker process died while it held the item, on each try."""


class WorkerStartError(RuntimeError):
    """A worker could not build its state (load the model): every worker
    would fail the same way, so the run stops."""


@dataclass
class Outcome:
    """One item's result: `value` when it succeeded, else `error` (the
    exception the work raised, or a WorkerDied)."""

    index: int
    value: object = None
    error: BaseException | None = None


def default_jobs() -> int:
    """The default --jobs: every core this process may use."""
    return usable_cores()


def _portable(error: BaseException) -> BaseException:
    """`error` if it survives pickling, else a RuntimeError with its text."""
    try:
        return pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")


def _stop(signum, frame):
    raise SystemExit(128 + signum)


def _worker_main(conn, imports, inherited) -> None:
    """A worker's life: import what the work will need, then build the work
    when told ("make") and answer one item at a time."""
    # Ctrl-C reaches the whole process group; the parent decides, and ends
    # its workers itself, with SIGTERM: raised here as SystemExit, so the
    # work's `finally` blocks run (an output half-written is removed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    for fd in inherited:  # forked: the parent's ends of the pipes, so that its death reads as EOF here
        try:
            os.close(fd)
        except OSError:
            pass
    keep_freed_memory()  # one image after another: what one frees, the next needs
    for name in imports:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - a warm-up only: the work's own import says what is missing
            pass
    work = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        if message[0] == "make":
            try:
                work = message[1](*message[2])
            except BaseException as e:  # noqa: BLE001 - reported to the parent
                conn.send(("failed", _portable(e)))
                return
            conn.send(("ready", None))
            continue
        _, index, item = message
        try:
            reply = (index, work(item), None)
            conn.send(reply)
        except Exception as e:  # noqa: BLE001 - the item failed, not the worker
            conn.send((index, None, _portable(e)))


#: Set to "spawn", workers are always spawned (what macOS runs, tested on Linux).
START_ENV = "CORESEG_WORKER_START"


def start_method_at_startup() -> str:
    """The start method for workers started at the start of a command,
    before it loads a model or runs a kernel: "fork" on Linux while every
    thread running was running when coreseg was imported, else "spawn"
    (and always with CORESEG_WORKER_START=spawn).

    A forked worker starts with what the parent has imported (numpy and
    coreseg: about 0.3 s of CPU a worker, not paid again). Fork copies only
    the calling thread, so anything another thread holds would be copied
    half-done: the threads found at coreseg's import are numpy's OpenBLAS
    pool, which stops for a fork (pthread_atfork). Any other (a Python
    thread; a native library's pool, such as ONNX Runtime's or OpenCV's,
    which may start at their import or first use) means spawn, as always
    on macOS, whose frameworks do not survive a fork.
    """
    now = os_threads()
    if (sys.platform.startswith("linux") and os.environ.get(START_ENV) != "spawn"
            and threading.active_count() == 1 and now is not None and THREADS_AT_IMPORT is not None
            and now <= THREADS_AT_IMPORT):
        return "fork"
    return "spawn"


class _Worker:
    def __init__(self, context, imports, number: int, inherited=()):
        self.conn, child = context.Pipe()
        inherited = tuple(inherited) + (self.conn.fileno(),) if context.get_start_method() == "fork" else ()
        self.process = context.Process(target=_worker_main, args=(child, tuple(imports), inherited),
                                       name=f"coreseg-worker-{number}", daemon=True)
        with warnings.catch_warnings():
            # Python 3.12+ warns of any fork while OS threads run: at start-up
            # those are OpenBLAS's, which stop for it (start_method_at_startup).
            warnings.simplefilter("ignore", DeprecationWarning)
            self.process.start()
        child.close()
        self.made = 0  # the map whose work it was told to build (WorkerPool.map's number)
        self.ready = False  # that work is built
        self.holding = None  # (index, item) sent and not answered

    def make(self, number: int, make, make_args) -> None:
        self.made, self.ready = number, False
        self._send(("make", make, make_args))

    def send(self, index: int, item) -> None:
        self.holding = (index, item)
        self._send(("item", index, item))

    def _send(self, message) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, ConnectionResetError):
            # The worker is already gone (it failed to build its work and
            # exited, or died after its last answer): what it wrote before
            # going is still in the pipe, and its exit shows on its
            # sentinel, so the map reads why and retries `holding` as for
            # any death.
            pass

    def stop(self) -> None:
        """Tell the worker to end (it exits once it has read this), and wait."""
        self._send(None)
        self.reap()

    def reap(self) -> None:
        """Wait for the worker to exit (killed if it has not within 10 s),
        and close its pipe."""
        self.process.join(timeout=10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()

    def died(self) -> str:
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"


class WorkerPool:
    """`jobs` worker processes, started now and given their work later.

    A command starts its pool first, so that the workers import what the
    work needs while the parent scans its inputs and loads its own model;
    then `map` has them build the work (``make(*make_args)``, a model
    loaded in each) and run it on the items. Use it as a context manager:
    the workers end with the block.

    Parameters
    ----------
    jobs : int
        Worker processes (1 to MAX_JOBS).
    imports : sequence of str
        Modules each worker imports as it starts (a warm-up: one that fails
        to import is left to the work to report).
    context : {"spawn", "fork", "forkserver"}
        The start method: "spawn" (a fresh interpreter) unless the caller
        knows a fork is safe (`start_method_at_startup`).
    """

    def __init__(self, jobs: int, *, imports=(), context: str = "spawn"):
        if not 1 <= jobs <= MAX_JOBS:
            raise ValueError(f"jobs must be 1 to {MAX_JOBS}, got {jobs}")
        self.jobs, self.imports = jobs, tuple(imports)
        self._context = multiprocessing.get_context(context)
        self._workers: list[_Worker] = []
        self._started = self._maps = 0
        self._closed = self._mapping = False
        try:
            for _ in range(jobs):
                self._start()
        except BaseException:
            self.terminate()
            raise

    def _start(self) -> _Worker:
        context = self._context
        if self._started >= self.jobs and context.get_start_method() == "fork":
            # In place of one that died: the parent may run threads by now
            # (a model loaded), and a fork would copy what they hold.
            context = multiprocessing.get_context(start_method_at_startup())
        self._started += 1
        w = _Worker(context, self.imports, self._started, [v.conn.fileno() for v in self._workers])
        self._workers.append(w)
        return w

    def _trim(self, keep: int) -> None:
        """End the idle workers beyond `keep` (a map of fewer items than
        the pool has workers)."""
        for w in [w for w in self._workers if w.holding is None][: max(0, len(self._workers) - keep)]:
            self._workers.remove(w)
            w.stop()

    def __enter__(self) -> "WorkerPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def map(self, make, make_args, items, *, retries: int = 1, on_retry=None):
        """``make(*make_args)(item)`` for every item, on the pool's workers;
        yields an `Outcome` per item as each finishes (not in input order).

        Parameters
        ----------
        make : callable
            Run once in each worker that takes items (a module-level
            function, so that it pickles): builds and returns the callable
            applied to each item.
        make_args : tuple
            Its arguments (picklable).
        items : sequence
            Picklable; each is sent to one worker.
        retries : int
            Times an item is tried again on a new worker when its worker
            dies holding it. An exception raised by the work is not
            retried: it is the item's outcome.
        on_retry : callable, optional
            ``on_retry(index, why)`` when an item is tried again because its
            worker died (why: "killed by SIGKILL", "exit code 1", ...).

        Raises
        ------
        WorkerStartError
            A worker failed to build its work (the cause is chained), or
            workers died while starting more than `jobs` times.

        A map stopped early (an error, the consumer gone) ends the pool's
        workers at once; one run to its end leaves them for the next map.
        One map at a time; workers beyond the items' count are ended.
        """
        if self._closed:
            raise RuntimeError("this WorkerPool is closed")
        if self._mapping:
            raise RuntimeError("this WorkerPool runs one map at a time: finish the one under way first")
        self._mapping = True
        self._maps += 1
        number = self._maps
        pending = collections.deque(enumerate(items))
        self._trim(len(pending))
        deaths = collections.Counter()
        start_deaths = 0
        workers = self._workers
        clean = False
        try:
            while pending or any(w.holding is not None for w in workers):
                busy = sum(w.holding is not None for w in workers)
                # One worker per item outstanding, at most `jobs`: in place
                # of one that died.
                while len(workers) < min(self.jobs, len(pending) + busy):
                    self._start()
                for w in workers:
                    if w.holding is None and pending:
                        if w.made != number:
                            w.make(number, make, make_args)
                        w.send(*pending.popleft())
                active = [w for w in workers if w.made == number]
                ready = set(wait([w.conn for w in active] + [w.process.sentinel for w in active]))
                for w in active:
                    if w.conn not in ready and w.process.sentinel not in ready:
                        continue
                    try:
                        message = w.conn.recv() if w.conn.poll() else None
                    except (EOFError, OSError):
                        message = None
                    if message is None:
                        if w.process.is_alive():
                            continue
                        workers.remove(w)
                        why = w.died()
                        w.conn.close()
                        if not w.ready:
                            # Died while building its work: its item never ran.
                            # Start another, unless starting keeps failing.
                            start_deaths += 1
                            if start_deaths > self.jobs:
                                raise WorkerStartError(f"worker processes died while starting, {start_deaths} "
                                                       f"times (the last: {why})")
                            if w.holding is not None:
                                pending.appendleft(w.holding)
                            continue
                        if w.holding is not None:
                            index, item = w.holding
                            deaths[index] += 1
                            if deaths[index] <= retries:
                                pending.appendleft((index, item))
                                if on_retry is not None:
                                    on_retry(index, why)
                            else:
                                yield Outcome(index, error=WorkerDied(
                                    f"the worker process died holding this item, {deaths[index]} times ({why})"))
                        continue
                    if message[0] == "failed":
                        raise WorkerStartError(f"a worker could not start: {message[1]}") from message[1]
                    if message[0] == "ready":
                        w.ready = True
                        continue
                    index, value, error = message
                    w.holding = None
                    yield Outcome(index, value, error)
            clean = True
        finally:
            self._mapping = False
            if not clean:  # stopped early (an error, Ctrl-C, the consumer gone): no waiting
                self._end(terminate=True)

    def close(self) -> None:
        """End the workers: each finishes its item and exits."""
        self._end(terminate=False)

    def terminate(self) -> None:
        """End the workers now (SIGTERM: their `finally` blocks run)."""
        self._end(terminate=True)

    def _end(self, terminate: bool) -> None:
        if self._closed:
            return
        self._closed = True
        for w in self._workers:
            if terminate:
                w.process.terminate()
            else:
                try:
                    w.conn.send(None)
                except (OSError, ValueError):
                    pass
        for w in self._workers:  # all told first, then waited for: they end side by side
            w.reap()


def process_map(make, make_args, items, *, jobs: int, retries: int = 1, on_retry=None, context: str = "spawn"):
    """``make(*make_args)(item)`` for every item, on `jobs` worker processes
    (no more than there are items) started for it: `WorkerPool.map` on a
    pool of its own, ended with the map. Yields an `Outcome` per item as
    each finishes (not in input order).

    Raises
    ------
    ValueError
        `jobs` is not 1 to MAX_JOBS.
    WorkerStartError
        As `WorkerPool.map`.
    """
    if not 1 <= jobs <= MAX_JOBS:
        raise ValueError(f"jobs must be 1 to {MAX_JOBS}, got {jobs}")
    items = list(items)
    if not items:
        return
    with WorkerPool(min(jobs, len(items)), context=context) as pool:
        yield from pool.map(make, make_args, items, retries=retries, on_retry=on_retry)
