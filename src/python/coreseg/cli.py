"""The `coreseg` command line.

    coreseg demo [--out DIR] [--image PHOTO]
    coreseg segment MODEL IMAGE... [--label NAME ...] [--opacity F] [--out DIR] [--json] [--keep-going]
    coreseg eval MODEL DATASET_DIR [--out DIR]   |   coreseg eval --pred DIR --gt DIR [--out DIR]
    coreseg info MODEL [--json]
    coreseg annotate MODEL --labels FILE_OR_LIST [--colors ...] [--set KEY=VALUE ...] -o OUT [--force]
    coreseg selfcheck

MODEL may be the word `demo` for the bundled model. Every failure exits
non-zero with one line on stderr; `--debug` shows the traceback instead.
Outputs are written under a temporary name and renamed when complete, so a
failure never leaves a partial file, and a symlink at an output path is
replaced, not written through.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

OUTLINE = (255, 255, 255, 255)


def _model_path(name: str) -> str:
    if name != "demo":
        return name
    from . import demo

    return str(demo.model_path("onnx" if _needs_onnx_for_info() else "mlpackage"))


def _needs_onnx_for_info() -> bool:
    try:
        import coremltools  # noqa: F401
    except ImportError:
        return True
    return False


def _refuse_existing(paths, force: bool) -> None:
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]} exists{more}; pass --force to overwrite")


def _legend_entries(seg) -> list[tuple[int, str, float]]:
    entries = [(i, seg.name(i), share) for i, share in seg.areas().items() if seg.name(i) != "--"]
    return sorted(entries, key=lambda e: -e[2])


def _cmd_info(args) -> int:
    from .model_info import inspect

    info = inspect(_model_path(args.model))
    print(json.dumps(info.to_dict(), indent=2) if args.json else info.summary())
    return 0


def _cmd_annotate(args) -> int:
    from .annotate import annotate, read_label_list

    labels = read_label_list(args.labels)
    colors = read_label_list(args.colors) if args.colors else None
    metadata = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set takes KEY=VALUE, got {item!r}")
        metadata[key] = value
    info = annotate(args.model, labels, args.output, colors=colors, force=args.force, metadata=metadata)
    print(f"wrote {info.path}: {len(info.legend())} labels{' with colours' if info.colors is not None else ''}")
    return 0


def _cmd_selfcheck(args) -> int:
    from .selfcheck import main as selfcheck

    return selfcheck()


def _cmd_demo(args) -> int:
    from . import demo, kernels, load
    from ._images import read_image, write_png
    from .legend import with_legend
    from .metrics import confusion_matrix, iou_per_class

    out = Path(args.out)
    targets = [out / "overlay.png", out / "mask.png"]
    _refuse_existing(targets, args.force)

    t0 = time.perf_counter()
    model = load("demo")
    t_load = time.perf_counter() - t0
    if args.image:
        image, truth = read_image(args.image), None
        source = args.image
    else:
        image, truth = demo.scene(args.seed, (args.width, args.height))
        source = f"generated scene, seed {args.seed}, {args.width}x{args.height}"

    seg = model.predict(image)
    t0 = time.perf_counter()
    palette = seg.palette
    overlay = kernels.composite(image, seg.labels, palette, args.opacity, OUTLINE)
    framed = with_legend(overlay, _legend_entries(seg), palette)
    full = seg.full_labels()
    mask = kernels.colorize(full, palette)
    t_render = time.perf_counter() - t0

    out.mkdir(parents=True, exist_ok=True)
    write_png(targets[0], framed)
    write_png(targets[1], mask)

    print(f"coreseg demo: {model.info.path.name} ({model.backend}) on {source}")
    if truth is not None:
        names = model.labels
        cm = confusion_matrix(truth, full, len(names))
        iou = iou_per_class(cm)
        print(f"{'class':10} {'IoU':>6}  {'pixels':>7}")
        for i, name in enumerate(names):
            share = cm[i].sum() / cm.sum()
            print(f"{name:10} {'   -  ' if np.isnan(iou[i]) else f'{iou[i]:6.3f}'}  {share * 100:6.1f}%")
        print(f"{'mIoU':10} {np.nanmean(iou):6.3f}")
    t = seg.timings
    print(f"time: load {t_load * 1e3:.1f} ms, preprocess {t['preprocess'] * 1e3:.1f} ms, "
          f"inference {t['inference'] * 1e3:.1f} ms, argmax {t['postprocess'] * 1e3:.2f} ms, "
          f"render {t_render * 1e3:.1f} ms")
    print(f"wrote {targets[0]} and {targets[1]}")
    return 0


def _cmd_segment(args) -> int:
    from . import load
    from ._files import write_text
    from ._images import check_image_file, read_image, write_png

    model = load(args.model, crop=args.crop)
    smooth = model.has_scores and not args.blocky
    images = [Path(p) for p in args.images]
    stems = [p.stem for p in images]
    if len(set(stems)) != len(stems):
        dup = next(s for s in stems if stems.count(s) > 1)
        raise ValueError(f"two images are named {dup!r}: their outputs would collide")
    out = Path(args.out)
    outputs = {p: (out / f"{p.stem}.overlay.png", out / f"{p.stem}.labels.png", out / f"{p.stem}.areas.json")
               for p in images}
    classes = None
    if args.label:
        for name in args.label:
            model.label_index(name)  # KeyError listing the valid labels
        classes = list(args.label)
    if model.labels is not None and len(model.labels) > 65536:
        raise ValueError("models with more than 65536 classes cannot be written as 16-bit PNG")
    _refuse_existing([f for files in outputs.values() for f in files], args.force)
    bad = {}
    for p in images:  # every input checked before anything is written
        try:
            check_image_file(p)
        except (OSError, ValueError) as e:
            if not args.keep_going:
                raise
            bad[p] = str(e)
    out.mkdir(parents=True, exist_ok=True)

    progress = images
    if len(images) > 1 and not args.json:
        try:
            from tqdm import tqdm

            progress = tqdm(images, unit="image", file=sys.stderr)
        except ImportError:
            pass
    report = []
    for p in progress:
        if p in bad:
            continue
        try:
            image = read_image(p)
            seg = model.predict(image)
            overlay = seg.overlay(image, args.opacity, None if args.no_outline else OUTLINE, classes, smooth=smooth)
            full = seg.full_labels(smooth=smooth).astype(np.uint16)  # -1 (never seen) is written as 65535
        except (OSError, ValueError, RuntimeError) as e:
            if not args.keep_going:
                raise
            bad[p] = str(e)
            continue
        # Each output is complete or absent (written under a temporary name, then renamed).
        overlay_path, labels_path, areas_path = outputs[p]
        write_png(overlay_path, overlay)
        write_png(labels_path, full)
        areas = {seg.name(i): share for i, share in seg.areas().items()}
        write_text(areas_path, json.dumps(areas, indent=2) + "\n")
        report.append({"image": str(p), "overlay": str(overlay_path), "labels": str(labels_path),
                       "areas": areas, "timings": seg.timings})
    done = len(images) - len(bad)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"segmented {done} image{'s' if done != 1 else ''} into {out}")
    for p, why in bad.items():
        print(f"coreseg segment: skipped {p}: {why}", file=sys.stderr)
    if bad:
        print(f"coreseg segment: {len(bad)} of {len(images)} images failed", file=sys.stderr)
        return 1
    return 0


def _read_label_png(path: Path) -> np.ndarray:
    from ._files import check_pixels
    from ._images import pillow

    Image, _ = pillow()
    with Image.open(path) as im:
        check_pixels(im.size[0], im.size[1], path)
        if im.mode not in ("L", "I;16", "I;16B", "I", "P"):
            raise ValueError(f"{path}: expected a one-channel label PNG, got mode {im.mode}")
        labels = np.asarray(im)
    return labels.astype(np.int32) if labels.dtype != np.uint8 else labels


def _eval_model(args, out: Path):
    """Confusion matrix of MODEL over the Datagen datapoints in DATASET."""
    from . import load
    from .groundtruth import DatagenClasses, datapoint_folders, load_datapoint
    from .metrics import ConfusionMatrix

    folders = datapoint_folders(args.dataset)
    if not folders:
        raise FileNotFoundError(f"{args.dataset}: no Datagen datapoints (folders with "
                                "semantic_segmentation_metadata.json)")
    classes = DatagenClasses.from_dataset(folders)
    model = load(args.model)
    # Predicted ids are matched to dataset classes by name; model classes
    # the dataset does not have stay separate ("model: NAME"), so predicting
    # them counts against the score instead of vanishing.
    model_names = model.labels or [str(i) for i in range(256)]
    names = list(classes.names)
    lut = np.zeros(len(model_names), np.int32)
    for i, name in enumerate(model_names):
        if name in classes.names:
            lut[i] = classes.index(name)
        else:
            lut[i] = len(names)
            names.append(f"model: {name}")
    cm = ConfusionMatrix(len(names), names)
    skipped = []
    for folder in _progress(folders, args):
        point = load_datapoint(folder, classes)
        if point.image is None:
            skipped.append(str(folder))
            continue
        pred = model.predict(point.image).labels
        if pred.min() < 0 or pred.max() >= len(lut):
            raise ValueError(f"{folder}: the model predicted id {int(pred.max())}, beyond its {len(lut)} labels")
        cm.update(point.labels, lut[pred])
    if skipped:
        print(f"skipped {len(skipped)} datapoint(s) without a photo: {', '.join(Path(s).name for s in skipped)}",
              file=sys.stderr)
    return cm, {"model": str(model.info.path), "dataset": str(args.dataset), "images": len(folders) - len(skipped),
                "skipped": skipped}


def _eval_pairs(args, out: Path):
    """Confusion matrix of label PNGs in --pred against those in --gt."""
    from .metrics import ConfusionMatrix

    gt_files = {p.stem: p for p in sorted(Path(args.gt).glob("*.png"))}
    pred_files = {p.stem: p for p in sorted(Path(args.pred).glob("*.png"))}
    if not gt_files:
        raise FileNotFoundError(f"{args.gt}: no .png label maps")
    missing = sorted(set(gt_files) - set(pred_files))
    if missing:
        raise FileNotFoundError(f"{args.pred}: no prediction for {', '.join(missing[:5])}"
                                f"{f' (and {len(missing) - 5} more)' if len(missing) > 5 else ''}")
    names = None
    if args.names:
        names = [line.strip() for line in Path(args.names).read_text().splitlines() if line.strip()]
    num_classes = args.num_classes or (len(names) if names else None)
    pairs = [(gt_files[s], pred_files[s]) for s in gt_files]
    if num_classes is None:  # the largest id seen, plus one
        num_classes = 1 + max(int(labels.max()) for pair in pairs for labels in map(_read_label_png, pair)
                              if labels.size)
    cm = ConfusionMatrix(num_classes, names, ignore_index=args.ignore_index)
    for g, p in _progress(pairs, args):
        cm.update(_read_label_png(g), _read_label_png(p))
    return cm, {"gt": str(args.gt), "pred": str(args.pred), "images": len(pairs)}


def _progress(items, args):
    if len(items) > 1:
        try:
            from tqdm import tqdm

            return tqdm(items, unit="image", file=sys.stderr)
        except ImportError:
            pass
    return items


def _cmd_eval(args) -> int:
    from ._files import write_text
    from ._images import write_png
    from .heatmap import confusion_heatmap

    if args.pred or args.gt:
        if not (args.pred and args.gt) or args.model or args.dataset:
            raise ValueError("give either MODEL DATASET_DIR, or --pred DIR --gt DIR")
    elif not (args.model and args.dataset):
        raise ValueError("give either MODEL DATASET_DIR, or --pred DIR --gt DIR")
    out = Path(args.out)
    files = [out / "report.json", out / "classes.csv", out / "table.txt", out / "confusion.png"]
    _refuse_existing(files, args.force)
    cm, source = (_eval_pairs if args.pred else _eval_model)(args, out)
    out.mkdir(parents=True, exist_ok=True)
    report = {**source, **cm.to_dict()}
    write_text(files[0], json.dumps(report, indent=2) + "\n")
    cm.to_csv(files[1])
    table = cm.table(present_only=True)
    write_text(files[2], table + "\n")
    present = [i for i in range(cm.num_classes)
               if (cm.matrix[i].sum() or cm.matrix[:, i].sum()) and cm.names[i] != "--"]
    sub = cm.matrix[np.ix_(present, present)]
    write_png(files[3], confusion_heatmap(sub, [cm.names[i] for i in present]))
    print(table)
    print(f"mIoU {cm.miou():.4f} over {source['images']} images; wrote {', '.join(str(f) for f in files)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="coreseg", description="Semantic segmentation with Core ML models.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo", help="segment a generated scene (or your photo) with the bundled model")
    p.add_argument("--out", default="coreseg-demo", help="folder for overlay.png and mask.png")
    p.add_argument("--image", help="a photo to segment instead of a generated scene")
    p.add_argument("--seed", type=int, default=2_000_000, help="scene seed (training used seeds < 1000000)")
    p.add_argument("--width", type=int, default=800)
    p.add_argument("--height", type=int, default=600)
    p.add_argument("--opacity", type=float, default=0.55)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(run=_cmd_demo)

    p = sub.add_parser("segment", help="segment images: overlay, 16-bit label map and class areas per image")
    p.add_argument("model", help=".onnx, .mlpackage, .mlmodel, .mlmodelc, or 'demo'")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--label", action="append", help="overlay only this class (repeatable)")
    p.add_argument("--opacity", type=float, default=0.6)
    p.add_argument("--no-outline", action="store_true", help="do not draw class boundaries")
    p.add_argument("--crop", choices=["fill", "fit", "center"], default="fill",
                   help="how the image is placed in the model's input (Vision's crop and scale modes)")
    p.add_argument("--blocky", action="store_true",
                   help="map the model's class map to the image by nearest neighbour, even when the "
                        "model gives scores (default: smooth edges from the scores)")
    p.add_argument("--out", default=".", help="output folder")
    p.add_argument("--json", action="store_true", help="print a JSON report")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--keep-going", action="store_true",
                   help="skip images that cannot be read or segmented, report them at the end and exit 1 "
                        "(default: stop at the first, checking every image's header before writing anything)")
    p.set_defaults(run=_cmd_segment)

    p = sub.add_parser("eval", help="score a model on Datagen datapoints, or predicted label maps against ground truth")
    p.add_argument("model", nargs="?", help=".onnx, Core ML model, or 'demo'")
    p.add_argument("dataset", nargs="?", metavar="DATASET_DIR", help="a folder of Datagen datapoints")
    p.add_argument("--pred", help="folder of predicted label PNGs (8- or 16-bit), paired by name with --gt")
    p.add_argument("--gt", help="folder of ground-truth label PNGs")
    p.add_argument("--num-classes", type=int, help="with --pred/--gt: default the largest id + 1")
    p.add_argument("--names", help="with --pred/--gt: a file of class names, one per line")
    p.add_argument("--ignore-index", type=int, help="ground-truth id to leave out")
    p.add_argument("--out", default="coreseg-eval", help="folder for report.json, classes.csv, table.txt, confusion.png")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(run=_cmd_eval)

    p = sub.add_parser("info", help="describe a segmentation model (any OS)")
    p.add_argument("model", help=".mlpackage, .mlmodel, .onnx, or 'demo'")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(run=_cmd_info)

    p = sub.add_parser("annotate", help="copy a model with labels/colours in its preview metadata")
    p.add_argument("model", help=".mlpackage, .mlmodel or .onnx (never modified)")
    p.add_argument("--labels", required=True,
                   help="a file (JSON list, or one label per line), an inline JSON list, or a comma-separated list")
    p.add_argument("--colors", help="hex colours, one per label, given the same ways")
    p.add_argument("-o", "--output", required=True, help="where to write the annotated copy")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="more metadata, e.g. coreseg.output.activation=sigmoid or "
                        "coreseg.input.normalization=imagenet (repeatable)")
    p.add_argument("--force", action="store_true", help="replace OUTPUT if it exists")
    p.set_defaults(run=_cmd_annotate)

    p = sub.add_parser("selfcheck", help="check every native kernel against the reference here, with timings")
    p.set_defaults(run=_cmd_selfcheck)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # one line, never a traceback, unless --debug
        if args.debug:
            raise
        expected = (ValueError, KeyError, OSError, ImportError, RuntimeError)
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        if isinstance(e, RecursionError) or not isinstance(e, expected):
            message = f"{type(e).__name__}: {message} (--debug shows where)"
        print(f"coreseg {args.command}: error: {message}", file=sys.stderr)
        return 1
