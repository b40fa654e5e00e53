"""`coreseg segment`: overlays, label maps and areas for images.

Inputs are files, folders (their images; `--recursive` for subfolders)
and globs. For each image STEM it writes STEM.overlay.{png,jpg,webp} (with
a legend unless --no-legend), STEM.labels.png (16-bit class map at the
image's resolution) and STEM.areas.json (only that with --areas-only).
Two images are in flight at once (coreseg.pipeline), so one is decoded and
encoded while the model runs the other. Videos: see segment_video.
"""

from __future__ import annotations

import glob
import json
import re
import sys
from pathlib import Path

import numpy as np

from ..video import VIDEO_SUFFIXES
from ._common import OUTLINE, progress_bar, refuse_existing

#: Files a folder contributes (HEIC needs the `heic` extra).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".heif")
#: ... and videos (coreseg.video imports PyAV only when a video is read).
MEDIA_SUFFIXES = IMAGE_SUFFIXES + VIDEO_SUFFIXES
#: The highlight colour of a single --label class without --color: magenta,
#: rare in photos, unlike the palette's realistic sky blue or grass green.
HIGHLIGHT = (255, 0, 255, 255)
#: Images `segment` works on at once (threads: decoding, the model, the
#: kernels and encoding release the GIL).
PIPELINE_WORKERS = 2


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


def highlight(seg, classes, color):
    """(labels, palette) that draw only `classes`, outlined only where they
    end: other pixels get the transparent id 0."""
    ids = seg.class_ids(classes)
    palette = np.zeros((len(ids) + 1, 4), np.uint8)
    for k, class_id in enumerate(ids, 1):
        palette[k] = color if color is not None else seg.palette[class_id]
    return ids, palette


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "class"


def write_exports(out: Path, image: Path, full: np.ndarray, seg, exports, coco):
    """--export: STEM.masks/ID-NAME.png per class and STEM.polygons.json;
    returns the image's COCO annotations (`CocoWriter.annotate`), which the
    caller adds in input order, or None."""
    from .._files import write_text
    from .._images import write_png
    from ..export import class_masks, polygons

    masks = class_masks(full, seg.names)
    if "masks" in exports:
        folder = out / f"{image.stem}.masks"
        folder.mkdir(exist_ok=True)
        for class_id, mask in masks.items():
            write_png(folder / f"{class_id:03d}-{_file_name(seg.name(class_id))}.png", mask.astype(np.uint8) * 255)
    if "polygons" in exports:
        classes = [{"id": i, "name": seg.name(i), "polygons": polygons(m)} for i, m in masks.items()]
        doc = {"image": image.name, "width": int(full.shape[1]), "height": int(full.shape[0]), "classes": classes}
        write_text(out / f"{image.stem}.polygons.json", json.dumps(doc) + "\n")
    return coco.annotate(image.name, full) if coco is not None else None


class _Renderer:
    """Everything `segment` writes for one image; called on pipeline workers
    (thread-safe: it only reads its settings; COCO annotations are returned
    for the caller to number in input order)."""

    def __init__(self, model, args, classes, color, smooth, exports, coco, out):
        self.model, self.args, self.classes, self.color = model, args, classes, color
        self.smooth, self.exports, self.coco, self.out = smooth, exports, coco, out

    def __call__(self, p: Path, overlay_path: Path, labels_path: Path, areas_path: Path, fmt: str):
        """(report entry, COCO annotations or None) of one image, its files written."""
        from .. import kernels
        from .._files import write_text
        from .._images import read_image, write_image, write_png
        from ..legend import draw_legend

        args = self.args
        # Areas are counted at the model's resolution: for them alone a reduced decode is enough.
        image = read_image(p, min_size=self.model.input_size if args.areas_only else None)
        seg = self.model.predict(image)
        shares = seg.areas()
        areas = {seg.name(i): share for i, share in shares.items()}
        if args.areas_only:
            write_text(areas_path, json.dumps(areas, indent=2) + "\n")
            return {"image": str(p), "areas": areas, "timings": seg.timings}, None
        full = seg.full_labels(smooth=self.smooth)
        outline = None if args.no_outline else OUTLINE
        if self.classes is None:
            overlay = seg.overlay(image, args.opacity, outline, smooth=self.smooth, labels=full)
            entries = seg.legend()
            palette = seg.palette
        else:
            ids, palette = highlight(seg, self.classes, self.color)
            only = np.zeros(full.shape, np.uint8)
            for k, class_id in enumerate(ids, 1):
                only[full == class_id] = k
            overlay = kernels.composite(image, only, palette, args.opacity, outline)
            entries = [(k, seg.name(i), shares.get(i, 0.0)) for k, i in enumerate(ids, 1)]
        if not args.no_legend:
            draw_legend(overlay, entries, palette)
        # Each output is complete or absent (written under a temporary name, then renamed).
        write_image(overlay_path, overlay, fmt)
        write_png(labels_path, full.astype(np.uint16))  # -1 (never seen) is written as 65535
        write_text(areas_path, json.dumps(areas, indent=2) + "\n")
        annotated = write_exports(self.out, p, full, seg, self.exports, self.coco) if self.exports else None
        return {"image": str(p), "overlay": str(overlay_path), "labels": str(labels_path),
                "areas": areas, "timings": seg.timings}, annotated


def cmd_segment(args) -> int:
    from .. import load
    from .._images import check_image_file, default_format
    from ..pipeline import FrameError, ordered_map

    from .segment_video import check_smoothing, segment_videos, video_outputs

    inputs = expand_inputs(args.images, args.recursive)
    videos = [p for p in inputs if p.suffix.lower() in VIDEO_SUFFIXES]
    images = [p for p in inputs if p.suffix.lower() not in VIDEO_SUFFIXES]
    check_smoothing(args, videos)
    if videos and (args.areas_only or args.export):
        raise ValueError("--areas-only and --export are for images; a video gets STEM.overlay.mp4 and "
                         "STEM.areas.csv")
    model = load(args.model, crop=args.crop)
    smooth = model.has_scores and not args.blocky
    stems = [p.stem for p in inputs]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        same = [p for p in inputs if p.stem == dup]
        kind = "images" if not set(same) & set(videos) else "videos" if set(same) <= set(videos) else "inputs"
        raise ValueError(f"two {kind} are named {dup!r}: their outputs would collide")
    out = Path(args.out)
    fmt = {p: args.format or default_format(p) for p in images}
    exports = set(args.export or [])
    if args.areas_only and (exports or args.label):
        raise ValueError("--areas-only writes class areas alone: it cannot be combined with --export or --label")
    outputs = {p: (None if args.areas_only else out / f"{p.stem}.overlay.{fmt[p]}",
                   None if args.areas_only else out / f"{p.stem}.labels.png", out / f"{p.stem}.areas.json")
               for p in images}
    extra = [out / f"{p.stem}.masks" for p in images] if "masks" in exports else []
    extra += [out / f"{p.stem}.polygons.json" for p in images] if "polygons" in exports else []
    extra += [out / "annotations.json"] if "coco" in exports else []
    coco = None
    if "coco" in exports:
        from ..export import CocoWriter

        coco = CocoWriter(model.labels)
    if "polygons" in exports:
        from ..export import opencv

        opencv()  # the extra's message before any work
    classes = None
    if args.label:
        for name in args.label:
            model.label_index(name)  # KeyError listing the valid labels, and the closest
        classes = list(args.label)
    color = None
    if args.color:
        from ..palette import parse_color

        color = parse_color(args.color)
    elif classes is not None and len(classes) == 1:
        color = HIGHLIGHT
    if model.labels is not None and len(model.labels) > 65536:
        raise ValueError("models with more than 65536 classes cannot be written as 16-bit PNG")
    extra += [f for v in videos for f in video_outputs(out, v)]
    refuse_existing([f for files in outputs.values() for f in files if f is not None] + extra, args.force)
    bad = {}
    for p in images:  # every input checked before anything is written
        try:
            check_image_file(p)
        except (OSError, ValueError, ImportError) as e:
            if not args.keep_going:
                raise
            bad[p] = str(e)
    out.mkdir(parents=True, exist_ok=True)

    render = _Renderer(model, args, classes, color, smooth, exports, coco, out)

    def run(p: Path):
        """One image, read to written, on a pipeline worker: (path, report entry or None, error or None)."""
        if p in bad:
            return p, None, None
        try:
            return p, render(p, *outputs[p], fmt[p]), None
        except (OSError, ValueError, RuntimeError, ImportError) as e:
            if not args.keep_going:
                raise
            return p, None, str(e)

    # Two images in flight: one is decoded and encoded while the model runs the other.
    results = ordered_map(run, images, workers=PIPELINE_WORKERS)
    report = []
    try:
        for p, entry, error in progress_bar(results, args, total=len(images)) if not args.json else results:
            if error is not None:
                bad[p] = error
            elif entry is not None:
                entry, annotated = entry
                report.append(entry)
                if annotated is not None:
                    coco.add_annotations(annotated)
    except FrameError as e:
        raise e.__cause__ from None
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
    p.add_argument("--no-legend", action="store_true", help="do not draw the legend of classes found")
    p.add_argument("--areas-only", action="store_true",
                   help="write only STEM.areas.json (shares of each class, counted at the model's resolution); "
                        "JPEG photos are then decoded at reduced scale, several times faster")
    p.add_argument("--format", choices=["png", "jpg", "webp"],
                   help="overlay file format (default: jpg for JPEG and HEIC photos, png otherwise)")
    p.add_argument("--crop", choices=["fill", "fit", "center"], default="fill",
                   help="how the image is placed in the model's input (Vision's crop and scale modes)")
    p.add_argument("--blocky", action="store_true",
                   help="map the model's class map to the image by nearest neighbour, even when the "
                        "model gives scores (default: smooth edges from the scores)")
    p.add_argument("--out", default="coreseg-out", help="output folder (default: coreseg-out)")
    p.add_argument("--export", action="append", choices=["masks", "polygons", "coco"],
                   help="also write one PNG mask per class (STEM.masks/), class outlines as polygons with holes "
                        "(STEM.polygons.json; needs OpenCV), or COCO annotations of every image "
                        "(annotations.json, RLE; needs pycocotools) (repeatable)")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--keep-going", action="store_true",
                   help="skip images that cannot be read or segmented, report them at the end and exit 1 "
                        "(default: stop at the first, checking every image's header before writing anything)")
    p.set_defaults(run=cmd_segment)
