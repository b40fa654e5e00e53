"""coreseg.pipeline.ordered_map: order kept, memory bounded, errors with
their index, and nothing left running after an early close."""

import random
import threading
import time

import pytest

from coreseg.pipeline import FrameError, ordered_map


HANG = 120  # seconds: only a hang gets near this


def coreseg_threads():
    return [t for t in threading.enumerate() if t.name.startswith("coreseg-")]


def assert_threads_end():
    """After a close: every coreseg thread has ended, but a feeder still in
    its source's next() (a generator's: it may stall, so close does not wait
    for it), which drops what it gets and ends on its own."""
    left = coreseg_threads()
    assert all(t.name == "coreseg-feeder" and t.daemon for t in left), left
    for t in left:
        t.join(HANG)
    assert not coreseg_threads()


@pytest.mark.parametrize("workers", [1, 2, 5])
def test_results_come_in_source_order(workers):
    rng = random.Random(workers)
    delays = [rng.random() * 0.004 for _ in range(60)]

    def work(i):
        time.sleep(delays[i])  # later items often finish first
        return i * i

    assert list(ordered_map(work, range(60), workers=workers)) == [i * i for i in range(60)]
    assert not coreseg_threads()


@pytest.mark.parametrize("workers, window", [(1, 1), (2, 3), (3, 8)])
def test_a_slow_consumer_holds_back_the_source(workers, window):
    pulled = []

    def source():
        for i in range(40):
            pulled.append(i)
            yield i

    taken = 0
    for _ in ordered_map(lambda i: i, source(), workers=workers, window=window):
        taken += 1
        time.sleep(0.002)
        assert len(pulled) - taken <= window  # items pulled and not yet handed over
    assert taken == 40


def test_a_failing_item_is_raised_after_the_ones_before_it():
    def work(i):
        if i == 7:
            raise KeyError("seven")
        return i

    got = []
    with pytest.raises(FrameError, match="frame 7: KeyError") as e:
        for r in ordered_map(work, range(20), workers=3):
            got.append(r)
    assert got == list(range(7)) and e.value.index == 7 and isinstance(e.value.__cause__, KeyError)
    assert not coreseg_threads()


def test_a_failing_source_raises_its_own_error_in_order():
    def source():
        yield from range(5)
        raise OSError("camera unplugged")

    got = []
    with pytest.raises(OSError, match="camera unplugged"):
        for r in ordered_map(lambda i: i, source(), workers=2):
            got.append(r)
    assert got == list(range(5))
    assert not coreseg_threads()


def test_closing_early_stops_the_workers_and_joins_every_thread():
    started = []

    def work(i):
        started.append(i)
        time.sleep(0.01)
        return i

    results = ordered_map(work, range(10_000), workers=2, window=4)
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    results.close()
    assert not coreseg_threads()
    assert len(started) <= 3 + 4  # nothing ran far ahead, nothing runs after close
    n = len(started)
    time.sleep(0.05)
    assert len(started) == n


def test_an_endless_source_can_be_abandoned():
    def camera():
        i = 0
        while True:
            yield i
            i += 1

    results = ordered_map(lambda i: i, camera(), workers=2)
    for r in results:
        if r == 25:
            break
    results.close()
    assert_threads_end()


def test_closing_does_not_wait_for_a_stalled_source():
    stalled, release, calls, taken = threading.Event(), threading.Event(), [], []

    def camera():
        yield 0
        yield 1
        stalled.set()
        release.wait()  # stopped delivering
        yield 2         # after the close: dropped, never taken nor computed

    def work(i):
        calls.append(i)
        return i

    results = ordered_map(work, camera(), workers=2, take=lambda i: taken.append(i) or i)
    try:
        assert [next(results), next(results)] == [0, 1]
        assert stalled.wait(HANG)
        closer = threading.Thread(target=results.close, name="test-closer")
        closer.start()
        closer.join(HANG)
        assert not closer.is_alive(), "close waited for the stalled source"
        assert [t.name for t in coreseg_threads()] == ["coreseg-feeder"]
    finally:
        release.set()
    assert_threads_end()
    assert calls == taken == [0, 1]


def test_a_list_is_never_left_behind():
    """A list cannot stall: its feeder is joined by close, every time."""
    for _ in range(50):
        results = ordered_map(lambda i: i, list(range(100)), workers=2, window=2)
        next(results)
        results.close()
        assert not coreseg_threads()


def test_take_runs_on_the_feeder_in_order_and_its_error_names_the_item():
    def take(i):
        if i == 3:
            raise ValueError("bad frame")
        return i * 10

    got = []
    with pytest.raises(FrameError, match="frame 3: ValueError: bad frame"):
        for r in ordered_map(lambda i: i + 1, range(6), take=take):
            got.append(r)
    assert got == [1, 11, 21]
    assert not coreseg_threads()


@pytest.mark.parametrize("kwargs", [{"workers": 0}, {"workers": 65}, {"window": 0}])
def test_bad_sizes_are_refused(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        next(ordered_map(lambda i: i, range(3), **kwargs))
