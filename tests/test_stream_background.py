"""Segmenter.stream(background=...): each frame what replace_background
gives for it (beside the overlay), the EMA smoothing carried into the
matte so a soft edge does not flicker, a picture covered once, pooled
buffers that a held frame keeps, options passed on, bad options refused at
the call."""

import dataclasses
import importlib.util

import numpy as np
import pytest

import coreseg
from coreseg import demo, smoothing
from coreseg.frames import stream as stream_module
from coreseg.results.segmentation import Segmentation
from test_stream import assert_threads_end, clip, coreseg_threads

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                reason="the demo model runs through onnxruntime here: pip install '.[onnx]'")


@pytest.fixture(scope="module")
def model():
    return coreseg.load("demo")


@pytest.fixture(scope="module")
def images():
    return [demo.scene(5_100_000 + i, (160, 120))[0] for i in range(8)]


def picture():
    return demo.scene(5_100_100, (300, 100))[0]  # wider than the frames: covered, cropped evenly


@pytest.mark.parametrize("background", [
    "blur", {"background": "blur", "blur": 3.5, "classes": ["sky"]}, "#00FF00", (10, 20, 30),
    {"background": (200, 0, 0, 255), "classes": ["sky", "sun"], "smooth": False}, "transparent",
    {"background": "transparent", "classes": "building"}, "picture", {"background": "picture", "classes": [0]},
    {"background": "blur", "refine": True, "classes": ["sky"]}, {"background": "picture", "refine": 3},
    {"background": "transparent", "refine": True, "smooth": False},
], ids=["blur", "blur-3.5-sky", "hex", "rgb", "rgba-blocky", "transparent", "transparent-building", "picture",
        "picture-sky", "blur-refined", "picture-refined", "transparent-refined-blocky"])
@pytest.mark.parametrize("smoother", [None, "ema", "hysteresis"])
def test_each_frame_is_replace_background_of_its_segmentation(model, images, tmp_path, background, smoother):
    options = dict(background) if isinstance(background, dict) else {"background": background}
    if options["background"] == "picture":
        options["background"] = tmp_path / "p.png"
        from PIL import Image

        Image.fromarray(picture()).save(options["background"])
    frames = list(model.stream(images, smoothing=smoother, overlay=True, background=options, workers=3))
    assert [f.index for f in frames] == list(range(len(images)))
    for frame, image in zip(frames, images):
        seg = frame.segmentation  # the smoothed one: the matte follows the smoothing
        np.testing.assert_array_equal(frame.background, seg.replace_background(image, **options))
        np.testing.assert_array_equal(frame.overlay, seg.overlay(image))  # both at once, each as asked alone
    assert not coreseg_threads()


def test_a_value_is_the_background_and_true_blurs(model, images):
    (a,) = model.stream(images[:1], background="#0000FF")
    (b,) = model.stream(images[:1], background=True)
    np.testing.assert_array_equal(a.background, a.segmentation.replace_background(images[0], "#0000FF"))
    np.testing.assert_array_equal(b.background, b.segmentation.replace_background(images[0]))
    assert a.overlay is None and b.overlay is None
    (plain,) = model.stream(images[:1])
    assert plain.background is None


@pytest.mark.parametrize("refine", [False, True])
def test_ema_smoothing_steadies_the_matte(model, refine):
    """A still scene under fresh noise every frame: the unsmoothed matte's
    soft edge flickers; the EMA-smoothed stream's varies several times less,
    and it is the same foreground. Refined along each noisy frame's edges
    too (the smoothing comes first)."""
    images, truths = clip(frames=40, sigma=30, every=10_000)  # never moves: every change is flicker
    keep = {"background": "transparent", "classes": ["building", "sun"], "refine": refine}

    def mattes(smoother):
        return [f.background[..., 3].astype(np.int16) for f in model.stream(images, smoothing=smoother,
                                                                             background=keep)]

    raw, smoothed = mattes(None), mattes(smoothing.EMA(alpha=0.25, scene_cut=None))

    def flicker(ms):  # mean frame-to-frame change of alpha, after the EMA has settled
        return float(np.mean([np.abs(a - b).mean() for a, b in zip(ms[10:], ms[11:])]))

    assert flicker(raw) > 5, flicker(raw)  # the noise does make the edge flicker
    assert flicker(smoothed) * 3 <= flicker(raw), (flicker(smoothed), flicker(raw))
    ids = [demo.CLASSES.index("building"), demo.CLASSES.index("sun")]
    truth = np.isin(truths[0], ids).astype(np.int16) * 255

    def error(ms):  # mean distance from the true foreground
        return float(np.mean([np.abs(m - truth).mean() for m in ms[10:]]))

    assert error(smoothed) <= error(raw), (error(smoothed), error(raw))  # still the foreground, no worse


def test_a_picture_is_covered_once(model, images, monkeypatch):
    calls = []
    cover = stream_module.cover_picture
    monkeypatch.setattr(stream_module, "cover_picture", lambda p, size: calls.append(size) or cover(p, size))
    frames = list(model.stream(images, background=picture(), workers=3))
    assert calls == [(160, 120)]
    for frame, image in zip(frames, images):
        np.testing.assert_array_equal(frame.background, frame.segmentation.replace_background(image, picture()))
    small = [img[:60, :80].copy() for img in images[:3]]  # a new size: covered again, once
    calls.clear()
    list(model.stream(images[:2] + small, background=picture(), workers=1))
    assert calls == [(160, 120), (80, 60)]


def test_other_options_are_passed_on_to_replace_background(model, images, monkeypatch):
    """Keywords replace_background takes beyond stream's own reach it (for
    a picture too, unless matte takes them: refine goes to matte with the
    frame as its image, the picture still covered once); others are
    refused at the call."""
    seen = []
    original = Segmentation.replace_background

    def with_feather(self, image, background="blur", *, classes=None, blur=None, smooth=True, refine=False,
                     out=None, feather=None):
        seen.append(feather)
        return original(self, image, background, classes=classes, blur=blur, smooth=smooth, refine=refine,
                        out=out)

    monkeypatch.setattr(Segmentation, "replace_background", with_feather)
    for background in ("blur", picture()):
        seen.clear()
        frames = list(model.stream(images[:3], background={"background": background, "feather": 4}))
        assert seen == [4] * 3 and all(f.background is not None for f in frames)
    monkeypatch.setattr(Segmentation, "replace_background", original)
    with pytest.raises(TypeError, match="background options are .*blur.*classes.*got \\['colour'\\]"):
        model.stream([], background={"colour": "#000000"})


def test_refine_follows_each_frame_and_a_picture_is_still_covered_once(model, images, monkeypatch):
    calls = []
    cover = stream_module.cover_picture
    monkeypatch.setattr(stream_module, "cover_picture", lambda p, size: calls.append(size) or cover(p, size))
    options = {"background": picture(), "classes": ["sky"], "refine": True}
    frames = list(model.stream(images, smoothing="ema", background=options))
    assert calls == [(160, 120)]
    for frame, image in zip(frames, images):
        refined = frame.segmentation.replace_background(image, **options)
        np.testing.assert_array_equal(frame.background, refined)
        assert not np.array_equal(refined, frame.segmentation.replace_background(image, picture(), classes=["sky"]))


def test_buffers_are_reused_and_a_held_frame_is_never_written_over(model, images):
    held, kept, addresses = None, None, set()
    # One frame in flight per stage: how many arrays are alive at once is
    # then fixed by the design, not by how the threads happen to be scheduled
    # (with more in flight, the pool may forget an array and a new one can
    # land anywhere).
    for frame in model.stream(images * 4, overlay=True, background="blur", workers=1, queue=0):
        addresses.add(frame.background.__array_interface__["data"][0])
        if frame.index == 2:
            held, kept = frame.background, frame.background.copy()
    # The one drawn, the one the loop holds, the held one, and one between: not one per frame (32).
    assert len(addresses) <= 4, len(addresses)
    np.testing.assert_array_equal(held, kept)


def test_a_smoother_that_drops_the_scores_draws_as_overlay_decides(model, images):
    """overlay's smooth edges follow the segmentation it is given: a
    smoother of one's own that leaves a class map alone gets nearest
    neighbour, not an error (stream used to decide from the model)."""
    def labels_only(seg, thumb):
        return dataclasses.replace(seg, raw=None, output=None)

    for frame, image in zip(model.stream(images, smoothing=labels_only, overlay=True, background="blur"), images):
        assert frame.segmentation.scores is None
        np.testing.assert_array_equal(frame.overlay, frame.segmentation.overlay(image))
        np.testing.assert_array_equal(frame.overlay, frame.segmentation.overlay(image, smooth=False))
        np.testing.assert_array_equal(frame.background, frame.segmentation.replace_background(image))


def test_closing_early_stops_every_thread(model):
    def camera():
        rng = np.random.default_rng(1)
        while True:
            yield rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)

    frames = model.stream(camera(), smoothing="ema", overlay=True, background=picture())
    for frame in frames:
        if frame.index == 10:
            break
    frames.close()
    assert_threads_end()


def test_bad_backgrounds_are_refused_at_the_call(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        model.stream([], background=tmp_path / "nowhere.png")
    with pytest.raises(ValueError, match="#12"):
        model.stream([], background="#12")
    with pytest.raises(ValueError, match="0..255"):
        model.stream([], background=(0, 300, 0))
    with pytest.raises(ValueError, match="blur= is the radius of background='blur'"):
        model.stream([], background={"background": "#000000", "blur": 3})
    with pytest.raises(ValueError, match="radius"):
        model.stream([], background={"blur": -1})
    with pytest.raises(KeyError, match="no label 'moon'.*valid labels: sky"):
        model.stream([], background={"classes": ["moon"]})
    with pytest.raises(KeyError, match="no label 'moon'"):
        model.stream([], overlay={"classes": "moon"})
    with pytest.raises(TypeError, match="float image"):
        model.stream([], background=np.zeros((4, 4, 3), np.float32))
    # Options replace_background would only refuse at the first frame.
    with pytest.raises(ValueError, match="class id 99 is not one of the model's ids 0..7"):
        model.stream([], background={"classes": [1, 99]})
    with pytest.raises(TypeError, match="classes are names or ids, got 1.5"):
        model.stream([], background={"classes": [1.5]})
    with pytest.raises(TypeError, match="smooth= is True or False, got 'x'"):
        model.stream([], background={"smooth": "x"})
    with pytest.raises(TypeError, match="refine must be True, False or a radius in pixels, got 'x'"):
        model.stream([], background={"refine": "x"})
    with pytest.raises(ValueError, match=r"radius must be a number in \[1, MAX_REFINE_RADIUS"):
        model.stream([], background={"refine": -3})


def test_memory_is_constant_with_overlay_and_background(model):
    import tracemalloc

    image = demo.scene(5_100_200, (640, 360))[0]
    tracemalloc.start()
    try:
        peaks = []
        for frame in model.stream((image for _ in range(120)), smoothing="ema", overlay=True,
                                  background={"background": picture(), "classes": ["sky"]}):
            if frame.index % 30 == 29:
                peaks.append(tracemalloc.get_traced_memory()[1])
                tracemalloc.reset_peak()
    finally:
        tracemalloc.stop()
    # As test_stream's bound for the overlay alone: a leak of a frame-sized
    # array per frame adds 30 frames' worth per window; two images a frame
    # (overlay and background) and their scratch stay well under 60.
    assert max(peaks) - peaks[0] < 15 * image.nbytes, peaks
    assert max(peaks) < 60 * image.nbytes, peaks
