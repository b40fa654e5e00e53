"""coreseg.scaleout.workers: worker processes that each build their state once and
take one item at a time, so a dead worker's item is known, retried once,
and nothing already returned is counted twice."""

import os
import sys

import pytest
import worker_tasks

from coreseg.scaleout import workers
from coreseg.scaleout.workers import WorkerDied, WorkerPool, WorkerStartError, process_map, threads_per_worker


#: Start methods tested in this process: spawn. coreseg forks only from a
#: process running no thread but those it found at its import
#: (start_method_at_startup), which the test process is not by now (ONNX
#: Runtime's, OpenCV's...): the fork tests run in fresh processes below,
#: and the CLI's in tests/test_jobs.py.
CONTEXTS = ["spawn"]

#: Run in a fresh process by the fork tests (Linux): `code` after it.
FRESH = "import os, sys, threading, worker_tasks; from coreseg.scaleout.workers import WorkerPool; "


def run_fresh(code: str) -> str:
    """stdout of `code` run in a fresh Python process (fails on its error)."""
    import subprocess

    r = subprocess.run([sys.executable, "-c", FRESH + code], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 0, r.stderr
    return r.stdout


def outcomes(make, args, items, jobs=2, **kw):
    return sorted(process_map(make, args, items, jobs=jobs, **kw), key=lambda o: o.index)


@pytest.mark.parametrize("context", CONTEXTS)
def test_every_item_once_on_several_processes(tmp_path, context):
    got = outcomes(worker_tasks.squarer, (str(tmp_path),), list(range(12)), context=context)
    assert [o.index for o in got] == list(range(12))
    assert [o.value[0] for o in got] == [x * x for x in range(12)] and all(o.error is None for o in got)
    pids = {o.value[1] for o in got}
    assert len(pids) == 2 and os.getpid() not in pids  # two workers, not this process
    assert all((tmp_path / f"ran-{x}").read_text() == "x" for x in range(12))


def test_an_exception_is_the_items_outcome_and_the_rest_go_on(tmp_path):
    got = outcomes(worker_tasks.squarer, (str(tmp_path),), [1, -3, 2, 3])
    assert isinstance(got[1].error, ValueError) and str(got[1].error) == "item -3 is bad"
    assert [o.value[0] for o in got if o.error is None] == [1, 4, 9]


def test_a_killed_worker_item_is_retried_once_and_nothing_is_counted_twice(tmp_path):
    items = [0, 1, -1, 2, 3, 4, 5]
    got = outcomes(worker_tasks.squarer, (str(tmp_path),), items)
    assert (tmp_path / "killed").exists()  # a worker did die
    assert [o.value[0] for o in got] == [x * x for x in items] and all(o.error is None for o in got)
    # Each item ran to completion exactly once, the killed one included.
    assert all((tmp_path / f"ran-{x}").read_text() == "x" for x in items)


def test_an_item_that_kills_every_worker_is_listed_as_failed(tmp_path):
    items = [0, -2, 1, 2, 3]
    got = outcomes(worker_tasks.squarer, (str(tmp_path),), items)
    assert isinstance(got[1].error, WorkerDied)
    assert "died holding this item, 2 times (killed by SIGKILL)" in str(got[1].error)
    assert [o.value[0] for o in got if o.error is None] == [0, 1, 4, 9]
    assert all((tmp_path / f"ran-{x}").read_text() == "x" for x in (0, 1, 2, 3))


def test_no_retry_when_asked(tmp_path):
    got = outcomes(worker_tasks.squarer, (str(tmp_path),), [-1, 1], retries=0)
    assert isinstance(got[0].error, WorkerDied) and got[1].value[0] == 1


def test_a_worker_that_cannot_start_stops_the_run():
    with pytest.raises(WorkerStartError, match="could not start: the model file is corrupt") as e:
        list(process_map(worker_tasks.broken_setup, (), [1, 2], jobs=2))
    assert isinstance(e.value.__cause__, ValueError)
    with pytest.raises(WorkerStartError, match=r"died while starting, 3 times \(the last: killed by SIGKILL\)"):
        list(process_map(worker_tasks.dies_in_setup, (), [1, 2], jobs=2))


def test_stopping_early_ends_the_workers(tmp_path):
    gen = process_map(worker_tasks.squarer, (str(tmp_path),), list(range(50)), jobs=2)
    first = next(gen)
    gen.close()
    pid = first.value[1]
    with pytest.raises(ProcessLookupError):  # the worker is gone (and was reaped)
        os.kill(pid, 0)


def test_threads_are_shared_out():
    cores = len(os.sched_getaffinity(0))
    assert threads_per_worker(1) == cores and threads_per_worker(cores) == 1 and threads_per_worker(10 * cores) == 1
    got = outcomes(worker_tasks.pid_and_threads, (threads_per_worker(2),), [0, 1, 2, 3])
    assert {o.value[1] for o in got} == {threads_per_worker(2)}


def test_bad_jobs():
    with pytest.raises(ValueError, match="jobs must be 1 to 256, got 0"):
        list(process_map(worker_tasks.squarer, ("",), [1], jobs=0))


class _ExitedBeforeItsFirstItem(workers._Worker):
    """A worker that has already exited when the parent sends it an item:
    what happens when the parent is slow (a loaded machine), made certain."""

    def make(self, *args):
        super().make(*args)
        self.process.join()


@pytest.mark.parametrize("make, why", [
    (worker_tasks.broken_setup, "could not start: the model file is corrupt"),
    (worker_tasks.dies_in_setup, r"died while starting, 3 times \(the last: killed by SIGKILL\)"),
])
def test_a_worker_gone_before_its_item_is_sent_is_a_start_error_not_a_broken_pipe(monkeypatch, make, why):
    monkeypatch.setattr(workers, "_Worker", _ExitedBeforeItsFirstItem)
    with pytest.raises(WorkerStartError, match=why):
        list(process_map(make, (), [1, 2], jobs=2))


@pytest.mark.parametrize("context", CONTEXTS)
def test_a_pool_imports_first_and_runs_one_map_after_another_on_the_same_workers(context):
    # The warm-up module is one this process has not imported: it is in a
    # worker because the pool imported it there, before any work.
    import sys

    warm, control = "xml.dom.minidom", "xml.sax"
    assert warm not in sys.modules
    with WorkerPool(2, imports=(warm, "no_such_module_at_all"), context=context) as pool:
        first = list(pool.map(worker_tasks.modules_seen, (), [warm, control, warm]))
        # A module neither imported: not there (a fork copies what this process has).
        expected = [True, context == "fork" and control in sys.modules, True]
        assert [o.value[0] for o in sorted(first, key=lambda o: o.index)] == expected
        second = list(pool.map(worker_tasks.pid_and_threads, (1,), list(range(6))))
    assert len({o.value[1] for o in first}) == 2
    # The same two processes, each with the second map's work built.
    assert {o.value[0] for o in second} == {o.value[1] for o in first}
    assert all(o.value[1] == 1 for o in second)


def test_a_map_stopped_early_ends_the_pool(tmp_path):
    pool = WorkerPool(2)
    gen = pool.map(worker_tasks.squarer, (str(tmp_path),), list(range(50)))
    next(gen)
    processes = [w.process for w in pool._workers]
    gen.close()
    assert not any(p.is_alive() for p in processes)
    with pytest.raises(RuntimeError, match="closed"):
        list(pool.map(worker_tasks.squarer, (str(tmp_path),), [1]))


def test_fork_at_startup_only_while_no_other_thread_runs():
    # A fork copies only the thread that calls it: anything another thread
    # held (a lock, a half-made session) would be copied half-done.
    import subprocess
    import sys

    if not sys.platform.startswith("linux"):
        pytest.skip("fork is used on Linux only (macOS: spawn, always)")
    code = ("import threading; from coreseg.scaleout.workers import start_method_at_startup as m; print(m()); "
            "e = threading.Event(); t = threading.Thread(target=e.wait); t.start(); print(m()); "
            "e.set(); t.join(); "
            # a thread Python's threading module does not list, as a native
            # library's is (ONNX Runtime's pool, OpenCV's): seen by its id
            "import _thread; l = _thread.allocate_lock(); l.acquire(); _thread.start_new_thread(l.acquire, ()); "
            "print(threading.active_count(), m())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["fork", "spawn", "1", "spawn"], r.stderr
    r = subprocess.run([sys.executable, "-c", "from coreseg.scaleout.workers import start_method_at_startup as m; "
                        "print(m())"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "CORESEG_WORKER_START": "spawn"})
    assert r.returncode == 0 and r.stdout.split() == ["spawn"], r.stderr


def test_forked_workers_end_when_their_parent_is_killed():
    # A forked worker inherits the parent's ends of every pipe; it closes
    # them, so the parent's death reads as the end of its pipe, and it exits
    # instead of waiting for an item forever.
    import select
    import signal
    import subprocess
    import sys

    if not hasattr(os, "pidfd_open"):
        pytest.skip("waits on pidfds (Linux 5.3+)")
    code = ("import os, sys, worker_tasks; from coreseg.scaleout.workers import WorkerPool; "
            "pool = WorkerPool(2, context='fork'); "
            "list(pool.map(worker_tasks.pid_and_threads, (1,), [1, 2])); "
            "print(*[w.process.pid for w in pool._workers], flush=True); sys.stdin.read()")
    parent = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
        fds = [os.pidfd_open(pid) for pid in pids]
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=60)
        for fd in fds:  # readable when the process has exited
            assert select.select([fd], [], [], 120)[0] == [fd]
            os.close(fd)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_map_of_fewer_items_ends_the_idle_workers_and_one_map_runs_at_a_time(tmp_path):
    with WorkerPool(3) as pool:
        gen = pool.map(worker_tasks.squarer, (str(tmp_path),), [1, 2, 3])
        next(gen)
        with pytest.raises(RuntimeError, match="one map at a time"):
            next(pool.map(worker_tasks.squarer, (str(tmp_path),), [4]))
        list(gen)
        got = list(pool.map(worker_tasks.squarer, (str(tmp_path),), [5]))
        assert [o.value[0] for o in got] == [25] and len(pool._workers) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is used on Linux only")
def test_forked_workers_run_maps_and_one_replacing_a_dead_one_is_spawned(tmp_path):
    # Forked at start-up (one thread running), two maps on the same
    # workers; once the parent runs a thread (as after loading a model), a
    # worker replacing one that died is spawned: a fork then would copy what
    # that thread holds.
    out = run_fresh(
        f"marks = {str(tmp_path)!r}; pool = WorkerPool(2, context='fork'); one = WorkerPool(1, context='fork'); "
        "first = sorted(pool.map(worker_tasks.squarer, (marks,), list(range(8))), key=lambda o: o.index); "
        "assert [o.value[0] for o in first] == [x * x for x in range(8)]; "
        "pids = {o.value[1] for o in first}; "
        "second = list(pool.map(worker_tasks.pid_and_threads, (1,), [1, 2, 3, 4])); "
        "assert {o.value[0] for o in second} == pids, 'the same workers'; "
        "stop = threading.Event(); t = threading.Thread(target=stop.wait); t.start(); "
        "got = sorted(o.value[0] for o in one.map(worker_tasks.squarer, (marks,), [-1, 3])); "
        "stop.set(); t.join(); assert got == [1, 9], got; "
        "print(*[type(w.process._popen).__module__ for w in one._workers]); pool.close(); one.close()")
    assert out.split() == ["multiprocessing.popen_spawn_posix"]


def test_a_worker_keeps_the_memory_an_image_frees_for_the_next():
    # An image's tens of MB freed and allocated again: glibc's malloc,
    # left to itself, hands them back to the kernel and faults them in
    # again, zero-filled, every image; a worker keeps them.
    import resource

    with WorkerPool(1) as pool:
        got = list(pool.map(worker_tasks.page_faults_of_repeated_work, (), [0]))
    rounds, tunable = got[0].value
    if not tunable:
        pytest.skip("no glibc malloc to tune here (macOS, musl, or an AddressSanitizer build)")
    pages = (36 << 20) // resource.getpagesize()
    assert rounds[0] > 0.9 * pages, rounds  # the first round faults its pages in (most of them)
    assert sum(rounds[1:]) < 200, rounds  # later rounds reuse them
    # The same work in a process left as it starts (the pattern is one glibc
    # does give back): the test tells the two apart.
    fresh = int(run_fresh("rounds, _ = worker_tasks.page_faults_of_repeated_work()(0); print(sum(rounds[1:]))"))
    assert fresh > 10 * max(sum(rounds[1:]), 100), (fresh, rounds)
