"""`coreseg eval`: a model on Datagen datapoints, or label maps against ground truth."""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import numpy as np

from ._common import progress_bar, refuse_existing


def _stem(path: Path) -> str:
    """A label map's image name: STEM for STEM.png and STEM.labels.png."""
    return path.stem.removesuffix(".labels")


def _read_label_png(path: Path) -> np.ndarray:
    from .._images import open_image

    with open_image(path) as im:  # checked: exists, readable, not a bomb
        if im.mode not in ("L", "I;16", "I;16B", "I", "P"):
            raise ValueError(f"{path}: expected a one-channel label PNG, got mode {im.mode}")
        labels = np.asarray(im)
    return labels.astype(np.int32) if labels.dtype != np.uint8 else labels


def parse_class_map(text: str, model_names, dataset_names) -> dict[str, list[str]]:
    """--map: {model class: [dataset classes]} from "a=x.*,y;b=z" or a JSON
    file {"a": ["x.*", "y"]}; patterns are globs over dataset class names."""
    from .._files import read_json

    path = Path(text)
    if path.is_file():
        raw = read_json(path)
        if not isinstance(raw, dict) or not all(isinstance(v, (list, str)) for v in raw.values()):
            raise ValueError(f"{path}: --map must be a JSON object of model class -> list of dataset classes")
        raw = {k: [v] if isinstance(v, str) else v for k, v in raw.items()}
    else:
        raw = {}
        for item in filter(None, (part.strip() for part in text.split(";"))):
            name, sep, patterns = item.partition("=")
            if not sep or not name.strip():
                raise ValueError(f"--map takes 'model_class=dataset_class,...;...', got {item!r}")
            raw[name.strip()] = [p.strip() for p in patterns.split(",") if p.strip()]
    groups, claimed = {}, {}
    for model_class, patterns in raw.items():
        if model_class not in model_names:
            raise ValueError(f"--map: the model has no class {model_class!r}; its classes: {', '.join(model_names)}")
        matched = [n for n in dataset_names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if not matched:
            raise ValueError(f"--map: {', '.join(patterns)} matches no dataset class for {model_class!r}")
        for n in matched:
            if n in claimed:
                raise ValueError(f"--map: dataset class {n!r} is given to both {claimed[n]!r} and {model_class!r}")
            claimed[n] = model_class
        groups[model_class] = matched
    return groups


def _eval_model(args, out: Path):
    """Confusion matrix of MODEL over the Datagen datapoints in DATASET."""
    from .. import load
    from ..groundtruth import DatagenClasses, datapoint_folders, load_datapoint
    from ..metrics import ConfusionMatrix, align_classes

    folders = datapoint_folders(args.dataset)
    if not folders:
        raise FileNotFoundError(f"{args.dataset}: no Datagen datapoints (folders with "
                                "semantic_segmentation_metadata.json)")
    classes = DatagenClasses.from_dataset(folders)
    model = load(args.model)
    model_names = model.labels or [str(i) for i in range(256)]
    groups = parse_class_map(args.class_map, model_names, classes.names) if args.class_map else {}
    names, gt_lut, lut = align_classes(model_names, classes.names, groups)
    if not groups and not any(name in classes.names for name in model_names):
        raise ValueError(f"none of the model's classes ({', '.join(model_names[:8])}"
                         f"{', ...' if len(model_names) > 8 else ''}) is a class of the dataset "
                         f"({', '.join(classes.names[:8])}{', ...' if len(classes.names) > 8 else ''}): "
                         "every score would be 0")
    cm = ConfusionMatrix(len(names), names)
    per_image = []
    skipped = []
    for folder in progress_bar(folders, args):
        point = load_datapoint(folder, classes)
        if point.image is None:
            skipped.append(str(folder))
            continue
        pred = model.predict(point.image).labels
        if pred.min() < 0 or pred.max() >= len(lut):
            raise ValueError(f"{folder}: the model predicted id {int(pred.max())}, beyond its {len(lut)} labels")
        one = ConfusionMatrix(len(names), names).update(gt_lut[point.labels], lut[pred])
        cm.merge(one)
        per_image.append({"image": folder.name, "miou": _finite(one.miou())})
    if skipped:
        print(f"skipped {len(skipped)} datapoint(s) without a photo: {', '.join(Path(s).name for s in skipped)}",
              file=sys.stderr)
    return cm, {"model": str(model.info.path), "dataset": str(args.dataset), "images": len(folders) - len(skipped),
                "skipped": skipped, **_per_image(per_image)}


def _eval_pairs(args, out: Path):
    """Confusion matrix of label PNGs in --pred against those in --gt."""
    from ..metrics import ConfusionMatrix

    if args.class_map:
        raise ValueError("--map applies to MODEL DATASET_DIR (a model's classes against a dataset's)")

    gt_files = {_stem(p): p for p in sorted(Path(args.gt).glob("*.png"))}
    # `segment` writes STEM.labels.png (and STEM.overlay.png, not a label map).
    pred_files = {_stem(p): p for p in sorted(Path(args.pred).glob("*.png")) if not p.stem.endswith(".overlay")}
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
    # Without a class count, it is the largest id seen plus one (the ignored
    # value is no class), found in the same single pass over the files: each
    # image is counted into a matrix of its own size, and the total grows.
    counts = np.zeros((num_classes or 0,) * 2, np.int64)
    per_image = []
    for g, p in progress_bar(pairs, args):
        gt, pred = _read_label_png(g), _read_label_png(p)
        n = num_classes or _classes_seen(gt, pred, ignore_index=args.ignore_index)
        one = ConfusionMatrix(n, names if num_classes else None, ignore_index=args.ignore_index).update(gt, pred)
        if n > len(counts):
            counts = np.pad(counts, (0, n - len(counts)))
        counts[:n, :n] += one.matrix
        # Classes this image lacks are absent from both maps: NaN, left out of its mean either way.
        per_image.append({"image": _stem(g), "miou": _finite(one.miou())})
    cm = ConfusionMatrix(max(len(counts), 1), names, ignore_index=args.ignore_index)
    cm.matrix[: len(counts), : len(counts)] = counts
    return cm, {"gt": str(args.gt), "pred": str(args.pred), "images": len(pairs), **_per_image(per_image)}


def _classes_seen(*maps, ignore_index=None) -> int:
    """1 + the largest id in the maps, the ignored value left out (1 at least)."""
    top = 0
    for labels in maps:
        values = labels[labels != ignore_index] if ignore_index is not None else labels
        if values.size:
            top = max(top, int(values.max()) + 1)
    return max(top, 1)


def _finite(v: float):
    return v if v == v else None  # NaN (no class present) as null


def _per_image(rows: list[dict]) -> dict:
    """Per-image mIoU beside the dataset's: both, named apart (the dataset
    mIoU pools every pixel; the mean of per-image mIoUs weighs images
    equally, and is what some papers report)."""
    values = [r["miou"] for r in rows if r["miou"] is not None]
    return {"per_image": rows, "mean_of_per_image_miou": sum(values) / len(values) if values else None}


def cmd_eval(args) -> int:
    from .._files import write_text
    from .._images import write_png
    from ..heatmap import confusion_heatmap

    if args.pred or args.gt:
        if not (args.pred and args.gt) or args.model or args.dataset:
            raise ValueError("give either MODEL DATASET_DIR, or --pred DIR --gt DIR")
    elif not (args.model and args.dataset):
        raise ValueError("give either MODEL DATASET_DIR, or --pred DIR --gt DIR")
    out = Path(args.out)
    files = [out / "report.json", out / "classes.csv", out / "table.txt", out / "confusion.png"]
    refuse_existing(files, args.force)
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
    write_png(files[3], confusion_heatmap(sub, [cm.names[i] for i in present], counts=args.counts))
    print(table)
    print(f"mIoU {cm.miou():.4f} over {source['images']} images; wrote {', '.join(str(f) for f in files)}")
    return 0
