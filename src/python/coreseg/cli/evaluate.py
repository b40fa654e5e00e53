"""`coreseg eval`: a model on a dataset (Datagen datapoints, PASCAL VOC,
Cityscapes, photos with their ground truth in two folders or a list file),
or label maps against ground truth; report.json, classes.csv, table.txt,
confusion.png, and worst/ (the images scored worst, drawn, with index.html)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from ._common import READ_AHEAD, backend_imports, check_jobs, run_items, workers_started
from .eval_datasets import dataset_of, eval_dataset
from .eval_run import (EvalRun, collect, every_image_failed, parse_class_map, per_image_rows,  # noqa: F401 - parse_class_map: its old path
                       per_image_summary, write_worst)
from .model_options import add_model_options, load_options

__all__ = ["add_parser", "cmd_eval", "parse_class_map"]

#: worst/'s default number of images.
WORST = 12

#: What an eval worker imports as it starts, beside its model's backend.
WORKER_IMPORTS = ("coreseg.evaluation.scoring", "coreseg.evaluation.image_scoring", "coreseg.running.loader", "cv2",
                  "PIL.Image")


def _stem(path: Path) -> str:
    """A label map's image name: STEM for STEM.png and STEM.labels.png."""
    return path.stem.removesuffix(".labels")


def _label_files(folder, flag: str) -> dict:
    """{image name: path} of the label PNGs in a folder (STEM.png or
    STEM.labels.png; `segment`'s STEM.overlay.png left out); two files for
    one image (y.png and y.labels.png) are an error naming both."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder ({flag})")
    files = {}
    for path in sorted(folder.glob("*.png")):
        if path.stem.endswith(".overlay") or not path.is_file():
            continue
        stem = _stem(path)
        if stem in files:
            raise ValueError(f"{files[stem]} and {path} are both label maps of image {stem!r} ({flag}): "
                             "remove or rename one")
        files[stem] = path
    return files


def _eval_model(args):
    """Scores of MODEL over the Datagen datapoints in DATASET."""
    from ..running.loader import load
    from ..evaluation.groundtruth import DatagenClasses, datapoint_folders
    from ..evaluation.boundary import merge_boundary
    from ..evaluation.scoring import DatapointScorer, datapoint_worker, merge_scores

    folders = datapoint_folders(args.dataset)
    if not folders:
        raise FileNotFoundError(f"{args.dataset}: no Datagen datapoints (folders with "
                                "semantic_segmentation_metadata.json), and no VOC or Cityscapes tree; photos and "
                                "their ground truth in two folders: --images DIR --gt DIR")
    classes = DatagenClasses.from_dataset(folders)
    # Loaded here once, also with workers: it checks the model and the
    # class names before any work, and compiles a Core ML model into the
    # cache the workers then share.
    options = load_options(args)
    model = load(args.model, **options)
    model_names = model.labels or [str(i) for i in range(256)]
    groups = parse_class_map(args.class_map, model_names, classes.names) if args.class_map else {}
    scorer = DatapointScorer(model, classes, groups, previews=args.worst > 0)
    source = {"model": str(model.info.path), "dataset": str(args.dataset)}
    if args.ray:
        from ..scaleout import ray_evaluate

        ev = ray_evaluate.score_datapoints(model.info.path, folders, classes, groups, load_kwargs=options,
                                   address=args.ray, ship_model=args.ray_ship_model)
        if ev.failed and not ev.per_image:
            raise RuntimeError(every_image_failed(ev.failed))
        cm, per_image, failed, skipped, boundary = ev.matrix, ev.per_image, ev.failed, ev.skipped, ev.boundary
        previews = {}  # Ray keeps none: worst/ predicts its images again
    else:
        outcomes = run_items(args, folders, scorer, datapoint_worker,
                             lambda threads: (str(model.info.path), options, classes, groups, threads,
                                              args.worst > 0),
                             in_flight=READ_AHEAD)
        scores, failed, skipped, previews = collect(outcomes, folders, args, args.worst)
        cm, per_image = merge_scores(scores, len(scorer.names), scorer.names), per_image_rows(scores)
        boundary = merge_boundary(scores, cm.num_classes, cm.names)
    palette = (classes.colors // 257).astype(np.uint8)  # the table's own colours, in 8 bits
    return EvalRun(cm, per_image, failed, {**source, "images": len(per_image), "skipped": skipped}, scorer,
                   {Path(f).name: f for f in folders}, classes.names, palette, boundary, previews)


def _eval_pairs(args):
    """Scores of the label PNGs in --pred against those in --gt."""
    from ..evaluation.boundary import merge_boundary
    from ..evaluation.scoring import PairScorer, merge_scores, pair_worker

    if args.class_map:
        raise ValueError("--map applies to MODEL DATASET_DIR (a model's classes against a dataset's)")
    if args.ray:
        raise ValueError("--ray runs a model on a dataset (MODEL DATASET_DIR); --pred/--gt reads label files "
                         "(--jobs uses this machine's cores)")

    gt_files = _label_files(args.gt, "--gt")
    # `segment` writes STEM.labels.png (and STEM.overlay.png, not a label map).
    pred_files = _label_files(args.pred, "--pred")
    if not gt_files:
        raise FileNotFoundError(f"{args.gt}: no .png label maps")
    missing = sorted(set(gt_files) - set(pred_files))
    if missing:
        raise FileNotFoundError(f"{args.pred}: no prediction for {', '.join(missing[:5])}"
                                f"{f' (and {len(missing) - 5} more)' if len(missing) > 5 else ''}")
    names = None
    if args.names:
        from .eval_datasets import names_of

        names = names_of(args.names)
    num_classes = args.num_classes or (len(names) if names else None)
    pairs = [(s, gt_files[s], pred_files[s]) for s in gt_files]
    # Without a class count, each image is counted into a matrix of its own
    # size (its largest id + 1; the ignored value is no class), and the
    # total takes the largest: one pass over the files.
    make_args = (num_classes, names, args.ignore_index)
    outcomes = run_items(args, pairs, PairScorer(*make_args, args.worst > 0), pair_worker,
                         lambda threads: (*make_args, args.worst > 0))
    scores, failed, _, previews = collect(outcomes, pairs, args, args.worst)
    cm = merge_scores(scores, num_classes, names if num_classes else None, ignore_index=args.ignore_index)
    boundary = merge_boundary(scores, cm.num_classes, cm.names, cm.ignore_index)
    source = {"gt": str(args.gt), "pred": str(args.pred), "images": len(scores)}
    return EvalRun(cm, per_image_rows(scores), failed, source, PairScorer(*make_args), {p[0]: p for p in pairs},
                   boundary=boundary, previews=previews)


USAGE = ("give either MODEL DATASET_DIR, or --pred DIR --gt DIR (label maps against ground truth), or MODEL "
         "--images DIR --gt DIR, or MODEL --list FILE (photos with their ground truth)")


def _check_mode(args) -> str:
    """Which run the arguments ask for: "pairs" (--pred/--gt), "images"
    (--images/--gt or --list), "dataset" (DATASET_DIR); else a ValueError."""
    if args.pred:
        if not args.gt or args.model or args.dataset or args.images or args.list:
            raise ValueError(USAGE)
        return "pairs"
    if args.images or args.list:
        if not args.model or args.dataset or bool(args.images) == bool(args.list) or bool(args.gt) != bool(args.images):
            raise ValueError(USAGE)
        return "images"
    if args.gt or not (args.model and args.dataset):
        raise ValueError(USAGE)
    return "dataset"


#: classes.csv's boundary columns, after the confusion matrix's.
BOUNDARY_CSV = ("boundary_iou", "boundary_f", "boundary_precision", "boundary_recall")


def classes_csv(cm, boundary) -> str:
    """classes.csv: the confusion matrix's rows (`ConfusionMatrix.to_csv`)
    with each class's boundary scores (`BOUNDARY_CSV`) after them, by class
    id (both score the same classes); empty where undefined."""
    import csv
    import io
    import math

    edges = {r["id"]: r for r in boundary.rows()}
    rows = list(csv.DictReader(io.StringIO(cm.to_csv())))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, list(rows[0]) + list(BOUNDARY_CSV) if rows else ["id"] + list(BOUNDARY_CSV))
    writer.writeheader()
    for row in rows:
        edge = edges.get(int(row["id"]), {})
        writer.writerow({**row, **{k: "" if not math.isfinite(edge.get(k, math.nan)) else edge[k]
                                   for k in BOUNDARY_CSV}})
    return buf.getvalue()


def _write_report(args, run, files) -> str:
    """report.json, classes.csv, table.txt and confusion.png of a run (into
    `files`, in that order); returns the table."""
    from ..files.safe_io import write_text
    from ..files.images import write_png
    from ..evaluation.heatmap import confusion_heatmap

    cm, per_image, failures, source, boundary = run.cm, run.per_image, run.failed, run.source, run.boundary
    if source.get("skipped"):
        print(f"skipped {len(source['skipped'])} datapoint(s) without a photo: "
              f"{', '.join(Path(s).name for s in source['skipped'])}", file=sys.stderr)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    report = {**source, **({"failed": failures} if failures else {}), **per_image_summary(per_image), **cm.to_dict(),
              "boundary": boundary.to_dict()}
    write_text(files[0], json.dumps(report, indent=2) + "\n")
    write_text(files[1], classes_csv(cm, boundary))
    table = cm.table(present_only=True) + "\n\n" + boundary.table(present_only=True)
    write_text(files[2], table + "\n")
    present = [i for i in range(cm.num_classes)
               if (cm.matrix[i].sum() or cm.matrix[:, i].sum()) and cm.names[i] != "--"]
    sub = cm.matrix[np.ix_(present, present)]
    write_png(files[3], confusion_heatmap(sub, [cm.names[i] for i in present], counts=args.counts))
    return table


def cmd_eval(args) -> int:
    from ..files.safe_io import refuse_existing

    mode = _check_mode(args)
    if args.worst < 0:
        raise ValueError(f"--worst must be 0 (no worst/) or more, got {args.worst}")
    for flag, value in (("--split", args.split), ("--gt-colors", args.gt_colors)):
        if value and mode == "pairs":
            raise ValueError(f"{flag} reads a dataset's ground truth: MODEL DATASET_DIR, --images/--gt or --list")
    check_jobs(args)
    out = Path(args.out)
    files = [out / "report.json", out / "classes.csv", out / "table.txt", out / "confusion.png"]
    worst = out / "worst"
    # worst/ too when --worst 0: an earlier run's would be left describing another run.
    refuse_existing(files + [worst], args.force)  # symlinks too, dangling ones included
    # The workers start first: they import what scoring needs while this
    # process scans the dataset and loads the model.
    with workers_started(args, WORKER_IMPORTS + (backend_imports(args.model) if mode != "pairs" else ())):
        if mode == "pairs":
            run = _eval_pairs(args)
        else:
            dataset, said = dataset_of(args) if mode == "images" or args.dataset else (None, {})
            run = eval_dataset(args, dataset, said) if dataset is not None else _eval_model(args)
        table = _write_report(args, run, files)
        if args.worst:  # while the workers are there: they draw the pictures
            write_worst(worst, run, args.worst, workers=args.workers)
            files.append(worst / "index.html")
        elif os.path.lexists(worst):  # --force given (else refused above): an earlier run's goes
            shutil.rmtree(worst) if worst.is_dir() and not worst.is_symlink() else worst.unlink()
    cm, failures, source, boundary = run.cm, run.failed, run.source, run.boundary
    print(table)
    print(f"mIoU {cm.miou():.4f}, boundary mIoU {boundary.mean_iou():.4f}, mean boundary F "
          f"{boundary.mean_f_score():.4f} over {source['images']} images; wrote {', '.join(str(f) for f in files)}")
    for f in failures:
        print(f"coreseg eval: failed {f['image']}: {f['error']}", file=sys.stderr)
    if failures:
        print(f"coreseg eval: {len(failures)} of {len(failures) + source['images']} images failed "
              "(left out of the scores, listed in report.json)", file=sys.stderr)
        return 1
    return 0


def add_parser(sub, common) -> None:
    p = sub.add_parser("eval", parents=[common],
                       help="score a model on a dataset (Datagen, VOC, Cityscapes, or photos with their ground "
                            "truth), or predicted label maps against ground truth")
    p.add_argument("model", nargs="?", help=".onnx, Core ML model, or 'demo'")
    p.add_argument("dataset", nargs="?", metavar="DATASET_DIR",
                   help="a folder of Datagen datapoints, a PASCAL VOC tree (JPEGImages/, SegmentationClass/, "
                        "ImageSets/Segmentation/) or a Cityscapes one (leftImg8bit/, gtFine/ with "
                        "*_labelTrainIds.png); VOC and Cityscapes ignore 255, as they define")
    p.add_argument("--images", metavar="DIR", help="with MODEL and --gt: a folder of photos, matched by name "
                                                   "(without extension) with the ground truth in --gt")
    p.add_argument("--gt", metavar="DIR", help="ground truth PNGs: palette (the index is the class id), 8- or "
                                               "16-bit ids, or colours with --gt-colors; with --images, or --pred")
    p.add_argument("--list", metavar="FILE",
                   help="with MODEL: a file of 'IMAGE GT' lines, or 'IMAGES_DIR GT_DIR' (paths relative to it)")
    p.add_argument("--split", help="VOC and Cityscapes: the split to score (default val when there is one)")
    p.add_argument("--gt-colors", metavar="FILE",
                   help="colour-coded ground truth: its colour table, class_dict.csv (name,r,g,b) or a Datagen-"
                        "style JSON (16-bit); default a class_dict.csv beside --gt; 'none': ids, whatever lies "
                        "beside them")
    p.add_argument("--pred", help="folder of predicted label PNGs (8- or 16-bit), paired by name with --gt")
    p.add_argument("--num-classes", type=int, help="with --pred/--gt: default the largest id + 1")
    p.add_argument("--names", metavar="FILE|LIST|PRESET",
                   help="the ground truth's class names (a file, 'a,b,c', or a preset: voc, cityscapes, ade20k); "
                        "with --images/--list default the model's (the ids are taken to be its ids)")
    p.add_argument("--ignore-index", type=int,
                   help="ground-truth id to leave out (a class id also leaves that class out of every score); "
                        "VOC and Cityscapes: 255")
    p.add_argument("--map", dest="class_map",
                   help="with a MODEL: model classes scored as groups of dataset classes, "
                        "'person=human.*,glasses.*;background=background' or a JSON file {\"person\": [\"human.*\"]}")
    p.add_argument("--counts", action="store_true",
                   help="write pixel counts in confusion.png's cells (default: the row shares)")
    p.add_argument("--worst", type=int, default=WORST, metavar="K",
                   help=f"worst/: the K images with the lowest mIoU drawn (photo, ground truth, prediction, "
                        f"errors) with index.html (default {WORST}; 0: none)")
    p.add_argument("--jobs", type=int, metavar="N",
                   help="worker processes, each with its own model (default: every core; 1: this process only)")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="with a MODEL: score on a Ray cluster (needs the ray extra): 'auto' for the "
                        "cluster this machine belongs to, ray://HOST:10001, or 'local' to start one here")
    p.add_argument("--ray-ship-model", action="store_true",
                   help="with --ray: send the model file to each node once, instead of reading MODEL's path "
                        "on every node (shared storage)")
    p.add_argument("--out", default="coreseg-eval",
                   help="folder for report.json, classes.csv, table.txt, confusion.png and worst/")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    add_model_options(p)
    p.set_defaults(run=cmd_eval)
