"""Core ML backend (macOS 13+): coreseg._coreml, with compiled models cached.

Where the copies are, and are not:
- input: when the image already has the model's input size, is 4 bytes a
  pixel in the model's byte order (``layout="BGRA"`` for the usual
  kCVPixelFormatType_32BGRA models) and its rows are 16-byte aligned, its
  memory is wrapped in a CVPixelBuffer as it is: no copy. Otherwise one
  pass of the resize_image kernel writes it, resampled and reordered,
  straight into an IOSurface-backed CVPixelBuffer from a pool.
- output: Core ML is handed the page-aligned memory of the numpy array that
  becomes ``Segmentation.labels`` (MLPredictionOptions.outputBackings). If
  it did not use it (checked by pointer), its result is copied once,
  honouring its strides. ``Segmentation.timings["used_output_backing"]``
  says which happened. Batches take no output backings: one copy each.
- the GIL is released while Core ML runs. Calls on one model are
  serialised by the backend: Apple does not document concurrent
  predictions on one MLModel with per-call output backings as safe.

Compiling a .mlpackage or .mlmodel happens once: the .mlmodelc is cached
under ~/Library/Caches/coreseg (or $CORESEG_CACHE), keyed by the model's
content hash and the macOS build, so a second load does not compile.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import platform
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np

from .._images import as_image
from ..model_info import (
    PREVIEW_PARAMS_KEY,
    PREVIEW_TYPE_KEY,
    ModelError,
    ModelInfo,
    given_labels,
    inspect,
    parse_preview_params,
)
from ..geometry import place
from ..segmenter import Segmentation, Segmenter

COMPUTE_UNIT_CODES = {"cpu": 0, "cpu_gpu": 1, "all": 2, "cpu_ne": 3}
PAGE = 16384  # Apple silicon page size; also a multiple of 4096
_LAYOUTS = ("RGB", "RGBA", "BGRA", "ARGB")


def cache_dir() -> Path:
    """Where compiled models are kept: $CORESEG_CACHE, else the user cache."""
    if os.environ.get("CORESEG_CACHE"):
        return Path(os.environ["CORESEG_CACHE"])
    return Path.home() / "Library" / "Caches" / "coreseg"


def os_build() -> str:
    """The macOS build (e.g. 23E224): a compiled model is only valid for the
    Core ML that compiled it."""
    try:
        out = subprocess.run(["sysctl", "-n", "kern.osversion"], capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return platform.mac_ver()[0] or "unknown"


def content_hash(path: Path) -> str:
    """SHA-256 of a model file, or of every file (name and bytes) of a package."""
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        h.update(b"\0")
        with open(f, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def compiled_model(path: Path, native) -> tuple[Path, bool]:
    """The cached .mlmodelc of a .mlpackage/.mlmodel, compiling it on a
    miss. Returns (path, True if it came from the cache)."""
    root = cache_dir() / "models"
    final = root / f"{path.stem}-{content_hash(path)[:24]}-{os_build()}.mlmodelc"
    if final.is_dir():
        return final, True
    root.mkdir(parents=True, exist_ok=True)
    temporary = Path(native.compile_model(str(path)))
    staged = root / f".{uuid.uuid4().hex}.mlmodelc"
    try:
        shutil.move(str(temporary), staged)
        try:
            os.replace(staged, final)
        except OSError:
            if not final.is_dir():  # not a lost race with another process
                raise
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.rmtree(temporary, ignore_errors=True)
    return final, False


def page_aligned_empty(shape, dtype=np.int32) -> np.ndarray:
    """An uninitialised array whose data starts on a page boundary, with numpy
    owning the memory (the base array)."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + PAGE, np.uint8)
    offset = (-raw.ctypes.data) % PAGE
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


def info_from_description(desc: dict, path: Path, input_size, output_shape) -> ModelInfo:
    """ModelInfo from Core ML's own MLModelDescription (what a .mlmodelc,
    which has no spec, can tell)."""
    image = next(f for f in desc["inputs"] if f["kind"] == "image")
    output = next(f for f in desc["outputs"] if f["kind"] == "multiArray")
    creator = dict(desc["creator_defined"])
    labels, colors = parse_preview_params(creator.get(PREVIEW_PARAMS_KEY), path)
    meta = desc["metadata"]
    return ModelInfo(
        path=path, format=path.suffix.lstrip(".").lower(), model_type="compiled", spec_version=0,
        preview_type=creator.get(PREVIEW_TYPE_KEY), labels=labels, colors=colors,
        input_name=image["name"], input_size=tuple(input_size), input_color_layout="RGB",
        input_size_range=None, input_sizes=None, output_name=output["name"], output_dtype=output["dtype"],
        output_shape=tuple(output_shape), author=meta.get("author", ""), license=meta.get("license", ""),
        version=meta.get("version", ""), description=meta.get("description", ""), user_defined=creator,
    )


class CoreMLSegmenter(Segmenter):
    """A segmentation model run by Core ML. Use ``coreseg.load``.

    Attributes
    ----------
    compiled_path : pathlib.Path
        The .mlmodelc Core ML loaded.
    from_cache : bool
        True when no compilation was needed.
    description_info : ModelInfo
        What Core ML's MLModelDescription says (``info`` comes from the spec
        when there is one; the two agree).
    """

    backend = "coreml"

    def __init__(self, path, compute_units: str = "all", crop: str = "fill", labels=None):
        from .. import _coreml

        path = Path(path)
        if not path.exists():
            raise ModelError(f"{path}: no such file or folder")
        spec_info = None
        if path.suffix.lower() == ".mlmodelc":
            self.compiled_path, self.from_cache = path, True
        else:
            spec_info = inspect(path)  # clear errors for what is not a segmentation model
            self.compiled_path, self.from_cache = compiled_model(path, _coreml)
        self._model = _coreml.Model(str(self.compiled_path), COMPUTE_UNIT_CODES[compute_units])
        self._pixel_format = self._model.pixel_format  # "BGRA" or "ARGB"
        self._output_shape = tuple(self._model.output_shape)
        self.description_info = info_from_description(self._model.describe(), path, self._model.input_size,
                                                      self._output_shape)
        info = spec_info or self.description_info
        names, colors = given_labels(info.labels, info.colors, labels)
        super().__init__(dataclasses.replace(info, labels=names, colors=colors), crop)

    def _frame(self, image, layout):
        """(pixels, byte order of the pixel buffer's bytes in them, wrap?,
        placement) for one image."""
        img = as_image(image)
        layout = (layout or ("RGBA" if img.shape[2] == 4 else "RGB")).upper()
        if layout not in _LAYOUTS or len(layout) != img.shape[2]:
            raise ValueError(f"layout must be one of {', '.join(_LAYOUTS)} with one letter per channel "
                             f"of the image ({img.shape[2]}), got {layout!r}")
        placement = place((img.shape[1], img.shape[0]), tuple(self._model.input_size), self.crop)
        if placement.mode == "center":
            x, y, w, h = placement.source
            img = img[y : y + h, x : x + w]  # a view: resized straight into the pixel buffer
        elif placement.mode == "fit" and placement.source != placement.target:
            # Letterbox into a model-sized frame in the pixel buffer's own
            # byte order, which is then wrapped, not copied again.
            if layout not in ("RGB", "RGBA"):
                img = img[..., [layout.index(c) for c in "RGBA"[: img.shape[2]]]]
            img, layout = placement.input_image(img, self._pixel_format), self._pixel_format
        # Source channel of each of the pixel buffer's bytes (3 on an RGB
        # source is the alpha byte the kernel sets to 255).
        order = [layout.index(c) if c in layout else 3 for c in self._pixel_format]
        wrap = layout == self._pixel_format and (img.shape[1], img.shape[0]) == tuple(self._model.input_size)
        return img, order, wrap, placement

    def _labels(self, out: np.ndarray) -> np.ndarray:
        return out.reshape(out.shape[-2:]) if out.ndim > 2 else out

    def predict(self, image, layout: str | None = None) -> Segmentation:
        """Segment one image.

        Parameters
        ----------
        image : (H, W, 3|4) uint8 ndarray, PIL image, or path
        layout : {"RGB", "RGBA", "BGRA", "ARGB"}, optional
            Byte order of `image`; default RGB or RGBA. Pass the model's own
            order ("BGRA" for most models) with an image of the model's
            input size to skip the input copy.
        """
        img, order, wrap, placement = self._frame(image, layout)
        out = page_aligned_empty(self._output_shape)
        t = self._model.predict(img, order, wrap, out)
        return self._result(out, placement, t)

    def _result(self, out, placement, timings) -> Segmentation:
        return Segmentation(self._labels(out), placement.image_size, self.info.labels, self._palette, timings,
                            placement=None if placement.mode == "fill" else placement)

    def predict_batch(self, images, layout: str | None = None) -> list[Segmentation]:
        """Segment several images with one predictionsFromBatch: call."""
        frames = [self._frame(im, layout) for im in images]
        if not frames:
            return []
        outs = [page_aligned_empty(self._output_shape) for _ in frames]
        t0 = time.perf_counter()
        t = self._model.predict_batch([f[0] for f in frames], [f[1] for f in frames], outs)
        t["total"] = time.perf_counter() - t0
        return [self._result(out, placement, dict(t)) for (_, _, _, placement), out in zip(frames, outs)]
