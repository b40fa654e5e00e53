"""The ONNX Runtime backend on tiny models whose answer the test computes."""

import json
import sys

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime: pip install '.[onnx]'")
pytest.importorskip("onnx", reason="building test models needs onnx: pip install '.[onnx]'")

import onnx_models as om  # noqa: E402

import coreseg  # noqa: E402
from coreseg import ModelError  # noqa: E402


@pytest.fixture
def photo():
    return np.random.default_rng(0).integers(0, 256, (37, 55, 3), np.uint8)


def test_uint8_nhwc_int32_labels(tmp_path, photo):
    path = om.save(om.argmax_nhwc_uint8(om.labels_meta(["red", "green", "blue"], ["#FF0000", "#00FF00", "#0000FF"])),
                   tmp_path / "m.onnx")
    model = coreseg.load(path)
    assert model.backend == "onnx" and model.input_size == (om.W, om.H)
    assert model.labels == ["red", "green", "blue"]
    assert model.palette()[:, :3].tolist() == [[255, 0, 0], [0, 255, 0], [0, 0, 255]]
    seg = model.predict(photo)
    expected = np.argmax(coreseg.resize_image(photo, (om.W, om.H), "RGB"), axis=2)
    np.testing.assert_array_equal(seg.labels, expected)
    assert seg.labels.dtype == np.int32 and seg.image_size == (55, 37)
    assert set(seg.timings) == {"preprocess", "inference", "postprocess"}
    assert model.label_index("blue") == 2


def test_uint8_nchw_int64_labels(tmp_path, photo):
    model = coreseg.load(om.save(om.argmax_nchw_uint8_int64(), tmp_path / "m.onnx"))
    seg = model.predict(photo)
    expected = np.argmax(coreseg.resize_image(photo, (om.W, om.H), "RGB"), axis=2)
    np.testing.assert_array_equal(seg.labels, expected)
    assert seg.labels.dtype == np.int32 and model.labels is None


def test_float_input_with_mean_std_and_logits(tmp_path, photo):
    mean, std = [0.9, 0.1, 0.5], [0.1, 0.5, 0.2]
    meta = {"coreseg.input.mean": json.dumps(mean), "coreseg.input.std": json.dumps(std)}
    model = coreseg.load(om.save(om.logits_identity(metadata=meta), tmp_path / "m.onnx"))
    seg = model.predict(photo)
    rgb = coreseg.resize_image(photo, (om.W, om.H), "RGB").astype(np.float32)
    normalised = (rgb / 255 - np.float32(mean)) / np.float32(std)
    np.testing.assert_array_equal(seg.labels, np.argmax(normalised, axis=2))


def test_bgr_models_get_bgr(tmp_path, photo):
    model = coreseg.load(om.save(om.argmax_nhwc_uint8({"coreseg.input.color_layout": "BGR"}), tmp_path / "m.onnx"))
    expected = np.argmax(coreseg.resize_image(photo, (om.W, om.H), "BGR"), axis=2)
    np.testing.assert_array_equal(model.predict(photo).labels, expected)


def test_float16_logits_and_dynamic_size(tmp_path, photo):
    from onnx import TensorProto

    model = coreseg.load(om.save(om.logits_identity(TensorProto.FLOAT, TensorProto.FLOAT16, dynamic=True),
                                 tmp_path / "m.onnx"), size="image")
    assert model.input_size is None  # fed at the image's own size
    seg = model.predict(photo)
    assert seg.labels.shape == photo.shape[:2]
    rgb = (photo.astype(np.float32) / 255).astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(seg.labels, np.argmax(rgb, axis=2))


def test_predict_batch_matches_predict(tmp_path):
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, (30 + i, 40, 3), np.uint8) for i in range(3)]
    from onnx import TensorProto

    dynamic_batch = om.logits_identity(TensorProto.FLOAT)
    dynamic_batch.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "N"
    dynamic_batch.graph.output[0].type.tensor_type.shape.dim[0].dim_param = "N"
    model = coreseg.load(om.save(dynamic_batch, tmp_path / "m.onnx"))
    batch = model.predict_batch(images)
    assert len(batch) == 3
    for im, seg in zip(images, batch):
        np.testing.assert_array_equal(seg.labels, model.predict(im).labels)
        assert seg.image_size == (im.shape[1], im.shape[0])


def test_images_as_pil_and_path(tmp_path, photo):
    from PIL import Image

    model = coreseg.load(om.save(om.argmax_nhwc_uint8(), tmp_path / "m.onnx"))
    Image.fromarray(photo).save(tmp_path / "p.png")
    expected = model.predict(photo).labels
    np.testing.assert_array_equal(model.predict(Image.fromarray(photo)).labels, expected)
    np.testing.assert_array_equal(model.predict(tmp_path / "p.png").labels, expected)
    np.testing.assert_array_equal(model.predict(str(tmp_path / "p.png")).labels, expected)
    with pytest.raises(FileNotFoundError, match="no such image file"):
        model.predict(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="not a readable image"):
        model.predict(tmp_path / "bad.png")
    with pytest.raises(TypeError, match=r"image is a float image \(float32\); coreseg takes uint8 pixels"):
        model.predict(photo.astype(np.float32))
    with pytest.raises(TypeError, match="image must have dtype uint8, got uint16"):
        model.predict(photo.astype(np.uint16))


def test_segmentation_helpers(tmp_path, photo):
    model = coreseg.load(om.save(om.argmax_nhwc_uint8(om.labels_meta(["r", "g", "b"])), tmp_path / "m.onnx"))
    seg = model.predict(photo)
    full = seg.full_labels()
    np.testing.assert_array_equal(full, coreseg.resize_labels(seg.labels, (55, 37)))
    areas = seg.areas()
    assert abs(sum(areas.values()) - 1) < 1e-9
    assert all(areas[i] == np.mean(seg.labels == i) for i in areas)
    # classes=: drawn alone in the highlight colour (magenta for one class),
    # outlined alone, as the command line's --label does.
    only_g = seg.overlay(photo, opacity=1.0, classes=["g"], outline=(0, 0, 0, 255), smooth=False)
    just_g = (full == 1).astype(np.int32)
    highlight = np.array([[0, 0, 0, 0], [255, 0, 255, 255]], np.uint8)
    np.testing.assert_array_equal(only_g, coreseg.composite(photo, just_g, highlight, 1.0, (0, 0, 0, 255)))
    two = seg.overlay(photo, opacity=1.0, classes=["g", "b"], smooth=False)
    own = np.stack([[0, 0, 0, 0], seg.palette[1], seg.palette[2]]).astype(np.uint8)
    np.testing.assert_array_equal(two, coreseg.composite(photo, np.where(full == 2, 2, full == 1).astype(np.int32), own, 1.0))
    # A class map's mask: that class, at the image's resolution or the model's.
    np.testing.assert_array_equal(seg.mask("b"), full == 2)
    np.testing.assert_array_equal(seg.mask(2, smooth=False), seg.labels == 2)
    with pytest.raises(KeyError, match="unknown label 'sky'; valid labels: r, g, b"):
        seg.overlay(photo, classes=["sky"])


def test_annotate_onnx_round_trip(tmp_path):
    src = om.save(om.argmax_nhwc_uint8({"other.key": "kept"}), tmp_path / "m.onnx")
    before = src.read_bytes()
    out = tmp_path / "annotated.onnx"
    coreseg.annotate(src, ["a", "b", "c"], out, colors=["#010203", "#040506", "#070809"])
    assert src.read_bytes() == before
    info = coreseg.inspect(out)
    assert info.labels == ["a", "b", "c"] and info.colors[:, :3].tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert info.preview_type == "imageSegmenter" and info.user_defined["other.key"] == "kept"
    with pytest.raises(ModelError, match="exists; pass force=True"):
        coreseg.annotate(src, ["x"], out)


@pytest.mark.parametrize("build, message", [
    (om.two_inputs, r"needs exactly one image input, and has: a float32 \[1, 3, 12, 20\], b float32"),
    (om.five_channel_input, r"has no axis of 3 colour channels"),
    (om.vector_output, r"no output is an integer class map or float scores .* the outputs are: scores float32 \[1, 3\]"),
])
def test_not_segmentation_models(tmp_path, build, message):
    with pytest.raises(ModelError, match=message):
        coreseg.load(om.save(build(), tmp_path / "m.onnx"))


def test_bad_onnx_files_and_metadata(tmp_path):
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x01garbage")
    with pytest.raises(ModelError, match="corrupt.onnx: not a readable ONNX model"):
        coreseg.load(tmp_path / "corrupt.onnx")
    with pytest.raises(ModelError, match="no such file"):
        coreseg.load(tmp_path / "missing.onnx")
    bad_std = om.logits_identity(metadata={"coreseg.input.std": "[1, 0, 1]"})
    with pytest.raises(ModelError, match="coreseg.input.std must not contain 0"):
        coreseg.load(om.save(bad_std, tmp_path / "s.onnx"))
    bad_mean = om.logits_identity(metadata={"coreseg.input.mean": "[0.5, 1]"})
    with pytest.raises(ModelError, match=r"metadata coreseg.input.mean must be 3 numbers on the 0..1 scale"):
        coreseg.load(om.save(bad_mean, tmp_path / "m.onnx"))
    bad_params = om.argmax_nhwc_uint8({"com.apple.coreml.model.preview.params": "{nope"})
    with pytest.raises(ModelError, match="preview.params is not JSON"):
        coreseg.load(om.save(bad_params, tmp_path / "p.onnx"))
    wrong_count = om.logits_identity(metadata=om.labels_meta(["a", "b"]))
    with pytest.raises(ModelError, match="2 labels for 3 score channels"):
        coreseg.load(om.save(wrong_count, tmp_path / "c.onnx"))


def test_missing_onnxruntime_names_the_extra(tmp_path, monkeypatch):
    path = om.save(om.argmax_nhwc_uint8(), tmp_path / "m.onnx")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match=r"pip install 'coreseg\[onnx\]'"):
        coreseg.load(path)


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="backend must be"):
        coreseg.load("demo", backend="tflite")
    with pytest.raises(ValueError, match="compute_units must be one of all, cpu, cpu_gpu, cpu_ne"):
        coreseg.load("demo", compute_units="gpu")
    (tmp_path / "m.tflite").write_bytes(b"")
    with pytest.raises(ModelError, match=r"cannot load a '.tflite' file"):
        coreseg.load(tmp_path / "m.tflite")


@pytest.mark.skipif(sys.platform == "darwin", reason="on macOS Core ML models can run")
def test_core_ml_models_say_they_need_macos():
    from coreseg import demo

    with pytest.raises(coreseg.BackendUnavailableError, match="Core ML runs on macOS 13 or later only"):
        coreseg.load(demo.model_path("mlpackage"))


def test_sixteen_bit_greyscale_and_exif_read_alike(tmp_path):
    from PIL import Image

    from coreseg.files.images import as_image

    ramp = (np.arange(12 * 20, dtype=np.uint32).reshape(12, 20) * 273).astype(np.uint16)  # 0..65247
    Image.fromarray(ramp).save(tmp_path / "grey16.png")
    opened = Image.open(tmp_path / "grey16.png")
    assert opened.mode.startswith("I")
    expected = np.repeat(((ramp.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)[..., None], 3, axis=2)
    np.testing.assert_array_equal(as_image(tmp_path / "grey16.png"), expected)  # not all white
    np.testing.assert_array_equal(as_image(opened), expected)
    assert expected.max() == 254 and expected.min() == 0
    # EXIF orientation 6 (rotate 90 clockwise): a path and an opened image agree.
    rgb = np.random.default_rng(0).integers(0, 256, (12, 20, 3), np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(tmp_path / "rot.jpg", exif=exif, quality=100)
    from_path = as_image(tmp_path / "rot.jpg")
    assert from_path.shape == (20, 12, 3)
    np.testing.assert_array_equal(as_image(Image.open(tmp_path / "rot.jpg")), from_path)
    with pytest.raises(ValueError, match="mode F"):
        as_image(Image.fromarray(np.zeros((2, 2), np.float32)))


def test_session_options_are_set_deliberately():
    import onnxruntime as ort

    from coreseg.running.backends.onnx import usable_cores

    options = coreseg.load("demo").session.get_session_options()
    # Threads given explicitly (ONNX Runtime pins its workers when left at 0), no spinning after a run.
    assert options.intra_op_num_threads == usable_cores() and options.inter_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert coreseg.load("demo", threads=1).session.get_session_options().intra_op_num_threads == 1
    mine = ort.SessionOptions()
    mine.intra_op_num_threads = 3
    model = coreseg.load("demo", session_options=mine)
    assert model.session.get_session_options().intra_op_num_threads == 3
    assert model._stream_view(2) is model  # the caller's options are kept for streams too
    with pytest.raises(ValueError, match="session options"):
        coreseg.load("demo", threads=2, session_options=mine)


def test_streams_share_the_cores_among_frames():
    from coreseg.running.backends.onnx import usable_cores

    model = coreseg.load("demo")
    view = model._stream_view(2)
    assert view is not model and view.session is not model.session
    assert view.session.get_session_options().intra_op_num_threads == max(1, usable_cores() // 2)
    assert model._stream_view(2) is view  # made once
    assert model._stream_view(1) is model  # one frame at a time: every core for it
    threaded = coreseg.load("demo", threads=2)
    assert threaded._stream_view(2) is threaded  # the caller chose the threads
