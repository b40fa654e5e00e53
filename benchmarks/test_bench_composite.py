"""composite: a 448x448 class map blended onto a full-resolution photo."""

import numpy as np
import pytest
from conftest import slow

import coreseg
from coreseg import reference

cv2 = pytest.importorskip("cv2", reason="OpenCV is in the bench extra: pip install '.[bench]'")
Image = pytest.importorskip("PIL.Image", reason="Pillow is in the bench extra: pip install '.[bench]'")

SIZES = ["photo_4032x3024", "photo_1920x1080"]


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
