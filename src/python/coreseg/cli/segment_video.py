"""`coreseg segment` on video files: STEM.overlay.mp4 (the source's frames
as a player shows them, display rotation applied, at the source's own
timestamps, its audio copied or, where MP4 cannot hold it, re-encoded;
with --legend, each frame's legend drawn on it) and STEM.areas.csv (per
frame: index, time in seconds, and the share of each class). With
--background, also STEM.background.mp4, as photos get STEM.background.jpg
beside their overlay: the same frames, times and audio, the background
blurred or replaced (the matte from the smoothed segmentation with
--smoothing).

Frames run through `Segmenter.stream` (several in flight, optional
temporal smoothing); every file is written under a temporary name and
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


def video_outputs(out: Path, video: Path, background=None) -> tuple[Path, ...]:
    """(overlay, areas) of one video, and its background video when
    `background` (--background's text) is given."""
    paths = (out / f"{video.stem}.overlay.mp4", out / f"{video.stem}.areas.csv")
    return paths + ((out / f"{video.stem}.background.mp4",) if background is not None else ())


def check_video_background(text: str) -> None:
    """Refuse what a video file cannot hold: "transparent" needs alpha."""
    if text == "transparent":
        raise ValueError("--background transparent needs an alpha channel, which an MP4 video cannot hold: give "
                         "videos a colour to key out instead (e.g. --background '#00FF00'), or take RGBA frames "
                         "from Segmenter.stream(frames, background='transparent'); photos get their RGBA PNGs "
                         "in a run without videos")


def background_options(args) -> dict | None:
    """Segmenter.stream's `background` for --background, --keep and
    --refine: the matte's edge soft unless --blocky, as photos get it."""
    if args.background is None:
        return None
    from ..drawing.image_outputs import parse_background

    back, radius = parse_background(args.background)
    return {"background": back, "blur": radius, "classes": list(args.keep) if args.keep else None,
            "smooth": not args.blocky, "refine": args.refine or False}


def overlay_options(model, args, classes, color) -> dict:
    """Segmentation.overlay options for every frame: --opacity, outlines
    unless --no-outline, and --label classes alone (in --color) without
    outlines, which would trace every class."""
    options = {"opacity": args.opacity, "outline": None if args.no_outline else OUTLINE}
    if args.blocky:
        options["smooth"] = False
    if classes is not None:
        ids = [model.label_index(c) for c in classes]
        options.update(classes=ids, color=color, outline=None)
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


def _writer(path: Path, reader, audio):
    """A VideoWriter of `reader`'s size, rate and timestamps; its warnings
    (audio it cannot hold) printed one line each."""
    from ..frames.video import VideoWriter

    with warnings.catch_warnings(record=True) as said:  # the writer's, on this thread: one line each below
        warnings.simplefilter("always")
        writer = VideoWriter(path, reader.rate, reader.size, audio_from=audio, time_base=_time_base(reader))
    for w in said:
        print(f"coreseg segment: warning: {w.message}", file=sys.stderr)
    return writer


def segment_video(model, video: Path, out: Path, args, options, background=None) -> dict:
    """One video to its files (`video_outputs`); returns its report entry.
    `background`: Segmenter.stream's, for STEM.background.mp4."""
    from ..drawing.legend import draw_legend
    from ..files.safe_io import write_text
    from ..frames.video import VideoReader

    paths = video_outputs(out, video, None if background is None else args.background)
    overlay_path, csv_path, videos = paths[0], paths[1], [paths[0]] + list(paths[2:])
    for path in videos:
        remove_stale_parts(path)
    legend = getattr(args, "legend", False)
    rows, name = [], str
    with VideoReader(video, warn=False) as reader, contextlib.ExitStack() as files:
        audio = video if reader.has_audio else None
        # Entered in turn: an error opening the second aborts the first (nothing is left under either name).
        writers = [files.enter_context(_writer(path, reader, audio)) for path in videos]
        frames = model.stream(reader, smoothing=args.smoothing, overlay=options, background=background)
        shown = frames if args.json else progress_bar(frames, args, reader.frame_count, "frame", video.name)
        try:
            for frame in shown:
                seg = frame.segmentation
                if legend:  # this frame's classes, drawn as photos draw theirs
                    draw_legend(frame.overlay, seg, classes=options.get("classes"), color=options.get("color"))
                writers[0].write(frame.overlay, frame.time)
                if background is not None:
                    writers[1].write(frame.background, frame.time)
                rows.append((frame.index, frame.time, seg.areas()))
                name = seg.name  # every frame's: the model's labels
        finally:
            frames.close()
            if shown is not frames and hasattr(shown, "close"):
                shown.close()  # the progress bar's line ends before a warning
    if reader.incomplete:
        n = len(rows)
        print(f"coreseg segment: warning: {video}: {reader.incomplete}; "
              f"{' and '.join(p.name for p in videos)} {'have' if len(videos) > 1 else 'has'} the "
              f"{n} frame{'s' if n != 1 else ''} read", file=sys.stderr)
    write_text(csv_path, areas_csv(rows, name))
    entry = {"video": str(video), "overlay": str(overlay_path), "areas": str(csv_path), "frames": len(rows),
             "fps": reader.fps, "incomplete": reader.incomplete, "audio": writers[0].audio}
    if background is not None:
        entry["background"] = str(videos[1])
    return entry


def segment_videos(model, videos, out: Path, args, classes, color, bad: dict) -> list[dict]:
    """Every video in turn (each is pipelined inside); failures go to `bad`
    with --keep-going, else stop the run."""
    from ..frames.pipeline import FrameError
    from ..scaleout.workers import ITEM_ERRORS

    options = overlay_options(model, args, classes, color)
    background = background_options(args)
    report = []
    for video in videos:
        try:
            report.append(segment_video(model, video, out, args, options, background))
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
