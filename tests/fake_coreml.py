"""A stand-in for coreseg._coreml, so the Core ML backend's Python side runs
on any OS against real model specs built with coremltools.

It behaves as the native module and Core ML do, as far as the Python side
can tell: compile_model makes a .mlmodelc folder; Model.describe() gives
what MLModelDescription gives (features in no particular order, no output
shape for flexible models, 32BGRA buffers for colour images, OneComponent8
for grayscale, OneComponent8 / OneComponent16Half for grayscale image
outputs with their size constraint); predict builds the pixel buffer the
native code would (resize_image in `order`, or the one-channel frame as it
is), hands the network its planes in the model's colour layout, and
returns the result the way the native code does: written into `out` when
Core ML would accept it as a backing, else converted into it (or into a
new array) with coreseg._native.convert_array, the kernel the native code
uses. For a grayscale image output, `out` is the int32 (h, w) class map:
a pixel buffer of `out`'s size is offered as the backing when the output's
size constraint allows it (the native isAllowedValue: test), Core ML
"uses" it when its result has that size, and the pixels (uint8, or float16
that must be whole numbers) become int32 ids either way; each call to an
image output records the backing it offered as ``calls[i]["backing"]``
(pixel format, width, height) or None.

What the network computes is given per model by the test: a function of
the (C, h, w) float32 planes returning the output array (for an image
output, the (h, w) pixel values, any unit axes around them).

It checks arrays as the native bindings do: dtypes by equivalence (value
and byte order, numpy's PyArray_EquivTypes), never by identity, so a
pickled array passes; describe() names an int8 output "int8" and a type
it does not know by number, and predict refuses both, before running the
network, as Model::Predict does.
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from coreseg import _native, kernels
from coreseg.modelfiles.coreml_file import read_spec
from coreseg.running.segmenter import CoreMLError

_DTYPES = {65568: "float32", 65600: "float64", 65552: "float16", 131104: "int32", 131080: "int8"}
_READ = {"int32", "float16", "float32", "float64"}  # the multi-array types the native code reads
# Pixel formats of image features by ImageFeatureType.ColorSpace, as the
# native describe() names them (GRAYSCALE, GRAYSCALE_FLOAT16; colour: BGRA).
_IMAGE_FORMATS = {10: "L008", 40: "L00h"}


class FakeCoreML:
    def __init__(self, networks: dict, returns: dict | None = None, workdir=None):
        """networks: output name -> f(planes) -> array; returns: output name
        -> the dtype Core ML hands back (default: as declared); workdir:
        where compiled models are made (default: beside the model, which
        must then be writable)."""
        self.networks, self.returns = networks, returns or {}
        self.workdir = None if workdir is None else Path(workdir)
        self.compiled = 0
        self.models = []

    def network(self, model, output):
        """What `model`'s network computes for `output` (see the module docstring)."""
        return self.networks[output]

    def compile_model(self, path):
        self.compiled += 1
        out = (self.workdir or Path(path).parent) / f"compiled-{self.compiled}.mlmodelc"
        out.mkdir()
        (out / "source.json").write_text(json.dumps({"spec": str(path)}))
        return str(out)

    def Model(self, compiled_path, compute_units):
        source = Path(compiled_path) / "source.json"
        if not source.exists():
            raise CoreMLError("Core ML could not load the model")
        model = FakeModel(Path(json.loads(source.read_text())["spec"]), self)
        self.models.append(model)
        return model


class FakeModel:
    def __init__(self, spec_path: Path, owner: FakeCoreML):
        self.spec, _ = read_spec(spec_path)
        self.owner = owner
        self.calls = []

    def describe(self):
        desc = self.spec.description
        inputs = []
        for f in desc.input:
            it = f.type.imageType
            inputs.append({"name": f.name, "kind": "image", "shape": [it.height, it.width], "dtype": "",
                           "optional": False, "pixel_format": "L008" if it.colorSpace == 10 else "BGRA",
                           "size_constraint": self._size_constraint(it)})
        outputs = [self._output_description(f) for f in desc.output]
        meta = desc.metadata
        return {"inputs": inputs, "outputs": outputs[::-1],  # a dictionary's order, not the spec's
                "metadata": {"author": meta.author, "license": meta.license, "version": meta.versionString,
                             "description": meta.shortDescription},
                "creator_defined": dict(meta.userDefined)}

    @staticmethod
    def _size_constraint(it):
        """An image feature's MLImageSizeConstraint, as the native describe()
        reports it."""
        flex = it.WhichOneof("SizeFlexibility")
        if flex == "imageSizeRange":
            r = it.imageSizeRange
            big = 1 << 62  # NSRange length of an open range
            hi = lambda b: big if b < 0 else b  # noqa: E731
            return {"type": "range", "sizes": [],
                    "width_range": (r.widthRange.lowerBound, hi(r.widthRange.upperBound)),
                    "height_range": (r.heightRange.lowerBound, hi(r.heightRange.upperBound))}
        if flex == "enumeratedSizes":
            return {"type": "enumerated", "sizes": [(s.width, s.height) for s in it.enumeratedSizes.sizes]}
        return {"type": "unspecified", "sizes": []}

    def _output_description(self, f):
        if f.type.WhichOneof("Type") == "imageType":
            it = f.type.imageType
            return {"name": f.name, "kind": "image", "shape": [it.height, it.width], "dtype": "", "optional": False,
                    "pixel_format": _IMAGE_FORMATS.get(it.colorSpace, "BGRA"),
                    "size_constraint": self._size_constraint(it)}
        data_type = f.type.multiArrayType.dataType
        return {"name": f.name, "kind": "multiArray", "shape": list(f.type.multiArrayType.shape),
                "dtype": _DTYPES.get(data_type, f"unknown (0x{data_type:X})"), "optional": False, "pixel_format": "",
                "shape_constraint": {"type": "unspecified", "ranges": [], "shapes": []}}

    def _image_output(self, name):
        f = next((f for f in self.spec.description.output if f.name == name), None)
        return f.type.imageType if f is not None and f.type.WhichOneof("Type") == "imageType" else None

    @staticmethod
    def _allows(it, width, height) -> bool:
        """MLFeatureDescription isAllowedValue: for a pixel buffer of the
        output's pixel format and this size."""
        flex = it.WhichOneof("SizeFlexibility")
        if flex == "imageSizeRange":
            r = it.imageSizeRange
            within = lambda v, lo, hi: lo <= v and (hi < 0 or v <= hi)  # noqa: E731
            return (within(width, r.widthRange.lowerBound, r.widthRange.upperBound)
                    and within(height, r.heightRange.lowerBound, r.heightRange.upperBound))
        if flex == "enumeratedSizes":
            return (width, height) in {(s.width, s.height) for s in it.enumeratedSizes.sizes}
        return (width, height) == (it.width, it.height)

    def _predict_image(self, result, output, dtype, out):
        """The native code's image-output path: a pixel buffer of `out`'s
        size offered as the backing if allowed; the pixels read into int32."""
        it = self._image_output(output)
        fmt = _IMAGE_FORMATS.get(it.colorSpace)
        if fmt is None:
            raise CoreMLError(f"the model has no multi-array or grayscale image output named {output}")
        if dtype != "int32":
            raise CoreMLError(f"image output {output} is read into int32 class ids, not {dtype}")
        dims = [d for d in result.shape if d != 1]
        pixels = result.reshape(dims if len(dims) == 2 else result.shape[-2:])
        pixels = pixels.astype(np.uint8 if fmt == "L008" else np.float16)
        backing = None
        if out is not None:
            if out.ndim != 2 or out.dtype != np.int32:
                raise CoreMLError(f"image output {output} is read into an int32 (height, width) array")
            if self._allows(it, out.shape[1], out.shape[0]):
                backing = (fmt, out.shape[1], out.shape[0])
        self.calls[-1]["backing"] = backing
        io = {"offered_output_backing": backing is not None,
              "used_output_backing": backing is not None and pixels.shape == out.shape}
        array = out if out is not None else np.empty(pixels.shape, np.int32)
        if array.shape != pixels.shape:
            raise CoreMLError(f"Core ML returned output {output} of shape {pixels.shape}, which does not fit an "
                              f"array of shape {array.shape}")
        values = pixels.astype(np.float64)
        whole = np.isfinite(values) & (values == np.floor(values))
        if not whole.all():  # the native ConvertArray's refusal
            raise CoreMLError(f"Core ML returned {values[~whole][0]} in output {output}, which is not a class id "
                              "(a whole number that fits int32)")
        _native.convert_array(pixels if fmt == "L00h" else pixels.astype(np.int32), array)
        return array, io

    def _network_input(self, image, order, size):
        it = self.spec.description.input[0].type.imageType
        w, h = size
        if it.colorSpace == 10:  # OneComponent8: the frame as it is
            assert image.shape == (h, w, 1), "a grayscale frame must already have the input's size"
            return image.transpose(2, 0, 1).astype(np.float32)
        # What the native ResizeImage writes: the resampled source channels,
        # byte i of each pixel from source channel order[i] (3: alpha 255).
        src = kernels.resize_image(image, (w, h), "RGBA" if image.shape[2] == 4 else "RGB")
        if src.shape[2] == 3:
            src = np.dstack([src, np.full((h, w), 255, np.uint8)])
        bgra = src[..., list(order)]
        rgb = bgra[..., [2, 1, 0]]
        planes = rgb[..., ::-1] if it.colorSpace == 30 else rgb  # Core ML hands BGR models B, G, R
        return np.ascontiguousarray(planes.transpose(2, 0, 1), np.float32)

    @staticmethod
    def _check_arrays(image, out):
        """The bindings' checks (AsFrame, AsArray), by dtype equivalence."""
        if image.dtype != np.uint8:
            raise TypeError(f"image must have dtype uint8, got {image.dtype}")
        if out is not None:
            if out.dtype not in (np.dtype(np.int32), np.dtype(np.float16), np.dtype(np.float32)):
                raise TypeError("out must have dtype int32, float16 or float32 (in the machine's byte order), "
                                f"got {out.dtype}")
            if not (out.flags.c_contiguous and out.flags.writeable):
                raise ValueError("out must be a writable C-contiguous array")
            if not out.flags.aligned:
                raise ValueError("out is not aligned to its element size")

    def _check_output(self, output):
        """Model::Predict's OutputDescription: a multi-array type it reads."""
        f = next((f for f in self.spec.description.output if f.name == output), None)
        if f is not None and f.type.WhichOneof("Type") == "multiArrayType":
            described = self._output_description(f)["dtype"]
            if described not in _READ:
                raise CoreMLError(f"output {output} is {described}, which coreseg does not read (it reads int32, "
                                  "float16, float32 and float64 multi-arrays)")

    def predict(self, image, order, wrap, input, size, output, dtype, out=None):
        self._check_arrays(image, out)
        self._check_output(output)
        self.calls.append({"size": tuple(size), "output": output, "wrap": wrap, "out": out})
        planes = self._network_input(image, order, size)
        result = np.asarray(self.owner.network(self, output)(planes))
        returned = self.owner.returns.get(output)
        if returned is not None:
            result = result.astype(returned)
        wrapped = bool(wrap and image.shape[2] in (1, 4))
        if self._image_output(output) is not None:
            array, io = self._predict_image(result, output, dtype, out)
            return array, {"preprocess": 0.001, "inference": 0.002, "postprocess": 0.0}, {"wrapped_input": wrapped, **io}
        io = {"wrapped_input": wrapped, "offered_output_backing": out is not None, "used_output_backing": False}
        if out is not None:
            if out.shape == result.shape and out.dtype == result.dtype:
                out[...] = result  # Core ML wrote into the backing
                io["used_output_backing"] = True
            else:
                if [d for d in out.shape if d != 1] != [d for d in result.shape if d != 1]:
                    raise CoreMLError(f"Core ML returned output {output} of shape {result.shape}, which does not "
                                      f"fit an array of shape {out.shape}")
                _native.convert_array(result, out)
            array = out
        else:
            array = np.empty(result.shape, dtype)
            _native.convert_array(result, array)
        return array, {"preprocess": 0.001, "inference": 0.002, "postprocess": 0.0}, io

    def predict_batch(self, images, orders, input, sizes, output, dtype):
        for image in images:
            self._check_arrays(image, None)
        self._check_output(output)
        arrays = [self.predict(im, o, False, input, s, output, dtype)[0] for im, o, s in zip(images, orders, sizes)]
        return arrays, {"preprocess": 0.001, "inference": 0.002, "postprocess": 0.0}


# ---- CORESEG_FAKE_COREML=1: the suite run as a Mac runs it ----------------------------------------


class EnvironmentCoreML(FakeCoreML):
    """The stand-in `coreseg.load` uses under CORESEG_FAKE_COREML=1: the
    bundled demo (or a copy of it) runs through its ONNX twin, which has
    the same weights, by ONNX Runtime, so every feature built on its
    scores behaves as on a Mac; a test's own model runs the network it
    registers with `register(output, fn)`."""

    def __init__(self):
        super().__init__({}, workdir=tempfile.mkdtemp(prefix="coreseg-fake-coreml-"))
        self._demo = None

    def register(self, output: str, fn) -> None:
        self.networks[output] = fn

    def Model(self, compiled_path, compute_units):
        # A suite's worth of models and frames: keep no history of them
        # (the tests' own fakes record every call and its `out` array).
        model = super().Model(compiled_path, compute_units)
        self.models.clear()
        model.calls = collections.deque(maxlen=4)
        return model

    def network(self, model, output):
        if output in self.networks:
            return self.networks[output]
        meta = model.spec.description.metadata
        if meta.author == "coreseg" and output == "logits" and meta.shortDescription.startswith("coreseg demo"):
            return self._demo_network
        raise CoreMLError(f"the fake Core ML has no network for output {output!r} of "
                          f"{meta.shortDescription or 'this model'}: register one (fake_coreml.register)")

    def _demo_network(self, planes):
        # The demo's ONNX twin takes the uint8 NHWC RGB image the planes hold.
        if self._demo is None:
            import onnxruntime

            from coreseg.modelfiles import bundled

            self._demo = onnxruntime.InferenceSession(str(bundled.model_path("onnx")),
                                                      providers=["CPUExecutionProvider"])
        # The planes hold whole numbers 0..255 (a uint8 image's): no rounding,
        # and no temporaries beyond the one the model takes (the stream's
        # constant-memory test counts this stand-in's arrays too).
        image = np.empty((1, planes.shape[1], planes.shape[2], 3), np.uint8)
        np.copyto(image[0], planes.transpose(1, 2, 0), casting="unsafe")
        (logits,) = self._demo.run(None, {"image": image})
        return logits.astype(np.float16)  # what the Core ML demo declares


_ENVIRONMENT = None


def environment_module() -> EnvironmentCoreML:
    """The one stand-in of this process (its compiled models in a cache of
    its own, so no fake entry ever reaches a real cache)."""
    global _ENVIRONMENT
    if _ENVIRONMENT is None:
        os.environ.setdefault("CORESEG_CACHE", tempfile.mkdtemp(prefix="coreseg-fake-cache-"))
        _ENVIRONMENT = EnvironmentCoreML()
    return _ENVIRONMENT


def register(output: str, fn) -> None:
    """Give the environment's stand-in the network of a test's own model."""
    environment_module().register(output, fn)
