"""`coreseg eval MODEL` on datasets as they come: --images DIR --gt DIR,
--list FILE, or a PASCAL VOC or Cityscapes tree given as DATASET_DIR
(coreseg.evaluation.datasets reads them)."""

from __future__ import annotations

from pathlib import Path

from ._common import READ_AHEAD, run_items
from .eval_run import EvalRun, collect, every_image_failed, parse_class_map, per_image_rows
from .model_options import load_options

__all__ = ["dataset_of", "gt_spec", "eval_dataset", "names_of"]


def names_of(text: str) -> list[str]:
    """--names as a list of class names (see `_names`)."""
    return _names(text)[0]


def _names(text: str) -> tuple[list[str], object]:
    """--names: (class names, their preset's colours or None) from a preset,
    a file (JSON list or one per line), a JSON list or 'a,b,c'."""
    from ..modelfiles.annotate import read_label_list
    from ..modelfiles.presets import is_preset, preset

    if is_preset(text):
        names, colors = preset(text)
        return names, colors[:, :3]
    names = read_label_list(text)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"--names {text}: expected class names (a file, a JSON list of strings, 'a,b,c' or a "
                         "preset)")
    return names, None


def _color_table(args, gt_folder: Path | None):
    """(path, names, colours) of the colour table: --gt-colors, else a
    class_dict.csv beside the ground truth (CamVid's layout), else None
    (and None for --gt-colors none)."""
    from ..evaluation.datasets import read_colors

    if args.gt_colors == "none":  # ids, whatever lies beside them
        return None
    path = Path(args.gt_colors) if args.gt_colors else None
    if path is None and gt_folder is not None:
        path = next((p for p in (gt_folder / "class_dict.csv", gt_folder.parent / "class_dict.csv") if p.is_file()),
                    None)
    if path is None:
        return None
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (--gt-colors)")
    names, colors = read_colors(path)
    return path, names, colors


def gt_spec(args, gt_folder: Path | None, base=None):
    """The GroundTruthSpec the flags describe, over `base` (a VOC or
    Cityscapes tree's own), and what the report says of it."""
    import numpy as np

    from ..evaluation.datasets import GroundTruthSpec

    base = base or GroundTruthSpec()
    names, palette, colors, said = base.names, base.palette, None, {}
    table = _color_table(args, gt_folder)
    if table is not None:
        if args.names:
            found = "" if args.gt_colors else ", found beside the ground truth; --gt-colors none reads ids"
            raise ValueError(f"--names and a colour table ({table[0]}{found}) both name the dataset's classes: "
                             "give one")
        path, table_names, colors = table
        names, said["colour_table"] = tuple(table_names), str(path)
        palette = (colors // 257).astype(np.uint8) if colors.dtype == np.uint16 else colors
    elif args.names:
        listed, palette = _names(args.names)
        names = tuple(listed)
    ignore = args.ignore_index if args.ignore_index is not None else base.ignore_index
    return GroundTruthSpec(names, ignore, colors, palette), said


def dataset_of(args):
    """The Dataset the flags name (--list, --images with --gt, or a VOC or
    Cityscapes tree as DATASET_DIR), or None: DATASET_DIR is for Datagen."""
    from ..evaluation import datasets

    if args.list:
        pairs = datasets.list_pairs(args.list)
        spec, said = gt_spec(args, Path(pairs[0].gt).parent)
        return datasets.Dataset(pairs, spec, "list", f"{args.list} ({len(pairs)} pairs)"), {"list": args.list, **said}
    if args.images:
        pairs = datasets.folder_pairs(args.images, args.gt)
        spec, said = gt_spec(args, Path(args.gt))
        return (datasets.Dataset(pairs, spec, "folders", f"{args.images} with {args.gt}"),
                {"photos": str(args.images), "gt": str(args.gt), **said})
    found = datasets.find_dataset(args.dataset, args.split)
    if found is None:
        if args.split:
            raise ValueError(f"--split: {args.dataset} is neither a VOC tree (JPEGImages/, SegmentationClass/) nor "
                             "a Cityscapes one (leftImg8bit/, gtFine/)")
        return None, {}
    spec, said = gt_spec(args, None, found.spec)
    found.spec = spec
    return found, {"dataset": str(args.dataset), "layout": found.layout, "description": found.description, **said}


def eval_dataset(args, dataset, said: dict) -> EvalRun:
    """Scores of MODEL over a dataset's pairs, here, on workers or on Ray."""
    from ..evaluation.image_scoring import ImageScorer, dataset_names, image_worker
    from ..evaluation.boundary import merge_boundary
    from ..evaluation.scoring import merge_scores
    from ..running.loader import load

    options = load_options(args)
    model = load(args.model, **options)  # once here too: the model and classes are checked before any work
    theirs = dataset_names(dataset.spec, model.labels)
    model_names = model.labels or [str(i) for i in range(256)]
    groups = parse_class_map(args.class_map, model_names, theirs) if args.class_map else {}
    scorer = ImageScorer(model, dataset.spec, groups, previews=args.worst > 0)
    pairs = dataset.pairs
    source = {"model": str(model.info.path), **said}
    if dataset.spec.names is None:
        source["dataset_classes"] = "the model's (the ground truth's ids are read as its ids; --names to say otherwise)"
    if args.ray:
        from ..scaleout import ray_evaluate

        ev = ray_evaluate.score_pairs(model.info.path, pairs, dataset.spec, groups, load_kwargs=options,
                                      address=args.ray, ship_model=args.ray_ship_model)
        if ev.failed and not ev.per_image:
            raise RuntimeError(every_image_failed(ev.failed))
        cm, per_image, failed, boundary = ev.matrix, ev.per_image, ev.failed, ev.boundary
        previews = {}  # Ray keeps none: worst/ predicts its images again
    else:
        outcomes = run_items(args, pairs, scorer, image_worker,
                             lambda threads: (str(model.info.path), options, dataset.spec, groups, threads,
                                              args.worst > 0),
                             in_flight=READ_AHEAD)
        scores, failed, _, previews = collect(outcomes, pairs, args, args.worst)
        cm = merge_scores(scores, len(scorer.names), scorer.names, ignore_index=scorer.ignore_index)
        per_image = per_image_rows(scores)
        boundary = merge_boundary(scores, cm.num_classes, cm.names, cm.ignore_index)
    return EvalRun(cm, per_image, failed, {**source, "images": len(per_image)}, scorer,
                   {p.name: p for p in pairs}, theirs, dataset.spec.palette, boundary, previews)
