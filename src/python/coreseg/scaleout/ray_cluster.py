"""coreseg on a Ray cluster: `eval` and `segment` over datasets bigger than
one machine (extra ``ray``: ``pip install 'coreseg[ray]'``).

Ray Data schedules the work; coreseg adds only what runs in it. Each
`map_batches` worker is an actor that loads the model once (a class-based
UDF) and scores or segments the rows of its batches; the driver then merges
the actors' partial confusion matrices by adding integer counts, so the
result equals a one-process run bit for bit, whatever the number of nodes
and the order batches finish in. Images that fail are reported with their
names and do not stop the others. Ray restarts actors and retries tasks
that die with a node.

A cluster::

    ray start --head --port 6379                   # on the head node
    ray start --address HEAD:6379                  # on every other node
    coreseg eval model.onnx /shared/dataset --ray auto

The model reaches the actors one of two ways:

- by path (the default): the model's path must be readable on every node
  (shared storage: NFS, a mounted bucket, the same path copied ahead);
- shipped (``ship_model=True``, ``--ray-ship-model``): the driver reads
  the model once and puts it in Ray's object store; each node receives it
  once and unpacks it once into its temporary folder (named by content
  hash), where every actor on that node loads it.

Dataset paths (Datagen datapoints, images) and `segment`'s output folder
must be on storage every node sees: actors read and write them where they
run.

Examples
--------
>>> import ray, coreseg.dist as dist                 # doctest: +SKIP
>>> ray.init(num_cpus=2)                             # doctest: +SKIP
>>> ds = ray.data.from_items([{"datapoint": str(p)} for p in folders])  # doctest: +SKIP
>>> result = dist.evaluate("model.onnx", ds)         # doctest: +SKIP
>>> result.matrix.miou()                             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..evaluation.metrics import ConfusionMatrix
from ..evaluation.scoring import ImageScore
from .workers import ITEM_ERRORS

__all__ = ["connect", "evaluate", "segment", "Evaluation", "Segmented", "score_datapoints"]


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ImportError("coreseg.dist runs on Ray: pip install 'coreseg[ray]'") from None
    return ray


def connect(address: str | None = "auto", **init_kwargs):
    """Join a Ray cluster, unless this process has joined one already.

    Parameters
    ----------
    address : str
        "auto" (the cluster this machine belongs to, `ray start`), a
        "ray://HOST:10001" client address, or "local" to start a Ray
        instance in this process.
    **init_kwargs
        Passed to `ray.init` (e.g. ``num_cpus=2`` for a local instance).
    """
    ray = _ray()
    if ray.is_initialized():
        return ray
    ray.init(address=None if address == "local" else address, **init_kwargs)
    return ray


@dataclass
class _ModelSource:
    """The model as actors reach it: a path on shared storage, or a tar
    archive in the object store unpacked once per node."""

    name: str
    path: str  # on the driver (and on every node, unless shipped)
    digest: str | None = None
    # In a list, so that Ray does not fetch the archive into every actor
    # before it looks for its node's unpacked copy.
    archive: list = field(default_factory=list)

    def local_path(self) -> str:
        if not self.archive:
            return self.path
        root = Path(tempfile.gettempdir()) / "coreseg-ray-models"
        target = root / self.digest / self.name
        if not target.exists():
            root.mkdir(parents=True, exist_ok=True)
            data = _ray().get(self.archive[0])
            unpacked = Path(tempfile.mkdtemp(dir=root, prefix=".unpacking-"))
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(unpacked, filter="data")
            try:
                os.rename(unpacked, root / self.digest)  # atomic: the first actor on the node wins
            except OSError:
                shutil.rmtree(unpacked, ignore_errors=True)  # another actor unpacked it first
        return str(target)


def _model_source(model, ship: bool) -> _ModelSource:
    if isinstance(model, str) and model == "demo":
        from ..evaluation import scenes as demo

        model = demo.model_path("onnx")
    path = Path(os.fspath(model)).resolve()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model")
    if not ship:
        return _ModelSource(path.name, str(path))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:  # a file, or a .mlpackage folder
        tar.add(path, arcname=path.name)
    data = buf.getvalue()
    return _ModelSource(path.name, str(path), hashlib.sha256(data).hexdigest()[:24], [_ray().put(data)])


def _load(source: _ModelSource, load_kwargs: dict):
    from .workers import load_model

    # One CPU per actor (Ray's default): one thread each.
    return load_model(source.local_path(), 1, **load_kwargs)


def _column(batch, name, i):
    return batch[name][i] if name in batch else None


class _ScoreBatch:
    """The UDF of `evaluate`: one per actor, the model loaded once."""

    def __init__(self, source, load_kwargs, classes, groups, num_classes, names, ignore_index):
        from ..evaluation.scoring import DatapointScorer

        self.model = _load(source, load_kwargs)
        self.datapoints = DatapointScorer(self.model, classes, groups) if classes is not None else None
        self.n = len(self.datapoints.names) if self.datapoints else num_classes
        self.names = self.datapoints.names if self.datapoints else names
        self.ignore_index = ignore_index

    def _score(self, batch, i) -> ImageScore | None:
        if self.datapoints is not None:
            return self.datapoints(batch["datapoint"][i])
        name = _column(batch, "name", i)
        pred = self.model.predict(batch["image"][i]).labels
        cm = ConfusionMatrix(self.n, self.names, ignore_index=self.ignore_index).update(batch["gt"][i], pred)
        return ImageScore.of(str(name) if name is not None else "", cm)

    def __call__(self, batch: dict) -> dict:
        partial = np.zeros((self.n, self.n), np.int64)
        rows = []
        key = "datapoint" if self.datapoints is not None else "gt"
        for i in range(len(batch[key])):
            index = _column(batch, "index", i)
            name = str(batch["datapoint"][i]) if self.datapoints else _column(batch, "name", i)
            try:
                score = self._score(batch, i)
            except ITEM_ERRORS as e:
                rows.append({"index": index, "image": name, "error": f"{type(e).__name__}: {e}"})
                continue
            if score is None:  # a datapoint without a photo
                rows.append({"index": index, "image": str(batch["datapoint"][i]), "skipped": True})
                continue
            partial[score.rows, score.cols] += score.counts
            rows.append({"index": index, "image": score.image, "miou": score.miou})
        # One row per batch: its partial matrix and what each image gave.
        return {"matrix": partial[None], "rows": np.array([pickle.dumps((self.names, rows))], dtype=object)}


@dataclass
class Evaluation:
    """What `evaluate` returns.

    Attributes
    ----------
    matrix : ConfusionMatrix
        Every scored image's counts, merged.
    per_image : list of dict
        {"image", "miou"} per scored image, in the dataset's order (its
        "index" column, else by name).
    failed : list of dict
        {"image", "error"} per image that failed (left out of `matrix`).
    skipped : list of str
        Datapoints without a photo.
    """

    matrix: ConfusionMatrix
    per_image: list
    failed: list
    skipped: list


def _order(rows):
    return sorted(rows, key=lambda r: (r["index"] is None, r["index"] if r["index"] is not None else 0,
                                       str(r["image"])))


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
    ray = _ray()
    source = _model_source(model, ship_model)
    columns = set(dataset.columns())
    labels = load_kwargs.get("labels") or inspect_labels(source.path)
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
    size = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    out = dataset.map_batches(_ScoreBatch, fn_constructor_args=udf_args, batch_size=batch_size,
                              compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1)
    # The reduce: partial matrices added on the driver (integer counts).
    total, rows = None, []
    for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
        part = batch["matrix"].sum(axis=0)
        total = part if total is None else total + part
        for blob in batch["rows"]:
            names, batch_rows = pickle.loads(blob)
            rows.extend(batch_rows)
    if total is None:
        raise ValueError("dataset: no rows")
    cm = ConfusionMatrix(len(total), names, ignore_index=ignore_index)
    cm.matrix[:] = total
    rows = _order(rows)
    return Evaluation(cm, [{"image": r["image"], "miou": r["miou"]} for r in rows if "miou" in r],
                      [{"image": r["image"], "error": r["error"]} for r in rows if "error" in r],
                      [r["image"] for r in rows if r.get("skipped")])


def score_datapoints(model_path, folders, classes, groups, *, labels=None, address="auto", ship_model=False,
                     batch_size: int = 8, **init_kwargs) -> Evaluation:
    """`coreseg eval --ray`: the Evaluation of Datagen datapoint folders on
    a cluster (`labels`: the model's, when the caller has them already)."""
    ray = connect(address, **init_kwargs)
    # A block per batch: blocks of one row each cost the object store a
    # round trip per image. Paths absolute: actors do not run in this folder.
    rows = [{"index": i, "datapoint": str(Path(f).resolve())} for i, f in enumerate(folders)]
    ds = ray.data.from_items(rows, override_num_blocks=max(1, -(-len(rows) // batch_size)))
    kwargs = {"labels": list(labels)} if labels else {}
    result = evaluate(model_path, ds, classes=classes, class_map=groups or None, ship_model=ship_model,
                      batch_size=batch_size, **kwargs)
    given = {row["datapoint"]: str(f) for row, f in zip(rows, folders)}  # named as the caller named them
    result.skipped = [given.get(s, s) for s in result.skipped]
    result.failed = [{**f, "image": given.get(f["image"], f["image"])} for f in result.failed]
    return result


class _SegmentBatch:
    """The UDF of `segment`: one per actor, the model loaded once."""

    def __init__(self, source, load_kwargs, settings, fmt):
        from ..drawing.image_outputs import ImageOutputs

        model = _load(source, load_kwargs)
        if settings.smooth is None:
            settings.smooth = model.has_scores
        self.outputs, self.fmt = ImageOutputs(model, settings), fmt

    def __call__(self, batch: dict) -> dict:
        from ..files.images import default_format

        rows = []
        for i, path in enumerate(batch["path"]):
            path = Path(str(path))
            index = _column(batch, "index", i)
            try:
                entry, annotated = self.outputs(path, self.fmt or default_format(path))
            except ITEM_ERRORS as e:
                rows.append({"index": index, "image": str(path), "error": f"{type(e).__name__}: {e}"})
                continue
            rows.append({"index": index, "image": str(path), "entry": entry, "coco": annotated})
        return {"rows": np.array([pickle.dumps(rows)], dtype=object)}


@dataclass
class Segmented:
    """What `segment` returns: `report`, one entry per image (as `coreseg
    segment --json`), in the dataset's order; `failed`, {"image", "error"}
    per image that failed."""

    report: list
    failed: list


def segment(model, dataset, out, *, opacity: float = 0.6, outline: bool = True, legend: bool = True,
            areas_only: bool = False, classes=None, color=None, smooth: bool | None = None, exports=(),
            fmt: str | None = None, overwrite: bool = False, batch_size: int = 4, actors: int | None = None,
            ship_model: bool = False, **load_kwargs) -> Segmented:
    """`coreseg segment`'s outputs for a Ray Dataset of image paths.

    Parameters
    ----------
    model : str or os.PathLike
    dataset : ray.data.Dataset
        A "path" column of image files, absolute (and an optional "index"
        column for the report's order).
    out : str or os.PathLike
        The output folder, on storage every node sees.
    opacity, outline, legend, areas_only, classes, color, exports
        As `coreseg.outputs.OutputSettings` (exports: "masks", "polygons",
        "coco"; COCO annotations are written by the driver to
        out/annotations.json).
    smooth : bool, optional
        Default: smooth edges when the model gives scores.
    fmt : {"png", "jpg", "webp"}, optional
        Overlay format (default: jpg for JPEG and HEIC photos, else png).
    overwrite : bool
        Replace existing outputs (default: refuse, naming the first).
    """
    ray = _ray()
    from ..drawing.image_outputs import OutputSettings, colliding_stem, output_paths

    out = Path(out).resolve()  # actors do not run in this folder
    paths = [Path(r["path"]) for r in dataset.select_columns(["path"]).iter_rows()]
    dup = colliding_stem(paths)
    if dup is not None:
        raise ValueError(f"two images are named {dup!r}: their outputs would collide")
    if not overwrite:
        from ..files.images import default_format

        existing = [f for p in paths for f in output_paths(out, p, fmt or default_format(p), areas_only)
                    if f is not None and f.exists()]
        if existing:
            raise FileExistsError(f"{existing[0]} exists; pass overwrite=True to replace it")
    exports = set(exports)
    coco = None
    if "coco" in exports:
        from ..files.export import CocoWriter

        coco = CocoWriter(load_kwargs.get("labels") or inspect_labels(model))
    out.mkdir(parents=True, exist_ok=True)
    settings = OutputSettings(out, opacity=opacity, outline=outline, legend=legend, areas_only=areas_only,
                              classes=list(classes) if classes else None, color=color, smooth=smooth,
                              exports=exports)
    source = _model_source(model, ship_model)
    size = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    results = dataset.map_batches(_SegmentBatch, fn_constructor_args=(source, load_kwargs, settings, fmt),
                                  batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1)
    rows = []
    for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
        for blob in batch["rows"]:
            rows.extend(pickle.loads(blob))
    rows = _order(rows)
    if coco is not None:
        for r in rows:
            if r.get("coco") is not None:
                coco.add_annotations(r["coco"])
        coco.write(out / "annotations.json")
    return Segmented([r["entry"] for r in rows if "entry" in r],
                     [{"image": r["image"], "error": r["error"]} for r in rows if "error" in r])


def inspect_labels(model):
    """The model's class names, read from its file (no backend needed)."""
    from ..modelfiles.info import inspect

    return inspect(_model_source(model, False).path).labels
