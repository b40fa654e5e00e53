"""`segment` on a Ray cluster: `coreseg segment`'s files for every image
of a Ray Dataset of paths, written by the actors into an output folder
every node sees."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ray_cluster import column, load_on_actor, model_source, in_input_order, ray_module, inspect_labels
from .workers import ITEM_ERRORS

__all__ = ["segment", "Segmented"]


def model_labels(model, load_kwargs) -> list | None:
    """The class names the actors' model will have: `load`'s `labels` (a
    list, or a preset's name), else the model file's own."""
    from ..modelfiles.presets import is_preset, preset

    labels = load_kwargs.get("labels")
    if is_preset(labels):
        return preset(labels)[0]
    return list(labels) if labels else inspect_labels(model)


class _SegmentBatch:
    """The UDF of `segment`: one per actor, the model loaded once."""

    def __init__(self, source, load_kwargs, settings, fmt):
        from ..drawing.image_outputs import ImageOutputs

        model = load_on_actor(source, load_kwargs)
        if settings.smooth is None:
            settings.smooth = model.has_scores
        self.outputs, self.fmt = ImageOutputs(model, settings), fmt

    def __call__(self, batch: dict) -> dict:
        from ..files.images import default_format

        rows = []
        for i, path in enumerate(batch["path"]):
            path = Path(str(path))
            index = column(batch, "index", i)
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
        As `coreseg.drawing.image_outputs.OutputSettings` (exports: "masks", "polygons",
        "coco"; COCO annotations are written by the driver to
        out/annotations.json).
    smooth : bool, optional
        Default: smooth edges when the model gives scores.
    fmt : {"png", "jpg", "webp"}, optional
        Overlay format (default: jpg for JPEG and HEIC photos, else png).
    overwrite : bool
        Replace existing outputs (default: refuse, naming the first in input order).
    """
    ray = ray_module()
    from ..drawing.image_outputs import (OutputSettings, check_exports, check_label_count, colliding_stem,
                                         run_outputs)
    from ..files.images import default_format
    from ..files.safe_io import refuse_existing

    exports = check_exports(exports)
    out = Path(out).resolve()  # actors do not run in this folder
    # Ray Data need not keep the rows' order: put them in input order (their
    # "index", else their path) so that refusals name the same file every run.
    columns = ["path"] + (["index"] if "index" in (dataset.columns() or []) else [])
    rows = sorted(dataset.select_columns(columns).iter_rows(),
                  key=lambda r: (r.get("index") is None, r.get("index") or 0, str(r["path"])))
    paths = [Path(r["path"]) for r in rows]
    dup = colliding_stem(paths)
    if dup is not None:
        raise ValueError(f"two images are named {dup!r}: their outputs would collide")
    labels = model_labels(model, load_kwargs)
    check_label_count(labels)
    # The command line's rule: every output of the run, exports and
    # annotations.json included, symlinks too.
    refuse_existing(run_outputs(out, paths, lambda p: fmt or default_format(p), areas_only, exports), overwrite,
                    "pass overwrite=True to replace it")
    coco = None
    if "coco" in exports:
        from ..files.export import CocoWriter

        coco = CocoWriter(labels)
    if "polygons" in exports:
        from ..files.export import opencv

        opencv()  # the extra's message before any work
    out.mkdir(parents=True, exist_ok=True)
    settings = OutputSettings(out, opacity=opacity, outline=outline, legend=legend, areas_only=areas_only,
                              classes=list(classes) if classes else None, color=color, smooth=smooth,
                              exports=exports)
    source = model_source(model, ship_model)
    size = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    results = dataset.map_batches(_SegmentBatch, fn_constructor_args=(source, load_kwargs, settings, fmt),
                                  batch_size=batch_size, compute=ray.data.ActorPoolStrategy(size=size), num_cpus=1)
    rows = []
    for batch in results.iter_batches(batch_size=None, batch_format="numpy"):
        for blob in batch["rows"]:
            rows.extend(pickle.loads(blob))
    rows = in_input_order(rows)
    if coco is not None:
        for r in rows:
            if r.get("coco") is not None:
                coco.add_annotations(r["coco"])
        coco.write(out / "annotations.json")
    return Segmented([r["entry"] for r in rows if "entry" in r],
                     [{"image": r["image"], "error": r["error"]} for r in rows if "error" in r])
