"""Video files in and out, on PyAV (``pip install "coreseg[video]"``).

`VideoReader` reads a video as a player shows it; `VideoWriter` encodes
RGB frames as H.264 (MPEG-4 Part 2 where FFmpeg has no H.264 encoder) at
their own times, with another file's audio, under a temporary name renamed
when complete: an interrupted run leaves nothing under the final name.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import threading
import warnings
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

#: File suffixes `coreseg segment` treats as video.
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")
#: The time base `VideoWriter` stamps frames in unless told: the 90 kHz
#: MPEG clock, exact for the usual rates (24, 25, 30000/1001, 60, ...).
TIME_BASE = Fraction(1, 90_000)
#: The usual layout of each channel count (what FFmpeg's encoders take).
_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def av():
    """PyAV, or an ImportError naming the extra."""
    try:
        import av as pyav
    except ImportError:
        raise ImportError("video needs PyAV: pip install 'coreseg[video]'") from None
    return pyav


class IncompleteVideoWarning(UserWarning):
    """A video ended before its container said, or a packet of it could not
    be decoded (`VideoReader.incomplete` says which)."""


class AudioDroppedWarning(UserWarning):
    """`VideoWriter` could neither copy nor re-encode the source's audio."""


@dataclass
class Frame:
    """A decoded video frame: `index` from 0 in presentation order, `time`
    in seconds (None when the file does not say), `image` an (H, W, 3)
    uint8 RGB array, upright, of its own (nothing reuses it)."""

    index: int
    time: float | None
    image: np.ndarray


def _display_transform(frame):
    """(transpose, flip_x, flip_y, degrees) that turn the decoded picture
    into what a player shows, from its display matrix (FFmpeg's: a pixel
    (x, y) is shown at (a*x + c*y, b*x + d*y), a, b, c, d the elements 0,
    1, 3 and 4); `degrees` counter-clockwise, as FFmpeg reports it. Only
    multiples of 90 degrees are applied."""
    for data in frame.side_data:
        if getattr(data.type, "name", str(data.type)) != "DISPLAYMATRIX" or len(bytes(data)) < 36:
            continue
        m = np.frombuffer(bytes(data)[:36], dtype=np.int32)  # native byte order, as FFmpeg keeps it
        a, b, c, d = (float(v) / 65536 for v in (m[0], m[1], m[3], m[4]))
        degrees = int(round(-math.degrees(math.atan2(b, a)))) if (a or b) else 0
        a0, b0, c0, d0 = (abs(v) < 1e-3 for v in (a, b, c, d))
        if b0 and c0 and not (a0 or d0):
            return False, a < 0, d < 0, degrees
        if a0 and d0 and not (b0 or c0):
            return True, c < 0, b < 0, degrees
        return False, False, False, degrees
    return False, False, False, 0


class VideoReader:
    """The frames of a video file as a player shows them: RGB arrays, the
    display rotation (a phone's display matrix) applied, at their times.

    ``VideoReader(path, warn=True)``. Attributes: `fps` and `rate` (the
    average frame rate); `size` (width, height) as shown; `rotation`, the
    display rotation applied, degrees counter-clockwise (FFmpeg's sign: a
    phone held upright records -90; a mirroring is applied too);
    `frame_count`, declared or estimated from the duration, or None;
    `has_audio`; `time_base`, the unit of the stream's timestamps;
    `frames_read`; and `incomplete`: once the frames ran out, None if the
    video was whole, else why they are fewer than its container said ("the
    video ends after 37 frames, at 1.48 s of the 2.40 s its container
    declares (a truncated or damaged file)") or how many packets could not
    be decoded; then an `IncompleteVideoWarning` says so too, unless `warn`
    is False. The frames read are valid either way.

    The reader is its own iterator of `Frame` (a second loop goes on where
    the first stopped). `close` (or the context manager) waits for a frame
    being decoded on another thread (a stream's feeder); reading a closed
    reader is a ValueError, never a crash. So are a file that is not a
    video, without a decodable frame, and a frame unlike the first in size.
    """

    def __init__(self, path, *, warn: bool = True):
        pyav, self.path = av(), Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such video file")
        try:
            self._container = pyav.open(str(self.path))
        except (pyav.error.FFmpegError, UnicodeDecodeError) as e:
            raise ValueError(f"{self.path}: not a readable video ({e})") from None
        self._lock = threading.RLock()
        self._closed, self._warn, self._packets = False, bool(warn), None
        try:
            self._open(pyav)
        except BaseException:
            self.close()
            raise

    def _open(self, pyav) -> None:
        if not self._container.streams.video:
            raise ValueError(f"{self.path}: has no video stream")
        stream = self._stream = self._container.streams.video[0]
        stream.thread_type = "AUTO"
        self.rate = Fraction(stream.average_rate or stream.guessed_rate or 30)
        self.fps, self.has_audio = float(self.rate), bool(self._container.streams.audio)
        self.time_base = Fraction(stream.time_base) if stream.time_base else None
        self._declared_frames = int(stream.frames or 0) or None  # what the container says, to tell a truncated file
        start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
        self._declared_end, self._end_is_stream = self._declared_end_time(start)
        estimate = round((self._declared_end - start) * self.fps) if self._declared_end else None
        self.frame_count = self._declared_frames or estimate or None
        self.frames_read, self.incomplete = 0, None
        self._errors, self._first_error, self._corrupt, self._reached = 0, None, 0, None
        self._packets, self._pending, self._ended, self._finished = self._container.demux(stream), deque(), False, False
        first = self._decode(pyav)
        if first is None:
            why = f": {self._first_error}" if self._first_error else ""
            raise ValueError(f"{self.path}: has no decodable video frame (the file is damaged or empty{why})")
        self._pending.appendleft(first)
        self._transform = _display_transform(first)  # (transpose, flip_x, flip_y, degrees)
        self.rotation = self._transform[3]
        w, h = int(first.width), int(first.height)
        self.size = (h, w) if self._transform[0] else (w, h)

    def _declared_end_time(self, start: float):
        """(seconds, of the video stream itself?) where the container says it ends."""
        stream, container = self._stream, self._container
        if stream.duration and stream.time_base:
            return start + float(stream.duration * stream.time_base), True
        tag = re.fullmatch(r"\s*(\d+):(\d+):(\d+(?:\.\d*)?)\s*", str(stream.metadata.get("DURATION", "")))
        if tag:  # Matroska: the track's end
            return int(tag[1]) * 3600 + int(tag[2]) * 60 + float(tag[3]), True
        if container.duration:  # every stream's: audio may run a little longer
            return ((container.start_time or 0) + container.duration) / 1_000_000, False
        return None, False

    def _decode(self, pyav):
        """The next decoded av.VideoFrame, or None at the end. A packet the
        decoder refuses is counted and skipped; a container that cannot be
        read on ends the video."""
        while not self._pending and not self._ended:
            packet = None
            try:
                packet = next(self._packets, None)  # an error here: the container cannot be read on
                self._ended = packet is None
                if packet is not None:
                    self._pending.extend(self._stream.decode(packet))
            except (pyav.error.FFmpegError, OSError) as e:
                self._errors += 1
                self._first_error = self._first_error or str(e)
                self._ended = packet is None
        return self._pending.popleft() if self._pending else None

    def __iter__(self):
        return self

    def __next__(self) -> Frame:
        pyav = av()
        with self._lock:  # close waits for this frame
            if self._closed:
                raise ValueError(f"{self.path}: the video reader is closed")
            frame = self._decode(pyav)
            if frame is None:
                if not self._finished:
                    self._finish()
                raise StopIteration
            index = self.frames_read
            image = self._upright(frame, index)
            time = float(frame.time) if frame.time is not None else None
            self._corrupt += bool(getattr(frame, "is_corrupt", False))
            if time is not None:
                duration = getattr(frame, "duration", 0) or 0
                step = float(duration * frame.time_base) if duration and frame.time_base else 1 / self.fps
                self._reached = max(self._reached or 0.0, time + step)
            self.frames_read += 1
        return Frame(index, time, image)

    def _upright(self, frame, index: int) -> np.ndarray:
        image = frame.to_ndarray(format="rgb24")
        transpose, flip_x, flip_y, _ = self._transform
        if transpose or flip_x or flip_y:
            image = image.transpose(1, 0, 2) if transpose else image
            image = np.ascontiguousarray(image[::-1 if flip_y else 1, ::-1 if flip_x else 1])
        if (image.shape[1], image.shape[0]) != self.size:
            raise ValueError(f"{self.path}: frame {index} is {image.shape[1]}x{image.shape[0]}, the frames before it "
                             f"{self.size[0]}x{self.size[1]}: the frame size changes within the video, which "
                             "coreseg does not follow (re-encode it at one size)")
        return image

    def _finish(self) -> None:
        """At the end of the frames: `incomplete`, and its warning."""
        self._finished, why, n = True, [], self.frames_read
        if self._declared_frames is not None and n < self._declared_frames:
            why.append(f"the video ends after {n} of the {self._declared_frames} frames its container declares")
        elif self._declared_end is not None and self._reached is not None:
            slack = 1.5 / self.fps if self._end_is_stream else max(2 / self.fps, 0.5)
            if self._reached < self._declared_end - slack:
                why.append(f"the video ends after {n} frame{'s' * (n != 1)}, at {self._reached:.2f} s of the "
                           f"{self._declared_end:.2f} s its container declares")
        if self._errors:
            why.append(f"{self._errors} packet{'s' * (self._errors != 1)} could not be decoded "
                       f"({self._first_error}); {n} frame{'s' * (n != 1)} could")
        elif self._corrupt:
            why.append(f"{self._corrupt} of the {n} frames read had decoding errors")
        if why:
            self.incomplete = "; ".join(why) + " (a truncated or damaged file)"
            if self._warn:
                warnings.warn(f"{self.path}: {self.incomplete}", IncompleteVideoWarning, stacklevel=3)

    def close(self) -> None:
        """Close the file, once a frame being decoded on another thread is
        done; later reads are a ValueError. Safe to call again."""
        with self._lock:
            if self._closed:
                return
            self._closed, self._pending = True, deque()
            if self._packets is not None:
                with contextlib.suppress(Exception):
                    self._packets.close()
            self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        w, h = getattr(self, "size", ("?", "?"))
        return f"<VideoReader {self.path.name} {w}x{h} {getattr(self, 'fps', 0):g} fps>"


def _video_codec(pyav) -> str:
    for name in ("libx264", "h264", "mpeg4"):
        with contextlib.suppress(pyav.error.FFmpegError):
            if name in pyav.codecs_available and pyav.codec.Codec(name, "w"):
                return name
    raise RuntimeError("this FFmpeg build has no H.264 or MPEG-4 encoder")


#: The temporary name `VideoWriter` writes NAME under, beside it (PID: this process's).
PART_NAME = ".{name}.{pid}.part{suffix}"


def part_path(path) -> Path:
    return Path(path).with_name(PART_NAME.format(name=Path(path).name, pid=os.getpid(), suffix=Path(path).suffix))


class VideoWriter:
    """Write RGB frames to a video file (H.264) at their own times.

    ``VideoWriter(path, fps, size, audio_from=None, quality=18,
    time_base=None)``: `path`'s suffix picks the container; it is written
    under `part_path`, renamed by `close`. Frames without a time are 1 /
    `fps` apart. `audio_from`'s first audio stream is copied as it is where
    the container can hold it, else re-encoded (AAC in .mp4/.mov), else
    left out with an `AudioDroppedWarning`; `audio` says which ("copied",
    "re-encoded as CODEC (why)", "dropped (why)", None). `quality` is the
    H.264 CRF (18 looks lossless); `time_base` the unit of frame times
    (default `TIME_BASE`; a reader's keeps its timestamps exactly). As a
    context manager, an exception (Ctrl-C too) removes the temporary file.
    """

    def __init__(self, path, fps, size, *, audio_from=None, quality: int = 18, time_base=None):
        pyav, self.path, self.size = av(), Path(path), (int(size[0]), int(size[1]))
        if self.size[0] < 1 or self.size[1] < 1:
            raise ValueError(f"size must be positive (width, height), got {tuple(size)}")
        rate = Fraction(fps).limit_denominator(1001 * 1000) if not isinstance(fps, Fraction) else fps
        if rate <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.time_base = TIME_BASE if time_base is None else Fraction(time_base)
        if self.time_base <= 0:
            raise ValueError(f"time_base must be positive, got {time_base}")
        self.rate, self._frames, self._last_pts = rate, 0, None
        self._audio = self._audio_in = self._audio_items = self._pending = self.audio = None
        self._reencode = False  # copied packets, or decoded frames to encode
        self._tmp = part_path(self.path)
        self._container = pyav.open(str(self._tmp), "w")
        try:
            codec = _video_codec(pyav)
            self._stream = self._container.add_stream(codec, rate=rate)
            self._stream.width, self._stream.height = self.size
            # Frames carry their own times: a variable frame rate is kept, not re-timed at `rate`.
            self._stream.codec_context.time_base = self._stream.time_base = self.time_base
            # 4:2:0 needs even sides; odd-sized frames keep their size in 4:4:4.
            even = self.size[0] % 2 == 0 and self.size[1] % 2 == 0
            self._stream.pix_fmt = "yuv420p" if even or codec == "mpeg4" else "yuv444p"
            if codec == "libx264":
                self._stream.options = {"crf": str(int(quality)), "preset": "veryfast"}
            if audio_from is not None:
                self._open_audio(pyav, Path(audio_from))
        except BaseException:
            self.abort()
            raise

    def _open_audio(self, pyav, source: Path) -> None:
        src = pyav.open(str(source))
        if not src.streams.audio:
            src.close()
            return
        self._audio_in, audio = src, src.streams.audio[0]
        if _can_copy(pyav, audio, self._container.format.name):
            self._audio = self._container.add_stream_from_template(audio)
            self._audio_items = (p for p in src.demux(audio) if p.dts is not None)
            self.audio = "copied"
            return
        codec = "aac" if {"mp4", "mov"} & set(self._container.format.name.split(",")) else \
            getattr(self._container, "default_audio_codec", None) or "aac"
        why = f"{audio.codec_context.name} cannot go in {self.path.suffix or 'this container'}"
        rate = audio.codec_context.sample_rate or 48000
        layout = audio.codec_context.layout  # in the usual order: an AVI's PCM says only how many channels
        layout = _LAYOUTS.get(layout.nb_channels, layout)
        try:  # an encoder that opens, before the stream is added for good
            probe = pyav.CodecContext.create(codec, "w")
            probe.sample_rate, probe.layout, probe.time_base = rate, layout, Fraction(1, rate)
            probe.format = probe.codec.audio_formats[0] if probe.codec.audio_formats else "fltp"
            probe.open()
        except (pyav.error.FFmpegError, ValueError, TypeError) as e:
            self.audio = f"dropped ({why}, and it cannot be re-encoded as {codec}: {e})"
            warnings.warn(f"{self.path}: written without the source's audio: {why}, and it cannot be re-encoded "
                          f"as {codec} ({e})", AudioDroppedWarning, stacklevel=3)
            return
        self._audio = self._container.add_stream(codec, rate=rate)
        self._audio.layout = layout
        audio.thread_type = "AUTO"
        self._audio_items = _decoded_audio(pyav, src, audio)
        self._reencode = True
        self.audio = f"re-encoded as {codec} ({why})"

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Audio up to `seconds` (all, for None), so that audio and video
        stay interleaved in the file."""
        while self._audio_items is not None:
            item, self._pending = self._pending or next(self._audio_items, None), None
            if item is not None and seconds is not None and item.pts is not None \
                    and float(item.pts * item.time_base) > seconds:
                self._pending = item
                return
            if item is None:
                self._audio_items = None  # the end: an encoder is flushed (encode(None)) below
            if self._reencode:
                self._container.mux(self._audio.encode(item))
            elif item is not None:
                item.stream = self._audio
                self._container.mux(item)

    def write(self, image: np.ndarray, time: float | None = None) -> None:
        """Append one (H, W, 3|4) uint8 RGB(A) frame (alpha is dropped),
        shown at `time` seconds (e.g. the source's `Frame.time`), else one
        frame period after the last. A time that does not increase is moved
        just after the frame before."""
        pyav = av()
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise ValueError(f"{self.path}: frames must be (H, W, 3|4) uint8, got {image.dtype} {image.shape}")
        if (image.shape[1], image.shape[0]) != self.size:
            raise ValueError(f"{self.path}: frame {self._frames} is {image.shape[1]}x{image.shape[0]}, the video "
                             f"{self.size[0]}x{self.size[1]}")
        if time is not None:
            pts = round((Fraction(time) if isinstance(time, (int, Fraction)) else float(time)) / self.time_base)
        elif self._last_pts is None:
            pts = 0
        else:
            pts = self._last_pts + max(1, round(1 / (self.rate * self.time_base)))
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        frame = pyav.VideoFrame.from_ndarray(np.ascontiguousarray(image[..., :3]), format="rgb24")
        frame.pts, frame.time_base = pts, self.time_base
        self._container.mux(self._stream.encode(frame))
        self._frames, self._last_pts = self._frames + 1, pts
        self._mux_audio_until(float(pts * self.time_base + 1 / self.rate))  # up to this frame's end

    def close(self) -> Path:
        """Finish the file and give it its name; returns the path. If that
        fails (no frame was written, the encoder or the disk failed),
        nothing is left under either name."""
        try:
            if self._frames == 0:
                raise ValueError(f"{self.path}: no frame was written, so there is no video to save")
            self._container.mux(self._stream.encode(None))
            self._mux_audio_until(None)
            self._container.close()
            if self._audio_in is not None:
                self._audio_in.close()
            os.replace(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Stop and remove the temporary file; nothing is left under `path`."""
        with contextlib.suppress(Exception):
            self._container.close()
        if self._audio_in is not None:
            with contextlib.suppress(Exception):
                self._audio_in.close()
        with contextlib.suppress(FileNotFoundError):
            self._tmp.unlink()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _can_copy(pyav, stream, format_name: str) -> bool:
    """Whether a `format_name` container takes `stream`'s packets as they
    are: asked of FFmpeg itself, by writing a header in memory."""
    with contextlib.suppress(pyav.error.FFmpegError, ValueError, TypeError, OSError), \
            pyav.open(io.BytesIO(), "w", format=format_name) as probe:
        probe.add_stream_from_template(stream)
        probe.start_encoding()
        return True
    return False


def _decoded_audio(pyav, source, stream):
    """The audio frames of `stream` (undecodable packets skipped)."""
    for packet in source.demux(stream):
        with contextlib.suppress(pyav.error.FFmpegError):
            yield from [f for f in stream.decode(packet) if f.pts is not None]
