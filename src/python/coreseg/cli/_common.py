"""Helpers shared by the commands."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from pathlib import Path

from ..drawing.image_outputs import OUTLINE  # noqa: F401 - the commands draw the same outline


def model_path(name: str) -> str:
    if name != "demo":
        return name
    from ..modelfiles import bundled

    return str(bundled.model_path("onnx" if needs_onnx_for_info() else "mlpackage"))


def needs_onnx_for_info() -> bool:
    """Whether `info demo` must read the ONNX demo: coremltools (which
    reads the Core ML one) is not installed. Found, not imported: importing
    it takes seconds."""
    import importlib.util

    return importlib.util.find_spec("coremltools") is None


def refuse_existing(paths, force: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]} exists{more}; pass --force to overwrite")


def progress_bar(items, args, total: int | None = None, unit: str = "image", desc: str | None = None):
    """`items` with a progress bar on stderr (rate and time left) when there
    is more than one, or an unknown number, and tqdm is installed. `total`
    for iterators without a length (None: unknown)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    if total is None or total > 1:
        try:
            from tqdm import tqdm

            return tqdm(items, total=total, unit=unit, desc=desc, file=sys.stderr)
        except ImportError:
            pass
    return items


def check_jobs(args) -> None:
    """--jobs: default every usable core; at least 1."""
    from ..scaleout.workers import MAX_JOBS, default_jobs

    if args.jobs is None:
        args.jobs = default_jobs()
    if not 1 <= args.jobs <= MAX_JOBS:
        raise ValueError(f"--jobs must be 1 to {MAX_JOBS}, got {args.jobs}")


#: Items one eval process has in flight on threads: while the model runs
#: one, the next one's files are read and decoded (OpenCV, Pillow and the
#: backends release the GIL), so --jobs 1 keeps more than the model busy.
READ_AHEAD = 2


def backend_imports(model: str | None) -> tuple[str, ...]:
    """The modules a worker needs to run `model` (a path or "demo"), by its
    name alone (nothing is read): ONNX Runtime and its backend, or the Core
    ML backend."""
    if model is None:
        return ()
    suffix = Path(model).suffix.lower()
    coreml = suffix in (".mlpackage", ".mlmodel", ".mlmodelc") or (model == "demo" and sys.platform == "darwin")
    if coreml:
        return ("coreseg.running.backends.coreml",)
    if suffix == ".onnx" or model == "demo":
        return ("onnxruntime", "coreseg.running.backends.onnx")
    return ()


@contextlib.contextmanager
def workers_started(args, imports=(), items: int | None = None):
    """With --jobs N > 1 (and no --ray): N worker processes (no more than
    `items`, when known) started now, as ``args.workers`` for `run_items`,
    so that they import `imports` while this process scans its inputs and
    loads its own model (their start-up overlaps it, instead of following
    it); they end with the block. Called first thing in a command, before a
    model is loaded: the workers are then forked where that is safe
    (`start_method_at_startup`)."""
    from ..scaleout.workers import WorkerPool, start_method_at_startup

    jobs = args.jobs if items is None else min(args.jobs, items)
    if jobs <= 1 or getattr(args, "ray", None):
        args.workers = None
        yield
        return
    pool = WorkerPool(jobs, imports=imports, context=start_method_at_startup())
    args.workers = pool
    try:
        yield
    except BaseException:
        pool.terminate()  # an error or Ctrl-C: no waiting for their imports to end
        raise
    finally:
        args.workers = None
        pool.close()


def run_items(args, items, local, make, make_args, in_flight: int = 1):
    """Outcomes (coreseg.scaleout.workers.Outcome) of `local` over `items`: in this
    process with --jobs 1 or a single item (`in_flight` items at once on
    threads, in input order), else on worker processes, in completion
    order, each building its own with ``make(*make_args(threads))``,
    `threads` being its share of the cores: those `workers_started` started
    (``args.workers``), or a pool started here."""
    from ..scaleout.workers import process_map, threads_per_worker

    jobs = min(args.jobs, len(items))
    if jobs <= 1:
        return _here(local, items, in_flight)
    on_retry = lambda i, why: worker_died(args, items[i], why)  # noqa: E731
    pool = getattr(args, "workers", None)
    if pool is not None:
        return pool.map(make, make_args(threads_per_worker(min(jobs, pool.jobs))), items, on_retry=on_retry)
    return process_map(make, make_args(threads_per_worker(jobs)), items, jobs=jobs, on_retry=on_retry)


def _here(local, items, in_flight: int):
    from ..frames.pipeline import FrameError, ordered_map
    from ..scaleout.workers import ITEM_ERRORS, Outcome

    def one(indexed):
        i, item = indexed
        try:
            return Outcome(i, local(item))
        except ITEM_ERRORS as e:
            return Outcome(i, error=e)

    if in_flight <= 1:
        yield from map(one, enumerate(items))
        return
    try:
        yield from ordered_map(one, list(enumerate(items)), workers=in_flight)
    except FrameError as e:
        raise e.__cause__ from None


def say(message: str) -> None:
    """A message on stderr in the middle of a run: above the progress bar,
    on a line of its own (tqdm's write clears the bar, prints, and draws
    it again), never glued to the end of the bar's line."""
    try:
        from tqdm import tqdm
    except ImportError:
        print(message, file=sys.stderr)
        return
    tqdm.write(message, file=sys.stderr)


def worker_died(args, item, why: str) -> None:
    """Say that a worker process died and its item is tried again."""
    name = item[0] if isinstance(item, tuple) else item
    say(f"coreseg {args.command}: a worker process died ({why}) holding {name}; trying it again on a new one")


class Terminated(SystemExit):
    """SIGTERM or SIGHUP arrived: unwinds like Ctrl-C (temporary files are
    removed on the way out); the exit status is 128 + the signal number."""


@contextlib.contextmanager
def terminate_cleanly():
    """SIGTERM and SIGHUP raise `Terminated` in the main thread while the
    block runs, so `with` blocks clean up as they do for Ctrl-C. Only where
    the signal would otherwise kill the process outright (its default
    action): a handler someone installed, or an ignored SIGHUP (nohup),
    is left alone."""
    def handler(signum, frame):
        raise Terminated(128 + signum)

    installed = {}
    if threading.current_thread() is threading.main_thread():
        for name in ("SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            if number is not None and signal.getsignal(number) is signal.SIG_DFL:
                installed[number] = signal.signal(number, handler)
    try:
        yield
    finally:
        for number, previous in installed.items():
            signal.signal(number, previous)
