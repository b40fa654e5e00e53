"""`coreseg segment` on video files: STEM.overlay.mp4 (same frame count,
frame rate and size as the source, its audio copied) and STEM.areas.csv
(per frame: index, time in seconds, and the share of each class).

Frames run through `Segmenter.stream` (several in flight, optional
temporal smoothing); both files are written under temporary names and
renamed when complete, so Ctrl-C leaves nothing half-written.
"""

from __future__ import annotations

import csv
import io
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


def segment_video(model, video: Path, out: Path, args, options) -> dict:
    """One video to its two files; returns its report entry."""
    from ..files.safe_io import write_text
    from ..frames.video import VideoReader, VideoWriter

    overlay_path, csv_path = video_outputs(out, video)
    rows, name = [], str
    with VideoReader(video) as reader:
        audio = video if reader.has_audio else None
        with VideoWriter(overlay_path, reader.rate, reader.size, audio_from=audio) as writer:
            frames = model.stream(reader, smoothing=args.smoothing, overlay=options)
            shown = frames if args.json else progress_bar(frames, args, reader.frame_count, "frame", video.name)
            try:
                for frame in shown:
                    writer.write(frame.overlay)
                    rows.append((frame.index, frame.time, frame.segmentation.areas()))
                    name = frame.segmentation.name  # every frame's: the model's labels
            finally:
                frames.close()
    write_text(csv_path, areas_csv(rows, name))
    return {"video": str(video), "overlay": str(overlay_path), "areas": str(csv_path), "frames": len(rows),
            "fps": reader.fps}


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
