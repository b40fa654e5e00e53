"""The files `coreseg segment` writes for one image, wherever it is segmented:
the CLI's own threads, its worker processes (--jobs) or Ray actors
(coreseg.dist).

For an image STEM: STEM.overlay.{png,jpg,webp} (with a legend unless
turned off), STEM.labels.png (16-bit class map at the image's resolution)
and STEM.areas.json; with `areas_only`, the areas alone; with exports,
STEM.masks/ID-NAME.png per class, STEM.polygons.json and COCO annotations
(returned, for the caller to number in input order).
"""

from __future__ import annotations

import collections
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .highlight import HIGHLIGHT, OUTLINE, highlight_color, highlight_map, highlight_palette  # noqa: F401  (the CLI names)

__all__ = ["OutputSettings", "ImageOutputs", "output_paths", "export_paths", "run_outputs", "parse_background",
           "background_path", "check_exports", "check_label_count", "EXPORTS", "highlight", "highlight_color", "colliding_stem", "UNSEEN"]

#: What STEM.labels.png holds where the model never saw the image (outside
#: a centre crop; -1 in `Segmentation.full_labels`): no class id can be it
#: (at most 16384 classes are scored), and `eval --pred` leaves it out.
UNSEEN = 65535



@dataclass
class OutputSettings:
    """What `segment` draws and writes (its command-line options).

    Attributes
    ----------
    out : pathlib.Path
        The output folder.
    opacity : float
        Overlay opacity, 0..1.
    outline, legend : bool
        Draw class boundaries; draw the legend of classes found.
    areas_only : bool
        Write STEM.areas.json alone (counted at the model's resolution).
    classes : list of str, optional
        Highlight only these classes.
    color : (r, g, b, a), optional
        Their colour (default: magenta for one, their own for several).
    smooth : bool
        Smooth class edges from the model's scores.
    exports : set of {"masks", "polygons", "coco"}
    background : str, optional
        `--background`'s text (`parse_background`): also write
        STEM.background.*.
    keep : list of str, optional
        The background's foreground classes (default: every class that is
        not background).
    blocky : bool
        The background's matte from the model's decision, enlarged by
        nearest neighbour (`Segmentation.matte(smooth=False)`), instead of
        the soft edge `replace_background` gives by default (from the
        scores, or a class map feathered).
    refine : bool or float
        The background's matte pulled onto the photo's edges
        (`replace_background(refine=)`: True, or a radius in pixels).
    """

    out: Path
    opacity: float = 0.6
    outline: bool = True
    legend: bool = True
    areas_only: bool = False
    classes: list | None = None
    color: tuple | None = None
    smooth: bool = True
    exports: set = field(default_factory=set)
    background: str | None = None
    keep: list | None = None
    blocky: bool = False
    refine: bool | float = False


def parse_background(text: str):
    """(background, blur radius or None) of `--background`: "blur" or
    "blur:RADIUS", "transparent", "#RRGGBB", or a picture's path."""
    from ..kernels import _args
    from ..kernels.palette import parse_color

    name, _, radius = text.partition(":")
    if name == "blur":
        if not radius:
            return "blur", None
        try:  # checked here, before any output is written
            return "blur", _args.blur_radius(float(radius))
        except ValueError as e:
            raise ValueError(f"--background blur:RADIUS takes a number of pixels, got {text!r} ({e})") from None
    if text == "transparent":
        return "transparent", None
    if text.startswith("#"):
        return parse_color(text), None
    if not Path(text).is_file():
        raise ValueError(f"--background must be blur[:RADIUS], transparent, #RRGGBB or a picture's path; "
                         f"{text!r} is none of these (no such file)")
    return Path(text), None


def background_path(out: Path, image: Path, background: str, fmt: str) -> Path:
    """STEM.background.FMT: always PNG when transparent (it has alpha)."""
    return out / f"{image.stem}.background.{'png' if background == 'transparent' else fmt}"


def output_paths(out: Path, image: Path, fmt: str, areas_only: bool = False):
    """(overlay, labels, areas) paths of one image (the first two None with
    `areas_only`)."""
    stem = image.stem
    if areas_only:
        return None, None, out / f"{stem}.areas.json"
    return out / f"{stem}.overlay.{fmt}", out / f"{stem}.labels.png", out / f"{stem}.areas.json"


#: What `exports` may hold.
EXPORTS = ("masks", "polygons", "coco")


def export_paths(out: Path, image: Path, exports) -> list[Path]:
    """The paths of one image's exports (STEM.masks, STEM.polygons.json)."""
    return ([out / f"{image.stem}.masks"] if "masks" in exports else []) + \
           ([out / f"{image.stem}.polygons.json"] if "polygons" in exports else [])


def run_outputs(out: Path, images, fmt, areas_only: bool = False, exports=(), background=None) -> list[Path]:
    """Every path a run over `images` writes, in input order: each image's
    overlay, labels and areas (`output_paths`; `fmt(image)` gives the
    overlay's format), its exports, then annotations.json for COCO: what
    the overwrite rule (`coreseg.files.safe_io.refuse_existing`) checks
    before any work, on every path (the command line, Ray)."""
    paths = []
    for image in map(Path, images):
        paths += [f for f in output_paths(out, image, fmt(image), areas_only) if f is not None]
        paths += export_paths(out, image, exports)
        if background is not None and not areas_only:
            paths.append(background_path(out, image, background, fmt(image)))
    return paths + ([out / "annotations.json"] if "coco" in exports else [])


def check_exports(exports) -> set:
    """`exports` as a set, each one known."""
    exports = {exports} if isinstance(exports, str) else set(exports)
    unknown = sorted(exports - set(EXPORTS))
    if unknown:
        raise ValueError(f"unknown export {unknown[0]!r}; the exports are {', '.join(EXPORTS)}")
    return exports


def colliding_stem(paths) -> str | None:
    """The first file stem two of `paths` share (their outputs would have
    the same names), or None."""
    counts = collections.Counter(Path(p).stem for p in paths)
    return next((Path(p).stem for p in paths if counts[Path(p).stem] > 1), None)


def highlight(seg, classes, color):
    """(class ids, palette) that draw only `classes`: other pixels get the
    transparent id 0, each class k + 1 its colour."""
    ids = seg.class_ids(classes)
    return ids, highlight_palette(ids, seg.palette, color)


def _file_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "class"


def check_label_count(labels) -> None:
    """Refuse a model whose class ids a 16-bit STEM.labels.png cannot hold
    apart from `UNSEEN`."""
    if labels is not None and len(labels) > UNSEEN:
        raise ValueError(f"the model has {len(labels)} classes, and a 16-bit label PNG holds ids 0..{UNSEEN - 1} "
                         f"({UNSEEN} marks pixels the model never saw)")


def label_png(full: np.ndarray) -> np.ndarray:
    """A class map at the image's resolution as STEM.labels.png's uint16:
    -1 (never seen) as `UNSEEN`."""
    return full.astype(np.uint16)  # modulo 2^16: -1 is 65535, UNSEEN (ids below it: check_label_count)


def write_exports(out: Path, image: Path, full: np.ndarray, seg, exports, coco):
    """STEM.masks/ID-NAME.png per class and STEM.polygons.json; returns the
    image's COCO annotations (`CocoWriter.annotate`), or None."""
    from ..files.safe_io import atomic_folder, write_text
    from ..files.images import write_png
    from ..files.export import class_masks, polygons

    masks = class_masks(full, seg.names)
    if getattr(seg.output, "kind", None) == "multilabel":
        # Each class's own channel, so overlaps survive (skin and hair both).
        ids = range(len(seg.names) if seg.names is not None else seg.output.channels + 1)
        masks = {i: m for i in ids if (m := seg.mask(i)).any()}
    if "masks" in exports:
        def write_masks(folder):
            for class_id, mask in masks.items():
                write_png(Path(folder) / f"{class_id:03d}-{_file_name(seg.name(class_id))}.png",
                          mask.astype(np.uint8) * 255)

        # The folder whole: masks of classes an earlier run found and this
        # one did not are not left beside the new ones, and a symlink in its
        # place is replaced, not written through.
        atomic_folder(out / f"{image.stem}.masks", write_masks)
    if "polygons" in exports:
        classes = [{"id": i, "name": seg.name(i), "polygons": polygons(m)} for i, m in masks.items()]
        doc = {"image": image.name, "width": int(full.shape[1]), "height": int(full.shape[0]), "classes": classes}
        write_text(out / f"{image.stem}.polygons.json", json.dumps(doc) + "\n")
    return coco.annotate(image.name, full) if coco is not None else None


class ImageOutputs:
    """Segments an image and writes its files: ``outputs(path, fmt)``.

    Thread-safe (it only reads its settings), and picklable settings make
    one in each worker process or actor.

    Parameters
    ----------
    model : Segmenter
    settings : OutputSettings
    """

    def __init__(self, model, settings: OutputSettings):
        self.model, self.settings = model, settings
        self.coco = None
        if "coco" in settings.exports:
            from ..files.export import CocoWriter

            self.coco = CocoWriter(model.labels)  # annotate() only: ids are given by the caller

    def __call__(self, image_path, fmt: str):
        """(report entry, COCO annotations or None) of one image, its files written.

        The entry is {"image", "areas", "timings"} and, unless areas_only,
        "overlay" and "labels" (paths as str)."""
        from .. import kernels
        from ..files.safe_io import write_text
        from ..files.images import read_image, write_image, write_png
        from .legend import draw_legend

        s = self.settings
        p = Path(image_path)
        overlay_path, labels_path, areas_path = output_paths(s.out, p, fmt, s.areas_only)
        # Areas are counted at the model's resolution: for them alone a reduced decode is enough.
        image = read_image(p, min_size=self.model.input_size if s.areas_only else None)
        seg = self.model.predict(image)
        shares = seg.areas()
        areas = {seg.name(i): share for i, share in shares.items()}
        if s.areas_only:
            write_text(areas_path, json.dumps(areas, indent=2) + "\n")
            return {"image": str(p), "areas": areas, "timings": seg.timings}, None
        full = seg.full_labels(smooth=s.smooth)
        outline = OUTLINE if s.outline else None
        if s.classes is None:
            overlay = seg.overlay(image, s.opacity, outline, smooth=s.smooth, labels=full)
        else:
            ids, palette = highlight(seg, s.classes, highlight_color(s.classes, s.color))
            overlay = kernels.composite(image, highlight_map(full, ids), palette, s.opacity, outline)
        if s.legend:  # the public draw_legend, as notebooks and video overlays (--legend) draw it
            draw_legend(overlay, seg, classes=s.classes, color=s.color)
        # Each output is complete or absent (written under a temporary name, then renamed).
        write_image(overlay_path, overlay, fmt)
        write_png(labels_path, label_png(full))
        write_text(areas_path, json.dumps(areas, indent=2) + "\n")
        annotated = write_exports(s.out, p, full, seg, s.exports, self.coco) if s.exports else None
        entry = {"image": str(p), "overlay": str(overlay_path), "labels": str(labels_path),
                 "areas": areas, "timings": seg.timings}
        if s.background is not None:
            back, radius = parse_background(s.background)
            path = background_path(s.out, p, s.background, fmt)
            changed = seg.replace_background(image, back, classes=s.keep, blur=radius, smooth=not s.blocky,
                                             refine=s.refine)
            write_image(path, changed, "png" if s.background == "transparent" else fmt)
            entry["background"] = str(path)
        return entry, annotated
