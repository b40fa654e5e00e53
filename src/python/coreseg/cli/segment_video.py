"""`coreseg segment` on video files: STEM.overlay.mp4 (the source's frames
as a player shows them, display rotation applied, at the source's own
timestamps, its audio copied or, where MP4 cannot hold it, re-encoded) and
STEM.areas.csv (per frame: index, time in seconds, and the share of each
class).

Frames run through `Segmenter.stream` (several in flight, optional
temporal smoothing); both files are written under temporary names and
renamed when complete, so Ctrl-C, SIGTERM or SIGHUP leave nothing
half-written, and a later run removes what a killed one left under the
overlay's temporary-name pattern. A video that ends before its container
said is a warning on stderr (its name and the frames reached) and an
"incomplete" entry in the report; its overlay has the frames there were.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import sys
import warnings
from pathlib import Path

from ._common import OUTLINE, progress_bar


def video_outputs(out: Path, video: Path) -> tuple[Path, Path]:
    return out / f"{video.stem}.overlay.mp4", out / f"{video.stem}.areas.csv"


def overlay_options(model, args, classes, color) -> dict:
    """Segmentation.overlay options for every frame: --opacity, outlines
    unless --no-outline, and --label classes alone (in --color) without
    outlines, which would trace every class."""
    options = {"opacity": args.opacity, "outline": None if args.no_outline else OUTLINE}
    if args.blocky:
        options["smooth"] = False
    if classes is not None:
        ids = [model.label_index(c) for c in classes]
        palette = model.palette()
        if color is not None:
            palette[ids] = color
        options.update(classes=ids, palette=palette, outline=None)
    return options


def areas_csv(rows, names) -> str:
    """CSV text: frame, time, then one column per class seen (in id order)."""
    seen = sorted({i for _, _, areas in rows for i in areas})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["frame", "time"] + [names(i) for i in seen])
    for index, time, areas in rows:
        writer.writerow([index, "" if time is None else f"{time:.6f}"] + [f"{areas.get(i, 0.0):.6f}" for i in seen])
    return buffer.getvalue()


def _process_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill would end it there: never guess
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, as someone else
        return True
    return True


def remove_stale_parts(path: Path) -> list[Path]:
    """Remove what a killed run left of `path`: files named as VideoWriter's
    temporary name for this very path (``.NAME.PID.partSUFFIX``, beside
    it) whose process PID is gone. Nothing else: not another path's, not a
    live run's, not this process's. Returns what was removed."""
    from ..frames.video import PART_NAME

    before, after = PART_NAME.format(name=path.name, pid="{pid}", suffix=path.suffix).split("{pid}")
    pattern = re.compile(re.escape(before) + r"(\d+)" + re.escape(after))
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or int(match[1]) == os.getpid() or _process_alive(int(match[1])):
            continue
        with contextlib.suppress(OSError):
            if not entry.is_dir(follow_symlinks=False):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _time_base(reader):
    """The source's time base when it is a usable one (its timestamps are
    then kept exactly), else VideoWriter's default."""
    tb = reader.time_base
    return tb if tb is not None and 0 < tb <= 1 and tb.denominator <= 10_000_000 else None


def segment_video(model, video: Path, out: Path, args, options) -> dict:
    """One video to its two files; returns its report entry."""
    from ..files.safe_io import write_text
    from ..frames.video import VideoReader, VideoWriter

    overlay_path, csv_path = video_outputs(out, video)
    remove_stale_parts(overlay_path)
    rows, name = [], str
    with VideoReader(video, warn=False) as reader:
        audio = video if reader.has_audio else None
        with warnings.catch_warnings(record=True) as said:  # the writer's, on this thread: one line each below
            warnings.simplefilter("always")
            writer = VideoWriter(overlay_path, reader.rate, reader.size, audio_from=audio,
                                 time_base=_time_base(reader))
        for w in said:
            print(f"coreseg segment: warning: {w.message}", file=sys.stderr)
        with writer:
            frames = model.stream(reader, smoothing=args.smoothing, overlay=options)
            shown = frames if args.json else progress_bar(frames, args, reader.frame_count, "frame", video.name)
            try:
                for frame in shown:
                    writer.write(frame.overlay, frame.time)
                    rows.append((frame.index, frame.time, frame.segmentation.areas()))
                    name = frame.segmentation.name  # every frame's: the model's labels
            finally:
                frames.close()
                if shown is not frames and hasattr(shown, "close"):
                    shown.close()  # the progress bar's line ends before a warning
    if reader.incomplete:
        n = len(rows)
        print(f"coreseg segment: warning: {video}: {reader.incomplete}; {overlay_path.name} has the "
              f"{n} frame{'s' if n != 1 else ''} read", file=sys.stderr)
    write_text(csv_path, areas_csv(rows, name))
    return {"video": str(video), "overlay": str(overlay_path), "areas": str(csv_path), "frames": len(rows),
            "fps": reader.fps, "incomplete": reader.incomplete, "audio": writer.audio}


def segment_videos(model, videos, out: Path, args, classes, color, bad: dict) -> list[dict]:
    """Every video in turn (each is pipelined inside); failures go to `bad`
    with --keep-going, else stop the run."""
    from ..frames.pipeline import FrameError
    from ..scaleout.workers import ITEM_ERRORS

    options = overlay_options(model, args, classes, color)
    report = []
    for video in videos:
        try:
            report.append(segment_video(model, video, out, args, options))
        except FrameError as e:
            error = e.__cause__
            if not args.keep_going or not isinstance(error, (OSError, ValueError, RuntimeError)):
                raise error from None
            bad[video] = f"frame {e.index}: {error}"
        except ITEM_ERRORS as e:
            if not args.keep_going:
                raise
            bad[video] = str(e)
    return report


def check_smoothing(args, videos) -> None:
    if args.smoothing and not videos:
        raise ValueError("--smoothing smooths video frames over time, and no video was given")
