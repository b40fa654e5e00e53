"""What held stays held: 10- and 16-bit video, HEVC, AV1, VP9 and FFV1,
1x1 and 4097x1 frames read, segmented and written; four streams and
predict threads sharing one Segmenter give what sequential predict gives;
memory stays constant over a video stream."""

import importlib.util
import threading
import tracemalloc
from fractions import Fraction

import numpy as np
import pytest

import coreseg
from coreseg import demo

av = pytest.importorskip("av", reason="video needs PyAV: pip install '.[video]'")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                reason="the demo model runs through onnxruntime here: pip install '.[onnx]'")

from coreseg.video import VideoReader, VideoWriter  # noqa: E402

HANG = 300  # seconds: only a deadlock gets near this


@pytest.fixture(scope="module")
def model():
    return coreseg.load("demo")


def scene_frames(size, n, seed=5_200_000):
    """`n` RGB frames of a demo scene panning, `size` (w, h), any size >= 1."""
    w, h = size
    big = demo.scene(seed, (max(w, 16) + n, max(h, 16)))[0]
    return [np.ascontiguousarray(big[:h, t:t + w]) for t in range(n)]


def encode(path, codec, pix_fmt, frames, rate=25, options=None):
    h, w = frames[0].shape[:2]
    out = av.open(str(path), "w")
    stream = out.add_stream(codec, rate=rate)
    stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
    if options:
        stream.options = options
    for t, image in enumerate(frames):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format=pix_fmt)
        frame.pts, frame.time_base = t, Fraction(1, rate)
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()
    return path


QUIET_X265 = {"x265-params": "log-level=none"}

FORMATS = [  # name, codec, pixel format, size, encoder options, largest mean error on 0..255
    ("h264-10bit.mkv", "libx264", "yuv420p10le", (64, 48), {"crf": "0"}, 8),  # 4:2:0: chroma halved
    ("hevc.mp4", "libx265", "yuv420p", (64, 48), {**QUIET_X265, "crf": "8"}, 10),
    ("hevc-10bit.mkv", "libx265", "yuv420p10le", (64, 48), {**QUIET_X265, "crf": "8"}, 10),
    ("av1.mkv", "libsvtav1", "yuv420p", (64, 48), {"crf": "10"}, 10),
    ("vp9.webm", "libvpx-vp9", "yuv420p", (64, 48), {"crf": "4", "b": "0"}, 10),
    ("ffv1.mkv", "ffv1", "yuv420p", (64, 48), None, 8),
    ("ffv1-16bit.mkv", "ffv1", "yuv444p16le", (64, 48), None, 2),
    ("one-pixel.mkv", "ffv1", "yuv444p", (1, 1), None, 2),
    ("one-row.mkv", "ffv1", "yuv444p", (4097, 1), None, 2),
    ("one-pixel-h264.mp4", "libx264", "yuv444p", (1, 1), {"crf": "0"}, 2),
]


@pytest.mark.parametrize("name, codec, pix_fmt, size, options, error", FORMATS, ids=[f[0] for f in FORMATS])
def test_a_format_is_read_segmented_and_written(tmp_path, model, name, codec, pix_fmt, size, options, error):
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg has no {codec} encoder")
    source = scene_frames(size, 6)
    clip = encode(tmp_path / name, codec, pix_fmt, source, options=options)
    out = tmp_path / "overlay.mp4"
    with VideoReader(clip) as reader, VideoWriter(out, reader.rate, reader.size, time_base=reader.time_base) as writer:
        assert reader.size == size
        got = []
        for frame in model.stream(reader, overlay=True):
            assert frame.image.shape == (size[1], size[0], 3) and frame.image.dtype == np.uint8
            np.testing.assert_array_equal(frame.segmentation.labels, model.predict(frame.image).labels)
            writer.write(frame.overlay, frame.time)
            got.append(frame)
    assert len(got) == 6 and reader.incomplete is None
    assert [f.time for f in got] == pytest.approx([t / 25 for t in range(6)])
    for frame, want in zip(got, source):  # decoded to the right 8-bit pixels, whatever the depth
        assert np.abs(frame.image.astype(int) - want).mean() <= error
    with VideoReader(out) as written:
        frames = list(written)
        assert written.size == size and len(frames) == 6
        assert [f.time for f in frames] == pytest.approx([t / 25 for t in range(6)])


def test_four_streams_and_predict_threads_share_one_segmenter(tmp_path, model):
    clips = [encode(tmp_path / f"c{i}.mkv", "ffv1", "yuv420p", scene_frames((96, 64), 8, seed=5_300_000 + i))
             for i in range(4)]
    photos = [demo.scene(5_400_000 + i, (80, 60))[0] for i in range(6)]
    want_clips = []
    for clip in clips:  # sequential: one predict after the other
        with VideoReader(clip) as reader:
            want_clips.append([(f.image, model.predict(f.image)) for f in reader])
    want_photos = [model.predict(p) for p in photos]
    start = threading.Barrier(6)
    results, errors = {}, []

    def run_stream(i):
        try:
            start.wait(HANG)
            with VideoReader(clips[i]) as reader:
                results[i] = [(f.image, f.segmentation, f.overlay.copy())
                              for f in model.stream(reader, overlay=True, smoothing=None)]
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    def run_predicts(k):
        try:
            start.wait(HANG)
            results[f"p{k}"] = [model.predict(p) for _ in range(3) for p in photos]
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=run_stream, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=run_predicts, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(HANG)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    for i in range(4):
        assert len(results[i]) == 8
        for (image, seg, overlay), (want_image, want) in zip(results[i], want_clips[i]):
            np.testing.assert_array_equal(image, want_image)
            np.testing.assert_array_equal(seg.labels, want.labels)
            np.testing.assert_array_equal(seg.scores, want.scores)
            np.testing.assert_array_equal(overlay, want.overlay(want_image, smooth=True))
    for k in range(2):
        for seg, want in zip(results[f"p{k}"], want_photos * 3):
            np.testing.assert_array_equal(seg.labels, want.labels)


def test_memory_is_constant_over_a_video_stream(tmp_path, model):
    frames = scene_frames((640, 360), 8)
    clip = encode(tmp_path / "long.mkv", "ffv1", "yuv420p", [frames[t % 8] for t in range(150)])
    nbytes = frames[0].nbytes
    tracemalloc.start()
    try:
        peaks = []
        with VideoReader(clip) as reader:
            for frame in model.stream(reader, smoothing="ema", overlay=True):
                if frame.index % 30 == 29:
                    peaks.append(tracemalloc.get_traced_memory()[1])
                    tracemalloc.reset_peak()
    finally:
        tracemalloc.stop()
    assert len(peaks) == 5
    # As in test_stream: bounded by the frames in flight, not the stream's length.
    assert max(peaks) - peaks[0] < 15 * nbytes, peaks
    assert max(peaks) < 40 * nbytes, peaks
