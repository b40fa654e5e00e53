"""Segmenter.stream with real sources: a camera that refills one buffer gets
every frame segmented from its own image; closing returns while a source
is stalled, and what the source hands over afterwards is never touched."""

import importlib.util
import threading

import numpy as np
import pytest

import coreseg
from coreseg import demo

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                reason="the demo model runs through onnxruntime here: pip install '.[onnx]'")

HANG = 120  # seconds: only a hang (close waiting for the source) gets near this


@pytest.fixture(scope="module")
def model():
    return coreseg.load("demo")


def coreseg_threads():
    return [t for t in threading.enumerate() if t.name.startswith("coreseg-")]


def images(n, size=(160, 120), seed=5_100_000):
    return [demo.scene(seed + i, size)[0] for i in range(n)]


# 2. A camera generator that reuses its buffer --------------------------------

def test_a_camera_that_refills_one_buffer_gets_every_frame_from_its_own_image(model):
    shots = images(12)

    def camera():  # the usual capture loop: fill one array, yield it
        buffer = np.empty_like(shots[0])
        for shot in shots:
            buffer[...] = shot
            yield buffer

    got = list(model.stream(camera(), overlay=True))  # every frame held: the buffer has the last shot by now
    assert len(got) == 12
    for frame, shot in zip(got, shots):
        want = model.predict(shot)
        np.testing.assert_array_equal(frame.image, shot)
        np.testing.assert_array_equal(frame.segmentation.labels, want.labels)
        np.testing.assert_array_equal(frame.overlay, want.overlay(shot, smooth=True))


def test_a_frame_object_with_a_reused_image_keeps_its_time(model):
    shots = images(6, size=(96, 64))

    class Shot:
        def __init__(self):
            self.image, self.time = np.empty_like(shots[0]), None

    def camera():
        shot = Shot()
        for i, image in enumerate(shots):
            shot.image[...] = image
            shot.time = i / 30
            yield shot

    got = list(model.stream(camera(), smoothing="hysteresis"))
    assert [f.time for f in got] == [i / 30 for i in range(6)]
    for frame, shot in zip(got, shots):
        np.testing.assert_array_equal(frame.image, shot)


def test_a_lists_frames_are_used_as_they_are(model):
    shots = images(3)
    for frame, shot in zip(model.stream(shots), shots):
        assert np.shares_memory(frame.image, shot)  # nothing can refill them: no copy


# 8. Closing while the source is stalled ---------------------------------------

class Untouchable:
    """What a stalled camera delivers after the stream was closed: reading
    it (as a frame would be read) is recorded."""

    def __init__(self, touched):
        self._touched = touched

    @property
    def image(self):
        self._touched.append("image")
        return np.zeros((48, 64, 3), np.uint8)

    def __array__(self, *args, **kwargs):
        self._touched.append("array")
        return np.zeros((48, 64, 3), np.uint8)


def stalled_camera(frames, stalled, release, touched):
    """`frames` frames, then a wait (a camera that stopped delivering)
    until `release`, then a frame nobody may look at."""
    for image in frames:
        yield image
    stalled.set()
    release.wait()
    yield Untouchable(touched)


def close_in_a_thread(frames):
    closer = threading.Thread(target=frames.close, name="test-closer")
    closer.start()
    closer.join(HANG)
    return not closer.is_alive()


@pytest.mark.parametrize("overlay, smoothing", [(True, "ema"), (False, None)], ids=["overlay-ema", "plain"])
def test_closing_returns_while_the_source_is_stalled(model, overlay, smoothing):
    stalled, release, touched = threading.Event(), threading.Event(), []
    frames = model.stream(stalled_camera(images(3), stalled, release, touched), overlay=overlay,
                          smoothing=smoothing)
    try:
        assert [next(frames).index for _ in range(3)] == [0, 1, 2]
        assert stalled.wait(HANG)
        closed = close_in_a_thread(frames)
        assert closed, "close waited for the stalled source"
        # Left: the one feeder parked in the source's next(); no worker, no other stage.
        left = coreseg_threads()
        assert [t.name for t in left] == ["coreseg-feeder"] and all(t.daemon for t in left), left
    finally:
        release.set()
    for thread in left:
        thread.join(HANG)
    assert not coreseg_threads()
    assert touched == []  # what came after the close was dropped unread
    with pytest.raises(StopIteration):
        next(frames)


def test_an_error_in_the_consumer_returns_while_the_source_is_stalled(model):
    """As Ctrl-C does: an exception raised in the consumer's thread inside
    the stream's next() (here from the smoothing, which runs there without
    an overlay) stops the stream at once."""
    stalled, release, touched = threading.Event(), threading.Event(), []

    def smoother(seg, thumb):
        if seg is not None and len(seen) == 1:
            assert stalled.wait(HANG)
            raise KeyboardInterrupt
        seen.append(1)
        return seg

    seen = []
    frames = model.stream(stalled_camera(images(2), stalled, release, touched), smoothing=smoother)
    result = []

    def consume():
        try:
            for frame in frames:
                result.append(frame.index)
        except KeyboardInterrupt:
            result.append("interrupted")

    consumer = threading.Thread(target=consume, name="test-consumer")
    consumer.start()
    consumer.join(HANG)
    try:
        assert not consumer.is_alive(), "the error waited for the stalled source"
        assert result == [0, "interrupted"]
        assert [t.name for t in coreseg_threads()] == ["coreseg-feeder"]
    finally:
        release.set()
    for thread in coreseg_threads():
        thread.join(HANG)
    assert touched == [] and not coreseg_threads()
