"""Core ML models as real exports make them (built with coremltools), read
and run through the Core ML backend's Python side on any OS.

coreseg.modelfiles.coreml_file reads the specs; CoreMLSegmenter runs them with
fake_coreml standing in for coreseg._coreml (see there), so the size
choice, output choice, shape handling, labels and result arrays are tested
here; the macOS workflow runs the same models through Core ML itself
(test_coreml_backend.py)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("coremltools", reason="coremltools has no wheel for this platform")

import coreml_models as cm  # noqa: E402
from fake_coreml import FakeCoreML  # noqa: E402

import coreseg  # noqa: E402
from coreseg import CoreMLError, ModelError, kernels, reference  # noqa: E402
from coreseg.modelfiles import coreml_file  # noqa: E402
from coreseg.running.backends.coreml import CoreMLSegmenter, rgb_to_gray  # noqa: E402
from coreseg.modelfiles.coreml_file import ImageInput  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("coreml_models")
    built = {
        "plain": cm.segmenter(),
        "bgr": cm.segmenter(color_layout=cm.BGR),
        "range": cm.segmenter(shape=cm.FLEX_RANGE),
        "enum": cm.segmenter(shape=cm.FLEX_ENUM),
        "logits": cm.logits_model(),
        "logits16": cm.logits_model(precision="float16"),
        "logits_range": cm.logits_model(shape=cm.FLEX_RANGE),
        "two": cm.two_output_model(),
        "1hw": cm.unit_axes_model("1hw"),
        "hw1": cm.unit_axes_model("hw1"),
        "1hw1": cm.unit_axes_model("1hw1"),
        "gray": cm.gray_model(),
        "classes": cm.logits_model(user_defined={"classes": "red,green,blue"}),
    }
    paths = {}
    for name, model in built.items():
        paths[name] = d / f"{name}.mlpackage"
        model.save(str(paths[name]))
    cm.save_spec(cm.neural_network_segmenter(), d / "nn.mlmodel")
    paths["nn"] = d / "nn.mlmodel"
    return paths


def argmax_rgb(planes):
    return np.argmax(planes, axis=0).astype(np.int32)  # reduce_argmax over the channels (first maximum)


NETWORKS = {
    "semanticPredictions": argmax_rgb,
    "labels": argmax_rgb,
    "logits": lambda planes: 2 * planes[None],
}


def image(h=40, w=60, seed=0):
    """Distinct channel values: no ties for the argmax, before or after resizing."""
    rng = np.random.default_rng(seed)
    return (rng.permuted(np.tile([0, 100, 200], (h, w, 1)), axis=2) + rng.integers(0, 20, (h, w, 3))).astype(np.uint8)


def load(path, networks=NETWORKS, returns=None, **kwargs):
    native = FakeCoreML(networks, returns)
    return CoreMLSegmenter(path, native=native, **kwargs), native


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CORESEG_CACHE", str(tmp_path / "cache"))


# ---- reading the files -------------------------------------------------------------


def test_float_logits_are_scores(models):
    info = coreseg.inspect(models["logits"])
    assert (info.output_kind, info.output_layout, info.output_activation) == ("scores", "NCHW", "logits")
    assert (info.output_name, info.output_dtype, info.output_shape) == ("logits", "float32", (1, 3, cm.H, cm.W))
    assert coreseg.inspect(models["logits16"]).output_dtype == "float16"


def test_flexible_models_declare_no_output_shape(models):
    info = coreseg.inspect(models["range"])
    assert info.output_shape is None and info.output_kind == "labels"
    assert info.input_size == (cm.W, cm.H) and info.input_size_range == ((8, 128), (8, 64))
    assert coreseg.inspect(models["enum"]).input_sizes == ((cm.W, cm.H), (48, 32))
    assert coreseg.inspect(models["logits_range"]).output_kind == "scores"


def test_several_outputs_prefer_the_class_map(models):
    file = coreml_file.read(models["two"])
    info, out = coreml_file.describe(file)
    assert (out.name, out.kind) == ("labels", "labels")
    info, out = coreml_file.describe(file, output="logits")
    assert (out.name, out.kind, out.layout) == ("logits", "scores", "NCHW")
    with pytest.raises(ModelError, match="no output named 'nope'; the outputs are: logits float32"):
        coreml_file.describe(file, output="nope")


@pytest.mark.parametrize("name, shape", [("1hw", (1, cm.H, cm.W)), ("hw1", (cm.H, cm.W, 1)),
                                         ("1hw1", (1, cm.H, cm.W, 1))])
def test_unit_axes_are_class_maps(models, name, shape):
    info = coreseg.inspect(models[name])
    assert info.output_kind == "labels" and info.output_shape == shape


def test_color_layouts_come_from_the_spec(models):
    assert coreseg.inspect(models["plain"]).input_color_layout == "RGB"
    assert coreseg.inspect(models["bgr"]).input_color_layout == "BGR"
    assert coreseg.inspect(models["gray"]).input_color_layout == "GRAY"


def test_labels_from_the_classes_metadata(models):
    assert coreseg.inspect(models["classes"]).labels == ["red", "green", "blue"]


def test_image_input_sizes():
    fixed = ImageInput("image", (64, 48), "RGB")
    assert fixed.allows((64, 48)) and not fixed.allows((32, 24)) and fixed.size_for((1000, 10)) == (64, 48)
    assert fixed.allowed() == "64x48 only"
    ranged = ImageInput("image", (64, 48), "RGB", size_range=((16, 512), (16, -1)))
    assert ranged.allows((512, 4000)) and not ranged.allows((513, 20)) and not ranged.allows((20, 15))
    assert ranged.size_for((300, 200)) == (300, 200)  # within the range: the image's own size
    assert ranged.size_for((1024, 512)) == (512, 256)  # too wide: scaled down, aspect kept
    assert ranged.size_for((8, 8)) == (16, 16)  # too small: scaled up to the minimum
    assert ranged.size_for((4000, 10)) == (512, 16)  # no scale fits both: clamped
    assert ranged.allowed() == "width 16..512 and height 16..any"
    enum = ImageInput("image", (64, 48), "RGB", sizes=((64, 48), (128, 96), (96, 128)))
    assert enum.size_for((1200, 900)) == (128, 96) and enum.size_for((900, 1200)) == (96, 128)
    assert enum.size_for((50, 40)) == (64, 48) and enum.allowed() == "one of 64x48, 128x96, 96x128"


def description(outputs):
    return {"inputs": [{"name": "image", "kind": "image", "shape": [16, 24], "dtype": "", "optional": False,
                        "pixel_format": "BGRA", "size_constraint": {"type": "unspecified", "sizes": []}}],
            "outputs": outputs, "metadata": {"author": "me"},
            "creator_defined": {"com.apple.coreml.model.preview.params": '{"labels": ["--", "sky", "sea"]}'}}


def array(name, dtype, shape):
    return {"name": name, "kind": "multiArray", "shape": shape, "dtype": dtype, "optional": False,
            "pixel_format": "", "shape_constraint": {"type": "unspecified", "ranges": [], "shapes": []}}


def test_a_compiled_models_description(tmp_path):
    compiled = tmp_path / "m.mlmodelc"
    compiled.mkdir()
    desc = description([array("scores", "float32", [1, 3, 16, 24]), array("map", "int32", [16, 24])])
    info, out = coreml_file.describe(coreml_file.from_description(desc, compiled), ordered=False)
    assert out.name == "map" and info.labels == ["--", "sky", "sea"] and info.author == "me"
    assert info.format == "mlmodelc" and info.input_color_layout == "unknown"
    # Core ML's compiler writes the colour layout into metadata.json.
    (compiled / "metadata.json").write_text(json.dumps([{"inputSchema": [{"name": "image", "colorspace": "BGR"}]}]))
    assert coreml_file.describe(coreml_file.from_description(desc, compiled))[0].input_color_layout == "BGR"
    # Two class maps and no order among them: the user must choose.
    two = description([array("a", "int32", [16, 24]), array("b", "int32", [16, 24])])
    with pytest.raises(ModelError, match=r"several outputs could be the segmentation .*pass output=NAME"):
        coreml_file.describe(coreml_file.from_description(two, compiled), ordered=False)
    assert coreml_file.describe(coreml_file.from_description(two, compiled), output="b", ordered=False)[1].name == "b"


def test_a_compiled_models_flexible_sizes(tmp_path):
    desc = description([array("map", "int32", [])])
    desc["inputs"][0]["size_constraint"] = {"type": "range", "sizes": [], "width_range": (8, 128),
                                            "height_range": (8, 1 << 62)}
    file = coreml_file.from_description(desc, tmp_path / "m.mlmodelc")
    assert file.image.size_range == ((8, 128), (8, -1)) and file.outputs[0].shape is None
    desc["inputs"][0]["size_constraint"] = {"type": "enumerated", "sizes": [(24, 16), (48, 32)]}
    assert coreml_file.from_description(desc, tmp_path / "m.mlmodelc").image.sizes == ((24, 16), (48, 32))


def test_16_bit_grayscale_inputs_are_refused_clearly(tmp_path):
    desc = description([array("map", "int32", [16, 24])])
    desc["inputs"][0]["pixel_format"] = "L00h"
    with pytest.raises(ModelError, match="16-bit float grayscale image"):
        coreml_file.describe(coreml_file.from_description(desc, tmp_path / "m.mlmodelc"))


def test_other_required_inputs_are_refused(tmp_path):
    desc = description([array("map", "int32", [16, 24])])
    desc["inputs"].append({"name": "threshold", "kind": "double", "shape": [], "dtype": "", "optional": False})
    with pytest.raises(ModelError, match="besides the image input 'image' it requires threshold"):
        coreml_file.from_description(desc, tmp_path / "m.mlmodelc")
    desc["inputs"][1]["optional"] = True
    assert coreml_file.from_description(desc, tmp_path / "m.mlmodelc").image.name == "image"
    desc["inputs"].append(dict(desc["inputs"][0], name="depth"))  # a second image, required
    with pytest.raises(ModelError, match="besides the image input 'image' it requires depth"):
        coreml_file.from_description(desc, tmp_path / "m.mlmodelc")


# ---- running them (the Python side, with a stand-in for Core ML) --------------------


def expected(img, size, bgr=False):
    rgb = kernels.resize_image(img, size, "RGB")
    return np.argmax(rgb[..., ::-1] if bgr else rgb, axis=2)


def test_a_class_map_model(models):
    model, native = load(models["plain"])
    img = image()
    seg = model.predict(img)
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))
    assert seg.labels.dtype == np.int32 and seg.scores is None and not model.has_scores
    assert set(seg.timings) == {"preprocess", "inference", "postprocess"}
    assert all(isinstance(v, float) for v in seg.timings.values())  # flags live in seg.io
    assert seg.io == {"wrapped_input": False, "offered_output_backing": True, "used_output_backing": True}
    assert seg.raw.ctypes.data % 4096 == 0
    assert native.compiled == 1 and model.description_info.output_name == model.info.output_name


def test_out_reuses_a_results_memory(models):
    model, native = load(models["plain"])
    first = model.predict(image(seed=1))
    again = model.predict(image(seed=2), out=first.raw)
    assert again.raw is first.raw and np.shares_memory(again.labels, first.labels)
    np.testing.assert_array_equal(again.labels, expected(image(seed=2), (cm.W, cm.H)))
    with pytest.raises(ValueError, match=r"out has shape \(3, 3\) and dtype int32; .* is \(16, 24\) int32"):
        model.predict(image(), out=np.zeros((3, 3), np.int32))
    with pytest.raises(ValueError, match="writable, aligned, C-contiguous"):
        model.predict(image(), out=np.zeros((cm.W, cm.H), np.int32).T)


def test_bgr_models_get_bgr_planes(models):
    model, _ = load(models["bgr"])
    img = image(seed=3)
    np.testing.assert_array_equal(model.predict(img).labels, expected(img, (cm.W, cm.H), bgr=True))


def test_flexible_range_learns_the_output_shape(models):
    model, native = load(models["range"], size="image")
    img = image(40, 60)
    seg = model.predict(img)
    assert native.models[0].calls[0]["size"] == (60, 40) and native.models[0].calls[0]["out"] is None
    np.testing.assert_array_equal(seg.labels, expected(img, (60, 40)))
    seg = model.predict(image(40, 60, seed=5))  # now the shape is known: a backing is offered
    assert native.models[0].calls[1]["out"] is not None and seg.io["used_output_backing"]
    big = image(300, 200)  # taller than the range: scaled to fit, aspect kept
    assert model.predict(big).labels.shape == (64, 43)
    assert native.models[0].calls[2]["size"] == (43, 64)
    default, native = load(models["range"])
    assert default.predict(img).labels.shape == (cm.H, cm.W)  # the default size
    assert load(models["range"], size=(100, 50))[0].predict(img).labels.shape == (50, 100)
    with pytest.raises(ValueError, match=r"size=\(200, 50\), but range.mlpackage takes width 8..128 and height 8..64"):
        load(models["range"], size=(200, 50))
    with pytest.raises(ValueError, match=r"size='image', but plain.mlpackage takes 24x16 only"):
        load(models["plain"], size="image")


def test_enumerated_sizes_take_the_nearest(models):
    model, native = load(models["enum"], size="image")
    seg = model.predict(image(30, 50))
    assert native.models[0].calls[0]["size"] == (48, 32) and seg.labels.shape == (32, 48)
    with pytest.raises(ValueError, match="takes one of 24x16, 48x32"):
        load(models["enum"], size=(30, 20))


@pytest.mark.parametrize("name", ["logits", "logits16", "classes"])
def test_float_logits_give_labels_and_scores(models, name):
    model, _ = load(models[name])
    img = image(seed=7)
    seg = model.predict(img)
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))
    assert model.has_scores and seg.raw.dtype == ("float16" if name == "logits16" else "float32")
    logits = 2 * kernels.resize_image(img, (cm.W, cm.H), "RGB").transpose(2, 0, 1).astype(np.float64)
    p = np.exp(logits - logits.max(axis=0))
    np.testing.assert_allclose(seg.scores, p / p.sum(axis=0), atol=2e-3 if name == "logits16" else 1e-5)
    smooth = seg.full_labels(smooth=True)
    assert smooth.shape == (40, 60)
    np.testing.assert_array_equal(smooth, reference.upsample_argmax(seg.scores, (60, 40)))
    if name == "classes":
        assert model.labels == ["red", "green", "blue"] and seg.names == model.labels


def test_flexible_logits_learn_their_layout(models):
    model, _ = load(models["logits_range"], size="image")
    img = image(32, 48, seed=8)
    seg = model.predict(img)
    assert seg.output.layout == "NCHW" and seg.raw.shape == (1, 3, 32, 48)
    np.testing.assert_array_equal(seg.labels, expected(img, (48, 32)))


def test_the_output_can_be_chosen(models):
    model, native = load(models["two"])
    assert model.output.name == "labels" and not model.has_scores
    img = image(seed=9)
    np.testing.assert_array_equal(model.predict(img).labels, expected(img, (cm.W, cm.H)))
    scores, native = load(models["two"], output="logits")
    seg = scores.predict(img)
    assert native.models[0].calls[0]["output"] == "logits" and seg.scores.shape == (3, cm.H, cm.W)
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))


@pytest.mark.parametrize("name", ["1hw", "hw1", "1hw1"])
def test_unit_axes(models, name):
    layout = {"1hw": lambda p: argmax_rgb(p)[None], "hw1": lambda p: argmax_rgb(p)[..., None],
              "1hw1": lambda p: argmax_rgb(p)[None, ..., None]}[name]
    model, _ = load(models[name], networks={"labels": layout})
    img = image(seed=10)
    seg = model.predict(img)
    assert seg.labels.shape == (cm.H, cm.W)
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))
    # Core ML may return the map without the unit axes the spec declares.
    model, _ = load(models[name], networks={"labels": argmax_rgb})
    np.testing.assert_array_equal(model.predict(img).labels, expected(img, (cm.W, cm.H)))


def test_grayscale_models(models):
    model, native = load(models["gray"], networks={"labels": lambda p: (p[0] > 127).astype(np.int32)})
    img = image(seed=11)
    seg = model.predict(img)
    gray = rgb_to_gray(kernels.resize_image(img, (cm.W, cm.H), "RGB"))[..., 0]
    np.testing.assert_array_equal(seg.labels, (gray > 127).astype(np.int32))
    frame = native.models[0].calls[0]
    assert frame["wrap"]  # a model-sized luma frame: wrapped when its rows are aligned


def test_rgb_to_gray_is_pillows_luma():
    Image = pytest.importorskip("PIL.Image")
    rgb = np.random.default_rng(12).integers(0, 256, (37, 53, 3), np.uint8)
    ours = rgb_to_gray(rgb)
    assert ours.shape == (37, 53, 1) and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours[..., 0], np.asarray(Image.fromarray(rgb).convert("L")))


def test_class_maps_returned_as_floats(models):
    # Neural networks declare Int32 maps and may hand back doubles: whole
    # numbers are read as ids; anything else is an error, never truncated.
    model, _ = load(models["nn"], networks={"semanticPredictions": argmax_rgb}, returns={"semanticPredictions": np.float64})
    img = image(seed=13)
    np.testing.assert_array_equal(model.predict(img).labels, expected(img, (cm.W, cm.H)))
    half = lambda p: argmax_rgb(p) + 0.5  # noqa: E731
    model, _ = load(models["nn"], networks={"semanticPredictions": half}, returns={"semanticPredictions": np.float64})
    with pytest.raises((ValueError, CoreMLError), match="a whole number that fits int32"):
        model.predict(img)


def test_compiled_models_load_from_their_description(models, tmp_path):
    model, native = load(models["plain"])
    direct = CoreMLSegmenter(model.compiled_path, native=native)
    assert direct.from_cache and direct.info.format == "mlmodelc" and direct.output.name == "semanticPredictions"
    np.testing.assert_array_equal(direct.predict(image()).labels, model.predict(image()).labels)


def test_letterbox_and_center_crop(models):
    img = image(40, 90, seed=14)
    fit, _ = load(models["plain"], crop="fit")
    seg = fit.predict(img)
    assert seg.placement.mode == "fit" and seg.full_labels().shape == (40, 90)
    x, y, w, h = seg.placement.target
    canvas = np.zeros((cm.H, cm.W, 3), np.uint8)
    canvas[y : y + h, x : x + w] = kernels.resize_image(img, (w, h), "RGB")
    np.testing.assert_array_equal(seg.labels, np.argmax(canvas, axis=2))
    center, _ = load(models["plain"], crop="center")
    full = center.predict(img).full_labels()
    assert (full[:, :5] == -1).all() and (full[:, 40:50] >= 0).all()


def test_batches(models):
    model, _ = load(models["range"], size="image")
    images = [image(20 + 4 * i, 30, seed=i) for i in range(3)]
    for img, seg in zip(images, model.predict_batch(images)):
        np.testing.assert_array_equal(seg.labels, expected(img, (30, img.shape[0])))
        assert not seg.io["used_output_backing"] and "batch_total" in seg.timings


def test_load_says_what_core_ml_models_do_not_take(models, monkeypatch):
    monkeypatch.setattr(coreseg.running.loader, "_coreml_unavailable", lambda: None)
    with pytest.raises(ValueError, match=r"mean=?: not used by Core ML models"):
        coreseg.load(models["plain"], mean="imagenet")


def test_a_model_core_ml_cannot_load_is_a_core_ml_error(tmp_path):
    broken = tmp_path / "broken.mlmodelc"
    broken.mkdir()
    with pytest.raises(CoreMLError):
        CoreMLSegmenter(broken, native=FakeCoreML({}))


# ---- probabilities: the activation the network ends in ---------------------------------


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Models whose last layer makes (or does not make) probabilities, and
    grayscale class-id image outputs."""
    d = tmp_path_factory.mktemp("coreml_scored")
    paths = {}
    specs = {"nn_softmax": cm.nn_softmax_model(), "nn_sigmoid": cm.nn_sigmoid_model(),
             "nn_logits": cm.nn_logits_model(), "nn_multilabel": cm.nn_sigmoid_channels_model(),
             "pipeline": cm.pipeline_of(cm.nn_softmax_model())}
    for name, spec in specs.items():
        paths[name] = d / f"{name}.mlmodel"
        cm.save_spec(spec, paths[name])
    packages = {"ml_softmax": cm.mlprogram_softmax_model(), "ml_softmax_nhwc": cm.mlprogram_softmax_model(nhwc=True),
                "ids": cm.class_image_model(), "ids16": cm.class_image_model(float16=True),
                "ids_range": cm.class_image_model(shape=cm.FLEX_RANGE)}
    for name, model in packages.items():
        paths[name] = d / f"{name}.mlpackage"
        model.save(str(paths[name]))
    return paths


def softmax(logits, axis=0):
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def fritz_like(planes):
    """What nn_softmax_model computes from the pixels Core ML hands it (its
    own preprocessing, x / 255 - 0.5, included), as float64 like its output."""
    return softmax(cm.SHARPNESS * (planes.astype(np.float64) * cm.SCALE + cm.BIAS))[None]


def test_a_neural_network_ending_in_softmax_gives_probabilities(scored):
    info = coreseg.inspect(scored["nn_softmax"])
    assert (info.output_kind, info.output_layout, info.output_activation) == ("scores", "NCHW", "softmax")
    assert info.sources["output_activation"] == "model" and "output_activation" not in info.assumed
    assert "probabilities (softmax)" in info.summary()
    model, _ = load(scored["nn_softmax"], networks={"probs": fritz_like})
    img = image(seed=20)
    seg = model.predict(img)
    assert seg.raw.shape == (1, 3, cm.H, cm.W) and seg.raw.dtype == np.float32  # DOUBLE, read as float32
    raw = seg.raw[0]
    np.testing.assert_allclose(raw.sum(axis=0), 1, atol=1e-6)
    # The scores are the model's own probabilities, not a softmax of them.
    np.testing.assert_array_equal(seg.scores, raw)
    assert np.abs(softmax(raw.astype(np.float64)) - raw).max() > 0.05  # a second softmax would have shown
    np.testing.assert_array_equal(seg.confidence(), raw.max(axis=0))
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))
    (frame,) = list(model.stream([img], smoothing="ema"))  # the first frame starts the average
    np.testing.assert_array_equal(frame.segmentation.scores, raw)


def test_a_neural_network_ending_in_one_sigmoid_channel_is_binary(scored):
    info = coreseg.inspect(scored["nn_sigmoid"])
    assert (info.output_kind, info.output_activation, info.output_threshold) == ("binary", "sigmoid", 0.5)
    assert info.labels == ["background", "foreground"] and info.sources["output_activation"] == "model"
    assert info.sources["threshold"] == "assumed"

    def network(planes):  # sigmoid(4 * mean(x / 255 - 0.5)), as [1, H, W]
        return 1 / (1 + np.exp(-cm.SHARPNESS * (planes.mean(axis=0) * cm.SCALE + cm.BIAS)))[None]

    model, _ = load(scored["nn_sigmoid"], networks={"foreground": network})
    img = np.random.default_rng(21).integers(0, 256, (40, 60, 3), np.uint8)  # bright and dark pixels
    seg = model.predict(img)
    p = network(kernels.resize_image(img, (cm.W, cm.H), "RGB").transpose(2, 0, 1).astype(np.float32))[0]
    np.testing.assert_array_equal(seg.labels, (seg.raw[0] > 0.5).astype(np.int32))
    assert 0 < seg.labels.mean() < 1  # both classes present: the threshold decided something
    np.testing.assert_allclose(seg.scores, np.stack([1 - p, p]), atol=1e-6)


def test_a_neural_network_without_an_activation_gives_logits(scored):
    info = coreseg.inspect(scored["nn_logits"])
    assert (info.output_kind, info.output_activation) == ("scores", "logits")
    assert info.assumed == ["output_activation"]  # nothing in the network says: shown as assumed


def test_a_neural_network_ending_in_sigmoid_channels_is_multilabel(scored):
    info = coreseg.inspect(scored["nn_multilabel"])
    assert (info.output_kind, info.output_activation, info.output_threshold) == ("multilabel", "sigmoid", 0.5)
    info = coreseg.inspect(scored["nn_multilabel"], labels=["red", "green", "blue"])
    assert info.labels == ["background", "red", "green", "blue"] and info.sources["labels"] == "load"


@pytest.mark.parametrize("name, layout", [("ml_softmax", "NCHW"), ("ml_softmax_nhwc", "NHWC")])
def test_an_ml_program_ending_in_softmax_gives_probabilities(scored, name, layout):
    # The converter casts the float16 softmax to float32 after it; the NHWC
    # model transposes it too: both pass the probabilities through.
    info = coreseg.inspect(scored[name])
    assert (info.output_kind, info.output_layout, info.output_activation) == ("scores", layout, "softmax")
    assert info.input_preprocessing == ""  # an ML program scales its input inside the program

    def network(planes):
        p = softmax(cm.SHARPNESS * (planes * cm.SCALE - 0.5))[None].astype(np.float32)
        return p.transpose(0, 2, 3, 1) if layout == "NHWC" else p

    model, _ = load(scored[name], networks={"probs": network})
    img = image(seed=22)
    seg = model.predict(img)
    planes = seg.raw[0].transpose(2, 0, 1) if layout == "NHWC" else seg.raw[0]
    np.testing.assert_array_equal(seg.scores, planes)
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))


def test_a_pipeline_reads_the_model_that_makes_its_output(scored):
    info = coreseg.inspect(scored["pipeline"])
    assert (info.model_type, info.output_activation) == ("pipeline", "softmax")
    assert info.input_preprocessing == "x * 0.003922 + (-0.5, -0.5, -0.5)"


def test_a_compiled_model_does_not_say_what_made_its_scores(scored):
    # A .mlmodelc has no spec to read the last layer from: its description
    # alone, and the activation is assumed (logits), as before.
    model, native = load(scored["nn_softmax"], networks={"probs": fritz_like})
    assert model.output.activation == "softmax"
    direct = CoreMLSegmenter(model.compiled_path, native=native)
    assert direct.output.activation == "logits" and "output_activation" in direct.info.assumed


# ---- a neural network's own image preprocessing ------------------------------------------


def _preprocessing(tmp_path, edit):
    spec = cm.nn_softmax_model()
    edit(spec)
    path = tmp_path / "edited.mlmodel"
    cm.save_spec(spec, path)
    return coreml_file.read(path).preprocessing


def test_preprocessing_is_read_from_the_spec(scored, tmp_path):
    info = coreseg.inspect(scored["nn_softmax"])
    assert info.input_preprocessing == "x * 0.003922 + (-0.5, -0.5, -0.5)"
    assert "preprocessing in the model: x * 0.003922 + (-0.5, -0.5, -0.5)" in info.summary()
    assert info.sources["color_layout"] == info.sources["normalization"] == "model"
    image_type = lambda s: s.description.input[0].type.imageType  # noqa: E731
    scaler = lambda s: s.neuralNetwork.preprocessing[0].scaler  # noqa: E731

    def bgr(spec):  # Core ML hands a BGR network B, G, R, with the biases of each
        image_type(spec).colorSpace = 30
        scaler(spec).channelScale, scaler(spec).redBias, scaler(spec).greenBias, scaler(spec).blueBias = 0.5, -1, -2, -3

    assert _preprocessing(tmp_path, bgr) == "BGR: x * 0.5 + (-3, -2, -1)"

    def identity(spec):
        scaler(spec).channelScale, scaler(spec).redBias, scaler(spec).greenBias, scaler(spec).blueBias = 1, 0, 0, 0

    assert _preprocessing(tmp_path, identity) == ""  # pixels as they are

    def bgr_only(spec):
        identity(spec)
        image_type(spec).colorSpace = 30

    assert _preprocessing(tmp_path, bgr_only) == "BGR: x"

    def other_input(spec):
        spec.neuralNetwork.preprocessing[0].featureName = "depth"

    assert _preprocessing(tmp_path, other_input) == ""

    def mean_image(spec):
        p = spec.neuralNetwork.preprocessing[0]
        p.meanImage.meanImage.extend([0.0] * (3 * cm.H * cm.W))

    assert _preprocessing(tmp_path, mean_image) == "x - the model's mean image"


# ---- a class map as a grayscale image -----------------------------------------------------


def ids(planes):
    """A class-id image from the network: the argmax over the channels, as
    the float (1, 1, h, w) the program returns."""
    return np.argmax(planes, axis=0)[None, None].astype(np.float32)


@pytest.mark.parametrize("name, dtype, pixel_format", [("ids", "uint8", "L008"), ("ids16", "float16", "L00h")])
def test_a_grayscale_image_output_is_a_class_map(scored, name, dtype, pixel_format):
    info = coreseg.inspect(scored[name])
    assert (info.output_kind, info.output_dtype, info.output_shape) == ("labels", dtype, (cm.H, cm.W))
    assert info.output_activation == "none" and info.output_layout is None
    model, native = load(scored[name], networks={"classes": ids})
    img = image(seed=23)
    seg = model.predict(img)
    assert seg.raw.dtype == np.int32 and seg.raw.shape == (cm.H, cm.W) and seg.scores is None
    np.testing.assert_array_equal(seg.labels, expected(img, (cm.W, cm.H)))
    # A pixel buffer of the output's size and pixel format is offered as the backing.
    assert native.models[0].calls[0]["backing"] == (pixel_format, cm.W, cm.H)
    assert seg.io == {"wrapped_input": False, "offered_output_backing": True, "used_output_backing": True}
    again = model.predict(image(seed=24), out=seg.raw)  # the int32 map reused
    assert again.raw is seg.raw
    np.testing.assert_array_equal(again.labels, expected(image(seed=24), (cm.W, cm.H)))
    # Its description (all a compiled model has) says the same.
    desc_output = next(f for f in native.models[0].describe()["outputs"] if f["name"] == "classes")
    assert (desc_output["kind"], desc_output["pixel_format"]) == ("image", pixel_format)
    assert model.description_info.output_kind == "labels" and model.description_info.output_dtype == dtype
    direct = CoreMLSegmenter(model.compiled_path, native=native)
    np.testing.assert_array_equal(direct.predict(img).labels, expected(img, (cm.W, cm.H)))
    batch = model.predict_batch([img, image(seed=24)])
    np.testing.assert_array_equal(batch[0].labels, expected(img, (cm.W, cm.H)))
    np.testing.assert_array_equal(batch[1].labels, expected(image(seed=24), (cm.W, cm.H)))


def test_float16_class_id_pixels_must_be_whole_numbers(scored):
    model, _ = load(scored["ids16"], networks={"classes": lambda p: ids(p) + 0.5})
    with pytest.raises(CoreMLError, match="which is not a class id"):
        model.predict(image(seed=25))


def test_a_flexible_grayscale_image_output_learns_its_size(scored):
    info = coreseg.inspect(scored["ids_range"])
    assert info.output_kind == "labels" and info.output_shape is None
    model, native = load(scored["ids_range"], networks={"classes": ids}, size="image")
    img = image(40, 60, seed=26)
    seg = model.predict(img)
    assert native.models[0].calls[0]["backing"] is None and not seg.io["offered_output_backing"]
    np.testing.assert_array_equal(seg.labels, expected(img, (60, 40)))
    seg = model.predict(image(40, 60, seed=27))  # the size is known now: a backing of it is offered
    assert native.models[0].calls[1]["backing"] == ("L008", 60, 40) and seg.io["used_output_backing"]
    np.testing.assert_array_equal(seg.labels, expected(image(40, 60, seed=27), (60, 40)))


def image_output(name, pixel_format, constraint=None):
    return {"name": name, "kind": "image", "shape": [16, 24], "dtype": "", "optional": False,
            "pixel_format": pixel_format, "size_constraint": constraint or {"type": "unspecified", "sizes": []}}


def test_a_compiled_models_image_outputs(tmp_path):
    path = tmp_path / "m.mlmodelc"
    file = coreml_file.from_description(description([image_output("map", "L008")]), path)
    assert file.outputs == [coreml_file.Tensor("map", "uint8", (16, 24), image=True)]
    info, out = coreml_file.describe(file, ordered=False)
    assert (out.name, out.kind, info.output_shape) == ("map", "labels", (16, 24))
    half = coreml_file.from_description(description([image_output("map", "L00h")]), path)
    assert half.outputs[0].dtype == "float16" and half.outputs[0].image
    ranged = image_output("map", "L008", {"type": "range", "sizes": [], "width_range": (8, 1 << 62),
                                          "height_range": (8, 64)})
    assert coreml_file.from_description(description([ranged]), path).outputs[0].shape is None
    one = image_output("map", "L008", {"type": "enumerated", "sizes": [(24, 16)]})
    assert coreml_file.from_description(description([one]), path).outputs[0].shape == (16, 24)
    # A colour image is no class map.
    colour = coreml_file.from_description(description([image_output("photo", "BGRA")]), path)
    with pytest.raises(ModelError, match="not a segmentation model: no output is an integer class map"):
        coreml_file.describe(colour, ordered=False)


# ---- what the third review pass fixed (issue "The Mac path, third pass") ---------------------


def int8_output_model(tmp_path, data_type=None):
    """The plain segmenter with its class map declared int8 (or `data_type`),
    as a newer Core ML's specs can declare it."""
    spec = cm.neural_network_segmenter()
    array_type = spec.description.output[0].type.multiArrayType
    array_type.dataType = data_type or cm.ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT8
    path = tmp_path / "int8.mlmodel"
    cm.save_spec(spec, path)
    return path


def test_int8_outputs_are_refused_at_load(tmp_path):
    path = int8_output_model(tmp_path)
    native = FakeCoreML(NETWORKS)
    with pytest.raises(ModelError, match=r"int8.mlmodel: output 'semanticPredictions' is int8, which coreseg does not "
                                         r"read: it reads int32, float16, float32 and float64 multi-arrays .* Export "
                                         r"that output as int32"):
        CoreMLSegmenter(path, native=native)
    assert native.compiled == 0  # refused before compiling
    # A compiled model has only Core ML's description, which names the type
    # too: refused at load the same way.
    compiled = Path(native.compile_model(str(path)))
    with pytest.raises(ModelError, match=r"output 'semanticPredictions' is int8, which coreseg does not read"):
        CoreMLSegmenter(compiled, native=native)
    # And the native module refuses it before running the model.
    with pytest.raises(CoreMLError, match=r"output semanticPredictions is int8, which coreseg does not read"):
        native.Model(str(compiled), 0).predict(image(), [2, 1, 0, 3], False, "image", (cm.W, cm.H),
                                               "semanticPredictions", "int32")
    assert native.models[-1].calls == []


def test_an_unknown_output_type_is_named(tmp_path):
    path = int8_output_model(tmp_path, data_type=0x20000 | 16)  # no such type in any SDK coreseg knows
    native = FakeCoreML(NETWORKS)
    compiled = Path(native.compile_model(str(path)))
    with pytest.raises(ModelError, match=r"semanticPredictions unknown \(0x20010\)"):
        CoreMLSegmenter(compiled, native=native)


def test_out_is_checked_before_the_output_shape_is_known(models):
    # A flexible model's output shape is learned from its first result; the
    # dtype is known from load and checked before Core ML runs.
    model, native = load(models["range"], size="image")
    with pytest.raises(ValueError, match=r"out has shape \(40, 60\) and dtype float32; this model's output "
                                         r"semanticPredictions at 60x40 is int32 \(its shape is learned from the "
                                         r"first result at 60x40\)"):
        model.predict(image(40, 60), out=np.zeros((40, 60), np.float32))
    with pytest.raises(ValueError, match=r"dtype >i4"):
        model.predict(image(40, 60), out=np.zeros((40, 60), ">i4"))  # equal values, other byte order
    with pytest.raises(TypeError, match="out must be a numpy array, got list"):
        model.predict(image(40, 60), out=[[0] * 60] * 40)
    unaligned = np.frombuffer(bytearray(40 * 60 * 4 + 1), np.uint8)[1:].view(np.int32).reshape(40, 60)
    with pytest.raises(ValueError, match="writable, aligned, C-contiguous"):
        model.predict(image(40, 60), out=unaligned)
    assert native.models[0].calls == []  # Core ML never ran
    seg = model.predict(image(40, 60), out=np.zeros((40, 60), np.int32))  # right dtype, shape not known yet: fine
    np.testing.assert_array_equal(seg.labels, expected(image(40, 60), (60, 40)))


def test_arrays_that_went_through_pickle_are_accepted(models):
    # multiprocessing, --jobs and Ray hand over arrays whose dtype is equal
    # to, not the same object as, numpy's own: compared by equivalence.
    import pickle

    model, native = load(models["plain"])
    rgb = image(cm.H, cm.W, seed=30)
    bgra = np.ascontiguousarray(np.dstack([rgb[..., ::-1], np.full((cm.H, cm.W), 255, np.uint8)]))
    moved = pickle.loads(pickle.dumps(bgra))
    assert moved.dtype == np.uint8 and moved.dtype is not np.dtype(np.uint8)
    out = pickle.loads(pickle.dumps(np.zeros((cm.H, cm.W), np.int32)))
    assert out.dtype is not np.dtype(np.int32)
    seg = model.predict(moved, layout="BGRA", out=out)
    assert seg.raw is out and seg.io["wrapped_input"] and native.models[0].calls[0]["wrap"]
    np.testing.assert_array_equal(seg.labels, np.argmax(rgb, axis=2))


def test_the_native_error_translator_names_coreml_error():
    # coreml_bindings.mm turns coreml::Failure into the class it imports by
    # name when translating; the name must stay importable wherever the
    # Python modules move (it once named coreseg.segmenter, since moved).
    import importlib
    import re

    source = (Path(__file__).resolve().parent.parent / "src" / "native" / "coreml" / "coreml_bindings.mm").read_text()
    assert "register_local_exception_translator" in source and "register_exception_translator(" not in source
    (module, name), = re.findall(r'py::module_::import\("([\w.]+)"\)\.attr\("(\w+)"\)', source)
    assert getattr(importlib.import_module(module), name) is CoreMLError


def test_a_segmenter_holds_its_cache_entry(models, tmp_path, monkeypatch):
    import gc

    from coreseg.running.backends import coreml_cache

    def in_use(entry):
        fd = coreml_cache._lock(coreml_cache._lock_path(entry), exclusive=True, wait=False)
        if fd is not None:
            os.close(fd)
        return fd is None

    model, native = load(models["plain"])
    entry = model.compiled_path
    assert in_use(entry)
    direct = CoreMLSegmenter(entry, native=native)  # the .mlmodelc itself, straight from the cache
    del model
    gc.collect()
    assert in_use(entry)  # still: the direct load holds it too
    del direct
    gc.collect()
    assert not in_use(entry)
    monkeypatch.setenv("CORESEG_CACHE_MAX_MODELS", "1")
    kept, _ = load(models["plain"])
    load(models["bgr"])  # compiles, and prunes what is not in use
    assert kept.compiled_path.is_dir()
    np.testing.assert_array_equal(kept.predict(image()).labels, expected(image(), (cm.W, cm.H)))
