"""`evaluate` on a Ray cluster: a model scored over a Ray Dataset of
Datagen datapoints or image/ground-truth rows, merged on the driver by
adding integer counts (ray_cluster.py says how the model reaches the
actors)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..evaluation.boundary import BoundaryCounts
from ..evaluation.metrics import ConfusionMatrix
from ..evaluation.scoring import ImageScore, prediction_at, score_maps
from .ray_cluster import column, load_on_actor, model_source, in_input_order, ray_module, connect
from .ray_segment import model_labels
from .workers import ITEM_ERRORS
from ..evaluation.datasets import Pair

__all__ = ["evaluate", "Evaluation", "score_datapoints", "score_pairs"]


class _ScoreBatch:
    """The UDF of `evaluate`: one per actor, the model loaded once."""

    def __init__(self, source, load_kwargs, classes, groups, num_classes, names, ignore_index, spec=None):
        from ..evaluation.image_scoring import ImageScorer
        from ..evaluation.scoring import DatapointScorer

        self.model = load_on_actor(source, load_kwargs)
        self.datapoints = DatapointScorer(self.model, classes, groups) if classes is not None else None
        # Photo and ground-truth paths (`score_pairs`): read on the actor.
        self.pairs = ImageScorer(self.model, spec, groups) if spec is not None else None
        scorer = self.datapoints or self.pairs
        self.n = len(scorer.names) if scorer else num_classes
        self.names = scorer.names if scorer else names
        self.ignore_index = self.pairs.ignore_index if self.pairs else ignore_index

    def _score(self, batch, i) -> ImageScore | None:
        if self.datapoints is not None:
            return self.datapoints(batch["datapoint"][i])
        if self.pairs is not None:
            return self.pairs(Pair(*(str(v) for v in batch["pair"][i])))
        name = column(batch, "name", i)
        gt = np.asarray(batch["gt"][i])
        if gt.ndim != 2:
            raise ValueError(f"gt must be a 2-D class map, got shape {gt.shape}")
        # The photo's own class map (crop modes mapped back), -1 where unseen:
        # boundaries on the whole maps, the matrix over the seen pixels.
        pred = prediction_at(self.model.predict(batch["image"][i]), gt.shape)
        return score_maps(str(name) if name is not None else "", gt, pred, self.n, self.names, self.ignore_index)

    def __call__(self, batch: dict) -> dict:
        partial = np.zeros((self.n, self.n), np.int64)
        edges = BoundaryCounts(self.n)  # the batch's boundary counts, summed on the driver too
        rows = []
        key = "datapoint" if self.datapoints is not None else "pair" if self.pairs is not None else "gt"
        for i in range(len(batch[key])):
            index = column(batch, "index", i)
            name = (str(batch["datapoint"][i]) if self.datapoints else str(batch["pair"][i][0]) if self.pairs
                    else column(batch, "name", i))
            try:
                score = self._score(batch, i)
            except ITEM_ERRORS as e:
                rows.append({"index": index, "image": name, "error": f"{type(e).__name__}: {e}"})
                continue
            if score is None:  # a datapoint without a photo
                rows.append({"index": index, "image": str(batch["datapoint"][i]), "skipped": True})
                continue
            partial[score.rows, score.cols] += score.counts
            edges.add_sparse(*score.boundary)
            rows.append({"index": index, "image": score.image, "miou": score.miou,
                         "boundary_miou": score.boundary_miou})
        # One row per batch: its partial matrix and boundary counts, and what each image gave.
        return {"matrix": partial[None], "boundary": edges.counts[None],
                "rows": np.array([pickle.dumps((self.names, rows, self.ignore_index))], dtype=object)}


@dataclass
class Evaluation:
    """What `evaluate` returns.

    Attributes
    ----------
    matrix : ConfusionMatrix
        Every scored image's counts, merged.
    per_image : list of dict
        {"image", "miou", "boundary_miou"} per scored image, in the dataset's order (its
        "index" column, else by name).
    failed : list of dict
        {"image", "error"} per image that failed (left out of `matrix`).
    skipped : list of str
        Datapoints without a photo.
    boundary : BoundaryCounts
        Every scored image's boundary counts, merged (Boundary IoU and
        boundary F per class, `coreseg.evaluation.boundary`).
    """

    matrix: ConfusionMatrix
    per_image: list
    failed: list
    skipped: list
    boundary: BoundaryCounts = None


def evaluate(model, dataset, *, classes=None, class_map=None, num_classes: int | None = None, names=None,
             ignore_index: int | None = None, batch_size: int = 8, actors: int | None = None,
             ship_model: bool = False, **load_kwargs) -> Evaluation:
    """Score a model on a Ray Dataset.

    Parameters
    ----------
    model : str or os.PathLike
        A model file (or "demo"); see the module docstring for how actors
        reach it.
    dataset : ray.data.Dataset
        Either a "datapoint" column of Datagen datapoint folders (absolute
        paths: actors do not run in the driver's folder), or
        "image" ((H, W, 3|4) uint8) and "gt" ((H, W) class ids of the
        model's classes) columns, with an optional "name". An "index"
        column orders `per_image`.
    classes : coreseg.groundtruth.DatagenClasses, optional
        Datapoints: the dataset's class list (default: read from the
        datapoints' metadata on the driver).
    class_map : dict, optional
        Datapoints: {model class: [dataset classes]} (`coreseg eval --map`).
    num_classes, names, ignore_index
        Image and ground-truth rows: as `ConfusionMatrix` (default
        num_classes: the model's label count).
    batch_size : int
        Rows per batch (one partial matrix each).
    actors : int, optional
        Actors, each with the model loaded once (default: the cluster's CPUs).
    ship_model : bool
        Send the model through the object store instead of by path.
    **load_kwargs
        Passed to `coreseg.load` on each actor.

    Returns
    -------
    Evaluation
    """
    ray = ray_module()
    source = model_source(model, ship_model)
    columns = set(dataset.columns())
    labels = model_labels(source.path, load_kwargs)
    if "datapoint" in columns:
        from ..evaluation.groundtruth import DatagenClasses
        from ..evaluation.scoring import scored_classes

        if classes is None:
            folders = [r["datapoint"] for r in dataset.select_columns(["datapoint"]).iter_rows()]
            classes = DatagenClasses.from_dataset(folders)
        scored_classes(labels, classes.names, class_map)  # a model and dataset with no class in common: now
        udf_args = (source, load_kwargs, classes, class_map, None, None, None)
    elif {"image", "gt"} <= columns:
        if num_classes is None:
            if not labels:
                raise ValueError("num_classes: the model has no labels to count; give num_classes")
            num_classes = len(labels)
        udf_args = (source, load_kwargs, None, None, num_classes, names, ignore_index)
    else:
        raise ValueError(f"dataset: expected a 'datapoint' column, or 'image' and 'gt' columns; got "
                         f"{sorted(columns)}")
    return _run(ray, dataset, udf_args, batch_size, actors)


def _run(ray, dataset, udf_args, batch_size, actors=None) -> Evaluation:
    """Score with one `_ScoreBatch` per actor; partial matrices added on the driver."""
    size = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    out = dataset.map_batches(_ScoreBatch, fn_constructor_args=udf_args, batch_size=batch_size,
                              compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1)
    # The reduce: partial matrices added on the driver (integer counts).
    total, edges, rows, names, scored_ignore = None, None, [], None, None
    for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
        part, edge_part = batch["matrix"].sum(axis=0), batch["boundary"].sum(axis=0)
        total = part if total is None else total + part
        edges = edge_part if edges is None else edges + edge_part
        for blob in batch["rows"]:
            names, batch_rows, scored_ignore = pickle.loads(blob)
            rows.extend(batch_rows)
    if total is None:
        raise ValueError("dataset: no rows")
    cm = ConfusionMatrix(len(total), names, ignore_index=scored_ignore)  # the actors' (pairs: in scored ids)
    cm.matrix[:] = total
    rows = in_input_order(rows)
    scored = [r for r in rows if "miou" in r]
    boundary = BoundaryCounts(len(total), names, ignore_index=scored_ignore)
    boundary.counts[:] = edges
    boundary.images = len(scored)
    return Evaluation(cm, [{"image": r["image"], "miou": r["miou"], "boundary_miou": r["boundary_miou"]}
                           for r in scored],
                      [{"image": r["image"], "error": r["error"]} for r in rows if "error" in r],
                      [r["image"] for r in rows if r.get("skipped")], boundary)


def score_datapoints(model_path, folders, classes, groups, *, labels=None, load_kwargs=None, address="auto",
                     ship_model=False, batch_size: int = 8, **init_kwargs) -> Evaluation:
    """`coreseg eval --ray`: the Evaluation of Datagen datapoint folders on
    a cluster (`labels`: the model's, when the caller has them already;
    `load_kwargs`: what the command line said about the model)."""
    ray = connect(address, **init_kwargs)
    # A block per batch: blocks of one row each cost the object store a
    # round trip per image. Paths absolute: actors do not run in this folder.
    rows = [{"index": i, "datapoint": str(Path(f).resolve())} for i, f in enumerate(folders)]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // batch_size)))
    kwargs = dict(load_kwargs or {})
    if labels:
        kwargs["labels"] = list(labels)
    result = evaluate(model_path, ds, classes=classes, class_map=groups or None, ship_model=ship_model,
                      batch_size=batch_size, **kwargs)
    given = {row["datapoint"]: str(f) for row, f in zip(rows, folders)}  # named as the caller named them
    result.skipped = [given.get(s, s) for s in result.skipped]
    result.failed = [{**f, "image": given.get(f["image"], f["image"])} for f in result.failed]
    return result


def score_pairs(model_path, pairs, spec, groups, *, load_kwargs=None, address="auto", ship_model=False,
                batch_size: int = 8, **init_kwargs) -> Evaluation:
    """`coreseg eval MODEL --images DIR --gt DIR --ray` (or a VOC or
    Cityscapes tree, or --list): the Evaluation of photo and ground-truth
    pairs (coreseg.evaluation.datasets.Pair) on a cluster, each actor
    reading its pairs from their paths (shared storage) with `spec`
    (coreseg.evaluation.datasets.GroundTruthSpec)."""
    ray = connect(address, **init_kwargs)
    rows = [{"index": i, "pair": [p.name, str(Path(p.image).resolve()), str(Path(p.gt).resolve())]}
            for i, p in enumerate(pairs)]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // batch_size)))
    source = model_source(model_path, ship_model)
    labels = model_labels(source.path, dict(load_kwargs or {}))
    from ..evaluation.image_scoring import dataset_names
    from ..evaluation.scoring import scored_classes

    scored_classes(labels, dataset_names(spec, labels), groups)  # no class in common: said now, not per actor
    udf_args = (source, dict(load_kwargs or {}), None, groups or None, None, None, None, spec)
    return _run(ray, ds, udf_args, batch_size)
