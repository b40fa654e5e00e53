"""composite: a 448x448 class map blended onto a full-resolution photo (and
a full-resolution map, as `overlay(smooth=True)` draws), on two threads and
on one, beside memcpy on one and two threads."""

import numpy as np
import pytest
from conftest import copy_two_threads, slow

import coreseg
from coreseg import reference

cv2 = pytest.importorskip("cv2", reason="OpenCV is in the bench extra: pip install '.[bench]'")
Image = pytest.importorskip("PIL.Image", reason="Pillow is in the bench extra: pip install '.[bench]'")

SIZES = ["photo_4032x3024", "photo_1920x1080", "photo_1280x720"]


def opencv_pipeline(photo, labels, palette, opacity):
    # What a user writes today: upscale the labels, look up colours, blend.
    h, w = photo.shape[:2]
    big = cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
    color = palette[big]
    return cv2.addWeighted(photo, 1.0 - opacity, color, opacity, 0.0)


def pillow_pipeline(photo, labels, palette, opacity):
    h, w = photo.shape[:2]
    lab = Image.fromarray(labels.astype(np.uint8), mode="L").resize((w, h), Image.NEAREST)
    color = Image.fromarray(palette[np.asarray(lab)], mode="RGBA")
    return np.asarray(Image.blend(Image.fromarray(photo, mode="RGBA"), color, opacity))


@pytest.mark.parametrize("size", SIZES)
def test_coreseg(benchmark, request, size, labels448, palette100):
    photo = request.getfixturevalue(size)
    benchmark.group = f"composite 448 -> {size[6:]}"
    out = np.empty_like(photo)
    result = benchmark(coreseg.composite, photo, labels448, palette100, 1.0, None, out)
    assert result is out


@pytest.mark.parametrize("size", SIZES)
def test_coreseg_outline(benchmark, request, size, labels448, palette100):
    photo = request.getfixturevalue(size)
    benchmark.group = f"composite 448 -> {size[6:]}"
    out = np.empty_like(photo)
    benchmark(coreseg.composite, photo, labels448, palette100, 1.0, (255, 255, 255, 255), out)


@pytest.mark.parametrize("size", SIZES)
def test_reference(benchmark, request, size, labels448, palette100):
    photo = request.getfixturevalue(size)
    benchmark.group = f"composite 448 -> {size[6:]}"
    slow(benchmark, lambda: reference.composite(photo, labels448, palette100))


@pytest.mark.parametrize("size", SIZES)
def test_opencv(benchmark, request, size, labels448, palette100):
    photo = request.getfixturevalue(size)
    benchmark.group = f"composite 448 -> {size[6:]}"
    slow(benchmark, lambda: opencv_pipeline(photo, labels448, palette100, 0.6))


@pytest.mark.parametrize("size", SIZES)
def test_pillow(benchmark, request, size, labels448, palette100):
    photo = request.getfixturevalue(size)
    benchmark.group = f"composite 448 -> {size[6:]}"
    slow(benchmark, lambda: pillow_pipeline(photo, labels448, palette100, 0.6))


@pytest.mark.parametrize("size", SIZES)
def test_memcpy_floor(benchmark, request, size):
    photo = request.getfixturevalue(size)
    benchmark.group = f"composite 448 -> {size[6:]}"
    out = np.empty_like(photo)
    benchmark(np.copyto, out, photo)


@pytest.mark.parametrize("size", SIZES)
def test_coreseg_one_thread(benchmark, request, size, labels448, palette100, one_thread):
    photo = request.getfixturevalue(size)
    benchmark.group = f"composite 448 -> {size[6:]}"
    out = np.empty_like(photo)
    benchmark(coreseg.composite, photo, labels448, palette100, 1.0, None, out)


@pytest.mark.parametrize("size", SIZES)
def test_memcpy_two_threads(benchmark, request, size, two_thread_pool):
    photo = request.getfixturevalue(size)
    benchmark.group = f"composite 448 -> {size[6:]}"
    out = np.empty_like(photo)
    benchmark(copy_two_threads, out, photo, two_thread_pool)


FULL = "composite full-resolution labels 1920x1080 (overlay(smooth=True))"


@pytest.fixture(scope="module")
def labels_1080(labels448):
    return coreseg.resize_labels(labels448, (1920, 1080))


def test_full_labels_coreseg(benchmark, photo_1920x1080, labels_1080, palette100):
    benchmark.group = FULL
    out = np.empty_like(photo_1920x1080)
    benchmark(coreseg.composite, photo_1920x1080, labels_1080, palette100, 1.0, None, out)


def test_full_labels_coreseg_outline(benchmark, photo_1920x1080, labels_1080, palette100):
    benchmark.group = FULL
    out = np.empty_like(photo_1920x1080)
    benchmark(coreseg.composite, photo_1920x1080, labels_1080, palette100, 1.0, (255, 255, 255, 255), out)


def test_full_labels_memcpy_floor(benchmark, photo_1920x1080):
    benchmark.group = FULL
    out = np.empty_like(photo_1920x1080)
    benchmark(np.copyto, out, photo_1920x1080)
