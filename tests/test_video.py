"""coreseg.video and `coreseg segment` on videos: frames, times, audio and
sizes survive the round trip; damaged files fail clearly and leave nothing
behind; Ctrl-C leaves nothing half-written."""

import csv
import importlib.util
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction

import numpy as np
import pytest
from cli_process import coreseg_argv

import coreseg
from coreseg import demo

av = pytest.importorskip("av", reason="video needs PyAV: pip install '.[video]'")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                reason="the demo model runs through onnxruntime here: pip install '.[onnx]'")

from coreseg.video import VideoReader, VideoWriter  # noqa: E402


def make_clip(path, frames=30, size=(192, 144), fps=25, audio=True, moving=True):
    """An H.264 clip of a demo scene panning, with an AAC sine tone."""
    w, h = size
    big, _ = demo.scene(4_500_000, (w + frames, h))
    out = av.open(str(path), "w")
    video = out.add_stream("libx264" if "libx264" in av.codecs_available else "mpeg4", rate=fps)
    video.width, video.height, video.pix_fmt = w, h, "yuv420p"
    tone = None
    if audio:
        tone = out.add_stream("aac", rate=44100)
        tone.layout = "mono"
    for t in range(frames):
        x = t if moving else 0
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(big[:, x:x + w]), format="rgb24")
        frame.pts, frame.time_base = t, Fraction(1, fps)
        for packet in video.encode(frame):
            out.mux(packet)
    if tone is not None:
        samples = (0.2 * np.sin(np.arange(44100 * frames // fps) / 15)).astype(np.float32)
        for k in range(0, len(samples), 1024):
            a = av.AudioFrame.from_ndarray(samples[None, k:k + 1024], format="flt", layout="mono")
            a.sample_rate, a.pts, a.time_base = 44100, k, Fraction(1, 44100)
            for packet in tone.encode(a):
                out.mux(packet)
        for packet in tone.encode(None):
            out.mux(packet)
    for packet in video.encode(None):
        out.mux(packet)
    out.close()
    return path


def streams(path):
    with av.open(str(path)) as c:
        return sorted(s.type for s in c.streams)


@pytest.mark.parametrize("audio", [True, False])
def test_segment_writes_an_overlay_video_and_areas_per_frame(tmp_path, audio):
    clip = make_clip(tmp_path / "clip.mp4", audio=audio)
    out = tmp_path / "out"
    # tests/coreml_models.py silences coremltools' bars with TQDM_DISABLE, which tqdm obeys everywhere.
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    r = subprocess.run([sys.executable, "-m", "coreseg", "segment", "demo", clip, "--out", out,
                        "--smoothing", "ema"], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr
    assert "frame/s" in r.stderr  # the progress bar counts frames per second
    with VideoReader(clip) as src, VideoReader(out / "clip.overlay.mp4") as dst:
        assert (dst.size, dst.fps) == (src.size, src.fps)
        frames = list(dst)
        assert len(frames) == 30 == src.frame_count
        assert dst.has_audio == audio == src.has_audio
    assert streams(out / "clip.overlay.mp4") == (["audio", "video"] if audio else ["video"])
    rows = list(csv.reader((out / "clip.areas.csv").open()))
    assert rows[0][:2] == ["frame", "time"] and set(rows[0][2:]) <= set(demo.CLASSES)
    assert [int(r[0]) for r in rows[1:]] == list(range(30))
    assert [float(r[1]) for r in rows[1:]] == pytest.approx([t / 25 for t in range(30)])
    assert all(sum(map(float, r[2:])) == pytest.approx(1, abs=1e-4) for r in rows[1:])
    assert sorted(p.name for p in out.iterdir()) == ["clip.areas.csv", "clip.overlay.mp4"]


def test_the_overlay_video_shows_the_segmentation(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=6, audio=False, moving=False)
    model = coreseg.load("demo")
    with VideoReader(clip) as reader:
        first = next(iter(reader)).image
    out = tmp_path / "o.mp4"
    with VideoReader(clip) as reader, VideoWriter(out, reader.rate, reader.size, quality=0) as writer:
        for frame in model.stream(reader, overlay=True):
            writer.write(frame.overlay)
    with VideoReader(out) as written:
        decoded = next(iter(written)).image
    want = model.predict(first).overlay(first, smooth=True)
    # Lossless H.264 still goes through 4:2:0 chroma: close, not equal.
    assert np.abs(decoded.astype(int) - want).mean() < 3


def test_frames_keep_their_times(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=10, fps=30, audio=False)
    model = coreseg.load("demo")
    with VideoReader(clip) as reader:
        times = [f.time for f in model.stream(reader)]
    assert times == pytest.approx([t / 30 for t in range(10)])


def test_a_damaged_video_is_a_clear_error_and_leaves_nothing(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=40)
    data = clip.read_bytes()
    (tmp_path / "garbage.mp4").write_bytes(b"\0\1\2" * 1000)
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 2 // 3])
    for name in ("garbage.mp4", "cut.mp4"):
        out = tmp_path / f"out-{name}"
        r = subprocess.run([sys.executable, "-m", "coreseg", "segment", "demo", tmp_path / name, "--out", out],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode != 0 and name in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert not out.exists() or list(out.iterdir()) == []


def test_ctrl_c_leaves_no_half_written_file(tmp_path):
    clip = make_clip(tmp_path / "long.mp4", frames=400, size=(640, 360), audio=False, moving=False)
    out = tmp_path / "out"
    proc = subprocess.Popen(coreseg_argv("segment", "demo", clip, "--out", out),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    # Interrupted as soon as the writer has started (an event, not a delay: a
    # fast machine could finish the clip during a fixed wait).
    while not any(out.glob(".long.overlay.mp4.*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, err
    assert list(out.iterdir()) == [], list(out.iterdir())


def test_writer_refuses_frames_of_another_size(tmp_path):
    with pytest.raises(ValueError, match="64x48"):
        with VideoWriter(tmp_path / "v.mp4", 25, (64, 48)) as writer:
            writer.write(np.zeros((50, 64, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_video_needs_its_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"coreseg\[video\]"):
        VideoReader(make_clip(tmp_path / "c.mp4", frames=2, audio=False))
