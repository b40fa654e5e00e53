"""What every kind of `coreseg eval` run shares: --map, collecting the
outcomes under one progress bar, the per-image summary, and worst/ (the
images scored worst, drawn, with index.html)."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path

from ._common import progress_bar, say

__all__ = ["parse_class_map", "collect", "every_image_failed", "per_image_rows", "per_image_summary", "EvalRun",
           "write_worst", "item_name"]


@dataclass
class EvalRun:
    """What a run scored, and how to draw its images again for worst/.

    Attributes
    ----------
    cm : ConfusionMatrix
    per_image : list of dict
        {"image", "miou", "boundary_miou"} per scored image, in input order.
    failed : list of dict
        {"image", "error"}.
    source : dict
        What was scored (paths, layout, image count, skipped datapoints).
    scorer : object
        Has ``maps(item) -> (photo or None, gt, pred)`` (scored ids, the
        prediction -1 where unseen), or None (no worst/).
    items : dict
        {image name: item} for `scorer.maps`.
    dataset_names, dataset_palette
        The dataset's classes and the colours it draws them in (None:
        coreseg's default palette).
    boundary : BoundaryCounts or None
        Every scored image's boundary counts, merged
        (`coreseg.evaluation.boundary`).
    previews : dict
        {image name: coreseg.evaluation.worst.Preview} of the images worst/
        draws, kept while they were scored (`collect`); worst/ predicts
        again only the images without one (a Ray run's).
    """

    cm: object
    per_image: list
    failed: list
    source: dict
    scorer: object = None
    items: dict = field(default_factory=dict)
    dataset_names: list = field(default_factory=list)
    dataset_palette: object = None
    boundary: object = None
    previews: dict = field(default_factory=dict)


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


def per_image_rows(scores) -> list[dict]:
    return [{"image": s.image, "miou": s.miou, "boundary_miou": s.boundary_miou} for s in scores]


def collect(outcomes, items, args, worst: int = 0):
    """(scores in input order, failed images as {"image", "error"}, skipped
    datapoints, previews) from the outcomes of a run, with one progress bar.

    previews is {image name: Preview} of the `worst` images with the lowest
    mIoU among the scores with a preview (`worst_rows`' order: ties go to
    the earlier item; no mIoU, no place), for worst/. Outcomes come in
    completion order: the worst so far are kept, every other preview is
    dropped as it arrives (at most `worst` held at any moment), and the
    scores returned hold none."""
    from ..scaleout.workers import ITEM_ERRORS

    done, failed, skipped = {}, {}, []
    kept = []  # heap of (-mIoU, -index, name, preview): its top is the best of the kept, the first to go
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
                _keep_worst(kept, worst, outcome.index, outcome.value)
    finally:
        outcomes.close()  # on an error: the workers end now, not when collected
    failures = [{"image": item_name(items[i]), "error": f"{type(failed[i]).__name__}: {failed[i]}"} for i in sorted(failed)]
    if failed and not done:  # nothing scored: the failures are the result
        raise RuntimeError(every_image_failed(failures))
    return [done[i] for i in sorted(done)], failures, sorted(skipped), {name: p for _, _, name, p in kept}


def _keep_worst(kept: list, k: int, index: int, score) -> None:
    """Take `score`'s preview off it, into `kept` (a heap of (-mIoU,
    -index, name, preview), at most `k`) when it is among the `k` worst so
    far, pushing out the best of them; else it is dropped here (a function
    of its own: no local of a loop holds it while the next image comes)."""
    import heapq

    preview, score.preview = getattr(score, "preview", None), None
    if preview is None or score.miou is None or k <= 0:
        return
    entry = (-score.miou, -index, score.image, preview)
    if len(kept) < k:
        heapq.heappush(kept, entry)
    elif entry[:2] > kept[0][:2]:  # a lower mIoU, or as low and earlier in the input: it takes the top's place
        heapq.heapreplace(kept, entry)


def every_image_failed(failures: list[dict]) -> str:
    """The error of a run in which every image failed: how many, and the
    first, by name."""
    first = failures[0]
    return (f"every image failed ({len(failures)} of {len(failures)}); the first, {first['image']}: "
            f"{first['error']}")


def item_name(item) -> str:
    """The name of an eval item: a datapoint folder, or a (name, gt, pred) pair."""
    return item[0] if isinstance(item, tuple) else str(item)


def per_image_summary(rows: list[dict]) -> dict:
    """Per-image mIoU beside the dataset's: both, named apart (the dataset
    mIoU pools every pixel; the mean of per-image mIoUs weighs images
    equally, and is what some papers report)."""
    values = [r["miou"] for r in rows if r["miou"] is not None]
    return {"per_image": rows, "mean_of_per_image_miou": sum(values) / len(values) if values else None}


def write_worst(folder, run: EvalRun, k: int, confusion: str = "../confusion.png", workers=None) -> list[str]:
    """worst/: the `k` images with the lowest mIoU, each drawn as photo |
    ground truth | prediction | errors, with index.html: from the preview
    kept while it was scored (`EvalRun.previews`), else predicted again
    here (the parent keeps no whole image of a run: memory stays flat). An
    image that fails now is said and left out. Returns the PNG names.

    With `workers` (a coreseg.scaleout.workers.WorkerPool: eval --jobs N),
    the previews are drawn and encoded on them, side by side, instead of one
    after another here (the same bytes)."""
    from ..evaluation.report_html import write_worst as write_folder
    from ..evaluation.worst import error_picture, file_name, miou_text, picture_worker, scored_palette, worst_rows
    from ..scaleout.workers import WorkerStartError

    cm = run.cm
    palette = scored_palette(cm.names, run.dataset_names, run.dataset_palette)
    rows = [(f"{rank}. {row['image']}: mIoU {miou_text(row['miou'])}", row)
            for rank, row in enumerate(worst_rows(run.per_image, k), 1)]
    drawn = {}
    if workers is not None:
        todo = [i for i, (_, row) in enumerate(rows) if row["image"] in run.previews]
        items = [(rows[i][0], run.previews[rows[i][1]["image"]]) for i in todo]
        try:
            for outcome in workers.map(picture_worker, (cm.names, palette, cm.ignore_index), items):
                if outcome.error is None:  # else drawn here below, where an error says what went wrong
                    drawn[todo[outcome.index]] = outcome.value
        except WorkerStartError as e:  # the rest are drawn here
            say(f"coreseg eval: worst/ is drawn in this process: {e}")

    # Here, one at a time: 2 threads drawing while the PNGs were written measured no faster (the GIL).
    def pictures():
        for i, (title, row) in enumerate(rows):
            rank = i + 1
            if i in drawn:
                yield file_name(rank, row["image"]), row["image"], row["miou"], drawn[i]
                continue
            preview = run.previews.get(row["image"])
            try:
                maps = (preview.photo, preview.gt, preview.pred) if preview is not None else \
                    run.scorer.maps(run.items[row["image"]])
            except (OSError, ValueError, RuntimeError) as e:  # it failed now, having scored before: said, not fatal
                say(f"coreseg eval: worst/ leaves out {row['image']}: {type(e).__name__}: {e}")
                continue
            if maps is None:
                continue
            photo, gt, pred = maps
            yield (file_name(rank, row["image"]), row["image"], row["miou"],
                   error_picture(photo, gt, pred, cm.names, palette, title=title, ignore_index=cm.ignore_index))

    classes = cm.to_dict()["classes"]
    where = ", ".join(f"{k}: {v}" for k, v in run.source.items() if k in ("model", "dataset", "photos", "gt",
                                                                         "pred", "list") and isinstance(v, str))
    summary = {"miou": cm.miou(), "images": run.source.get("images"), "source": where}
    return write_folder(folder, pictures(), classes, summary, confusion=confusion)
