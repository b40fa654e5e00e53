"""The Core ML backend, run for real: macOS only (the macOS CI workflow runs
these). Models are built here with coremltools, as real exports are; their
answers are computed in numpy.

Exactness: Core ML's reduce_argmax does not promise which index wins a tie,
and the GPU / Neural Engine compute differently from the CPU; so every image
here is checked to have no ties after resizing, and exactness tests run with
compute_units="cpu". Whether Core ML
used our output backing is its choice: recorded, never asserted."""

import gc
import pickle
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(sys.platform != "darwin", reason="Core ML runs only on macOS")

# The models are built on any OS (coremltools); only running them needs a Mac.
cm = pytest.importorskip("coreml_models", reason="coremltools has no wheel for this platform")

import coreseg  # noqa: E402
from coreseg import kernels  # noqa: E402
from coreseg.running.backends.coreml import rgb_to_gray  # noqa: E402


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    d = tmp_path_factory.mktemp("coreml")
    built = {
        "plain": lambda: cm.segmenter(user_defined={cm.TYPE: "imageSegmenter",
                                                    cm.PARAMS: '{"labels": ["r", "g", "b"]}'}),
        "bgr": lambda: cm.segmenter(color_layout=cm.BGR),
        "range": lambda: cm.segmenter(shape=cm.FLEX_RANGE),
        "enum": lambda: cm.segmenter(shape=cm.FLEX_ENUM),
        "logits": lambda: cm.logits_model(),
        "logits16": lambda: cm.logits_model(precision="float16"),
        "logits_range": lambda: cm.logits_model(shape=cm.FLEX_RANGE),
        "two": cm.two_output_model,
        "1hw": lambda: cm.unit_axes_model("1hw"),
        "hw1": lambda: cm.unit_axes_model("hw1"),
        "1hw1": lambda: cm.unit_axes_model("1hw1"),
        "gray": cm.gray_model,
        "classes": lambda: cm.logits_model(user_defined={"classes": "red,green,blue"}),
        "ml_softmax": cm.mlprogram_softmax_model,
        "ids": cm.class_image_model,
        "ids16": lambda: cm.class_image_model(float16=True),
    }
    out = {}
    for name, make in built.items():
        out[name] = d / f"{name}.mlpackage"
        make().save(str(out[name]))
    specs = {"nn": cm.neural_network_segmenter, "nn_softmax": cm.nn_softmax_model, "nn_sigmoid": cm.nn_sigmoid_model}
    for name, make in specs.items():
        out[name] = d / f"{name}.mlmodel"
        cm.save_spec(make(), out[name])
    return out


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CORESEG_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def untied(h, w, seed, size=(cm.W, cm.H)):
    """An (h, w) RGB image with no ties for the argmax once resized to `size`:
    3x3 blocks of distinct channel levels plus noise (ties can only arise
    where blocks meet), the first seed from `seed` whose resized image has
    none."""
    for s in range(seed, seed + 500):
        rng = np.random.default_rng(s)
        levels = rng.permuted(np.tile([30, 130, 230], (3, 3, 1)), axis=2)
        blocks = levels[np.arange(h) * 3 // h][:, np.arange(w) * 3 // w]
        img = (blocks + rng.integers(0, 20, (h, w, 3))).astype(np.uint8)
        top2 = np.sort(kernels.resize_image(img, size, "RGB").astype(np.int32), axis=2)[..., -2:]
        if (top2[..., 1] > top2[..., 0]).all():
            return img
    raise AssertionError("no tie-free test image found")


def network_input(img, size, bgr=False):
    """What Core ML hands the network: the image resized (by coreseg's kernel,
    into the pixel buffer), checked free of ties for the argmax. Whole
    numbers up to 2048 are exact in float16 too, so a strict maximum is
    the same maximum in Core ML's arithmetic on any compute unit."""
    rgb = kernels.resize_image(img, size, "RGB").astype(np.int32)
    top2 = np.sort(rgb, axis=2)[..., -2:]
    assert (top2[..., 1] > top2[..., 0]).all(), "the test image has ties after resizing"
    return rgb[..., ::-1] if bgr else rgb


def expected(img, size, bgr=False):
    return np.argmax(network_input(img, size, bgr), axis=2)


def load(path, **kwargs):
    return coreseg.load(path, compute_units="cpu", **kwargs)


def test_predict_matches_numpy(paths, record_property):
    model = load(paths["plain"])
    assert model.backend == "coreml" and model.labels == ["r", "g", "b"]
    img = untied(40, 60, 0)
    seg = model.predict(img)
    assert seg.labels.shape == (cm.H, cm.W) and seg.labels.dtype == np.int32
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))
    assert seg.image_size == (60, 40) and all(isinstance(v, float) for v in seg.timings.values())
    record_property("used_output_backing", seg.io["used_output_backing"])


def test_wrapped_input_and_reused_output(paths, record_property):
    model = load(paths["plain"])
    rgb = untied(cm.H, cm.W, 1)  # the model's size: no resampling
    bgra = np.ascontiguousarray(np.dstack([rgb[..., ::-1], np.full((cm.H, cm.W), 255, np.uint8)]))
    seg = model.predict(bgra, layout="BGRA")
    assert seg.io["wrapped_input"]  # ours to decide: the caller's memory went to Core ML as it was
    assert seg.io["offered_output_backing"]
    record_property("used_output_backing", seg.io["used_output_backing"])
    np.testing.assert_array_equal(seg.labels, np.argmax(rgb, axis=2))
    again = model.predict(untied(40, 60, 2), out=seg.raw)
    assert again.raw is seg.raw
    np.testing.assert_array_equal(again.labels, expected(untied(40, 60, 2), (cm.W, cm.H)))
    model.wrap_inputs = False
    assert not model.predict(bgra, layout="BGRA").io["wrapped_input"]


def test_bgr_model(paths):
    img = untied(40, 60, 3)
    np.testing.assert_array_equal(load(paths["bgr"]).predict(img).labels, expected(img, (cm.W, cm.H), bgr=True))


@pytest.mark.parametrize("name, size, shape", [("range", "image", (40, 60)), ("range", None, (cm.H, cm.W)),
                                               ("range", (100, 50), (50, 100)), ("enum", "image", (32, 48))])
def test_flexible_sizes(paths, name, size, shape):
    model = load(paths[name], size=size)
    for seed in (4, 5):  # the second call has a backing sized from the first result
        img = untied(40, 60, seed, shape[::-1])
        seg = model.predict(img)
        assert seg.labels.shape == shape
        np.testing.assert_array_equal(seg.labels, expected(img, shape[::-1]))


@pytest.mark.parametrize("name", ["logits", "logits16", "logits_range", "classes"])
def test_float_logits(paths, name):
    model = load(paths[name])
    img = untied(40, 60, 6)
    seg = model.predict(img)
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))
    logits = 2 * network_input(img, (cm.W, cm.H)).transpose(2, 0, 1).astype(np.float64)
    p = np.exp(logits - logits.max(axis=0))
    np.testing.assert_allclose(seg.scores, p / p.sum(axis=0), atol=5e-3)
    assert seg.full_labels(smooth=True).shape == (40, 60)


def test_the_output_can_be_chosen(paths):
    img = untied(40, 60, 7)
    assert load(paths["two"]).predict(img).scores is None
    seg = load(paths["two"], output="logits").predict(img)
    assert seg.scores.shape == (3, cm.H, cm.W)
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))


@pytest.mark.parametrize("name", ["1hw", "hw1", "1hw1", "nn"])
def test_class_maps_with_unit_axes(paths, name):
    img = untied(40, 60, 8)
    seg = load(paths[name]).predict(img)
    assert seg.labels.shape == (cm.H, cm.W)
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))


def softmax(logits, axis=0):
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("name", ["nn_softmax", "ml_softmax"])
def test_probabilities_are_not_normalised_twice(paths, name):
    # Both end in a softmax of 4 * (x / 255 - 0.5): the neural network
    # scales its input with its own preprocessing, the ML program with
    # operations of its own.
    model = load(paths[name])
    assert model.output.activation == "softmax"
    img = untied(40, 60, 15)
    seg = model.predict(img)
    x = network_input(img, (cm.W, cm.H)).transpose(2, 0, 1).astype(np.float64)
    p = softmax(cm.SHARPNESS * (x * cm.SCALE + cm.BIAS))
    np.testing.assert_allclose(seg.scores, p, atol=5e-3)  # the ML program computes in float16
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))
    np.testing.assert_allclose(seg.confidence(), p.max(axis=0), atol=5e-3)


def test_a_sigmoid_channel_is_binary(paths):
    model = load(paths["nn_sigmoid"])
    assert (model.output.kind, model.output.activation, model.labels) == \
        ("binary", "sigmoid", ["background", "foreground"])
    img = np.random.default_rng(16).integers(0, 256, (40, 60, 3), np.uint8)
    seg = model.predict(img)
    x = kernels.resize_image(img, (cm.W, cm.H), "RGB").astype(np.float64)
    p = 1 / (1 + np.exp(-cm.SHARPNESS * (x.mean(axis=2) * cm.SCALE + cm.BIAS)))
    np.testing.assert_allclose(seg.scores[1], p, atol=1e-4)
    decided = np.abs(p - 0.5) > 1e-3  # away from the threshold, where float rounding cannot flip it
    np.testing.assert_array_equal(seg.labels[decided], (p > 0.5)[decided])


@pytest.mark.parametrize("name", ["ids", "ids16"])
def test_a_class_id_image_output(paths, name, record_property):
    # A grayscale image of class ids (8-bit, or 16-bit float) read from
    # Core ML's pixel buffer into the int32 map.
    model = load(paths[name])
    assert model.output.kind == "labels" and model.description_info.output_kind == "labels"
    img = untied(40, 60, 17)
    seg = model.predict(img)
    assert seg.labels.shape == (cm.H, cm.W) and seg.labels.dtype == np.int32 and seg.scores is None
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))
    # A pooled pixel buffer is offered when the output's isAllowedValue:
    # accepts it, and Core ML may or may not use it: recorded, not asserted.
    record_property("offered_output_backing", seg.io["offered_output_backing"])
    record_property("used_output_backing", seg.io["used_output_backing"])
    other = untied(40, 60, 18)
    again = model.predict(other, out=seg.raw)
    assert again.raw is seg.raw
    np.testing.assert_array_equal(again.labels, expected(other, (cm.W, cm.H)))
    for im, s in zip([img, other], model.predict_batch([img, other])):
        np.testing.assert_array_equal(s.labels, expected(im, (cm.W, cm.H)))


def test_grayscale_model(paths):
    img = untied(40, 60, 9)
    gray = rgb_to_gray(kernels.resize_image(img, (cm.W, cm.H), "RGB"))[..., 0]
    np.testing.assert_array_equal(load(paths["gray"]).predict(img).labels, (gray > 127).astype(np.int32))


def test_cache_hits_and_recovers(paths):
    first = load(paths["plain"])
    second = load(paths["plain"])
    assert not first.from_cache and second.from_cache and first.compiled_path == second.compiled_path
    direct = load(second.compiled_path)  # a .mlmodelc loads as it is
    assert direct.labels == ["r", "g", "b"] and direct.info.format == "mlmodelc"
    entry = second.compiled_path
    for f in entry.rglob("*"):
        if f.is_file():
            f.write_bytes(b"garbage")  # a corrupt cache entry
    # While models loaded from it live, it is not removed from under them.
    with pytest.raises(coreseg.CoreMLError, match="was not replaced, because a model loaded from it is still in use"):
        load(paths["plain"])
    del first, second, direct
    gc.collect()
    third = load(paths["plain"])  # now it is compiled again
    assert not third.from_cache and third.compiled_path == entry
    img = untied(40, 60, 10)
    np.testing.assert_array_equal(third.predict(img).labels, expected(img, (cm.W, cm.H)))


def test_an_entry_in_use_survives_pruning(paths, monkeypatch):
    # Core ML may read a loaded model's .mlmodelc again (other sizes, the
    # first GPU or Neural Engine prediction): a live model's entry stays.
    monkeypatch.setenv("CORESEG_CACHE_MAX_MODELS", "1")
    flexible = coreseg.load(paths["range"], size="image")  # all compute units
    load(paths["plain"])  # compiles and prunes: the flexible model's entry is in use
    assert flexible.compiled_path.is_dir()
    for shape in [(40, 60), (64, 128), (20, 30)]:  # sizes it has not run at yet
        img = untied(*shape, 30, shape[::-1])
        assert flexible.predict(img).labels.shape == shape


def test_spec_and_description_agree(paths):
    model = load(paths["plain"])
    a, b = model.info, model.description_info
    assert (a.input_name, a.input_size, a.output_name, a.output_shape, a.labels) == \
        (b.input_name, b.input_size, b.output_name, b.output_shape, b.labels)
    assert (a.author, a.license, a.version) == (b.author, b.license, b.version)


def test_batch_and_threads(paths):
    model = load(paths["plain"])
    images = [untied(30 + i, 50, 11 + i) for i in range(4)]
    for im, seg in zip(images, model.predict_batch(images)):
        np.testing.assert_array_equal(seg.labels, expected(im, (cm.W, cm.H)))
    errors = []

    def work(im):
        for _ in range(10):
            if not np.array_equal(model.predict(im).labels, expected(im, (cm.W, cm.H))):
                errors.append("mismatch")

    threads = [threading.Thread(target=work, args=(im,)) for im in images]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_exit_while_core_ml_holds_our_memory(paths, tmp_path):
    # Core ML and CoreVideo may let go of our arrays after the last call
    # returned, on their own threads, while Python finalises: the release
    # must neither hang nor abort the exit. The threads are joined: what
    # is tested is Core ML's late releases, not Python's daemon threads
    # (CPython ends those at exit however they are written). Every frame
    # and output is its own array, released by Core ML, not by the caller.
    script = textwrap.dedent(f"""
        import os, threading, numpy as np, coreseg
        os.environ["CORESEG_CACHE"] = {str(tmp_path / "cache")!r}
        model = coreseg.load({str(paths["plain"])!r}, compute_units="all")
        def work():
            for _ in range(200):
                model.predict(np.zeros(({cm.H}, {cm.W}, 4), np.uint8), layout="BGRA")
        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    """)
    for _ in range(5):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr


def test_late_releases_reach_python(paths):
    # What Core ML lets go of after a call returned is handed to the
    # interpreter (never with the GIL taken on Core ML's thread), and
    # reaches Python: the frames' reference counts come back.
    model = load(paths["plain"])
    frames = [np.zeros((cm.H, cm.W, 4), np.uint8) for _ in range(50)]
    before = [sys.getrefcount(f) for f in frames]
    wrapped = [model.predict(f, layout="BGRA").io["wrapped_input"] for f in frames]
    assert all(wrapped)
    del model  # whatever Core ML still holds, it lets go of now, or soon, on a thread of its own
    gc.collect()
    deadline = time.monotonic() + 10
    while [sys.getrefcount(f) for f in frames] != before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [sys.getrefcount(f) for f in frames] == before


def test_arrays_that_went_through_pickle(paths):
    # multiprocessing, --jobs and Ray hand over arrays whose dtype is equal
    # to numpy's own, not the same object: the bindings compare by equivalence.
    model = load(paths["plain"])
    rgb = untied(cm.H, cm.W, 31)
    bgra = np.ascontiguousarray(np.dstack([rgb[..., ::-1], np.full((cm.H, cm.W), 255, np.uint8)]))
    moved = pickle.loads(pickle.dumps(bgra))
    out = pickle.loads(pickle.dumps(np.zeros((cm.H, cm.W), np.int32)))
    assert moved.dtype is not np.dtype(np.uint8) and out.dtype is not np.dtype(np.int32)
    seg = model.predict(moved, layout="BGRA", out=out)
    assert seg.raw is out and seg.io["wrapped_input"]
    np.testing.assert_array_equal(seg.labels, np.argmax(rgb, axis=2))
    np.testing.assert_array_equal(model.predict(pickle.loads(pickle.dumps(rgb))).labels, np.argmax(rgb, axis=2))


def test_a_model_core_ml_cannot_compile_is_a_core_ml_error(tmp_path):
    # Compiled synchronously, on the calling thread, inside the call's
    # @try: what Core ML's compiler reports (an NSError, or an Objective-C
    # exception) is a CoreMLError, and the process goes on; from a thread too.
    for name, content in [("garbage.mlmodel", b"not a model"), ("empty.mlmodel", b"")]:
        (tmp_path / name).write_bytes(content)
    package = tmp_path / "broken.mlpackage"
    (package / "Data").mkdir(parents=True)
    (package / "Manifest.json").write_text("{not json")
    script = textwrap.dedent(f"""
        import threading, coreseg
        from coreseg import _coreml
        errors = []
        def compile(path):
            try:
                _coreml.compile_model(path)
            except coreseg.CoreMLError as e:
                errors.append(str(e))
        paths = [{str(tmp_path / "garbage.mlmodel")!r}, {str(tmp_path / "empty.mlmodel")!r}, {str(package)!r}]
        for path in paths:
            compile(path)
        worker = threading.Thread(target=compile, args=(paths[0],))
        worker.start()
        worker.join()
        assert len(errors) == 4 and all("Core ML" in e for e in errors), errors
        print("survived")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "survived" in done.stdout, done.stderr


def test_bad_inputs_are_caught_before_core_ml(paths):
    model = load(paths["plain"])
    with pytest.raises(TypeError, match=r"image is a float image \(float32\); coreseg takes uint8 pixels"):
        model.predict(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="image must have shape"):
        model.predict(np.zeros((10, 10, 2), np.uint8))
    with pytest.raises(ValueError, match="layout must be one of"):
        model.predict(np.zeros((10, 10, 3), np.uint8), layout="BGRA")
    bad = paths["plain"].parent / "classifier.mlpackage"
    cm.classifier().save(str(bad))
    with pytest.raises(coreseg.ModelError, match="no output is an integer class map"):
        coreseg.load(bad)


def test_core_ml_errors_are_core_ml_errors(tmp_path):
    broken = tmp_path / "broken.mlmodelc"
    broken.mkdir()
    with pytest.raises(coreseg.CoreMLError):
        coreseg.load(broken)
