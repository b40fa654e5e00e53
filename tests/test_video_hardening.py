"""Videos as a player shows them, and failures that say what is wrong:
closing a reader under a running stream, truncated files reported, display
rotation applied, the source's timestamps kept, SIGTERM/SIGHUP cleaned up
like Ctrl-C (and stale parts removed by the next run), clear errors, and
audio the output cannot hold re-encoded."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from fractions import Fraction

import numpy as np
import pytest

import coreseg
from coreseg import demo

av = pytest.importorskip("av", reason="video needs PyAV: pip install '.[video]'")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                reason="the demo model runs through onnxruntime here: pip install '.[onnx]'")

from coreseg.video import IncompleteVideoWarning, VideoReader, VideoWriter  # noqa: E402
from cli_process import coreseg_argv  # noqa: E402
from test_video import make_clip  # noqa: E402

HANG = 300  # seconds: only a hang (a deadlock) ever gets near this


def segment(*args, env=None):
    """`coreseg segment demo ARGS...` in a subprocess, without progress bars."""
    env = dict(os.environ if env is None else env, TQDM_DISABLE="1")
    return subprocess.run([sys.executable, "-m", "coreseg", "segment", "demo", *map(str, args)],
                          capture_output=True, text=True, timeout=HANG, env=env)


def warning_lines(stderr):
    return [line for line in stderr.splitlines() if line.startswith("coreseg segment: warning:")]


def write_clip(path, images, times=None, *, codec="libx264", rate=25, time_base=None, rotation=None,
               hflip=False, lossless=True):
    """A clip of `images` (RGB arrays) shown at `times` (seconds; default
    1/rate apart), with a display matrix when `rotation` is given."""
    h, w = images[0].shape[:2]
    out = av.open(str(path), "w")
    video = out.add_stream(codec, rate=rate)
    video.width, video.height = w, h
    video.pix_fmt = "yuv444p" if lossless and codec == "libx264" else "yuv420p"
    if codec == "libx264" and lossless:
        video.options = {"crf": "0"}
    tb = time_base or Fraction(1, rate)
    video.codec_context.time_base = tb
    if rotation is not None:
        video.set_display_rotation(rotation, hflip=hflip)
    times = [i / rate for i in range(len(images))] if times is None else times
    for image, t in zip(images, times):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = round(Fraction(t).limit_denominator(10**6) / tb), tb
        for packet in video.encode(frame):
            out.mux(packet)
    for packet in video.encode(None):
        out.mux(packet)
    out.close()
    return path


def write_clip_with_audio(path, images, audio_codec, *, rate=25, video_codec="mpeg4"):
    """A clip with an `audio_codec` track of a sine tone as long as the video."""
    h, w = images[0].shape[:2]
    out = av.open(str(path), "w")
    video = out.add_stream(video_codec, rate=rate)
    video.width, video.height, video.pix_fmt = w, h, "yuv420p"
    sound = out.add_stream(audio_codec, rate=22050)
    sound.layout = "mono"
    for t, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts, frame.time_base = t, Fraction(1, rate)
        for packet in video.encode(frame):
            out.mux(packet)
    ctx = sound.codec_context
    n = 22050 * len(images) // rate
    step = ctx.frame_size or 1024
    for k in range(0, n, step):
        m = min(step, n - k)
        frame = av.AudioFrame(format=ctx.format.name, layout="mono", samples=m)
        tone = np.sin((np.arange(k, k + m)) / 7.0)
        kind = np.dtype({"u8": np.uint8, "s16": np.int16, "s32": np.int32, "flt": np.float32,
                         "dbl": np.float64}[frame.format.name.rstrip("p")])
        if kind == np.uint8:
            data = (128 + 100 * tone).astype(np.uint8)
        elif kind.kind == "f":
            data = (0.4 * tone).astype(kind)
        else:
            data = (0.4 * np.iinfo(kind).max * tone).astype(kind)
        frame.planes[0].update(data.tobytes())
        frame.sample_rate, frame.pts, frame.time_base = 22050, k, Fraction(1, 22050)
        for packet in sound.encode(frame):
            out.mux(packet)
    for stream in (video, sound):
        for packet in stream.encode(None):
            out.mux(packet)
    out.close()
    return path


def frames_of(path):
    with av.open(str(path)) as c:
        return [(f.time, f.to_ndarray(format="rgb24")) for f in c.decode(c.streams.video[0])]


# 1. Closing a reader while a stream reads it -------------------------------

READER_CLOSED_UNDER_A_STREAM = """
import sys
import coreseg
from coreseg.video import VideoReader

model = coreseg.load("demo")
try:
    with VideoReader(sys.argv[1]) as reader:
        frames = model.stream(reader, overlay=True)
        next(frames)
        raise KeyError("the caller's own error, while the stream is still referenced")
except KeyError:
    pass
got = 1
try:
    for _ in frames:
        got += 1
except ValueError as e:
    print("stopped:", e)
print("frames:", got)
"""


def test_closing_a_reader_under_a_running_stream_stops_it_and_never_crashes(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=60, audio=False)
    for _ in range(3):  # it crashed 5 runs of 5
        r = subprocess.run([sys.executable, "-c", READER_CLOSED_UNDER_A_STREAM, clip],
                           capture_output=True, text=True, timeout=HANG)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "stopped:" in r.stdout and "the video reader is closed" in r.stdout and "clip.mp4" in r.stdout
        assert int(r.stdout.split("frames:")[1]) < 60


READER_CLOSED_UNDER_A_THREAD = """
import sys, threading
from coreseg.video import VideoReader

reader = VideoReader(sys.argv[1])
first = threading.Event()
outcome = []

def read():
    try:
        for frame in reader:
            first.set()
            outcome.append(frame.index)
    except ValueError as e:
        outcome.append(e)
    finally:
        first.set()

thread = threading.Thread(target=read)
thread.start()
first.wait()
reader.close()  # while the thread decodes the next frames
reader.close()  # twice is fine
thread.join()
print("thread:", repr(outcome[-1]))
for read_again in (lambda: next(reader), lambda: list(reader)):
    try:
        read_again()
    except ValueError as e:
        print("again:", e)
"""


def test_a_closed_reader_is_an_error_to_read_and_close_waits_for_a_decoding_thread(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=40, audio=False)
    r = subprocess.run([sys.executable, "-c", READER_CLOSED_UNDER_A_THREAD, clip],
                       capture_output=True, text=True, timeout=HANG)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = r.stdout.splitlines()
    assert lines[0].startswith("thread: ValueError(") and "closed" in lines[0], lines
    assert lines[1:] == ["again: " + lines[1].split("again: ")[1]] * 2 and "clip.mp4: the video reader is closed" in lines[1]


# 3. Truncated videos are reported --------------------------------------------

def cut(clip, path, share=2 / 3):
    data = clip.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])
    return path


def test_a_complete_video_is_not_reported(tmp_path):
    for name in ("clip.mkv", "clip.mp4", "clip.avi"):
        clip = make_clip(tmp_path / name, frames=30, audio=name != "clip.avi")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with VideoReader(clip) as reader:
                assert len(list(reader)) == 30
        assert reader.incomplete is None and reader.frames_read == 30


@pytest.mark.parametrize("name", ["clip.mkv", "clip.avi"])
def test_a_video_that_ends_before_its_container_said_is_reported(tmp_path, name):
    """The .mkv declares no frame count (only its duration); the .avi does."""
    clip = cut(make_clip(tmp_path / f"full-{name}", frames=60, audio=name.endswith(".mkv")), tmp_path / name)
    with VideoReader(clip) as reader:
        with pytest.warns(IncompleteVideoWarning, match=name) as said:
            n = len(list(reader))
    assert 0 < n < 60 and reader.frames_read == n
    assert f"after {n} " in reader.incomplete and str(said[0].message).endswith(reader.incomplete)

    out = tmp_path / "out"
    r = segment(clip, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    (line,) = warning_lines(r.stderr)
    assert name in line and f"after {n} " in line and f"has the {n} frame" in line, line
    (entry,) = json.loads(r.stdout)
    assert entry["frames"] == n and f"after {n} " in entry["incomplete"]
    with VideoReader(out / f"{clip.stem}.overlay.mp4") as written:
        assert len(list(written)) == n and written.incomplete is None


def with_a_garbled_packet(clip, path, which=12):
    """`clip` with its packet `which` replaced by bytes no decoder takes."""
    rng = np.random.default_rng(which)
    with av.open(str(clip)) as src, av.open(str(path), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for k, packet in enumerate(p for p in src.demux(src.streams.video[0]) if p.size):
            if k == which:
                bad = av.Packet(bytes([0, 0, 0, 1, 0x65]) + rng.integers(0, 256, 400, dtype=np.uint8).tobytes())
                bad.pts, bad.dts, bad.time_base = packet.pts, packet.dts, packet.time_base
                packet = bad
            packet.stream = stream
            dst.mux(packet)
    return path


def test_a_decoding_error_is_reported_and_the_other_frames_kept(tmp_path):
    clip = with_a_garbled_packet(make_clip(tmp_path / "src.mkv", frames=30, audio=False), tmp_path / "garbled.mkv")
    with VideoReader(clip) as reader:
        with pytest.warns(IncompleteVideoWarning, match="garbled.mkv: 1 packet could not be decoded"):
            n = len(list(reader))
    assert n == 29 and "29 frames could" in reader.incomplete
    out = tmp_path / "out"
    r = segment(clip, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    (line,) = warning_lines(r.stderr)
    assert "garbled.mkv" in line and "1 packet could not be decoded" in line and "has the 29 frames" in line, line
    (entry,) = json.loads(r.stdout)
    assert entry["frames"] == 29 and entry["incomplete"] == reader.incomplete


# 4. Display rotation --------------------------------------------------------

@pytest.mark.parametrize("rotation, hflip", [(-90, False), (90, False), (180, False), (0, True), (90, True)],
                         ids=["phone-portrait", "ccw", "upside-down", "mirrored", "ccw-mirrored"])
def test_frames_are_read_as_a_player_shows_them(tmp_path, rotation, hflip):
    upright = demo.scene(4_800_000, (96, 64))[0]
    mirror = (lambda a: a[:, ::-1]) if hflip else (lambda a: a)
    # Stored so that the display matrix (rotate counter-clockwise, then mirror) shows `upright`.
    stored = np.rot90(mirror(upright), -rotation // 90)
    clip = write_clip(tmp_path / "phone.mp4", [stored] * 3, rotation=rotation, hflip=hflip)
    with VideoReader(clip) as reader:
        assert reader.size == (96, 64)
        for frame in reader:
            assert frame.image.shape == upright.shape
            assert np.abs(frame.image.astype(int) - upright).mean() < 2  # lossless but for 4:4:4 rounding


def test_a_rotated_phone_video_is_segmented_and_written_upright(tmp_path):
    from coreseg.cli._common import OUTLINE

    upright = demo.scene(4_800_001, (128, 96))[0]
    clip = write_clip(tmp_path / "phone.mp4", [np.rot90(upright, 1)] * 4, rotation=-90)
    model = coreseg.load("demo")
    want = model.predict(upright)
    with VideoReader(clip) as reader:
        for frame in model.stream(reader):
            # The bug: 21 % of pixels labelled differently from the displayed frame.
            assert (frame.segmentation.labels != want.labels).mean() < 0.01
            shown = frame.image
    out = tmp_path / "out"
    r = segment(clip, "--out", out)
    assert r.returncode == 0, r.stderr
    written = frames_of(out / "phone.overlay.mp4")
    assert len(written) == 4
    with av.open(str(out / "phone.overlay.mp4")) as c:
        first = next(c.decode(c.streams.video[0]))
        assert (first.width, first.height) == (128, 96) and first.rotation == 0  # upright pixels, no matrix
    overlay = model.predict(shown).overlay(shown, opacity=0.6, outline=OUTLINE)
    good = np.abs(written[0][1].astype(int) - overlay).mean()  # H.264 at CRF 18: close, not equal
    upside_down = np.abs(written[0][1].astype(int) - overlay[::-1, ::-1]).mean()
    assert good < 6 and upside_down > 3 * good, (good, upside_down)


# 5. Variable frame rate ---------------------------------------------------

def test_the_overlay_keeps_the_sources_timestamps(tmp_path):
    images = [demo.scene(4_900_000 + i, (64, 48))[0] for i in range(12)]
    times = [0, 0.04, 0.08, 0.2, 0.24, 1.24, 1.28, 1.3, 1.5, 2.5, 2.54, 2.58]  # a phone's variable rate
    clip = write_clip(tmp_path / "vfr.mkv", images, times, time_base=Fraction(1, 1000), lossless=False)
    assert [t for t, _ in frames_of(clip)] == pytest.approx(times)
    out = tmp_path / "out"
    r = segment(clip, "--out", out)
    assert r.returncode == 0, r.stderr
    assert [t for t, _ in frames_of(out / "vfr.overlay.mp4")] == pytest.approx(times, abs=1e-3)


def test_writer_stamps_frames_at_their_times(tmp_path):
    image = np.zeros((48, 64, 3), np.uint8)
    times = [0.5, 0.54, 0.9, Fraction(1001, 1000), 1.5]
    with VideoWriter(tmp_path / "v.mp4", 25, (64, 48)) as writer:
        for t in times:
            writer.write(image, t)
    assert [t for t, _ in frames_of(tmp_path / "v.mp4")] == pytest.approx([float(t) for t in times], abs=1e-4)
    with VideoWriter(tmp_path / "cfr.mp4", 25, (64, 48)) as writer:  # without times: 1 / fps apart
        for _ in range(5):
            writer.write(image)
    assert [t for t, _ in frames_of(tmp_path / "cfr.mp4")] == pytest.approx([i / 25 for i in range(5)])


# 6. SIGTERM and SIGHUP clean up as Ctrl-C does; stale parts are removed -----

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP], ids=["INT", "TERM", "HUP"])
def test_a_signal_leaves_no_half_written_file(tmp_path, sig):
    clip = make_clip(tmp_path / "long.mp4", frames=400, size=(640, 360), audio=False, moving=False)
    out = tmp_path / "out"
    proc = subprocess.Popen(coreseg_argv("segment", "demo", clip, "--out", out),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + HANG
    # Signalled once the writer has started (an event: its temporary file),
    # the process held still meanwhile, so the file is provably there.
    while not any(out.glob(".long.overlay.mp4.*")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    proc.send_signal(signal.SIGSTOP)
    try:
        assert [p.name for p in out.iterdir()] == [f".long.overlay.mp4.{proc.pid}.part.mp4"]
        proc.send_signal(sig)
    finally:
        proc.send_signal(signal.SIGCONT)
    _, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 128 + sig, err  # as a shell reports a process the signal ended
    assert list(out.iterdir()) == [], list(out.iterdir())


def gone_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_later_run_removes_stale_parts_of_its_own_outputs_only(tmp_path):
    clip = make_clip(tmp_path / "clip.mp4", frames=4, audio=False)
    out = tmp_path / "out"
    out.mkdir()
    dead = gone_pid()
    stale = out / f".clip.overlay.mp4.{dead}.part.mp4"
    kept = [out / f".clip.overlay.mp4.{os.getpid()}.part.mp4",  # a run still going
            out / f".other.overlay.mp4.{dead}.part.mp4",        # not an output of this run
            out / f".clip.overlay.mp4.{dead}.part.mkv",         # not the pattern
            out / f".clip.overlay.mp4.x{dead}.part.mp4",
            out / "notes.txt"]
    for path in [stale, *kept]:
        path.write_bytes(b"partial")
    r = segment(clip, "--out", out)
    assert r.returncode == 0, r.stderr
    assert not stale.exists()
    assert all(p.read_bytes() == b"partial" for p in kept)
    assert (out / "clip.overlay.mp4").is_file()


# 7. Errors that say what is wrong ------------------------------------------

def without_keyframes(clip, path):
    """`clip`'s packets minus its keyframes: nothing in it can be decoded."""
    with av.open(str(clip)) as src, av.open(str(path), "w") as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None and not packet.is_keyframe:
                packet.stream = stream
                dst.mux(packet)
    return path


def test_a_video_without_a_decodable_frame_says_so(tmp_path):
    clip = without_keyframes(make_clip(tmp_path / "src.mkv", frames=20, audio=False), tmp_path / "broken.mkv")
    with pytest.raises(ValueError, match="broken.mkv: has no decodable video frame"):
        VideoReader(clip)
    out = tmp_path / "out"
    r = segment(clip, "--out", out)
    assert r.returncode == 1 and "broken.mkv" in r.stderr and "no decodable video frame" in r.stderr, r.stderr
    assert "part" not in r.stderr and "Errno" not in r.stderr
    assert not out.exists() or list(out.iterdir()) == []


def size_changing_clip(path):
    """Motion JPEG whose frames 3.. are 96x64, after three of 64x48."""
    out = av.open(str(path), "w")
    small = out.add_stream("mjpeg", rate=25)
    small.width, small.height, small.pix_fmt = 64, 48, "yuvj420p"
    big = av.CodecContext.create("mjpeg", "w")
    big.width, big.height, big.pix_fmt, big.time_base = 96, 64, "yuvj420p", Fraction(1, 25)
    for t in range(6):
        w, h = (64, 48) if t < 3 else (96, 64)
        frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 40 * t, np.uint8), format="rgb24")
        frame = frame.reformat(format="yuvj420p")
        frame.pts, frame.time_base = t, Fraction(1, 25)
        for packet in (small if t < 3 else big).encode(frame):
            packet.stream, packet.pts, packet.dts, packet.time_base = small, t, t, Fraction(1, 25)
            out.mux(packet)
    out.close()
    return path


def test_a_frame_size_change_names_the_file_and_the_frame(tmp_path):
    clip = size_changing_clip(tmp_path / "resized.mkv")
    with VideoReader(clip) as reader:
        got = []
        with pytest.raises(ValueError, match=r"resized.mkv: frame 3 is 96x64, the frames before it 64x48"):
            for frame in reader:
                got.append(frame.index)
    assert got == [0, 1, 2]
    out = tmp_path / "out"
    r = segment(clip, "--out", out)
    assert r.returncode == 1 and "resized.mkv: frame 3 is 96x64" in r.stderr, r.stderr
    assert list(out.iterdir()) == []
    with pytest.raises(ValueError, match=r"v.mp4: frame 0 is 64x50, the video 64x48"):
        with VideoWriter(tmp_path / "v.mp4", 25, (64, 48)) as writer:
            writer.write(np.zeros((50, 64, 3), np.uint8))


@pytest.mark.parametrize("codec", ["pcm_u8", "pcm_mulaw", "pcm_s16le"])
def test_audio_the_output_cannot_hold_is_re_encoded(tmp_path, codec):
    images = [demo.scene(5_000_000, (64, 48))[0]] * 25
    clip = write_clip_with_audio(tmp_path / "old.avi", images, codec)
    out = tmp_path / "out"
    r = segment(clip, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads(r.stdout)
    with av.open(str(out / "old.overlay.mp4")) as c:
        (sound,) = c.streams.audio
        samples = sum(f.samples for f in c.decode(sound))
        kept = sound.codec_context.name
    assert samples == pytest.approx(22050, rel=0.1)  # the second of sound is there
    if entry["audio"] == "copied":
        assert kept == codec
    else:
        assert entry["audio"].startswith("re-encoded as aac") and codec in entry["audio"] and kept == "aac"
    assert codec != "pcm_u8" or entry["audio"] != "copied"  # MP4 cannot hold 8-bit PCM


def test_audio_that_cannot_be_re_encoded_either_is_dropped_with_a_warning(tmp_path, monkeypatch):
    from coreseg.frames import video
    from coreseg.video import AudioDroppedWarning

    clip = write_clip_with_audio(tmp_path / "old.avi", [demo.scene(5_000_001, (64, 48))[0]] * 10, "pcm_u8")

    class NoEncoders:  # PyAV as it is, but no audio encoder opens
        class CodecContext:
            @staticmethod
            def create(name, mode):
                raise ValueError(f"no {name} encoder here")

        def __getattr__(self, name):
            return getattr(av, name)

    monkeypatch.setattr(video, "av", NoEncoders)
    with pytest.warns(AudioDroppedWarning, match="pcm_u8 cannot go in .mp4, and it cannot be re-encoded as aac"):
        writer = VideoWriter(tmp_path / "o.mp4", 25, (64, 48), audio_from=clip)
    with writer:
        for _ in range(10):
            writer.write(np.zeros((48, 64, 3), np.uint8))
    assert writer.audio.startswith("dropped (pcm_u8 cannot go in .mp4")
    with av.open(str(tmp_path / "o.mp4")) as c:
        assert not c.streams.audio and len(list(c.decode(c.streams.video[0]))) == 10
