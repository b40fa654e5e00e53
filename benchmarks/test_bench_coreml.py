"""Segmenter.predict (Core ML backend) against coremltools' MLModel.predict
on the same model and image: macOS only (the macOS CI workflow runs it and
prints the ratio)."""

import sys

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "darwin", reason="Core ML runs only on macOS")

GROUP = "Core ML predict: demo model, 1920x1080 photo"


@pytest.fixture(scope="module")
def photo():
    from coreseg import demo

    return demo.scene(2_000_000, (1920, 1080))[0]


def test_coreseg_predict(benchmark, photo):
    import coreseg

    model = coreseg.load("demo", backend="coreml")
    benchmark.group = GROUP
    benchmark(model.predict, photo)


def test_coremltools_predict(benchmark, photo):
    import coremltools as ct
    from PIL import Image

    from coreseg import demo

    model = ct.models.MLModel(str(demo.model_path("mlpackage")))
    benchmark.group = GROUP

    def run():
        # What a coremltools user writes: PIL resize, then predict.
        image = Image.fromarray(photo).resize(demo.INPUT_SIZE, Image.BILINEAR)
        return model.predict({"image": image})["semanticPredictions"]

    benchmark(run)
