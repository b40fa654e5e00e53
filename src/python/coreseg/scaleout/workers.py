"""Worker processes for datasets: what `coreseg eval --jobs N` and
`coreseg segment --jobs N` run on.

Each worker is a process of its own, spawned (it inherits none of the
parent's threads, sessions or locks), that builds its state once, a model
loaded in that process, and then takes one item at a time. With one item
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
import multiprocessing
import pickle
import signal
from dataclasses import dataclass
from multiprocessing.connection import wait

from ..kernels.threads import threads_per_worker, usable_cores

__all__ = ["Outcome", "WorkerDied", "WorkerStartError", "process_map", "default_jobs", "threads_per_worker",
           "ITEM_ERRORS"]

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


def _worker_main(conn, make, make_args) -> None:
    """A worker's life: build the state, then answer one item at a time."""
    # Ctrl-C reaches the whole process group; the parent decides, and ends
    # its workers itself, with SIGTERM: raised here as SystemExit, so the
    # work's `finally` blocks run (an output half-written is removed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop)
    try:
        work = make(*make_args)
    except BaseException as e:  # noqa: BLE001 - reported to the parent
        conn.send(("failed", _portable(e)))
        return
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is None:
            return
        index, item = message
        try:
            reply = (index, work(item), None)
            conn.send(reply)
        except Exception as e:  # noqa: BLE001 - the item failed, not the worker
            conn.send((index, None, _portable(e)))


class _Worker:
    def __init__(self, context, make, make_args, number: int):
        self.conn, child = context.Pipe()
        self.process = context.Process(target=_worker_main, args=(child, make, make_args),
                                       name=f"coreseg-worker-{number}", daemon=True)
        self.process.start()
        child.close()
        self.ready = False
        self.holding = None  # (index, item) sent and not answered

    def send(self, index: int, item) -> None:
        self.holding = (index, item)
        try:
            self.conn.send((index, item))
        except (BrokenPipeError, ConnectionResetError):
            # The worker is already gone (it failed to start and exited, or
            # died after its last answer): what it wrote before going is
            # still in the pipe, and its exit shows on its sentinel, so the
            # main loop reads why and retries `holding` as for any death.
            pass

    def died(self) -> str:
        self.process.join(timeout=5)
        code = self.process.exitcode
        if code is not None and code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit code {code}"


def process_map(make, make_args, items, *, jobs: int, retries: int = 1, on_retry=None, context: str = "spawn"):
    """``make(*make_args)(item)`` for every item, on `jobs` worker processes;
    yields an `Outcome` per item as each finishes (not in input order).

    Parameters
    ----------
    make : callable
        Run once in each worker (a module-level function, so that it
        pickles): builds and returns the callable applied to each item.
    make_args : tuple
        Its arguments (picklable).
    items : sequence
        Picklable; each is sent to one worker.
    jobs : int
        Worker processes (1 to MAX_JOBS); no more than there are items.
    retries : int
        Times an item is tried again on a new worker when its worker dies
        holding it. An exception raised by the work is not retried: it is
        the item's outcome.
    on_retry : callable, optional
        ``on_retry(index, why)`` when an item is tried again because its
        worker died (why: "killed by SIGKILL", "exit code 1", ...).

    Raises
    ------
    WorkerStartError
        A worker failed to build its state (the cause is chained), or
        workers died while starting more than `jobs` times.
    """
    if not 1 <= jobs <= MAX_JOBS:
        raise ValueError(f"jobs must be 1 to {MAX_JOBS}, got {jobs}")
    items = list(items)
    ctx = multiprocessing.get_context(context)
    pending = collections.deque(enumerate(items))
    deaths = collections.Counter()
    workers: list[_Worker] = []
    started = start_deaths = 0
    clean = False
    try:
        while pending or any(w.holding is not None for w in workers):
            busy = sum(w.holding is not None for w in workers)
            # One worker per item outstanding, at most `jobs`: at the start,
            # and in place of one that died.
            while len(workers) < min(jobs, len(pending) + busy):
                started += 1
                workers.append(_Worker(ctx, make, make_args, started))
            for w in workers:
                if w.holding is None and pending:
                    w.send(*pending.popleft())
            ready = set(wait([w.conn for w in workers] + [w.process.sentinel for w in workers]))
            for w in list(workers):
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
                    if not w.ready:
                        # Killed while loading the model: its item never ran. Start
                        # another, unless starting keeps failing.
                        start_deaths += 1
                        if start_deaths > jobs:
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
        for w in workers:
            if clean:
                try:
                    w.conn.send(None)
                except (OSError, ValueError):
                    pass
            else:  # stopped early (an error, Ctrl-C, the consumer gone): no waiting
                w.process.terminate()
        for w in workers:
            w.process.join(timeout=10)
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
