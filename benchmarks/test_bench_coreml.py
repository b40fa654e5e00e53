"""The Core ML backend against coremltools' MLModel.predict on the same
model and image, and its two input paths side by side: macOS only (the
macOS CI workflow runs it and prints the ratios).

- a photo: coreseg resamples it straight into a pool pixel buffer;
  coremltools users resize with Pillow, then predict.
- a model-sized BGRA frame (what a video pipeline hands over): coreseg
  wraps the caller's memory (no copy into a pixel buffer), or copies it
  into an IOSurface-backed pool buffer (``wrap_inputs = False``), which
  Apple's headers call the most efficient choice for the GPU and Neural
  Engine; a memcpy of the frame's bytes is the floor of any copy.
"""

import sys

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(sys.platform != "darwin", reason="Core ML runs only on macOS")

PHOTO = "Core ML predict: demo model, 1920x1080 photo"
FRAME = "Core ML predict: demo model, model-sized BGRA frame"


@pytest.fixture(scope="module")
def photo():
    from coreseg import demo

    return demo.scene(2_000_000, (1920, 1080))[0]


@pytest.fixture(scope="module")
def frame(photo):
    from coreseg import demo, kernels

    return kernels.resize_image(photo, demo.INPUT_SIZE, "BGRA")


@pytest.fixture(scope="module")
def coremltools_model():
    import coremltools as ct

    from coreseg import demo

    return ct.models.MLModel(str(demo.model_path("mlpackage")))


def test_coreseg_predict(benchmark, photo):
    import coreseg

    model = coreseg.load("demo", backend="coreml")
    benchmark.group = PHOTO
    benchmark(model.predict, photo)


def test_coremltools_predict(benchmark, photo, coremltools_model):
    from PIL import Image

    from coreseg import demo

    benchmark.group = PHOTO

    def run():
        # What a coremltools user writes: PIL resize, then predict.
        image = Image.fromarray(photo).resize(demo.INPUT_SIZE, Image.BILINEAR)
        return coremltools_model.predict({"image": image})["semanticPredictions"]

    benchmark(run)


@pytest.mark.parametrize("wrap", [True, False], ids=["wrapped", "pool"])
def test_coreseg_frame(benchmark, frame, wrap):
    import coreseg

    model = coreseg.load("demo", backend="coreml")
    model.wrap_inputs = wrap
    out = model.predict(frame, layout="BGRA").raw
    assert model.predict(frame, layout="BGRA", out=out).io["wrapped_input"] == wrap
    benchmark.group = FRAME
    benchmark(lambda: model.predict(frame, layout="BGRA", out=out))


def test_coremltools_frame(benchmark, frame, coremltools_model):
    from PIL import Image

    image = Image.fromarray(np.ascontiguousarray(frame[..., 2::-1]))  # coremltools takes PIL images
    benchmark.group = FRAME
    benchmark(lambda: coremltools_model.predict({"image": image})["semanticPredictions"])


def test_memcpy_frame(benchmark, frame):
    out = np.empty_like(frame)
    benchmark.group = FRAME
    benchmark(np.copyto, out, frame)
