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


def slow(benchmark, fn):
    """The reference and other slow baselines: a few rounds are enough."""
    return benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=1)
