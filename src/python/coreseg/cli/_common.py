"""Helpers shared by the commands."""

from __future__ import annotations

import sys

from ..outputs import OUTLINE  # noqa: F401 - the commands draw the same outline


def model_path(name: str) -> str:
    if name != "demo":
        return name
    from .. import demo

    return str(demo.model_path("onnx" if needs_onnx_for_info() else "mlpackage"))


def needs_onnx_for_info() -> bool:
    try:
        import coremltools  # noqa: F401
    except ImportError:
        return True
    return False


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
    from ..workers import MAX_JOBS, default_jobs

    if args.jobs is None:
        args.jobs = default_jobs()
    if not 1 <= args.jobs <= MAX_JOBS:
        raise ValueError(f"--jobs must be 1 to {MAX_JOBS}, got {args.jobs}")


def worker_load_kwargs(model, threads: int) -> dict:
    """What a worker process passes to `load` besides the model's path: the
    ONNX Runtime threads its share of the cores allows (Core ML schedules
    its own work)."""
    return {"threads": threads} if model.backend == "onnx" else {}


def run_items(args, items, local, make, make_args):
    """Outcomes (coreseg.workers.Outcome, in completion order) of `local`
    over `items`: in this process with --jobs 1 or a single item, else on
    worker processes that each build their own with
    ``make(*make_args(threads))``, `threads` being their share of the cores."""
    from ..workers import Outcome, process_map, threads_per_worker

    jobs = min(args.jobs, len(items))
    if jobs <= 1:
        def here():
            for i, item in enumerate(items):
                try:
                    yield Outcome(i, local(item))
                except (OSError, ValueError, RuntimeError, ImportError) as e:
                    yield Outcome(i, error=e)
        return here()
    return process_map(make, make_args(threads_per_worker(jobs)), items, jobs=jobs,
                       on_retry=lambda i, why: worker_died(args, items[i], why))


def worker_died(args, item, why: str) -> None:
    """Say that a worker process died and its item is tried again."""
    name = item[0] if isinstance(item, tuple) else item
    print(f"coreseg {args.command}: a worker process died ({why}) holding {name}; trying it again on a new one",
          file=sys.stderr)
