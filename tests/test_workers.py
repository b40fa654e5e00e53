"""coreseg.scaleout.workers: worker processes that each build their state once and
take one item at a time, so a dead worker's item is known, retried once,
and nothing already returned is counted twice."""

import os

import pytest
import worker_tasks

from coreseg.scaleout import workers
from coreseg.scaleout.workers import WorkerDied, WorkerStartError, process_map, threads_per_worker


def outcomes(make, args, items, jobs=2, **kw):
    return sorted(process_map(make, args, items, jobs=jobs, **kw), key=lambda o: o.index)


def test_every_item_once_on_several_processes(tmp_path):
    got = outcomes(worker_tasks.squarer, (str(tmp_path),), list(range(12)))
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

    def __init__(self, *args):
        super().__init__(*args)
        self.process.join()


@pytest.mark.parametrize("make, why", [
    (worker_tasks.broken_setup, "could not start: the model file is corrupt"),
    (worker_tasks.dies_in_setup, r"died while starting, 3 times \(the last: killed by SIGKILL\)"),
])
def test_a_worker_gone_before_its_item_is_sent_is_a_start_error_not_a_broken_pipe(monkeypatch, make, why):
    monkeypatch.setattr(workers, "_Worker", _ExitedBeforeItsFirstItem)
    with pytest.raises(WorkerStartError, match=why):
        list(process_map(make, (), [1, 2], jobs=2))
