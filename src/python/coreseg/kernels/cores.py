"""How many CPUs this process may use, and each worker's share of them
(shared by the ONNX backend's thread settings, `stream` and `--jobs`)."""

from __future__ import annotations

import os


def threads_per_worker(workers: int) -> int:
    """Threads each of `workers` side by side (worker processes, frames in
    flight) gives its model and kernels, so that together they do not
    oversubscribe the cores."""
    return max(1, usable_cores() // max(1, workers))


def usable_cores() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
