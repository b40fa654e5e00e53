"""`coreseg segment MODEL VIDEO --background ...`: STEM.background.mp4 beside
the overlay, with its frames, timestamps, size and audio; what the API
gives; --keep, display rotation, stale parts and signals as for the
overlay; transparent refused; --legend on video overlays; --label --color
in the colour given."""

import importlib.util
import json
import os
import signal
import subprocess
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

from coreseg.video import VideoReader  # noqa: E402
from test_video import make_clip  # noqa: E402
from test_video_hardening import HANG, frames_of, gone_pid, segment, write_clip  # noqa: E402


def packets(path, kind):
    """(pts in seconds, ...) of every packet of the first `kind` stream."""
    with av.open(str(path)) as c:
        stream = getattr(c.streams, kind)[0]
        return sorted(float(p.pts * stream.time_base) for p in c.demux(stream) if p.pts is not None)


def test_a_background_video_is_written_beside_the_overlay_with_its_frames_times_and_audio(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=30, fps=25, audio=True)
    out = tmp_path / "out"
    r = segment(clip, "--out", out, "--background", "blur:6", "--keep", "sky", "--smoothing", "ema", "--json")
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads(r.stdout)
    assert entry["background"] == str(out / "clip.background.mp4") and entry["frames"] == 30
    assert sorted(p.name for p in out.iterdir()) == ["clip.areas.csv", "clip.background.mp4", "clip.overlay.mp4"]
    overlay, background = out / "clip.overlay.mp4", out / "clip.background.mp4"
    with VideoReader(overlay) as o, VideoReader(background) as b:
        assert (b.size, b.rate) == (o.size, o.rate) and b.has_audio and o.has_audio
    assert [t for t, _ in frames_of(background)] == [t for t, _ in frames_of(overlay)] == \
        pytest.approx([i / 25 for i in range(30)])
    assert packets(background, "audio") == packets(overlay, "audio") == packets(clip, "audio")  # copied as it is


def test_the_background_video_shows_what_the_api_gives(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=8, audio=False)
    out = tmp_path / "out"
    r = segment(clip, "--out", out, "--background", "#00FF00", "--keep", "sky", "--keep", "sun",
                "--smoothing", "ema")
    assert r.returncode == 0, r.stderr
    model = coreseg.load("demo")
    with VideoReader(clip) as reader:
        want = [f.background for f in model.stream(reader, smoothing="ema",
                                                   background={"background": "#00FF00", "classes": ["sky", "sun"]})]
    written = [image for _, image in frames_of(out / "clip.background.mp4")]
    overlays = [image for _, image in frames_of(out / "clip.overlay.mp4")]
    assert len(written) == len(want) == 8
    for got, expected, overlay in zip(written, want, overlays):
        close = np.abs(got.astype(int) - expected).mean()  # H.264 at CRF 18, 4:2:0: close, not equal
        assert close < 4 and np.abs(got.astype(int) - overlay).mean() > 4 * close, close
        green = (expected == (0, 255, 0)).all(axis=2)
        assert 0.3 < green.mean() < 0.95  # the keyed-out part: everything but the sky and the sun
        assert np.abs(got[green].astype(int) - (0, 255, 0)).mean() < 8


def test_refine_follows_each_frames_edges(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=4, audio=False)
    out = tmp_path / "out"
    r = segment(clip, "--out", out, "--background", "#00FF00", "--keep", "sky", "--refine-radius", "8", "--smoothing", "ema")
    assert r.returncode == 0, r.stderr
    model = coreseg.load("demo")
    options = {"background": "#00FF00", "classes": ["sky"]}
    with VideoReader(clip) as reader:
        pairs = [(f.background, f.segmentation.replace_background(f.image, **options))
                 for f in model.stream(reader, smoothing="ema", background=dict(options, refine=8.0))]
    written = [image.astype(int) for _, image in frames_of(out / "clip.background.mp4")]
    assert len(written) == len(pairs) == 4
    for got, (refined, unrefined) in zip(written, pairs):
        edge = np.abs(refined.astype(int) - unrefined).max(axis=2) > 20  # where refining moved the matte
        assert edge.mean() > 0.02
        assert np.abs(got - refined)[edge].mean() * 1.5 < np.abs(got - unrefined)[edge].mean()  # 2.6x here


def test_a_picture_background_and_a_rotated_phone_video(tmp_path):
    from PIL import Image

    upright = demo.scene(5_200_000, (128, 96))[0]
    clip = write_clip(tmp_path / "phone.mp4", [np.rot90(upright, 1)] * 4, rotation=-90)
    beach = tmp_path / "beach.png"
    Image.fromarray(demo.scene(5_200_001, (50, 200))[0]).save(beach)
    out = tmp_path / "out"
    r = segment(clip, "--out", out, "--background", beach, "--keep", "building")
    assert r.returncode == 0, r.stderr
    with av.open(str(out / "phone.background.mp4")) as c:
        first = next(c.decode(c.streams.video[0]))
        assert (first.width, first.height) == (128, 96) and first.rotation == 0  # upright pixels, no matrix
    model = coreseg.load("demo")
    want = model.predict(upright).replace_background(upright, beach, classes=["building"])
    got = frames_of(out / "phone.background.mp4")[0][1].astype(int)
    assert np.abs(got - want).mean() < 6 and np.abs(got - want[::-1, ::-1]).mean() > 15


def test_transparent_is_refused_for_videos_naming_the_alternatives(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    out = tmp_path / "out"
    r = segment(clip, "--out", out, "--background", "transparent")
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "alpha" in r.stderr and "--background '#00FF00'" in r.stderr and "background='transparent'" in r.stderr
    assert not out.exists()


def test_bad_background_options_for_videos_are_clear(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    for args, message in [(["--background", "nowhere.png"], "no such file"),
                          (["--background", "blur:wide"], "RADIUS"),
                          (["--background", "blur", "--keep", "moon"], "moon"),
                          (["--keep", "sky"], "--keep chooses the foreground of --background"),
                          (["--legend", "--no-legend"], "contradict")]:
        r = segment(clip, "--out", tmp_path / "out", *args)
        assert r.returncode != 0 and message in r.stderr and "Traceback" not in r.stderr, (args, r.stderr)
        assert not (tmp_path / "out").exists()


def test_an_existing_background_video_is_not_overwritten_without_force(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=False)
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.background.mp4").write_bytes(b"mine")
    r = segment(clip, "--out", out, "--background", "blur")
    assert r.returncode != 0 and "clip.background.mp4" in r.stderr
    assert (out / "clip.background.mp4").read_bytes() == b"mine" and not (out / "clip.overlay.mp4").exists()
    assert segment(clip, "--out", out, "--background", "blur", "--force").returncode == 0
    assert len(frames_of(out / "clip.background.mp4")) == 2


def test_a_later_run_removes_a_dead_runs_background_part(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=3, audio=False)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f".clip.background.mp4.{gone_pid()}.part.mp4"
    live = out / f".clip.background.mp4.{os.getpid()}.part.mp4"
    for path in (stale, live):
        path.write_bytes(b"partial")
    r = segment(clip, "--out", out, "--background", "blur")
    assert r.returncode == 0, r.stderr
    assert not stale.exists() and live.read_bytes() == b"partial"


def test_a_signal_leaves_neither_video_half_written(tmp_path):
    clip = make_clip(tmp_path / "long.mp4", frames=400, size=(640, 360), audio=False, moving=False)
    out = tmp_path / "out"
    proc = subprocess.Popen(coreseg_argv("segment", "demo", clip, "--out", out, "--background", "blur"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + HANG
    # Signalled once both writers have started (an event: their temporary files).
    while len(list(out.glob(".long.*.mp4.*"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGSTOP)
    try:
        assert sorted(p.name for p in out.iterdir()) == [f".long.background.mp4.{proc.pid}.part.mp4",
                                                         f".long.overlay.mp4.{proc.pid}.part.mp4"]
        proc.send_signal(signal.SIGTERM)
    finally:
        proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert list(out.iterdir()) == [], list(out.iterdir())


def test_photos_and_videos_together_each_get_their_background(tmp_path):
    from PIL import Image

    clip = make_clip(tmp_path / "clip.mp4", frames=3, audio=False)
    photo = tmp_path / "photo.png"
    Image.fromarray(demo.scene(5_200_002, (96, 64))[0]).save(photo)
    out = tmp_path / "out"
    r = segment(clip, photo, "--out", out, "--background", "#FF0000", "--keep", "sky")
    assert r.returncode == 0, r.stderr
    assert {"photo.background.png", "clip.background.mp4"} <= {p.name for p in out.iterdir()}


def test_a_variable_frame_rate_is_kept_in_the_background_video(tmp_path):
    images = [demo.scene(5_200_100 + i, (64, 48))[0] for i in range(6)]
    times = [0, 0.04, 0.3, 0.34, 1.5, 1.54]
    clip = write_clip(tmp_path / "vfr.mkv", images, times, time_base=Fraction(1, 1000), lossless=False)
    out = tmp_path / "out"
    r = segment(clip, "--out", out, "--background", "blur")
    assert r.returncode == 0, r.stderr
    assert [t for t, _ in frames_of(out / "vfr.background.mp4")] == pytest.approx(times, abs=1e-3)


# --legend on video overlays; --label --color ------------------------------

def panel(image):
    """The legend panel's extent: rows and columns from the top-left corner
    whose pixels are mostly the panel's light grey-white."""
    light = (image.astype(int) >= 170).all(axis=2)
    rows = np.flatnonzero(light[:, :8].mean(axis=1) > 0.9)
    cols = np.flatnonzero(light[:8].mean(axis=0) > 0.9)
    return (rows.max() + 1 if rows.size else 0), (cols.max() + 1 if cols.size else 0)


def test_legend_draws_each_frames_legend_on_the_overlay_video(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=4, size=(320, 240), audio=False)
    assert segment(clip, "--out", tmp_path / "plain").returncode == 0
    r = segment(clip, "--out", tmp_path / "legend", "--legend")
    assert r.returncode == 0, r.stderr
    plain = [image for _, image in frames_of(tmp_path / "plain" / "clip.overlay.mp4")]
    shown = [image for _, image in frames_of(tmp_path / "legend" / "clip.overlay.mp4")]
    model = coreseg.load("demo")
    with VideoReader(clip) as reader:
        first = next(reader).image
    seg = model.predict(first)
    from coreseg.cli._common import OUTLINE
    from coreseg.drawing.legend import draw_legend

    want = draw_legend(seg.overlay(first, outline=OUTLINE), seg)
    h, w = panel(want)
    assert 40 < h < 200 and 60 < w < 300, (h, w)  # a panel is there, in the corner
    assert np.abs(shown[0].astype(int) - want).mean() < 4
    for a, b in zip(plain, shown):
        differs = np.abs(a.astype(int) - b).max(axis=2) > 40
        assert differs[:h, :w].mean() > 0.3  # the panel
        assert differs[h + 16:].mean() < 0.001 and differs[:, w + 16:].mean() < 0.001  # nowhere else


def test_label_color_draws_a_video_overlay_in_that_colour(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=2, audio=False, moving=False)
    out = tmp_path / "out"
    r = segment(clip, "--out", out, "--label", "sky", "--color", "#00FF00", "--opacity", "1")
    assert r.returncode == 0, r.stderr
    model = coreseg.load("demo")
    with VideoReader(clip) as reader:
        first = next(reader).image
    sky = model.predict(first).full_labels(smooth=True) == demo.CLASSES.index("sky")
    written = frames_of(out / "clip.overlay.mp4")[0][1].astype(int)
    assert np.abs(written[sky] - (0, 255, 0)).mean() < 12  # was magenta: the colour given was dropped
