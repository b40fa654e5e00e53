"""Real Core ML files as they are published (../shared/fixtures/real-models,
see its README): read on any OS, and run through the Core ML backend's
Python side with fake_coreml standing in for Core ML (the network's answer
is given by the test; what is tested is how coreseg reads the file and the
output). Tests skip, saying so, where the fixtures are absent."""

import numpy as np
import pytest

pytest.importorskip("coremltools", reason="reading Core ML specs needs coremltools' protobuf classes")

from fake_coreml import FakeCoreML  # noqa: E402
from shared_fixtures import SHARED  # noqa: E402

import coreseg  # noqa: E402
from coreseg import ModelError  # noqa: E402
from coreseg.running.backends.coreml import CoreMLSegmenter  # noqa: E402

REAL = SHARED / "fixtures/real-models"
FRITZ = {
    "people": (REAL / "fritz/people_segmentation_mobilenet_256x256_75_1568565137.mlmodel", ["None", "Person"]),
    "hair": (REAL / "fritz/hair_segmentation_mobilenet_256x256_5_1568564884.mlmodel", ["None", "Hair"]),
}
KRAKEN = REAL / "kraken/kraken_blla.mlmodel"


def need(path):
    if not path.is_file():
        pytest.skip(f"the shared real-model fixture {path.name} is not at {path.parent}")
    return path


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CORESEG_CACHE", str(tmp_path / "cache"))


@pytest.mark.parametrize("name", sorted(FRITZ))
def test_fritz_models_end_in_a_softmax(name):
    path, _ = FRITZ[name]
    info = coreseg.inspect(need(path))
    # The last layer is a softmax: probabilities, read as such (never a
    # second softmax); the output is DOUBLE [2, 256, 256].
    assert (info.model_type, info.output_kind, info.output_layout, info.output_activation) == \
        ("neuralNetwork", "scores", "NCHW", "softmax")
    assert (info.output_name, info.output_dtype, info.output_shape) == ("output", "float64", (2, 256, 256))
    assert info.sources["output_activation"] == "model" and info.assumed == []
    # Core ML scales the pixels itself: x / 255 - 0.5.
    assert info.input_preprocessing == "x * 0.003922 + (-0.5, -0.5, -0.5)"
    summary = info.summary()
    assert "preprocessing in the model: x * 0.003922 + (-0.5, -0.5, -0.5)" in summary
    assert "NCHW probabilities (softmax)" in summary and "(assumed)" not in summary
    assert (info.input_name, info.input_size, info.input_color_layout) == ("image", (256, 256), "RGB")


@pytest.mark.parametrize("name", sorted(FRITZ))
def test_fritz_labels_given_at_load(name):
    path, labels = FRITZ[name]
    info = coreseg.inspect(need(path), labels=labels)
    assert info.labels == labels and info.sources["labels"] == "load"
    assert "labels (given at load): 2 classes" in info.summary()


def test_fritz_scores_are_the_models_own_probabilities(tmp_path):
    path, labels = FRITZ["people"]
    need(path)
    rng = np.random.default_rng(30)
    person = rng.uniform(0.05, 0.95, (256, 256))  # what the network answers, whatever the photo
    native = FakeCoreML({"output": lambda planes: np.stack([1 - person, person])}, workdir=tmp_path)
    model = CoreMLSegmenter(path, native=native, labels=labels)
    photo = rng.integers(0, 256, (300, 400, 3), np.uint8)
    seg = model.predict(photo)
    assert seg.raw.dtype == np.float32 and seg.raw.shape == (2, 256, 256)  # DOUBLE read as float32
    expected = np.stack([1 - person, person]).astype(np.float32)
    np.testing.assert_array_equal(seg.scores, expected)  # not softmaxed again
    np.testing.assert_array_equal(seg.confidence(), expected.max(axis=0))
    np.testing.assert_array_equal(seg.labels, (person > 0.5).astype(np.int32))
    (frame,) = list(model.stream([photo], smoothing="ema"))
    np.testing.assert_array_equal(frame.segmentation.scores, expected)


def test_kraken_is_refused_it_has_no_image_input():
    with pytest.raises(ModelError, match=r"kraken_blla.mlmodel: not a segmentation model: it has no image input "
                                         r"\(inputs: input float64 \[1, 3, 1800, 0\]\)"):
        coreseg.inspect(need(KRAKEN))
    with pytest.raises(ModelError, match="it has no image input"):
        CoreMLSegmenter(KRAKEN, native=FakeCoreML({}))
