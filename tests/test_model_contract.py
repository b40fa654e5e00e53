"""The model contract (coreseg.contract) on tiny ONNX models of every common
exported layout, whose answers the tests compute; crop modes mapped back."""


import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime: pip install '.[onnx]'")
pytest.importorskip("onnx", reason="building test models needs onnx: pip install '.[onnx]'")

import onnx_models as om  # noqa: E402
from onnx import TensorProto  # noqa: E402

import coreseg  # noqa: E402
from coreseg import ModelError  # noqa: E402
from coreseg.contract import NORMALIZATIONS  # noqa: E402


@pytest.fixture
def photo():
    return np.random.default_rng(0).integers(0, 256, (37, 55, 3), np.uint8)


def fed(photo, size=(om.W, om.H), layout="RGB"):
    return coreseg.resize_image(photo, size, layout).astype(np.float32) / np.float32(255)


def softmax(x, axis=0):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def test_float_nhwc_scores_layout_from_the_shapes(tmp_path, photo):
    model = coreseg.load(om.save(om.identity_nhwc(), tmp_path / "m.onnx"))
    # [1, 12, 20, 3]: as NCHW its "spatial" axes would be 20x3, which is not
    # the 20x12 input over one stride; as NHWC they are the input's.
    assert (model.input.layout, model.output.layout, model.output.activation) == ("NHWC", "NHWC", "logits")
    seg = model.predict(photo)
    x = fed(photo)
    np.testing.assert_array_equal(seg.labels, np.argmax(x, axis=2))
    np.testing.assert_allclose(seg.scores, softmax(x.transpose(2, 0, 1)), rtol=1e-6)
    np.testing.assert_allclose(seg.confidence(), softmax(x, axis=2).max(axis=2), rtol=1e-6)


def test_float16_nhwc(tmp_path, photo):
    model = coreseg.load(om.save(om.identity_nhwc(dtype=TensorProto.FLOAT16), tmp_path / "m.onnx"))
    x = fed(photo).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(model.predict(photo).labels, np.argmax(x, axis=2))


def test_labels_decide_the_layout_and_nchw_logits(tmp_path, photo):
    model = coreseg.load(om.save(om.logits_identity(metadata=om.labels_meta(["r", "g", "b"])), tmp_path / "m.onnx"))
    assert model.output.layout == "NCHW" and model.labels == ["r", "g", "b"]
    seg = model.predict(photo)
    np.testing.assert_allclose(seg.scores, softmax(fed(photo).transpose(2, 0, 1)), rtol=1e-6)


@pytest.mark.parametrize("preset", ["unit", "symmetric", "imagenet"])
def test_normalization_presets_at_load_and_in_metadata(tmp_path, photo, preset):
    mean, std = (np.float32(v) for v in NORMALIZATIONS[preset])
    expected = (fed(photo) - mean) / std
    by_arg = coreseg.load(om.save(om.logits_identity(), tmp_path / "a.onnx"), mean=preset)
    meta = om.save(om.logits_identity(metadata={"coreseg.input.normalization": preset}), tmp_path / "b.onnx")
    for model in (by_arg, coreseg.load(meta)):
        assert model.input.normalization == preset
        feed = model._preprocess(photo, model._place(photo))
        np.testing.assert_array_equal(feed[0].transpose(1, 2, 0), expected)
        np.testing.assert_array_equal(model.predict(photo).labels, np.argmax(expected, axis=2))


def test_explicit_mean_std_override_metadata(tmp_path, photo):
    meta = {"coreseg.input.mean": "[0.9, 0.1, 0.5]", "coreseg.input.std": "[0.1, 0.5, 0.2]"}
    path = om.save(om.logits_identity(metadata=meta), tmp_path / "m.onnx")
    model = coreseg.load(path, mean=[0.2, 0.2, 0.2], std=0.25)
    assert model.input.normalization == "custom"
    np.testing.assert_array_equal(model.input.mean, np.float32([0.2] * 3))
    np.testing.assert_array_equal(model.input.std, np.float32([0.25] * 3))
    with pytest.raises(ValueError, match="mean='imagenet' is a preset and sets std too"):
        coreseg.load(path, mean="imagenet", std=[1, 1, 1])
    with pytest.raises(ValueError, match="mean must be 3 numbers or a preset"):
        coreseg.load(path, mean="imagenette")


def test_int64_class_map_with_unit_axes(tmp_path, photo):
    model = coreseg.load(om.save(om.labels_with_unit_axes(), tmp_path / "m.onnx"))
    assert model.output.kind == "labels"
    seg = model.predict(photo)
    assert seg.labels.shape == (om.H, om.W) and seg.scores is None
    np.testing.assert_array_equal(seg.labels, np.argmax(coreseg.resize_image(photo, (om.W, om.H), "RGB"), axis=2))
    with pytest.raises(ValueError, match="confidence needs per-class scores"):
        seg.confidence()
    with pytest.raises(ValueError, match=r"full_labels\(smooth=True\) needs per-class scores"):
        seg.full_labels(smooth=True)


def test_class_map_ids_beyond_int32_are_refused():
    from coreseg.contract import class_map

    assert class_map(np.array([[[1]], [[2]]], np.int64).reshape(1, 2, 1, 1)).tolist() == [[1], [2]]
    with pytest.raises(ValueError, match="class id 4294967296, which does not fit int32"):
        class_map(np.array([[0, 1 << 32]], np.int64))
    with pytest.raises(ValueError, match="not a class map"):
        class_map(np.zeros((2, 3, 4), np.int64))


def test_several_outputs_chosen_by_name(tmp_path, photo):
    path = om.save(om.scores_and_labels(), tmp_path / "m.onnx")
    default = coreseg.load(path)
    assert default.output.name == "labels" and default.output.kind == "labels"  # a class map first
    by_name = coreseg.load(path, output="scores")
    assert by_name.output.kind == "scores"
    np.testing.assert_array_equal(default.predict(photo).labels, by_name.predict(photo).labels)
    assert by_name.predict(photo).scores.shape == (3, om.H, om.W)
    with pytest.raises(ModelError, match="no output named 'probs'; the outputs are: scores float32"):
        coreseg.load(path, output="probs")


def test_dynamic_size_and_size_argument(tmp_path, photo):
    path = om.save(om.logits_identity(dynamic=True), tmp_path / "m.onnx")
    # Any size: the image's, sides rounded to multiples of 32 (55x37 -> 64x32) ...
    model = coreseg.load(path)
    assert model.predict(photo).labels.shape == (32, 64)
    assert model.info.sources["size_rule"] == "assumed" and "multiples of 32" in model.info.input_rule
    assert coreseg.load(path, multiple=8).predict(photo).labels.shape == (40, 56)
    assert coreseg.load(path, max_side=32, multiple=16).predict(photo).labels.shape == (16, 32)
    # ... or exactly the image's own.
    assert coreseg.load(path, size="image").predict(photo).labels.shape == photo.shape[:2]
    sized = coreseg.load(path, size=(24, 16))
    seg = sized.predict(photo)
    assert seg.labels.shape == (16, 24)
    np.testing.assert_array_equal(seg.labels, np.argmax(fed(photo, (24, 16)), axis=2))
    with pytest.raises(ValueError, match=r"size=\(24, 16\), but fixed.onnx takes 20x12 images only"):
        coreseg.load(om.save(om.logits_identity(), tmp_path / "fixed.onnx"), size=(24, 16))
    # A letterbox in the rounded size maps back to the image exactly.
    fit = coreseg.load(path, crop="fit").predict(photo)
    assert fit.full_labels().shape == photo.shape[:2] and fit.labels.shape == (32, 64)
    with pytest.raises(ValueError, match="multiple and max_side apply to models that take any input size"):
        coreseg.load(om.save(om.logits_identity(), tmp_path / "fixed.onnx"), multiple=32)


def test_bgr_float_input(tmp_path, photo):
    model = coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), color_layout="BGR")
    np.testing.assert_array_equal(model.predict(photo).labels, np.argmax(fed(photo, layout="BGR"), axis=2))


def test_binary_outputs(tmp_path, photo):
    red = fed(photo)[..., 0] - np.float32(0.5)
    sigmoid = coreseg.load(om.save(om.binary_channel("Sigmoid"), tmp_path / "s.onnx"))
    assert (sigmoid.output.kind, sigmoid.output.activation, sigmoid.output.threshold) == ("binary", "sigmoid", 0.5)
    seg = sigmoid.predict(photo)
    p = 1 / (1 + np.exp(-red))
    np.testing.assert_array_equal(seg.labels, (p > 0.5).astype(np.int32))
    np.testing.assert_allclose(seg.scores, np.stack([1 - p, p]), atol=1e-6)

    raw = om.save(om.binary_channel(), tmp_path / "r.onnx")
    with pytest.raises(ModelError, match="single channel .* pass output_activation='sigmoid'"):
        coreseg.load(raw)
    logits = coreseg.load(raw, output_activation="logits")
    assert logits.output.threshold == 0.0
    seg = logits.predict(photo)
    np.testing.assert_array_equal(seg.labels, (red > 0).astype(np.int32))
    np.testing.assert_allclose(seg.scores[1], p, atol=1e-6)
    # A threshold in the output's own units; smooth upsampling honours it.
    strict = coreseg.load(raw, output_activation="logits", threshold=0.2).predict(photo)
    np.testing.assert_array_equal(strict.labels, (red > 0.2).astype(np.int32))
    at_model_size = coreseg.upsample_argmax(strict.output.decision_scores(strict.scores), (om.W, om.H))
    np.testing.assert_array_equal(at_model_size, strict.labels)
    assert (strict.full_labels(smooth=True) == 1).mean() < (seg.full_labels(smooth=True) == 1).mean()
    meta = coreseg.load(om.save(om.binary_channel(metadata={"coreseg.output.activation": "sigmoid"}), tmp_path / "m.onnx"))
    assert meta.output.activation == "sigmoid"
    with pytest.raises(ModelError, match="binary .* but the model has 3 labels"):
        coreseg.load(raw, output_activation="logits", labels=["a", "b", "c"])


def test_smooth_full_labels_at_the_photo_size(tmp_path, photo):
    model = coreseg.load(om.save(om.quarter_resolution_logits(), tmp_path / "m.onnx"))
    seg = model.predict(photo)
    assert seg.labels.shape == (4, 8)
    smooth = seg.full_labels(smooth=True)
    np.testing.assert_array_equal(smooth, coreseg.upsample_argmax(seg.scores, (55, 37)))
    np.testing.assert_array_equal(seg.full_labels(), coreseg.resize_labels(seg.labels, (55, 37)))
    over = seg.overlay(photo, smooth=True, opacity=1.0)
    np.testing.assert_array_equal(over, coreseg.composite(photo, smooth, seg.palette, 1.0))


def test_labels_from_classes_metadata_and_load(tmp_path):
    hf = om.save(om.logits_identity(metadata={"classes": "sky, tree,road"}), tmp_path / "hf.onnx")
    assert coreseg.load(hf).labels == ["sky", "tree", "road"]
    assert coreseg.inspect(hf).labels == ["sky", "tree", "road"]
    assert coreseg.load(hf, labels=["a", "b", "c"]).labels == ["a", "b", "c"]
    with pytest.raises(ModelError, match="2 labels for 3 score channels"):
        coreseg.load(hf, labels=["a", "b"])
    bad = om.save(om.logits_identity(metadata={"classes": "sky,,road"}), tmp_path / "bad.onnx")
    with pytest.raises(ModelError, match="metadata 'classes' must be comma-separated class names"):
        coreseg.load(bad)


def test_ambiguous_shapes_say_how_to_resolve_them(tmp_path):
    cube = om.save(om.declared([1, 3, 3, 3], [1, 3, 3, 3]), tmp_path / "cube.onnx")
    with pytest.raises(ModelError, match=r"ambiguous: axis 1 and axis 3 both have 3 .* layout='NHWC'"):
        coreseg.inspect(cube)
    with pytest.raises(ModelError, match=r"cannot tell the class axis .* output_layout='NCHW'"):
        coreseg.inspect(om.save(om.declared(["n", 3, "h", "w"], ["n", 5, 7, 5]), tmp_path / "o.onnx"))
    model = coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), layout="NCHW", output_layout="NCHW")
    assert model.input.layout == "NCHW"
    with pytest.raises(ModelError, match="layout='NHWC' puts the colour channels on axis 3"):
        coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), layout="NHWC")
    with pytest.raises(ValueError, match="output_activation must be one of"):
        coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), output_activation="relu")
    with pytest.raises(ValueError, match="threshold applies to single-channel and multi-label .sigmoid. outputs"):
        coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), threshold=0.3)
    with pytest.raises(ValueError, match="crop must be one of fill, fit, center"):
        coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), crop="stretch")


@pytest.mark.parametrize("size", [(55, 37), (20, 60), (32, 16)])
def test_crop_modes_map_back_exactly(tmp_path, size):
    rng = np.random.default_rng(1)
    photo = rng.integers(0, 256, (size[1], size[0], 3), np.uint8)
    path = om.save(om.quarter_resolution_logits(), tmp_path / "m.onnx")  # 32x16 in, 8x4 out
    for crop in ("fill", "fit", "center"):
        seg = coreseg.load(path, crop=crop).predict(photo)
        full = seg.full_labels()
        smooth = seg.full_labels(smooth=True)
        assert full.shape == smooth.shape == (size[1], size[0])
        p = seg.placement
        if crop == "fill" or size == (32, 16):
            assert p is None or p.source == (0, 0) + size
            assert (full >= 0).all()
            continue
        sx, sy, sw, sh = p.source
        x, y, w, h = p.output_rect((8, 4))  # whole output pixels: the stride is respected
        inside = np.zeros(full.shape, bool)
        inside[sy:sy + sh, sx:sx + sw] = True
        assert (full[~inside] == -1).all() and (smooth[~inside] == -1).all()
        np.testing.assert_array_equal(full[inside].reshape(sh, sw),
                                      coreseg.resize_labels(seg.labels[y:y + h, x:x + w], (sw, sh)))
        np.testing.assert_array_equal(smooth[inside].reshape(sh, sw),
                                      coreseg.upsample_argmax(seg.scores[:, y:y + h, x:x + w], (sw, sh)))
        if crop == "fit":
            assert p.source == (0, 0) + size and (full >= 0).all()
            assert p.target[0] % 4 == 0 and p.target[2] % 4 == 0 and p.target[1] % 4 == 0
        else:
            assert p.target == (0, 0, 32, 16) and (~inside).any()
        over = seg.overlay(photo, opacity=1.0)
        np.testing.assert_array_equal(over[~inside], photo[~inside])  # never seen: untouched
        areas = seg.areas()
        assert abs(sum(areas.values()) - 1) < 1e-12


def test_center_crop_feeds_the_centre(tmp_path):
    photo = np.zeros((20, 60, 3), np.uint8)
    photo[:, 20:40] = 255  # the middle third is white
    model = coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), crop="center")
    p = model._place(photo)
    assert p.source == (13, 0, 33, 20)  # 20 rows at the model's 20:12 aspect, centred
    feed = model._preprocess(photo, p)
    assert feed.shape == (1, 3, om.H, om.W)
    np.testing.assert_array_equal(feed[0], fed(photo[:, 13:46]).transpose(2, 0, 1))


def test_reading_model_files_imports_no_backend(tmp_path):
    import subprocess
    import sys

    path = om.save(om.logits_identity(metadata=om.labels_meta(["a", "b", "c"])), tmp_path / "m.onnx")
    code = ("import sys, coreseg; info = coreseg.inspect(sys.argv[1]); assert info.labels == ['a', 'b', 'c']; "
            "loaded = [m for m in sys.modules if m.startswith('coreseg.running.backends') or m == 'onnxruntime']; "
            "assert not loaded, loaded")
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
