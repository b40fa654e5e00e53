"""`coreseg segment`: overlays, label maps and areas for images.

Inputs are files, folders (their images; `--recursive` for subfolders)
and globs. For each image STEM it writes STEM.overlay.{png,jpg,webp} (with
a legend unless --no-legend), STEM.labels.png (16-bit class map at the
image's resolution) and STEM.areas.json (only that with --areas-only);
with --background, STEM.background.{jpg,png,...} besides. Two images are in
flight at once (coreseg.pipeline), so one is decoded and encoded while the
model runs the other. Videos: see segment_video.
"""

from __future__ import annotations

import glob
import json
import sys
from pathlib import Path

from ..frames.video import VIDEO_SUFFIXES
from ._common import backend_imports, check_jobs, progress_bar, run_items, workers_started
from .model_options import add_model_options, load_options

#: Files a folder contributes (HEIC needs the `heic` extra).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif")
#: ... and videos (coreseg.video imports PyAV only when a video is read).
MEDIA_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES
#: Images `segment` works on at once (threads: decoding, the model, the
#: kernels and encoding release the GIL).
PIPELINE_WORKERS = 2
#: What a --jobs worker imports as it starts, beside its model's backend.
WORKER_IMPORTS = ("coreseg.drawing.image_outputs", "coreseg.running.loader", "PIL.Image")


def expand_inputs(items, recursive: bool) -> list[Path]:
    """Image paths from files, folders and glob patterns, in order, each once."""
    found = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            matches = sorted(p for p in path.glob(pattern) if p.is_file() and p.suffix.lower() in MEDIA_SUFFIXES)
            if not matches:
                raise FileNotFoundError(f"{path}: no images or videos in this folder"
                                        f"{'' if recursive else ' (--recursive looks in subfolders)'}")
        elif glob.has_magic(str(item)):
            matches = sorted(Path(p) for p in glob.glob(str(item), recursive=recursive) if Path(p).is_file())
            if not matches:
                raise FileNotFoundError(f"{item}: no file matches this pattern")
        else:
            matches = [path]
        found.extend(matches)
    return list(dict.fromkeys(found))


def refine_arg(text: str) -> float:
    """--refine-radius: pixels, 1..MAX_REFINE_RADIUS."""
    import argparse

    from ..kernels import _args

    try:
        return _args.refine_radius(float(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {e}") from None


def cmd_segment(args) -> int:
    # One value for what follows: None (off), True (the default radius) or a radius.
    args.refine = args.refine_radius if args.refine_radius is not None else (True if args.refine else None)
    check_jobs(args)
    inputs = expand_inputs(args.images, args.recursive)
    videos = [p for p in inputs if p.suffix.lower() in VIDEO_SUFFIXES]
    images = [p for p in inputs if p.suffix.lower() not in VIDEO_SUFFIXES]
    # The workers start first: they import what they need while this
    # process loads the model and checks every input.
    with workers_started(args, WORKER_IMPORTS + backend_imports(args.model), len(images)):
        return _segment(args, inputs, videos, images)


def _segment(args, inputs, videos, images) -> int:
    from ..running.loader import load
    from ..files.images import check_image_file, default_format
    from ..drawing.image_outputs import (OutputSettings, check_label_count, colliding_stem, highlight_color,
                                         parse_background, run_outputs)
    from ..files.safe_io import refuse_existing
    from ..scaleout.workers import ITEM_ERRORS, WorkerDied

    from .segment_video import check_smoothing, check_video_background, segment_videos, video_outputs

    check_smoothing(args, videos)
    if videos and (args.areas_only or args.export):
        raise ValueError("--areas-only and --export are for images; a video gets STEM.overlay.mp4 and "
                         "STEM.areas.csv")
    options = load_options(args)
    model = load(args.model, **options)
    dup = colliding_stem(inputs)
    if dup is not None:
        same = [p for p in inputs if p.stem == dup]
        kind = "images" if not set(same) & set(videos) else "videos" if set(same) <= set(videos) else "inputs"
        raise ValueError(f"two {kind} are named {dup!r}: their outputs would collide")
    out = Path(args.out)
    fmt = {p: args.format or default_format(p) for p in images}
    exports = set(args.export or [])
    if args.areas_only and (exports or args.label or args.background):
        raise ValueError("--areas-only writes class areas alone: it cannot be combined with --export, --label "
                         "or --background")
    if args.legend and args.no_legend:
        raise ValueError("--legend (on video overlays) and --no-legend (off photos) contradict each other")
    if args.background is not None:
        parse_background(args.background)  # a clear error before any work
        if videos:
            check_video_background(args.background)
        for name in args.keep or []:
            model.label_index(name)  # KeyError listing the valid labels, and the closest
    elif args.keep:
        raise ValueError("--keep chooses the foreground of --background")
    elif args.refine is not None:
        raise ValueError("--refine follows the photo's edges with --background's matte, and no --background "
                         "was given")
    # Every output of the run, exports included: one overwrite rule for all (as coreseg.dist.segment).
    outputs = run_outputs(out, images, fmt.get, args.areas_only, exports, args.background)
    coco = None
    if "coco" in exports:
        from ..files.export import CocoWriter

        coco = CocoWriter(model.labels)
    if "polygons" in exports:
        from ..files.export import opencv

        opencv()  # the extra's message before any work
    classes = None
    if args.label:
        for name in args.label:
            model.label_index(name)  # KeyError listing the valid labels, and the closest
        classes = list(args.label)
    color = None
    if args.color:
        from ..kernels.palette import parse_color

        color = parse_color(args.color)
    color = highlight_color(classes, color)  # for videos too
    check_label_count(model.labels)
    outputs += [f for v in videos for f in video_outputs(out, v, args.background)]
    refuse_existing(outputs, args.force)  # symlinks too, dangling ones included
    bad = {}
    for p in images:  # every input checked before anything is written
        try:
            check_image_file(p)
        except (OSError, ValueError, ImportError) as e:
            if not args.keep_going:
                raise
            bad[p] = str(e)
    out.mkdir(parents=True, exist_ok=True)

    settings = OutputSettings(out, opacity=args.opacity, outline=not args.no_outline, legend=not args.no_legend,
                              areas_only=args.areas_only, classes=classes, color=color,
                              smooth=model.has_scores and not args.blocky, exports=exports,
                              background=args.background, keep=list(args.keep) if args.keep else None,
                              blocky=args.blocky, refine=args.refine or False)
    todo = [p for p in images if p not in bad]
    results = {}
    outcomes = _segment_images(model, settings, [(p, fmt[p]) for p in todo], args)
    try:
        for outcome in progress_bar(outcomes, args, total=len(todo)) if not args.json else outcomes:
            p, error = todo[outcome.index], outcome.error
            if error is None:
                results[outcome.index] = outcome.value
                continue
            if isinstance(error, WorkerDied):
                error = WorkerDied(f"{p}: {error}")
            if not args.keep_going or not isinstance(error, ITEM_ERRORS):
                raise error
            bad[p] = str(error)
    finally:
        outcomes.close()  # stopping at a failure: the workers end now, not when collected
    if args.workers is not None:
        args.workers.close()  # videos run in this process: the workers' models are freed now
    report = []
    for i in sorted(results):  # input order, whatever order they finished in
        entry, annotated = results[i]
        report.append(entry)
        if annotated is not None:
            coco.add_annotations(annotated)
    if coco is not None:
        coco.write(out / "annotations.json")
    report += segment_videos(model, videos, out, args, classes, color, bad)
    done = [p for p in inputs if p not in bad]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"segmented {_count(done, videos)} into {out}")
    for p, why in bad.items():
        print(f"coreseg segment: skipped {p}: {why}", file=sys.stderr)
    if bad:
        print(f"coreseg segment: {len(bad)} of {_count(inputs, videos)} failed", file=sys.stderr)
        return 1
    return 0


def _segment_images(model, settings, items, args):
    """Outcomes (coreseg.scaleout.workers.Outcome) of segmenting items (path,
    format): on --jobs worker processes, each with its own model, or in
    this process with two images in flight (one is decoded and encoded
    while the model runs the other)."""
    from ..drawing.image_outputs import ImageOutputs

    write = ImageOutputs(model, settings)
    return run_items(args, items, lambda item: write(*item), outputs_worker,
                     lambda threads: (str(model.info.path), load_options(args), settings, threads),
                     in_flight=PIPELINE_WORKERS)


def _count(paths, videos) -> str:
    """"3 images", "1 video", "2 images and 1 video"."""
    n_videos = sum(p in videos for p in paths)
    n_images = len(paths) - n_videos
    parts = [f"{n} {kind}{'s' if n != 1 else ''}" for n, kind in ((n_images, "image"), (n_videos, "video")) if n]
    return " and ".join(parts) or "0 images"


def add_parser(sub, common) -> None:
    p = sub.add_parser("segment", parents=[common],
                       help="segment images (overlay, 16-bit label map and class areas per image) and videos "
                            "(overlay video and per-frame class areas)")
    p.add_argument("model", help=".onnx, .mlpackage, .mlmodel, .mlmodelc, or 'demo'")
    p.add_argument("images", nargs="+", metavar="INPUT",
                   help="image or video files (.mp4, .mov, .mkv, ...; needs the video extra), folders of them, "
                        "or glob patterns (quote them: 'shots/*.heic')")
    p.add_argument("--smoothing", choices=["ema", "hysteresis"],
                   help="videos: smooth the classes over time against flicker (ema: average the scores; "
                        "hysteresis: a new class must hold 3 frames); reset at scene cuts")
    p.add_argument("--recursive", action="store_true", help="look in subfolders of folders (and ** in globs)")
    p.add_argument("--label", action="append",
                   help="highlight only this class, outlined alone (repeatable)")
    p.add_argument("--color", help="highlight colour for --label classes, '#RRGGBB[AA]' "
                                   "(default: magenta for one class, the classes' own colours for several)")
    p.add_argument("--opacity", type=float, default=0.6, help="overlay opacity, 0..1 (default 0.6)")
    p.add_argument("--no-outline", action="store_true", help="do not draw class boundaries")
    p.add_argument("--no-legend", action="store_true", help="photos: do not draw the legend of classes found")
    p.add_argument("--legend", action="store_true",
                   help="videos: draw each frame's legend on the overlay video (off by default: it changes "
                        "from frame to frame); photos always have one unless --no-legend")
    p.add_argument("--areas-only", action="store_true",
                   help="write only STEM.areas.json (shares of each class, counted at the model's resolution); "
                        "JPEG photos are then decoded at reduced scale, several times faster")
    p.add_argument("--format", choices=["png", "jpg", "webp"],
                   help="overlay file format (default: jpg for JPEG and HEIC photos, png otherwise)")
    p.add_argument("--blocky", action="store_true",
                   help="map the model's class map to the image by nearest neighbour, even when the "
                        "model gives scores (default: smooth edges from the scores)")
    p.add_argument("--out", default="coreseg-out", help="output folder (default: coreseg-out)")
    p.add_argument("--export", action="append", choices=["masks", "polygons", "coco"],
                   help="also write one PNG mask per class (STEM.masks/), class outlines as polygons with holes "
                        "(STEM.polygons.json; needs OpenCV), or COCO annotations of every image "
                        "(annotations.json, RLE; needs pycocotools) (repeatable)")
    p.add_argument("--background", metavar="blur[:RADIUS]|#RRGGBB|IMAGE|transparent",
                   help="also write, beside the overlay, STEM.background.jpg (or .png) for a photo and "
                        "STEM.background.mp4 for a video (the same frames, times and audio as its overlay): the "
                        "background blurred (RADIUS in pixels, default 1%% of the long side), a colour, a picture "
                        "scaled to cover it, or made transparent (photos only, an RGBA PNG: MP4 has no alpha); "
                        "the foreground's edge is soft (from the scores, smoothed over time with --smoothing) "
                        "unless --blocky")
    # A flag and a separate radius: an optional value (nargs="?") would take
    # the next input file for its radius.
    p.add_argument("--refine", action="store_true",
                   help="with --background: pull the matte's edge onto the photo's own edges (a guided filter "
                        "with the photo as guide, looking two of the model's pixels around)")
    p.add_argument("--refine-radius", type=refine_arg, metavar="RADIUS",
                   help="--refine with this radius, in pixels of the photo")
    p.add_argument("--keep", action="append", metavar="CLASS",
                   help="with --background: the classes to keep (repeatable; default every class that is not "
                        "background)")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="images: worker processes, each with its own model (default: every core; 1: this "
                        "process only, two images in flight)")
    p.add_argument("--keep-going", action="store_true",
                   help="skip images that cannot be read or segmented, report them at the end and exit 1 "
                        "(default: stop at the first, checking every image's header before writing anything)")
    add_model_options(p)
    p.set_defaults(run=cmd_segment)


def outputs_worker(model_path: str, load_kwargs: dict, settings, threads: int | None):
    """What a --jobs worker process builds (coreseg.scaleout.workers): the
    model loaded there, with its share of the cores; items are (image path,
    format)."""
    from ..drawing.image_outputs import ImageOutputs
    from ..running.loader import load_model

    outputs = ImageOutputs(load_model(model_path, threads, assumptions=False, **load_kwargs), settings)
    return lambda item: outputs(*item)
