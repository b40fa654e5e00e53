"""render_mask and colorize at 448x448; resize_labels 448 -> 4032x3024."""

import numpy as np
import pytest
from conftest import slow

import coreseg
from coreseg import reference

cv2 = pytest.importorskip("cv2", reason="OpenCV is in the bench extra: pip install '.[bench]'")
Image = pytest.importorskip("PIL.Image", reason="Pillow is in the bench extra: pip install '.[bench]'")

SELECTED = [3, 17, 42]


def test_render_mask_coreseg(benchmark, labels448):
    benchmark.group = "render_mask 448x448"
    out = np.empty(labels448.shape + (4,), np.uint8)
    benchmark(coreseg.render_mask, labels448, SELECTED, (255, 255, 0, 255), out)


def test_render_mask_reference(benchmark, labels448):
    benchmark.group = "render_mask 448x448"
    slow(benchmark, lambda: reference.render_mask(labels448, SELECTED))


def test_render_mask_numpy(benchmark, labels448):
    benchmark.group = "render_mask 448x448"
    color = np.array([255, 255, 0, 255], np.uint8)
    benchmark(lambda: np.where(np.isin(labels448, SELECTED)[..., None], color, np.uint8(0)))


def test_render_mask_memcpy_floor(benchmark, labels448):
    benchmark.group = "render_mask 448x448"
    src = np.zeros(labels448.shape + (4,), np.uint8)
    out = np.empty_like(src)
    benchmark(np.copyto, out, src)


def test_colorize_coreseg(benchmark, labels448, palette100):
    benchmark.group = "colorize 448x448"
    out = np.empty(labels448.shape + (4,), np.uint8)
    benchmark(coreseg.colorize, labels448, palette100, out)


def test_colorize_reference(benchmark, labels448, palette100):
    benchmark.group = "colorize 448x448"
    slow(benchmark, lambda: reference.colorize(labels448, palette100))


def test_colorize_numpy(benchmark, labels448, palette100):
    benchmark.group = "colorize 448x448"
    benchmark(lambda: palette100[labels448])


def test_colorize_memcpy_floor(benchmark, labels448):
    benchmark.group = "colorize 448x448"
    src = np.zeros(labels448.shape + (4,), np.uint8)
    out = np.empty_like(src)
    benchmark(np.copyto, out, src)


def test_resize_labels_coreseg(benchmark, labels448):
    benchmark.group = "resize_labels 448 -> 4032x3024"
    out = np.empty((3024, 4032), np.int32)
    benchmark(coreseg.resize_labels, labels448, (4032, 3024), out)


def test_resize_labels_reference(benchmark, labels448):
    benchmark.group = "resize_labels 448 -> 4032x3024"
    slow(benchmark, lambda: reference.resize_labels(labels448, (4032, 3024)))


def test_resize_labels_opencv_nearest_exact(benchmark, labels448):
    benchmark.group = "resize_labels 448 -> 4032x3024"
    benchmark(cv2.resize, labels448, (4032, 3024), interpolation=cv2.INTER_NEAREST_EXACT)


def test_resize_labels_pillow_nearest(benchmark, labels448):
    benchmark.group = "resize_labels 448 -> 4032x3024"
    benchmark(lambda: np.asarray(Image.fromarray(labels448).resize((4032, 3024), Image.NEAREST)))


def test_resize_labels_memcpy_floor(benchmark):
    benchmark.group = "resize_labels 448 -> 4032x3024"
    src = np.zeros((3024, 4032), np.int32)
    out = np.empty_like(src)
    benchmark(np.copyto, out, src)


# One thread: each group's 1-to-2-thread speed-up (448x448 maps run on one
# thread anyway: too small to wake a second).
def test_render_mask_coreseg_one_thread(benchmark, labels448, one_thread):
    benchmark.group = "render_mask 448x448"
    out = np.empty(labels448.shape + (4,), np.uint8)
    benchmark(coreseg.render_mask, labels448, SELECTED, (255, 255, 0, 255), out)


def test_colorize_coreseg_one_thread(benchmark, labels448, palette100, one_thread):
    benchmark.group = "colorize 448x448"
    out = np.empty(labels448.shape + (4,), np.uint8)
    benchmark(coreseg.colorize, labels448, palette100, out)


def test_resize_labels_coreseg_one_thread(benchmark, labels448, one_thread):
    benchmark.group = "resize_labels 448 -> 4032x3024"
    out = np.empty((3024, 4032), np.int32)
    benchmark(coreseg.resize_labels, labels448, (4032, 3024), out)
