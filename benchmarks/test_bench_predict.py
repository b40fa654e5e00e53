"""What `predict` costs beyond the model: the demo model on a photo (the
input resampled into the model's size and layout, inference, the class
map read back), beside the floor of the inference alone (`session.run` on
an input prepared once)."""

import pytest
from conftest import _photo

import coreseg

pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here: pip install '.[onnx]'")

SIZES = {"1920x1080": (1920, 1080), "4032x3024": (4032, 3024)}


@pytest.fixture(scope="module")
def model():
    return coreseg.load("demo", backend="onnx")


@pytest.mark.parametrize("size", list(SIZES))
def test_coreseg(benchmark, model, size):
    photo = _photo(*SIZES[size], channels=3)  # RGB, as a decoded JPEG
    benchmark.group = f"predict, demo model: {size} photo"
    seg = benchmark(model.predict, photo)
    assert seg.labels.shape == (model.input_size[1], model.input_size[0])


@pytest.mark.parametrize("size", list(SIZES))
def test_raw_inference(benchmark, model, size):
    photo = _photo(*SIZES[size], channels=3)
    benchmark.group = f"predict, demo model: {size} photo"
    feed = model._preprocess(photo, model._place(photo))  # the model's input, made once
    run, names, inputs = model.session.run, [model.output.name], {model.input.name: feed}
    benchmark(run, names, inputs)
