"""Shared inputs for the benchmarks: a blocky 448x448 int32 class map with
~100 classes (what a segmentation model returns) and photo-sized images.

Every group holds coreseg beside the reference, the library a user would use
instead, and a memcpy (np.copyto) of the same bytes as the floor. Compare
within one run only (ratios); `python benchmarks/report.py` writes the
table in BENCHMARKS.md."""

import numpy as np
import pytest

import coreseg


@pytest.fixture(scope="session")
def labels448():
    rng = np.random.default_rng(0)
    return np.repeat(np.repeat(rng.integers(0, 100, (28, 28)), 16, 0), 16, 1).astype(np.int32)


@pytest.fixture(scope="session")
def palette100():
    return coreseg.default_palette(100, alpha=153)  # 60% opacity


def _photo(w, h, channels=4):
    y, x = np.mgrid[0:h, 0:w].astype(np.int32)
    rng = np.random.default_rng(w)
    img = np.empty((h, w, channels), np.uint8)
    img[..., 0] = (x * 255 // (w - 1))
    img[..., 1] = (y * 255 // (h - 1))
    img[..., 2] = rng.integers(0, 256, (h, w), dtype=np.uint8)
    if channels == 4:
        img[..., 3] = 255
    return img


@pytest.fixture(scope="session")
def photo_4032x3024():
    return _photo(4032, 3024)


@pytest.fixture(scope="session")
def photo_1920x1080():
    return _photo(1920, 1080)


@pytest.fixture(scope="session")
def photo_1280x720():
    return _photo(1280, 720)


@pytest.fixture
def one_thread():
    """The kernels on one thread for the test, for the 1-to-2-thread speed-up."""
    before = coreseg.get_num_threads()
    coreseg.set_num_threads(1)
    yield
    coreseg.set_num_threads(before)


def copy_two_threads(out, src, pool):
    """memcpy on two threads (np.copyto releases the GIL): the floor of a
    kernel that runs on two threads."""
    half = len(src) // 2
    job = pool.submit(np.copyto, out[half:], src[half:])
    np.copyto(out[:half], src[:half])
    job.result()


@pytest.fixture(scope="session")
def two_thread_pool():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        yield pool


def slow(benchmark, fn):
    """The reference and other slow baselines: a few rounds are enough."""
    return benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
