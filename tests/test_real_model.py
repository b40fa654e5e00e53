"""Proof on a real pretrained model: MediaPipe Selfie Segmentation as raw
ONNX (float NHWC in, one sigmoid channel NHWC out, no metadata), against
the masks MediaPipe's own pipeline made of the same photo."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime: pip install '.[onnx]'")
cv2 = pytest.importorskip("cv2", reason="reading MediaPipe's 16-bit masks needs OpenCV: pip install '.[groundtruth]'")

from shared_fixtures import MEDIAPIPE  # noqa: E402

import coreseg  # noqa: E402

pytestmark = pytest.mark.skipif(not MEDIAPIPE.is_dir(), reason=f"the shared MediaPipe fixtures are not at {MEDIAPIPE}")
GENERAL = MEDIAPIPE / "selfie_segmentation.onnx"
LANDSCAPE = MEDIAPIPE / "selfie_segmentation_landscape.onnx"


@pytest.fixture(scope="module")
def photo():
    from PIL import Image

    return np.asarray(Image.open(MEDIAPIPE / "astronaut.png").convert("RGB"))


def mediapipe_mask(name):
    return cv2.imread(str(MEDIAPIPE / name), cv2.IMREAD_UNCHANGED).astype(np.float64) / 65535 > 0.5


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("path, size", [(GENERAL, (256, 256)), (LANDSCAPE, (256, 144))])
def test_loads_with_no_argument(path, size):
    model = coreseg.load(path)
    assert model.input_size == size
    assert (model.input.dtype, model.input.layout, model.input.normalization) == (np.float32, "NHWC", "unit")
    # The graph ends in Sigmoid (through a Transpose): a probability, threshold 0.5.
    assert (model.output.kind, model.output.layout, model.output.activation, model.output.threshold) == \
        ("binary", "NHWC", "sigmoid", 0.5)
    assert model.labels == ["background", "foreground"]
    assert "binary NHWC probabilities (sigmoid)" in model.info.summary()


def test_person_mask_matches_mediapipe(photo):
    seg = coreseg.load(GENERAL).predict(photo)
    expected = mediapipe_mask("astronaut_mediapipe_general.png")
    for smooth in (False, True):
        full = seg.full_labels(smooth=smooth)
        assert full.shape == (512, 512) and set(np.unique(full)) == {0, 1}
        assert iou(full == 1, expected) >= 0.97, smooth
    # Smooth edges: the class changes along the object, not in 2x2 blocks.
    blocks = seg.full_labels()
    assert (blocks[::2] == blocks[1::2]).all() and not (seg.full_labels(smooth=True)[::2] ==
                                                        seg.full_labels(smooth=True)[1::2]).all()


def test_landscape_model_matches_mediapipe(photo):
    # MediaPipe downsamples without antialiasing; at 512 -> 144 rows that
    # moves the edges a little (the same model fed OpenCV's non-antialiased
    # INTER_LINEAR agrees to 0.98), so the bar here is lower.
    seg = coreseg.load(LANDSCAPE).predict(photo)
    assert iou(seg.full_labels(smooth=True) == 1, mediapipe_mask("astronaut_mediapipe_landscape.png")) >= 0.94


def test_scores_match_a_plain_onnxruntime_run(photo):
    import onnxruntime as ort

    seg = coreseg.load(GENERAL).predict(photo)
    x = coreseg.resize_image(photo, (256, 256), "RGB").astype(np.float32) / 255
    p = ort.InferenceSession(str(GENERAL)).run(None, {"input_1": x[None]})[0][0, :, :, 0]
    assert seg.scores.shape == (2, 256, 256) and seg.scores.dtype == np.float32
    np.testing.assert_allclose(seg.scores[1], p, atol=1e-5)
    np.testing.assert_allclose(seg.scores[0], 1 - p, atol=1e-5)
    np.testing.assert_allclose(seg.confidence(), np.maximum(p, 1 - p), atol=1e-5)
    np.testing.assert_array_equal(seg.labels, (p > 0.5).astype(np.int32))


def test_letterboxed_landscape_model_on_a_portrait_photo(photo):
    portrait = np.ascontiguousarray(photo[:, 60:360])  # 300x512
    seg = coreseg.load(LANDSCAPE, crop="fit").predict(portrait)
    p = seg.placement
    assert p.source == (0, 0, 300, 512) and p.canvas_size == (256, 144)
    x, y, w, h = p.target
    assert h == 144 and abs(w - 300 * 144 / 512) <= 1 and 0 < x and x + w < 256  # padded left and right
    for smooth in (False, True):
        full = seg.full_labels(smooth=smooth)
        # Nothing outside the photo: every photo pixel has a class, and the
        # map is exactly the letterbox's inside brought to the photo's size.
        assert full.shape == (512, 300) and set(np.unique(full)) <= {0, 1}
    np.testing.assert_array_equal(seg.full_labels(), coreseg.resize_labels(seg.labels[y:y + h, x:x + w], (300, 512)))
    areas = seg.areas()
    assert abs(sum(areas.values()) - 1) < 1e-12
    assert areas[1] == pytest.approx(np.mean(seg.labels[y:y + h, x:x + w] == 1))
    # Still the astronaut: it agrees with MediaPipe's mask of the same pixels.
    expected = mediapipe_mask("astronaut_mediapipe_general.png")[:, 60:360]
    assert iou(seg.full_labels(smooth=True) == 1, expected) >= 0.85
    over = seg.overlay(portrait, opacity=1.0)
    assert over.shape == portrait.shape


def test_segment_command_with_a_centre_crop(tmp_path, photo):
    from PIL import Image

    from coreseg.cli import main

    wide = np.ascontiguousarray(np.concatenate([photo, photo[:, :256]], axis=1))  # 768x512
    Image.fromarray(wide).save(tmp_path / "wide.png")
    assert main(["segment", str(LANDSCAPE), str(tmp_path / "wide.png"), "--crop", "center", "--no-legend",
                 "--out", str(tmp_path / "out")]) == 0
    labels = np.asarray(Image.open(tmp_path / "out/wide.labels.png"))
    overlay = np.asarray(Image.open(tmp_path / "out/wide.overlay.png"))
    # 768x512 into 256:144: the centre 768x432 is seen, 40 rows above and below are not.
    assert (labels[:40] == 65535).all() and (labels[-40:] == 65535).all()
    assert set(np.unique(labels[40:-40])) <= {0, 1} and (labels[40:-40] == 1).any()
    np.testing.assert_array_equal(overlay[:40], wide[:40])
    seg = coreseg.load(LANDSCAPE, crop="center").predict(wide)
    np.testing.assert_array_equal(labels.astype(np.int32)[40:-40], seg.full_labels(smooth=True)[40:-40])
