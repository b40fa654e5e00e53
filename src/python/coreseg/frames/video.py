"""Video files in and out, on PyAV (``pip install "coreseg[video]"``).

`VideoReader` decodes frames straight into RGB arrays with their times;
`VideoWriter` encodes RGB arrays as H.264 (MPEG-4 Part 2 where the FFmpeg
build has no H.264 encoder) and copies another file's audio stream as it
is, interleaved with the video. The writer works under a temporary name
and renames the file only when it is complete: an interrupted run leaves
nothing under the final name.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

#: File suffixes `coreseg segment` treats as video.
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm")


def av():
    """PyAV, or an ImportError naming the extra."""
    try:
        import av as pyav
    except ImportError:
        raise ImportError("video needs PyAV: pip install 'coreseg[video]'") from None
    return pyav


@dataclass
class Frame:
    """A decoded video frame.

    Attributes
    ----------
    index : int
        From 0, in decoding (presentation) order.
    time : float or None
        Presentation time in seconds, when the file says.
    image : (H, W, 3) uint8 ndarray
        RGB.
    """

    index: int
    time: float | None
    image: np.ndarray


class VideoReader:
    """The frames of a video file, as RGB arrays.

    Parameters
    ----------
    path : str or path-like

    Attributes
    ----------
    fps : float
        The video stream's average frame rate.
    size : (int, int)
        (width, height) in pixels.
    frame_count : int or None
        Frames the container declares (some do not; an estimate from the
        duration then, or None).
    has_audio : bool

    Iterating yields `Frame` objects; decoding runs on FFmpeg's threads.
    Use as a context manager, or call `close`.

    Raises
    ------
    ValueError
        The file is not a video PyAV can read, or has no video stream.
    """

    def __init__(self, path):
        pyav = av()
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such video file")
        try:
            self._container = pyav.open(str(self.path))
        except (pyav.error.FFmpegError, UnicodeDecodeError) as e:
            raise ValueError(f"{self.path}: not a readable video ({e})") from None
        if not self._container.streams.video:
            self._container.close()
            raise ValueError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(30)
        self.rate = Fraction(rate)
        self.fps = float(rate)
        self.size = (int(self._stream.codec_context.width), int(self._stream.codec_context.height))
        if self.size[0] < 1 or self.size[1] < 1:
            self._container.close()
            raise ValueError(f"{self.path}: the video stream has no frame size")
        frames = int(self._stream.frames or 0)
        self._declared_frames = frames or None  # what the container says, to tell a truncated file
        if not frames and self._stream.duration and self._stream.time_base:
            frames = round(float(self._stream.duration * self._stream.time_base) * self.fps)
        self.frame_count = frames or None
        self.has_audio = bool(self._container.streams.audio)

    def __iter__(self):
        pyav = av()
        count = 0
        try:
            for index, frame in enumerate(self._container.decode(self._stream)):
                time = float(frame.time) if frame.time is not None else None
                yield Frame(index, time, frame.to_ndarray(format="rgb24"))
                count += 1
        except pyav.error.FFmpegError as e:
            raise ValueError(f"{self.path}: the video is damaged ({e})") from None
        if self._declared_frames is not None and count < self._declared_frames:
            raise ValueError(f"{self.path}: the video ends early, after {count} of its {self._declared_frames} "
                             "frames (a truncated or damaged file)")

    def close(self) -> None:
        self._container.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<VideoReader {self.path.name} {self.size[0]}x{self.size[1]} {self.fps:g} fps>"


def _video_codec(pyav) -> str:
    for name in ("libx264", "h264", "mpeg4"):
        if name in pyav.codecs_available:
            try:
                pyav.codec.Codec(name, "w")
                return name
            except pyav.error.FFmpegError:
                continue
    raise RuntimeError("this FFmpeg build has no H.264 or MPEG-4 encoder")


class VideoWriter:
    """Write RGB frames to a video file (H.264, constant frame rate).

    Parameters
    ----------
    path : str or path-like
        The file to make (its container from the suffix, e.g. .mp4). It is
        written under a temporary name and renamed by `close`.
    fps : float or fractions.Fraction
        Frame rate.
    size : (width, height)
        Every frame's size.
    audio_from : str or path-like, optional
        A file whose first audio stream is copied as it is (no re-encoding).
    quality : int
        H.264 CRF, 0 (lossless) .. 51; 18 is visually lossless.

    Use as a context manager: on an exception (Ctrl-C included) the
    temporary file is removed and nothing is left under `path`.
    """

    def __init__(self, path, fps, size, *, audio_from=None, quality: int = 18):
        pyav = av()
        self.path = Path(path)
        self.size = (int(size[0]), int(size[1]))
        if self.size[0] < 1 or self.size[1] < 1:
            raise ValueError(f"size must be positive (width, height), got {tuple(size)}")
        rate = Fraction(fps).limit_denominator(1001 * 1000) if not isinstance(fps, Fraction) else fps
        if rate <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.part{self.path.suffix}")
        self._container = pyav.open(str(self._tmp), "w")
        self._audio_in = None
        try:
            codec = _video_codec(pyav)
            self._stream = self._container.add_stream(codec, rate=rate)
            self._stream.width, self._stream.height = self.size
            # 4:2:0 needs even sides; odd-sized frames keep their size in 4:4:4.
            even = self.size[0] % 2 == 0 and self.size[1] % 2 == 0
            self._stream.pix_fmt = "yuv420p" if even or codec == "mpeg4" else "yuv444p"
            if codec == "libx264":
                self._stream.options = {"crf": str(int(quality)), "preset": "veryfast"}
            self._audio = None
            if audio_from is not None:
                self._open_audio(pyav, Path(audio_from))
        except BaseException:
            self.abort()
            raise
        self._frames = 0
        self.rate = rate

    def _open_audio(self, pyav, source: Path) -> None:
        src = pyav.open(str(source))
        if not src.streams.audio:
            src.close()
            return
        self._audio_in = src
        audio = src.streams.audio[0]
        self._audio = self._container.add_stream_from_template(audio)
        self._audio_packets = (p for p in src.demux(audio) if p.dts is not None)
        self._pending = None

    def _mux_audio_until(self, seconds: float | None) -> None:
        """Copy audio packets up to `seconds` (all, for None), so audio and
        video stay interleaved in the file."""
        if self._audio is None:
            return
        while True:
            packet = self._pending or next(self._audio_packets, None)
            self._pending = None
            if packet is None:
                return
            if seconds is not None and packet.pts is not None and float(packet.pts * packet.time_base) > seconds:
                self._pending = packet
                return
            packet.stream = self._audio
            self._container.mux(packet)

    def write(self, image: np.ndarray) -> None:
        """Append one (H, W, 3|4) uint8 RGB(A) frame (alpha is dropped)."""
        pyav = av()
        if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
            raise ValueError(f"frames must be (H, W, 3|4) uint8, got {image.dtype} {image.shape}")
        if (image.shape[1], image.shape[0]) != self.size:
            raise ValueError(f"frame is {image.shape[1]}x{image.shape[0]}, the video {self.size[0]}x{self.size[1]}")
        frame = pyav.VideoFrame.from_ndarray(np.ascontiguousarray(image[..., :3]), format="rgb24")
        frame.pts = self._frames  # in frames: the encoder's time base is 1 / rate
        frame.time_base = 1 / self.rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._frames += 1
        self._mux_audio_until(float(self._frames / self.rate))

    def close(self) -> Path:
        """Finish the file and give it its name; returns the path. If that
        fails, nothing is left under either name."""
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
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
