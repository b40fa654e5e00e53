"""What a user waits for per photo: reading a JPEG, and `coreseg segment`
end to end (its own process, as a user runs it) against the floor of the
same work done the plainest way: Pillow decode + `predict` + Pillow JPEG
encode, in its own process too."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import slow

import coreseg

cv2 = pytest.importorskip("cv2", reason="OpenCV is in the bench extra: pip install '.[bench]'")
Image = pytest.importorskip("PIL.Image", reason="Pillow is in the bench extra: pip install '.[bench]'")
pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here: pip install '.[onnx]'")

READ = "read a 4032x3024 JPEG"
SIZES = {"4032x3024": (4032, 3024, 3), "1920x1080": (1920, 1080, 6)}  # width, height, images per run

FLOOR = """
import sys, numpy as np
from PIL import Image
import coreseg
model = coreseg.load("demo")
for i, path in enumerate(sys.argv[2:]):
    image = np.asarray(Image.open(path).convert("RGB"))
    model.predict(image)
    Image.fromarray(image).save(f"{sys.argv[1]}/{i}.jpg", quality=92)
"""


def photo_jpeg(path: Path, w: int, h: int) -> Path:
    """A photo-like JPEG: smooth gradients with sensor-like noise."""
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(w)
    img = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (w + h)], -1)
    img = (img + rng.integers(-12, 12, img.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(img).save(path, quality=92)
    return path


@pytest.fixture(scope="module")
def jpegs(tmp_path_factory):
    d = tmp_path_factory.mktemp("jpegs")
    return {name: [photo_jpeg(d / f"{name}-{i}.jpg", w, h) for i in range(n)] for name, (w, h, n) in SIZES.items()}


def test_coreseg(benchmark, jpegs):
    benchmark.group = READ
    benchmark(coreseg.read_image, jpegs["4032x3024"][0])


def test_coreseg_reduced(benchmark, jpegs):
    benchmark.group = READ
    benchmark(coreseg.read_image, jpegs["4032x3024"][0], min_size=(448, 448))


def test_pillow_decode(benchmark, jpegs):
    benchmark.group = READ

    def decode():
        with Image.open(jpegs["4032x3024"][0]) as im:
            im.load()

    benchmark(decode)


def test_pillow_asarray(benchmark, jpegs):
    benchmark.group = READ
    benchmark(lambda: np.asarray(Image.open(jpegs["4032x3024"][0]).convert("RGB")))


def test_opencv_imread(benchmark, jpegs):
    benchmark.group = READ
    benchmark(lambda: cv2.cvtColor(cv2.imread(str(jpegs["4032x3024"][0])), cv2.COLOR_BGR2RGB))


def test_memcpy_floor(benchmark):
    benchmark.group = READ
    src = np.ones((3024, 4032, 3), np.uint8)
    out = np.empty_like(src)
    benchmark(np.copyto, out, src)


def run(argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=600)


@pytest.mark.parametrize("size", SIZES)
def test_coreseg_cli(benchmark, jpegs, tmp_path, size):
    benchmark.group = f"coreseg segment demo, {SIZES[size][2]} JPEGs {size}, one process"
    argv = [sys.executable, "-m", "coreseg", "segment", "demo", *map(str, jpegs[size]), "--out", str(tmp_path),
            "--force"]
    slow(benchmark, lambda: run(argv))


@pytest.mark.parametrize("size", SIZES)
def test_floor_process(benchmark, jpegs, tmp_path, size):
    benchmark.group = f"coreseg segment demo, {SIZES[size][2]} JPEGs {size}, one process"
    argv = [sys.executable, "-c", FLOOR, str(tmp_path), *map(str, jpegs[size])]
    slow(benchmark, lambda: run(argv))
