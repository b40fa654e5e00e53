"""The Core ML backend, run for real: macOS only (the macOS CI workflow runs
these). Models are built here with coremltools; their answers are computed
in numpy."""

import sys
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(sys.platform != "darwin", reason="Core ML runs only on macOS")

if sys.platform == "darwin":
    import coreml_models as cm

import coreseg  # noqa: E402


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("coreml") / "argmax.mlpackage"
    cm.segmenter(user_defined={cm.TYPE: "imageSegmenter", cm.PARAMS: '{"labels": ["r", "g", "b"]}'}).save(str(path))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CORESEG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def expected(image_rgb):
    """Argmax over R, G, B at the model's input size (first maximum)."""
    return np.argmax(coreseg.resize_image(image_rgb, (cm.W, cm.H), "RGB"), axis=2)


def test_predict_matches_numpy(model_path, cache):
    model = coreseg.load(model_path)
    assert model.backend == "coreml" and model.labels == ["r", "g", "b"]
    rng = np.random.default_rng(0)
    # Distinct channel values so there are no near-ties for fp16 to flip.
    image = (rng.integers(0, 3, (40, 60, 3)) * 100 + rng.integers(0, 20, (40, 60, 3))).astype(np.uint8)
    seg = model.predict(image)
    assert seg.labels.shape == (cm.H, cm.W) and seg.labels.dtype == np.int32
    np.testing.assert_array_equal(seg.labels, expected(image))
    assert seg.image_size == (60, 40)


def test_output_backing_and_input_wrapping(model_path, cache):
    model = coreseg.load(model_path)
    rng = np.random.default_rng(1)
    rgb = (rng.integers(0, 3, (cm.H, cm.W, 3)) * 100).astype(np.uint8)
    bgra = np.ascontiguousarray(np.dstack([rgb[..., ::-1], np.full((cm.H, cm.W), 255, np.uint8)]))
    seg = model.predict(bgra, layout="BGRA")
    assert seg.timings["wrapped_input"]  # the caller's memory went to Core ML as it was
    assert seg.timings["used_output_backing"]  # and Core ML wrote into ours
    assert seg.labels.ctypes.data % 4096 == 0
    np.testing.assert_array_equal(seg.labels, np.argmax(rgb, axis=2))


def test_second_load_does_not_compile(model_path, cache):
    first = coreseg.load(model_path)
    second = coreseg.load(model_path)
    assert not first.from_cache and second.from_cache
    assert first.compiled_path == second.compiled_path
    direct = coreseg.load(second.compiled_path)  # a .mlmodelc loads as it is
    assert direct.labels == ["r", "g", "b"]


def test_spec_and_description_agree(model_path, cache):
    model = coreseg.load(model_path)
    a, b = model.info, model.description_info
    assert (a.input_name, a.input_size, a.output_name, a.output_shape, a.labels) == \
        (b.input_name, b.input_size, b.output_name, b.output_shape, b.labels)
    assert (a.author, a.license, a.version) == (b.author, b.license, b.version)


def test_batch_and_threads(model_path, cache):
    model = coreseg.load(model_path)
    rng = np.random.default_rng(2)
    images = [(rng.integers(0, 3, (30 + i, 50, 3)) * 100).astype(np.uint8) for i in range(4)]
    batch = model.predict_batch(images)
    for im, seg in zip(images, batch):
        np.testing.assert_array_equal(seg.labels, expected(im))
    errors = []

    def work(im):
        for _ in range(10):
            if not np.array_equal(model.predict(im).labels, expected(im)):
                errors.append("mismatch")

    threads = [threading.Thread(target=work, args=(im,)) for im in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_bad_inputs_are_caught_before_core_ml(model_path, cache):
    model = coreseg.load(model_path)
    with pytest.raises(TypeError, match="image must have dtype uint8"):
        model.predict(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="image must have shape"):
        model.predict(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError, match="layout must be one of"):
        model.predict(np.zeros((10, 10, 3), np.uint8), layout="BGRA")
    with pytest.raises(coreseg.ModelError, match="no output is an integer class map"):
        bad = model_path.parent / "classifier.mlpackage"
        cm.classifier().save(str(bad))
        coreseg.load(bad)


def test_core_ml_errors_are_core_ml_errors(tmp_path, cache):
    broken = tmp_path / "broken.mlmodelc"
    broken.mkdir()
    with pytest.raises(coreseg.CoreMLError):
        coreseg.load(broken)
