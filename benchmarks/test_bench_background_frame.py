"""The whole background-blur frame, as a video call runs it, with the real
MediaPipe Selfie model at 1280x720 and 1920x1080:

- coreseg: ``predict`` + ``replace_background(frame, "blur", out=...)``
  (a soft matte from the scores, the blur and the blend, all native);
- the loop users write by hand today, as MediaPipe's own selfie example
  does: ``predict`` + ``full_labels(smooth=True)`` (the class map at the
  frame's resolution) + ``cv2.GaussianBlur(frame, (55, 55), 0)`` +
  ``np.where(mask, frame, blurred)``: a hard, stair-stepped edge;
- the floor: ``predict`` alone, and ``predict`` + a memcpy of the frame
  (the model's time is the floor; everything around it should cost about
  one pass over the pixels).

extra_info carries frames per second; the ratio column is time per frame
against coreseg's."""

import os
from pathlib import Path

import numpy as np
import pytest

import coreseg

cv2 = pytest.importorskip("cv2", reason="OpenCV is in the bench extra: pip install '.[bench]'")
pytest.importorskip("onnxruntime", reason="the selfie model runs through onnxruntime here: pip install '.[onnx]'")

SHARED = Path(os.environ.get("CORESEG_SHARED", Path(__file__).resolve().parents[2] / "shared"))
MEDIAPIPE = SHARED / "fixtures/mediapipe-selfie"
SIZES = {"720p": (1280, 720), "1080p": (1920, 1080)}


@pytest.fixture(scope="module")
def model():
    if not (MEDIAPIPE / "selfie_segmentation.onnx").is_file():
        pytest.fail(f"the shared MediaPipe fixtures are not at {MEDIAPIPE} (set CORESEG_SHARED)")
    return coreseg.load(MEDIAPIPE / "selfie_segmentation.onnx", mean="unit")  # MediaPipe feeds it 0..1


def _frame(size):
    """The astronaut photo (a person, an edge worth getting right) at a
    video size, covering it as a camera's frame would."""
    photo = coreseg.read_image(MEDIAPIPE / "astronaut.png")[..., :3]
    w, h = size
    scale = max(w / photo.shape[1], h / photo.shape[0])
    cw, ch = round(w / scale), round(h / scale)
    x, y = (photo.shape[1] - cw) // 2, (photo.shape[0] - ch) // 2
    return coreseg.resize_image(np.ascontiguousarray(photo[y : y + ch, x : x + cw]), size, "RGB")


def _loops(model, frame):
    out = np.empty_like(frame)

    def ours():
        return model.predict(frame).replace_background(frame, "blur", out=out)

    def by_hand():  # MediaPipe's selfie example, over coreseg's predict
        labels = model.predict(frame).full_labels(smooth=True)
        blurred = cv2.GaussianBlur(frame, (55, 55), 0)
        return np.where((labels > 0)[..., None], frame, blurred)

    def floor():
        model.predict(frame)
        np.copyto(out, frame)

    return {"coreseg": ours, "hand_written_loop": by_hand, "predict": lambda: model.predict(frame),
            "predict_plus_memcpy": floor}


@pytest.mark.parametrize("loop", ["coreseg", "hand_written_loop", "predict", "predict_plus_memcpy"])
@pytest.mark.parametrize("size", SIZES)
def test_background_blur_frame(benchmark, model, size, loop):
    frame = _frame(SIZES[size])
    benchmark.group = f"background blur, whole frame {SIZES[size][0]}x{SIZES[size][1]}: selfie model"
    fn = _loops(model, frame)[loop]
    fn()  # warm the session and the buffers
    benchmark.pedantic(fn, rounds=20, iterations=1, warmup_rounds=2)
    if benchmark.stats is not None:  # None with --benchmark-disable (CI runs each benchmark once, as a test)
        benchmark.extra_info["frames_per_s"] = round(1 / benchmark.stats.stats.median, 1)


def test_the_loops_make_the_same_picture_away_from_the_edge(model):
    """What is timed is comparable: both keep the person and blur the rest;
    they differ at the edge (soft against stair-stepped) and in the blur."""
    frame = _frame(SIZES["720p"])
    loops = _loops(model, frame)
    ours, theirs = loops["coreseg"]().copy(), loops["hand_written_loop"]()
    person = model.predict(frame).matte() == 255
    assert person.mean() > 0.1  # the astronaut is there
    np.testing.assert_array_equal(ours[person], frame[person])
    np.testing.assert_array_equal(theirs[person], frame[person])
    background = model.predict(frame).matte() == 0
    assert np.abs(ours[background].astype(int) - frame[background]).mean() > 2  # blurred, not kept
