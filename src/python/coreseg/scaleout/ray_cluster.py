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
>>> result.boundary.mean_iou(), result.boundary.mean_f_score()   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["connect", "inspect_labels"]


def ray_module():
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
    ray = ray_module()
    if ray.is_initialized():
        return ray
    # "local" is ray.init's own: a new instance here, even beside a running
    # cluster (None would join one found on this machine, or a stale
    # address left by one that has stopped).
    ray.init(address=address, **init_kwargs)
    return ray


@dataclass
class ModelSource:
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
            data = ray_module().get(self.archive[0])
            unpacked = Path(tempfile.mkdtemp(dir=root, prefix=".unpacking-"))
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(unpacked, filter="data")
            try:
                os.rename(unpacked, root / self.digest)  # atomic: the first actor on the node wins
            except OSError:
                shutil.rmtree(unpacked, ignore_errors=True)  # another actor unpacked it first
        return str(target)


def model_source(model, ship: bool) -> ModelSource:
    if isinstance(model, str) and model == "demo":
        from ..modelfiles import bundled

        model = bundled.model_path("onnx")
    path = Path(os.fspath(model)).resolve()
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model")
    if not ship:
        return ModelSource(path.name, str(path))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:  # a file, or a .mlpackage folder
        tar.add(path, arcname=path.name)
    data = buf.getvalue()
    return ModelSource(path.name, str(path), hashlib.sha256(data).hexdigest()[:24], [ray_module().put(data)])


def load_on_actor(source: ModelSource, load_kwargs: dict):
    from ..running.loader import load_model
    from .process_memory import keep_freed_memory

    # An actor is a process of its own, fed one batch after another.
    keep_freed_memory()
    # One CPU per actor (Ray's default): one thread each.
    return load_model(source.local_path(), 1, **load_kwargs)


def column(batch, name, i):
    return batch[name][i] if name in batch else None


def in_input_order(rows):
    return sorted(rows, key=lambda r: (r["index"] is None, r["index"] if r["index"] is not None else 0,
                                       str(r["image"])))


def inspect_labels(model):
    """The model's class names, read from its file (no backend needed)."""
    from ..modelfiles.reading import inspect

    return inspect(model_source(model, False).path).labels
