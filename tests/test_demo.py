"""The generated scenes and the bundled demo model."""

import numpy as np
import pytest

import coreseg
from coreseg.running import loader
from coreseg import demo


def test_scenes_are_deterministic_and_varied():
    a_img, a_lab = demo.scene(5, (96, 64))
    b_img, b_lab = demo.scene(5, (96, 64))
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)
    assert a_img.shape == (64, 96, 3) and a_img.dtype == np.uint8
    assert a_lab.shape == (64, 96) and a_lab.dtype == np.int32
    assert not np.array_equal(a_img, demo.scene(6, (96, 64))[0])
    seen = set()
    for seed in range(40):
        seen |= set(np.unique(demo.scene(seed, (96, 64))[1]).tolist())
    assert seen == set(range(len(demo.CLASSES)))  # every class occurs
    with pytest.raises(ValueError, match="size must be at least"):
        demo.scene(0, (8, 8))


def test_bundled_models_are_small_and_annotated():
    onnx_path, ml_path = demo.model_path("onnx"), demo.model_path("mlpackage")
    assert onnx_path.stat().st_size < 5e6
    assert sum(f.stat().st_size for f in ml_path.rglob("*") if f.is_file()) < 5e6
    pytest.importorskip("coremltools", reason="coremltools has no wheel for this platform")
    info = coreseg.inspect(ml_path)
    assert info.labels == demo.CLASSES and info.preview_type == "imageSegmenter"
    assert ["#" + bytes(c[:3]).hex().upper() for c in info.colors] == demo.COLORS
    # The ONNX demo's twin: float logits [1, C, h, w], so scores, smooth
    # edges and EMA smoothing behave the same on both backends.
    onnx_info = coreseg.inspect(onnx_path)
    assert info.input_size == demo.INPUT_SIZE == onnx_info.input_size
    assert (info.output_name, info.output_kind, info.output_layout, info.output_activation) == (
        "logits", "scores", "NCHW", "logits") == (onnx_info.output_name, onnx_info.output_kind,
                                                  onnx_info.output_layout, onnx_info.output_activation)
    assert info.output_shape == onnx_info.output_shape == (1, len(demo.CLASSES), demo.INPUT_SIZE[1], demo.INPUT_SIZE[0])
    assert info.output_dtype == "float16" and info.assumed == [] and onnx_info.labels == info.labels


def test_demo_model_segments_unseen_scenes():
    pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime: pip install '.[onnx]'")
    from coreseg.metrics import confusion_matrix, mean_iou

    model = coreseg.load("demo")
    assert model.labels == demo.CLASSES
    cm = np.zeros((8, 8), np.int64)
    for seed in range(demo.TRAINING_SEEDS + 500, demo.TRAINING_SEEDS + 530):
        image, truth = demo.scene(seed, (320, 240))
        cm += confusion_matrix(truth, model.predict(image).full_labels(), 8)
    assert mean_iou(cm) > 0.85


@pytest.mark.skipif(not loader._coreml_available(), reason="Core ML runs only on macOS (or CORESEG_FAKE_COREML=1)")
def test_core_ml_and_onnx_demo_models_agree():
    onnx_model = coreseg.load("demo", backend="onnx")
    coreml_model = coreseg.load("demo", backend="coreml")
    for seed in range(demo.TRAINING_SEEDS + 700, demo.TRAINING_SEEDS + 705):
        image, _ = demo.scene(seed, demo.INPUT_SIZE)
        agree = np.mean(onnx_model.predict(image).labels == coreml_model.predict(image).labels)
        assert agree >= 0.99
