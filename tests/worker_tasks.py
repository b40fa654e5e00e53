"""Work for the worker-process tests (a module of its own: spawned workers
import it by name)."""

import os
import signal
from pathlib import Path


def squarer(marks: str):
    """Squares numbers; -1 kills its worker the first time (a marker file
    remembers), -2 every time, -3 raises."""

    def work(x):
        if x == -1 and not (Path(marks) / "killed").exists():
            (Path(marks) / "killed").touch()
            os.kill(os.getpid(), signal.SIGKILL)
        if x == -2:
            os.kill(os.getpid(), signal.SIGKILL)
        if x == -3:
            raise ValueError("item -3 is bad")
        with open(Path(marks) / f"ran-{x}", "a") as f:  # how many times each item ran
            f.write("x")
        return x * x, os.getpid()

    return work


def broken_setup():
    raise ValueError("the model file is corrupt")


def dies_in_setup():
    os.kill(os.getpid(), signal.SIGKILL)


def pid_and_threads(threads):
    import coreseg

    coreseg.set_num_threads(threads)
    return lambda x: (os.getpid(), coreseg.get_num_threads())


def modules_seen():
    """Whether a module is imported in this worker, and its pid."""
    import sys

    return lambda name: (name in sys.modules, os.getpid())


def page_faults_of_repeated_work():
    """Page faults of one "image's" allocations done again and again:
    three 12 MiB blocks alive at once, then freed (an image's buffers),
    six times. Items are ignored; the result is (faults of each round,
    whether this process's malloc can be tuned at all)."""
    import resource

    from coreseg.scaleout.process_memory import keep_freed_memory

    def work(_):
        import ctypes
        import sys

        if not sys.platform.startswith("linux"):
            return [], keep_freed_memory()  # False: nothing to count against
        # Faults counted in base pages, whatever the machine's transparent
        # huge pages setting ("always" would fault a block in 2 MiB at a time).
        ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)  # PR_SET_THP_DISABLE
        rounds = []
        for _ in range(6):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            blocks = [bytearray(12 << 20) for _ in range(3)]  # zero-filled: every page touched
            del blocks
            rounds.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        return rounds, keep_freed_memory()

    return work
