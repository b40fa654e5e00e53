"""Core ML backend (macOS 13+): coreseg._coreml, driven from here.

What the model declares and how its output is read is coreseg.modelfiles.coreml_file
and the model contract (coreseg.contract), as for ONNX; compiled models are
cached by coreml_cache. This module chooses, per image, the input size, the
pixel layout and the output array, and hands them to the native extension.
Everything here but the ``_coreml`` calls runs on any OS (the tests drive
it with a stand-in for ``_coreml``).

Where the copies are, and are not:
- input: an image that already has the model's input size and pixel
  layout (``layout="BGRA"`` for the usual kCVPixelFormatType_32BGRA models)
  with 16-byte aligned rows is wrapped in a CVPixelBuffer as it is. Any
  other is resampled and reordered by one resize_image pass straight into
  an IOSurface-backed CVPixelBuffer from a pool. Either way Core ML itself
  still converts the pixels to what the network takes (e.g. floats for an
  ML program), so wrapping saves one copy, not every copy. Which path is
  faster depends on the model and the compute units (Apple calls pool
  buffers "the most efficient choice": they are IOSurface-backed, wrapped
  memory is not); benchmarks/test_bench_coreml.py times both on the demo
  model, on a Mac only, and the macOS workflow prints the ratio. No
  number is claimed here.
- output: Core ML is offered a page-aligned numpy array as the output's
  backing (MLPredictionOptions.outputBackings), when the output has a known
  shape and the array passes the output's own ``isAllowedValue:`` test.
  Core ML may decline it ("may not use the specified backing object"); then
  its result is copied once into our array, honouring its strides.
  ``Segmentation.io`` records which happened. ``used_output_backing`` means
  the returned array is the memory Core ML wrote to, not that no copy
  happened inside Core ML.
- a grayscale image output (a class map as 8-bit or 16-bit float pixels,
  what exports made for Vision return) is read from Core ML's
  CVPixelBuffer into an int32 (h, w) array, the same as a multi-array
  class map. Core ML is offered a pooled IOSurface-backed CVPixelBuffer of
  the output's size and pixel format as its backing, when that size is
  known and the buffer passes the output's ``isAllowedValue:`` test; the
  pixels are converted to class ids either way (one copy).
- float scores are read in place from that array by the native argmax.
- arrays Core ML lets go of later, on threads of its own, are handed to
  the interpreter (Py_AddPendingCall) and decref'd on its main thread or
  at the next prediction's return; the GIL is never taken on Core ML's
  threads (src/native/coreml/coreml_release.h). From interpreter exit on,
  such releases leak.
- the GIL is released while Core ML runs. Calls on one model are
  serialised: Apple does not document concurrent predictions on one
  MLModel with per-call output backings as safe.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ...kernels import _args
from ...modelfiles import coreml_file
from ...files.images import as_image
from ...modelfiles.contract import OutputContract, Tensor, output_contract
from ...results.geometry import Placement, place
from ...modelfiles.info import ModelError
from ...modelfiles.contract import parse_size
from ...modelfiles.metadata_keys import CROP_KEY, SIZE_KEY
from ...results.segmentation import Segmentation
from ..segmenter import CoreMLError, Segmenter
from .coreml_cache import hold, load_compiled

__all__ = ["CoreMLSegmenter", "COMPUTE_UNIT_CODES", "page_aligned_empty", "rgb_to_gray"]

COMPUTE_UNIT_CODES = {"cpu": 0, "cpu_gpu": 1, "all": 2, "cpu_ne": 3}
PAGE = 16384  # Apple silicon's page size; a multiple of 4096 (Intel's)
_LAYOUTS = ("RGB", "RGBA", "BGRA", "ARGB")
# The numpy dtype an output is read into: what Core ML declares, with
# doubles as float32 (the argmax reads float32/float16). Nothing else is
# read: an int8 multi-array (newer Core ML; its MLMultiArrayDataType is not
# in the macOS 13 SDK coreseg builds against) is refused at load, as is a
# type the native describe() can only name by number ("unknown (0x...)").
_ARRAY_DTYPES = {"int32": "int32", "float16": "float16", "float32": "float32", "float64": "float32"}


def page_aligned_empty(shape, dtype=np.int32) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a page
    boundary, with whole pages behind it (round_up(nbytes, PAGE), as Apple's
    outputBackings example allocates); numpy owns the memory."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    rounded = -(-max(nbytes, 1) // PAGE) * PAGE
    raw = np.empty(rounded + PAGE, np.uint8)
    offset = (-raw.ctypes.data) % PAGE
    return raw[offset : offset + nbytes].view(dtype).reshape(shape)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 1) uint8 luma of an (h, w, 3|4) RGB(A) image, as Pillow's
    ``convert("L")`` computes it (ITU-R 601-2 weights, 16-bit fixed point)."""
    r, g, b = (rgb[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)[..., None]


class CoreMLSegmenter(Segmenter):
    """A segmentation model run by Core ML. Use ``coreseg.load``.

    Attributes
    ----------
    compiled_path : pathlib.Path
        The .mlmodelc Core ML loaded.
    from_cache : bool
        True when no compilation was needed.
    output : coreseg.contract.OutputContract
        Which output is read, and how (for a model whose output shape is
        only known from a result, each result carries its own).
    description_info : ModelInfo
        What Core ML's MLModelDescription says (``info`` comes from the spec
        when there is one; the two agree).
    wrap_inputs : bool
        Hand Core ML the caller's pixels as they are when they already fit
        (True, the default), or always copy them into IOSurface-backed pool
        buffers (False). Which is faster depends on the model and compute
        units; benchmarks/test_bench_coreml.py measures both on a Mac.
    """

    wrap_inputs = True

    backend = "coreml"

    def __init__(self, path, compute_units: str = "all", crop: str | None = None, labels=None, size=None,
                 output=None, output_layout=None, output_activation=None, threshold=None, native=None):
        if native is None:
            from ... import _coreml as native
        path = Path(path)
        if not path.exists():
            raise ModelError(f"{path}: no such file or folder")
        self._user = dict(output_layout=output_layout, output_activation=output_activation, threshold=threshold)
        units = COMPUTE_UNIT_CODES[compute_units]
        if path.suffix.lower() == ".mlmodelc":
            # A .mlmodelc of coreseg's cache is held as loading from it would.
            self._cache_lease = hold(path)
            self._model = native.Model(str(path), units)
            self.compiled_path, self.from_cache = path, True
            file = coreml_file.from_description(self._model.describe(), path)
            info, self.output = coreml_file.describe(file, labels=labels, output=output, ordered=False, **self._user)
            self._declared, self._dtype = self._readable_output(file, path)
        else:
            # The spec first: a clear error for what is not a segmentation
            # model, or for an output coreseg cannot read, before anything
            # is compiled.
            file = coreml_file.read(path)
            info, self.output = coreml_file.describe(file, labels=labels, output=output, **self._user)
            self._declared, self._dtype = self._readable_output(file, path)
            # The lease keeps the compiled entry in the cache for as long
            # as this model may read it (coreml_cache).
            self._model, self.compiled_path, self.from_cache, self._cache_lease = load_compiled(
                path, native, lambda compiled: native.Model(str(compiled), units), CoreMLError)
        desc = self._model.describe()
        described = coreml_file.from_description(desc, self.compiled_path)
        if file.model_type != "compiled":
            # The description does not say which layer made an output; the
            # spec did (a binary model's sigmoid cannot be described without it).
            made = {t.name: t.activation for t in file.outputs}
            described = dataclasses.replace(described, outputs=[
                dataclasses.replace(t, activation=made.get(t.name)) if t.activation is None else t
                for t in described.outputs])
        self.description_info, _ = coreml_file.describe(described, labels=labels, output=self.output.name,
                                                        **self._user)
        self._image = file.image
        # The pixel buffer format Core ML asks for: "BGRA", "ARGB" or "L008".
        self._pixel_format = next(f["pixel_format"] for f in desc["inputs"] if f["name"] == self._image.name)
        if self._pixel_format not in ("BGRA", "ARGB", "L008"):
            raise ModelError(f"{path}: input {self._image.name!r} takes {self._pixel_format} pixel buffers; "
                             "coreseg feeds 32BGRA, 32ARGB and OneComponent8")
        if size is None and SIZE_KEY in info.user_defined:  # stated by the model (annotate --set)
            size = parse_size(info.user_defined[SIZE_KEY])
        self._size = self._size_arg(size, path)
        self._contracts: dict = {}  # (result shape, canvas) -> OutputContract
        self._shapes: dict = {}  # canvas -> result shape, learned from results
        super().__init__(info, crop or info.user_defined.get(CROP_KEY) or "fill")

    def _readable_output(self, file, path: Path):
        """(the chosen output as declared, the numpy dtype it is read into),
        or a ModelError naming the output, its data type and what would work."""
        declared = next(t for t in file.outputs if t.name == self.output.name)
        if declared.image:  # an image output's pixels are class ids: read as int32, as multi-array maps are
            return declared, "int32"
        dtype = _ARRAY_DTYPES.get(declared.dtype)
        if dtype is None:
            others = [t.describe() for t in file.outputs if t.name != declared.name]
            raise ModelError(
                f"{path}: output {declared.name!r} is {declared.dtype}, which coreseg does not read: it reads int32, "
                "float16, float32 and float64 multi-arrays and grayscale images of class ids. Export that output as "
                "int32 (class ids) or float (scores)"
                + (f", or choose another with output=NAME (the others: {', '.join(others)})" if others else ""))
        return declared, dtype

    def _size_arg(self, size, path: Path):
        """None (the model's default size), "image" or an allowed (w, h)."""
        if size == "image" and not self._image.flexible:
            raise ValueError(f"size='image', but {path.name} takes {self._image.allowed()}")
        if size is None or size == "image":
            return size
        if not self._image.allows(size):
            raise ValueError(f"size={tuple(size)}, but {path.name} takes {self._image.allowed()}")
        return tuple(size)

    # ---- sizes and placement -------------------------------------------------

    def _canvas_size(self, img: np.ndarray) -> tuple[int, int]:
        if self._size == "image":
            return self._image.size_for((img.shape[1], img.shape[0]))
        return self._size or self._image.size

    def _result_shape(self, canvas) -> tuple | None:
        """The output's shape at an input size, when known (declared, or
        learned from a result at that size)."""
        declared = self._declared.shape
        if declared is not None and None not in declared and (canvas == self._image.size or not self._image.flexible):
            return declared
        return self._shapes.get(canvas)

    def _place(self, img: np.ndarray) -> Placement:
        canvas = self._canvas_size(img)
        return place((img.shape[1], img.shape[0]), canvas, self.crop, self._stride_at(canvas))

    def _stride_at(self, canvas) -> tuple[int, int]:
        """Input pixels per output pixel at an input size ((1, 1) when not
        known yet), so a letterbox falls on whole output pixels."""
        shape = self._result_shape(canvas)
        return (1, 1) if shape is None else self._contract(shape, canvas).stride(shape, canvas)

    def _contract(self, shape, canvas) -> OutputContract:
        """The output contract for a result of `shape` at input size `canvas`
        (the load-time one when the model declared its shape)."""
        key = (tuple(shape), canvas)
        if key not in self._contracts:
            if self._declared.shape is not None and None not in self._declared.shape:
                self._contracts[key] = self.output
            else:
                d = self._declared  # as declared (activation, image), with the result's shape
                tensor = Tensor(d.name, d.dtype, tuple(shape), d.activation, d.image)
                self._contracts[key] = output_contract(
                    [tensor], self.info.user_defined, str(self.info.path), input_size=canvas,
                    num_labels=None if self.info.labels is None else len(self.info.labels),
                    output=tensor.name, **self._user)
        return self._contracts[key]

    # ---- frames ---------------------------------------------------------------

    def _frame(self, image, layout):
        """(pixels, source channel of each pixel-buffer byte, wrap?, placement,
        canvas) for one image."""
        img = as_image(image)
        layout = (layout or ("RGBA" if img.shape[2] == 4 else "RGB")).upper()
        if layout not in _LAYOUTS or len(layout) != img.shape[2]:
            raise ValueError(f"layout must be one of {', '.join(_LAYOUTS)} with one letter per channel "
                             f"of the image ({img.shape[2]}), got {layout!r}")
        placement = self._place(img)
        canvas = placement.canvas_size
        _args.resize_factor(placement.source[2:], placement.target[2:])  # the native resize's limit
        if self._pixel_format == "L008":
            # Grayscale models take an 8-bit luma buffer: made here at the
            # model's size, then wrapped or copied by rows.
            if layout not in ("RGB", "RGBA"):
                img = img[..., [layout.index(c) for c in "RGB"]]
            gray = rgb_to_gray(placement.input_image(img[..., :3], "RGB"))
            return gray, [0, 0, 0, 0], self.wrap_inputs, placement, canvas
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
        wrap = self.wrap_inputs and layout == self._pixel_format and (img.shape[1], img.shape[0]) == canvas
        return img, order, wrap, placement, canvas

    # ---- prediction -----------------------------------------------------------

    def predict(self, image, layout: str | None = None, *, out: np.ndarray | None = None) -> Segmentation:
        """Segment one image.

        Parameters
        ----------
        image : (H, W, 3|4) uint8 ndarray, PIL image, or path
        layout : {"RGB", "RGBA", "BGRA", "ARGB"}, optional
            Byte order of `image`; default RGB or RGBA. Pass the model's own
            order ("BGRA" for most models) with an image of the model's
            input size to skip the input copy.
        out : ndarray, optional
            Where the model's raw output goes: a previous result's ``raw``
            (its labels are then overwritten), so a video loop allocates
            nothing. Its shape and dtype must be the output's at this input
            size.

        Returns
        -------
        Segmentation
            ``io`` records whether the input was wrapped and whether Core ML
            wrote into our output array.
        """
        img, order, wrap, placement, canvas = self._frame(image, layout)
        shape = self._result_shape(canvas)
        if out is not None:
            self._check_out(out, shape, canvas)
        elif shape is not None:
            out = page_aligned_empty(shape, self._dtype)
        raw, timings, io = self._model.predict(img, order, wrap, self._image.name, canvas, self.output.name,
                                               self._dtype, out)
        return self._result(raw, placement, canvas, timings, io)

    def _check_out(self, out, shape, canvas) -> None:
        """`out` must have the output's dtype (known from load) and, once it
        is known, its shape; checked before Core ML runs."""
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
        # == compares by value and byte order: a pickled array's dtype
        # (multiprocessing, --jobs, Ray) is equal, not the same object.
        if out.dtype != np.dtype(self._dtype) or (shape is not None and out.shape != tuple(shape)):
            at = f"{canvas[0]}x{canvas[1]}"
            expected = f"{tuple(shape)} {self._dtype}" if shape is not None else \
                f"{self._dtype} (its shape is learned from the first result at {at})"
            raise ValueError(f"out has shape {out.shape} and dtype {out.dtype}; this model's output "
                             f"{self.output.name} at {at} is {expected}")
        if not (out.flags.c_contiguous and out.flags.writeable and out.flags.aligned):
            raise ValueError("out must be a writable, aligned, C-contiguous array")

    def _result(self, raw, placement, canvas, timings, io) -> Segmentation:
        self._shapes.setdefault(canvas, raw.shape)
        contract = self._contract(raw.shape, canvas)
        t0 = time.perf_counter()
        labels = contract.labels(raw)
        timings = dict(timings)
        timings["postprocess"] = timings.get("postprocess", 0.0) + time.perf_counter() - t0
        return Segmentation(labels, placement.image_size, self.info.labels, self._palette, timings,
                            placement=None if placement.mode == "fill" else placement, raw=raw,
                            output=contract, io=dict(io))

    def predict_batch(self, images, layout: str | None = None) -> list[Segmentation]:
        """Segment several images with one predictionsFromBatch: call (Core ML
        takes no output backings for batches: each result is copied once)."""
        frames = [self._frame(im, layout) for im in images]
        if not frames:
            return []
        t0 = time.perf_counter()
        raws, timings = self._model.predict_batch([f[0] for f in frames], [f[1] for f in frames], self._image.name,
                                                  [f[4] for f in frames], self.output.name, self._dtype)
        timings = {k: v / len(frames) for k, v in timings.items()}
        total = time.perf_counter() - t0
        io = {"wrapped_input": False, "offered_output_backing": False, "used_output_backing": False}
        results = [self._result(raw, f[3], f[4], timings, io) for f, raw in zip(frames, raws)]
        for r in results:
            r.timings["batch_total"] = total
        return results

