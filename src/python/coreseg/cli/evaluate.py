"""`coreseg eval`: a model on Datagen datapoints, or label maps against ground truth."""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

import numpy as np

from ._common import check_jobs, progress_bar, run_items
from .model_options import load_options


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


def parse_class_map(text: str, model_names, dataset_names) -> dict[str, list[str]]:
    """--map: {model class: [dataset classes]} from "a=x.*,y;b=z" or a JSON
    file {"a": ["x.*", "y"]}; patterns are globs over dataset class names.

    Every error names the group (and the file): a group given twice, one
    that is not a model class, a pattern that is not a string or matches
    nothing, a dataset class two groups match, and a group named like a
    dataset class it leaves out (the report would have two rows of that
    name, one of them empty)."""
    from ..evaluation.metrics import check_groups
    from ..files.safe_io import read_json

    path = Path(text)
    if path.is_file():
        where = str(path)
        raw = read_json(path, unique_keys=True)  # a key given twice is an error naming it
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: --map must be a JSON object of model class -> list of dataset classes")
        groups_in = {}
        for name, patterns in raw.items():
            patterns = [patterns] if isinstance(patterns, str) else patterns
            if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
                raise ValueError(f"{where}: --map group {name!r}: expected a dataset class pattern or a list of "
                                 f"them (strings), got {json.dumps(raw[name])}")
            groups_in[name] = patterns
    elif "=" not in text:
        raise FileNotFoundError(f"--map {text}: no such file (and not 'model_class=dataset_class,...')")
    else:
        where = f"--map {text!r}"
        groups_in = {}
        for item in filter(None, (part.strip() for part in text.split(";"))):
            name, sep, patterns = item.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ValueError(f"--map takes 'model_class=dataset_class,...;...', got {item!r}")
            if name in groups_in:
                raise ValueError(f"{where}: group {name!r} is given twice; give each model class once, "
                                 f"with all its dataset classes ({name}=a,b,c)")
            groups_in[name] = [p.strip() for p in patterns.split(",") if p.strip()]
    groups, claimed = {}, {}
    for model_class, patterns in groups_in.items():
        if model_class not in model_names:
            raise ValueError(f"{where}: the model has no class {model_class!r}; its classes: {', '.join(model_names)}")
        if not patterns:
            raise ValueError(f"{where}: group {model_class!r} has no dataset class")
        matched = [n for n in dataset_names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if not matched:
            raise ValueError(f"{where}: {', '.join(patterns)} matches no dataset class for {model_class!r}")
        for n in matched:
            if n in claimed:
                raise ValueError(f"{where}: dataset class {n!r} is given to both {claimed[n]!r} and {model_class!r}")
            claimed[n] = model_class
        groups[model_class] = matched
    for model_class in groups:
        if model_class in dataset_names and model_class not in claimed:
            raise ValueError(f"{where}: group {model_class!r} is also a dataset class that no group includes, and "
                             f"the report would have two {model_class!r} rows; include it "
                             f"({model_class}={model_class},...) or give the group to another model class")
    check_groups(model_names, dataset_names, groups)
    return groups


def _eval_model(args):
    """Scores of MODEL over the Datagen datapoints in DATASET."""
    from ..running.loader import load
    from ..evaluation.groundtruth import DatagenClasses, datapoint_folders
    from ..evaluation.scoring import DatapointScorer, datapoint_worker, merge_scores

    folders = datapoint_folders(args.dataset)
    if not folders:
        raise FileNotFoundError(f"{args.dataset}: no Datagen datapoints (folders with "
                                "semantic_segmentation_metadata.json)")
    classes = DatagenClasses.from_dataset(folders)
    # Loaded here once, also with workers: it checks the model and the
    # class names before any work, and compiles a Core ML model into the
    # cache the workers then share.
    options = load_options(args)
    model = load(args.model, **options)
    model_names = model.labels or [str(i) for i in range(256)]
    groups = parse_class_map(args.class_map, model_names, classes.names) if args.class_map else {}
    scorer = DatapointScorer(model, classes, groups)
    source = {"model": str(model.info.path), "dataset": str(args.dataset)}
    if args.ray:
        from ..scaleout import ray_evaluate

        ev = ray_evaluate.score_datapoints(model.info.path, folders, classes, groups, load_kwargs=options,
                                   address=args.ray, ship_model=args.ray_ship_model)
        if ev.failed and not ev.per_image:
            raise RuntimeError(every_image_failed(ev.failed))
        return ev.matrix, ev.per_image, ev.failed, {**source, "images": len(ev.per_image), "skipped": ev.skipped}
    outcomes = run_items(args, folders, scorer, datapoint_worker,
                         lambda threads: (str(model.info.path), options, classes, groups, threads))
    scores, failed, skipped = _collect(outcomes, folders, args)
    cm = merge_scores(scores, len(scorer.names), scorer.names)
    return cm, _per_image_rows(scores), failed, {**source, "images": len(scores), "skipped": skipped}


def _eval_pairs(args):
    """Scores of the label PNGs in --pred against those in --gt."""
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
        names = [line.strip() for line in Path(args.names).read_text().splitlines() if line.strip()]
    num_classes = args.num_classes or (len(names) if names else None)
    pairs = [(s, gt_files[s], pred_files[s]) for s in gt_files]
    # Without a class count, each image is counted into a matrix of its own
    # size (its largest id + 1; the ignored value is no class), and the
    # total takes the largest: one pass over the files.
    make_args = (num_classes, names, args.ignore_index)
    outcomes = run_items(args, pairs, PairScorer(*make_args), pair_worker, lambda threads: make_args)
    scores, failed, _ = _collect(outcomes, pairs, args)
    cm = merge_scores(scores, num_classes, names if num_classes else None, ignore_index=args.ignore_index)
    return cm, _per_image_rows(scores), failed, {"gt": str(args.gt), "pred": str(args.pred), "images": len(scores)}


def _per_image_rows(scores) -> list[dict]:
    return [{"image": s.image, "miou": s.miou} for s in scores]


def _collect(outcomes, items, args):
    """(scores in input order, failed images as {"image", "error"}, skipped
    datapoints) from the outcomes of a run, with one progress bar."""
    from ..scaleout.workers import ITEM_ERRORS

    done, failed, skipped = {}, {}, []
    try:
        for outcome in progress_bar(outcomes, args, total=len(items)):
            item = items[outcome.index]
            if outcome.error is not None:
                if not isinstance(outcome.error, ITEM_ERRORS):
                    raise outcome.error
                failed[outcome.index] = outcome.error
            elif outcome.value is None:
                skipped.append(str(item))
            else:
                done[outcome.index] = outcome.value
    finally:
        outcomes.close()  # on an error: the workers end now, not when collected
    failures = [{"image": _name(items[i]), "error": f"{type(failed[i]).__name__}: {failed[i]}"} for i in sorted(failed)]
    if failed and not done:  # nothing scored: the failures are the result
        raise RuntimeError(every_image_failed(failures))
    return [done[i] for i in sorted(done)], failures, sorted(skipped)


def every_image_failed(failures: list[dict]) -> str:
    """The error of a run in which every image failed: how many, and the
    first, by name."""
    first = failures[0]
    return (f"every image failed ({len(failures)} of {len(failures)}); the first, {first['image']}: "
            f"{first['error']}")


def _name(item) -> str:
    """The name of an eval item: a datapoint folder, or a (name, gt, pred) pair."""
    return item[0] if isinstance(item, tuple) else str(item)


def _per_image(rows: list[dict]) -> dict:
    """Per-image mIoU beside the dataset's: both, named apart (the dataset
    mIoU pools every pixel; the mean of per-image mIoUs weighs images
    equally, and is what some papers report)."""
    values = [r["miou"] for r in rows if r["miou"] is not None]
    return {"per_image": rows, "mean_of_per_image_miou": sum(values) / len(values) if values else None}


def cmd_eval(args) -> int:
    from ..files.safe_io import refuse_existing, write_text
    from ..files.images import write_png
    from ..evaluation.heatmap import confusion_heatmap

    if args.pred or args.gt:
        if not (args.pred and args.gt) or args.model or args.dataset:
            raise ValueError("give either MODEL DATASET_DIR, or --pred DIR --gt DIR")
    elif not (args.model and args.dataset):
        raise ValueError("give either MODEL DATASET_DIR, or --pred DIR --gt DIR")
    check_jobs(args)
    out = Path(args.out)
    files = [out / "report.json", out / "classes.csv", out / "table.txt", out / "confusion.png"]
    refuse_existing(files, args.force)  # symlinks too, dangling ones included
    cm, per_image, failures, source = (_eval_pairs if args.pred else _eval_model)(args)
    if source.get("skipped"):
        print(f"skipped {len(source['skipped'])} datapoint(s) without a photo: "
              f"{', '.join(Path(s).name for s in source['skipped'])}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    report = {**source, **({"failed": failures} if failures else {}), **_per_image(per_image), **cm.to_dict()}
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
    for f in failures:
        print(f"coreseg eval: failed {f['image']}: {f['error']}", file=sys.stderr)
    if failures:
        print(f"coreseg eval: {len(failures)} of {len(failures) + source['images']} images failed "
              "(left out of the scores, listed in report.json)", file=sys.stderr)
        return 1
    return 0
