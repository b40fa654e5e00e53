"""resize_image: the model-input preprocessor, 4032x3024 RGBA -> 448x448 BGRA."""

import numpy as np
import pytest
from conftest import slow

import coreseg
from coreseg import reference

cv2 = pytest.importorskip("cv2", reason="OpenCV is in the bench extra: pip install '.[bench]'")
Image = pytest.importorskip("PIL.Image", reason="Pillow is in the bench extra: pip install '.[bench]'")

GROUP = "resize_image 4032x3024 -> 448x448 BGRA"


def test_coreseg(benchmark, photo_4032x3024):
    benchmark.group = GROUP
    out = np.empty((448, 448, 4), np.uint8)
    benchmark(coreseg.resize_image, photo_4032x3024, (448, 448), "BGRA", out)


def test_reference(benchmark, photo_4032x3024):
    benchmark.group = GROUP
    slow(benchmark, lambda: reference.resize_image(photo_4032x3024, (448, 448), "BGRA"))


def test_opencv_area(benchmark, photo_4032x3024):
    benchmark.group = GROUP

    def run():
        small = cv2.resize(photo_4032x3024, (448, 448), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(small, cv2.COLOR_RGBA2BGRA)

    benchmark(run)


def test_pillow_bilinear(benchmark, photo_4032x3024):
    benchmark.group = GROUP
    # Pillow needs its own image object first (a copy), as a user's code does.
    benchmark(lambda: np.asarray(Image.fromarray(photo_4032x3024).resize((448, 448), Image.BILINEAR))[..., [2, 1, 0, 3]])


def test_memcpy_floor(benchmark, photo_4032x3024):
    # The input has to be read once: a copy of its bytes is the floor.
    benchmark.group = GROUP
    out = np.empty_like(photo_4032x3024)
    benchmark(np.copyto, out, photo_4032x3024)


GROUP_1080 = "resize_image 1920x1080 -> 512x512 BGRA"


def test_1080_coreseg(benchmark, photo_1920x1080):
    benchmark.group = GROUP_1080
    out = np.empty((512, 512, 4), np.uint8)
    benchmark(coreseg.resize_image, photo_1920x1080, (512, 512), "BGRA", out)


def test_1080_coreseg_one_thread(benchmark, photo_1920x1080, one_thread):
    benchmark.group = GROUP_1080
    out = np.empty((512, 512, 4), np.uint8)
    benchmark(coreseg.resize_image, photo_1920x1080, (512, 512), "BGRA", out)


def test_1080_opencv_area(benchmark, photo_1920x1080):
    benchmark.group = GROUP_1080
    benchmark(lambda: cv2.cvtColor(cv2.resize(photo_1920x1080, (512, 512), interpolation=cv2.INTER_AREA),
                                   cv2.COLOR_RGBA2BGRA))


def test_1080_memcpy_floor(benchmark, photo_1920x1080):
    benchmark.group = GROUP_1080
    out = np.empty_like(photo_1920x1080)
    benchmark(np.copyto, out, photo_1920x1080)


def test_coreseg_one_thread(benchmark, photo_4032x3024, one_thread):
    benchmark.group = GROUP
    out = np.empty((448, 448, 4), np.uint8)
    benchmark(coreseg.resize_image, photo_4032x3024, (448, 448), "BGRA", out)
