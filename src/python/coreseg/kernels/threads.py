"""Threads and SIMD: the native kernels' thread pool and SIMD backend, how
many CPUs this process may use, and each worker's share of them (shared
by the ONNX backend's thread settings, `stream` and `--jobs`)."""

from __future__ import annotations

import os

import numpy as np

from .. import _native

__all__ = ["simd_backend", "set_num_threads", "get_num_threads", "MAX_THREADS", "usable_cores",
           "threads_per_worker", "os_threads", "THREADS_AT_IMPORT"]

#: Most threads set_num_threads takes.
MAX_THREADS = _native.MAX_THREADS


def os_threads() -> frozenset | None:
    """The ids of the threads this process runs, native ones included
    (Linux's /proc/self/task); None where they are not known."""
    try:
        return frozenset(os.listdir("/proc/self/task"))
    except OSError:
        return None


#: This process's threads when coreseg was imported: numpy's (OpenBLAS's
#: pool) and those of whatever the program had imported before.
THREADS_AT_IMPORT = os_threads()


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


def simd_backend() -> str:
    """The SIMD code in use: "scalar", "sse41", "avx2" or "neon".

    The best the CPU has is chosen at import; ``CORESEG_SIMD=scalar|sse41|
    avx2|neon`` in the environment forces one."""
    return _native.simd_backend()


def set_num_threads(n: int) -> None:
    """Use `n` threads (the caller's included) for large images; default:
    one per core, at most 64. Results never depend on it.

    `n` is 1..MAX_THREADS (256). If the system cannot start that many
    threads, the kernels run on those that did start."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer, got {n!r}")
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"n must be in 1..{MAX_THREADS}, got {n}")
    _native.set_num_threads(int(n))


def get_num_threads() -> int:
    """The number of threads the kernels use."""
    return _native.get_num_threads()
