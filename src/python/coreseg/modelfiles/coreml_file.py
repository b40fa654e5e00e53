"""Core ML model files on any OS: what a model declares, read from its spec
(``.mlpackage``, ``.mlmodel``) or, for a compiled ``.mlmodelc``, from Core
ML's own MLModelDescription, and the model contract applied to it.

`read` and `from_description` give a `CoreMLFile`; `describe` applies the
model contract (coreseg.contract) to it, as onnx_file.describe does for
ONNX: the same outputs are accepted (integer class maps with unit axes,
float scores, one binary channel, independent sigmoid channels) and
chosen the same way (``output=``, else the first class map, else the
first scores). A grayscale image output (8-bit or 16-bit float pixels,
what exports made for Vision return) is a class map whose pixel values
are the class ids.

A spec also says which activation made each output and what a
NeuralNetwork does to its image input (coreml_layers); a compiled
.mlmodelc does not. Nothing here runs a model or imports a backend.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ._coremltools import model_pb2
from .coreml_layers import image_preprocessing, output_activation
from .contract import (OutputContract, Tensor, labels_for_output, labels_from_metadata, output_contract,
                       segmentation_kind)
from .info import PREVIEW_PARAMS_KEY, PREVIEW_TYPE_KEY, ModelError, ModelInfo, given_labels, parse_preview_params

__all__ = ["ImageInput", "CoreMLFile", "read", "from_description", "describe", "spec_file", "read_spec"]

# ImageFeatureType.ColorSpace: 10 GRAYSCALE, 20 RGB, 30 BGR, 40 GRAYSCALE_FLOAT16.
_COLOR_LAYOUTS = {10: "GRAY", 20: "RGB", 30: "BGR", 40: "GRAY16F"}
# Grayscale image outputs hold class ids as pixels: their pixel type by colour
# space (spec) and by pixel format (OneComponent8, OneComponent16Half).
_IMAGE_OUTPUT_DTYPES = {10: "uint8", 40: "float16"}
_IMAGE_OUTPUT_FORMATS = {"L008": "uint8", "L00h": "float16"}
# ArrayFeatureType.ArrayDataType.
_DTYPES = {65568: "float32", 65600: "float64", 65552: "float16", 131104: "int32", 131080: "int8"}
# CoreVideo pixel formats of image inputs, as FourCC text (the native
# description's spelling): 32-bit colour, 8-bit grey, 16-bit float grey.
_PIXEL_FORMATS = {"BGRA": "color", "ARGB": "color", "L008": "GRAY", "L00h": "GRAY16F"}
# What is read of a package: its manifest, and a spec no larger than
# protobuf can parse (weights of ML programs are separate files, never read).
MAX_MANIFEST_BYTES = 1 << 20
MAX_SPEC_BYTES = (1 << 31) - 1
# A range upper bound at or past this means "unbounded" (Core ML reports
# NSRange lengths near NSIntegerMax for open ranges).
_UNBOUNDED = 1 << 30


@dataclass(frozen=True)
class ImageInput:
    """A Core ML image input.

    Attributes
    ----------
    name : str
    size : (int, int)
        The default (width, height).
    color_layout : {"RGB", "BGR", "GRAY", "GRAY16F", "unknown"}
        The order Core ML hands the network. Core ML converts any 32BGRA or
        32ARGB pixel buffer to it, so coreseg feeds colour models either way;
        "unknown" only where a compiled model does not say.
    size_range : ((int, int), (int, int)) or None
        ((min_width, max_width), (min_height, max_height)); -1 = unbounded.
    sizes : tuple of (int, int) or None
        The enumerated (width, height) sizes the model accepts.
    """

    name: str
    size: tuple[int, int]
    color_layout: str
    size_range: tuple[tuple[int, int], tuple[int, int]] | None = None
    sizes: tuple[tuple[int, int], ...] | None = None

    @property
    def flexible(self) -> bool:
        return self.size_range is not None or bool(self.sizes)

    def allows(self, size) -> bool:
        """Whether the model takes a (width, height) input."""
        w, h = size
        if self.sizes:
            return (w, h) in self.sizes
        if self.size_range is not None:
            (w0, w1), (h0, h1) = self.size_range
            return w0 <= w and (w1 < 0 or w <= w1) and h0 <= h and (h1 < 0 or h <= h1)
        return (w, h) == self.size

    def allowed(self) -> str:
        """The sizes the model takes, as text for error messages."""
        if self.sizes:
            return "one of " + ", ".join(f"{w}x{h}" for w, h in self.sizes)
        if self.size_range is not None:
            (w0, w1), (h0, h1) = self.size_range
            return f"width {w0}..{'any' if w1 < 0 else w1} and height {h0}..{'any' if h1 < 0 else h1}"
        return f"{self.size[0]}x{self.size[1]} only"

    def size_for(self, image_size) -> tuple[int, int]:
        """The input size nearest an image's own (width, height): within a
        range, the image's size scaled (keeping its aspect as far as the
        range allows) to fit; among enumerated sizes, the one nearest in
        log-scale width and height; a fixed model's own size."""
        w, h = image_size
        if self.sizes:
            return min(self.sizes, key=lambda s: (abs(math.log(s[0] / w)) + abs(math.log(s[1] / h)), s))
        if self.size_range is None:
            return self.size
        (w0, w1), (h0, h1) = self.size_range
        scale = 1.0
        if w1 > 0:
            scale = min(scale, w1 / w)
        if h1 > 0:
            scale = min(scale, h1 / h)
        scale = max(scale, w0 / w, h0 / h)  # too small: grow to the minimum
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        clamp = lambda v, lo, hi: max(lo, v if hi < 0 else min(v, hi))  # noqa: E731
        return clamp(sw, w0, w1), clamp(sh, h0, h1)


@dataclass(frozen=True)
class CoreMLFile:
    """What a Core ML model declares.

    ``outputs`` are contract Tensors: multi-arrays (dtype, shape with None
    where the model does not fix it, and the activation that made them,
    from a spec); grayscale image outputs as class maps (``image=True``,
    dtype "uint8" or "float16", shape (height, width) or None); other
    features with a kind name as dtype ("string", "image" for colour
    images, ...) and shape (). ``preprocessing``: what a NeuralNetwork
    does to its image input (coreml_layers), "" when nothing or unknown.
    """

    path: Path
    format: str
    model_type: str
    spec_version: int
    image: ImageInput
    outputs: list
    metadata: dict
    author: str = ""
    license: str = ""
    version: str = ""
    description: str = ""
    preprocessing: str = ""


# ---- the spec (.mlpackage, .mlmodel) ----------------------------------------


def spec_file(path: Path) -> tuple[Path, str]:
    """The protobuf spec file of a model path, and the format name."""
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    suffix = path.suffix.lower()
    if suffix == ".mlmodelc":
        raise ModelError(f"{path}: a compiled .mlmodelc can only be read by Core ML on macOS; "
                         "inspect the .mlpackage or .mlmodel it was compiled from")
    if path.is_dir():
        manifest = path / "Manifest.json"
        if suffix != ".mlpackage" and not manifest.exists():
            raise ModelError(f"{path}: not a model coreseg reads (expected an .onnx file, a .mlpackage folder or an .mlmodel file)")
        try:
            if manifest.stat().st_size > MAX_MANIFEST_BYTES:
                raise ModelError(f"{path}: Manifest.json is larger than a manifest can be ({MAX_MANIFEST_BYTES} bytes)")
            data = json.loads(manifest.read_text())
            root = data["rootModelIdentifier"]
            entry = data["itemInfoEntries"][root]
            name = entry["path"]
            if not isinstance(name, str):
                raise TypeError(f"path {name!r} is not a string")
        except FileNotFoundError:
            raise ModelError(f"{path}: not a Core ML package: it has no Manifest.json") from None
        except (ValueError, KeyError, TypeError, RecursionError) as e:
            if isinstance(e, ModelError):
                raise
            raise ModelError(f"{path}: Manifest.json is not a valid Core ML package manifest ({e!r})") from None
        # The spec must lie inside the package's Data folder: no absolute
        # paths, no "..", no symlink out of it (annotate writes it).
        data_dir = (path / "Data").resolve()
        spec_path = (path / "Data" / name).resolve()
        if Path(name).is_absolute() or ".." in Path(name).parts or not spec_path.is_relative_to(data_dir):
            raise ModelError(f"{path}: the manifest names {name!r} as the model spec, which is outside the package")
        if not spec_path.is_file():
            raise ModelError(f"{path}: the manifest names {name!r} as the model spec, but it is missing")
        return spec_path, "mlpackage"
    if suffix != ".mlmodel":
        raise ModelError(f"{path}: not a model coreseg reads (expected an .onnx file, a .mlpackage folder or an .mlmodel file)")
    return path, "mlmodel"


def read_spec(path: Path):
    """Parse a model's spec: (Model_pb2.Model, format)."""
    spec_path, fmt = spec_file(path)
    size = spec_path.stat().st_size
    if size > MAX_SPEC_BYTES:
        raise ModelError(f"{path}: the model spec is {size} bytes, more than a Core ML spec can be "
                         f"({MAX_SPEC_BYTES}, protobuf's limit)")
    spec = model_pb2().Model()
    try:
        spec.ParseFromString(spec_path.read_bytes())
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelError(f"{path}: corrupt model spec ({type(e).__name__}: {e})") from None
    if spec.specificationVersion <= 0 or spec.WhichOneof("Type") is None:
        raise ModelError(f"{path}: corrupt model spec (no specification version or model type)")
    return spec, fmt


def _array_shape(t) -> tuple | None:
    """A multiArrayType's shape: ints, None for an axis its flexibility lets
    vary, or None when it declares no shape at all."""
    flex = t.WhichOneof("ShapeFlexibility")
    if flex == "shapeRange":
        return tuple(int(r.lowerBound) if r.lowerBound == r.upperBound else None for r in t.shapeRange.sizeRanges)
    if flex == "enumeratedShapes" and len(t.enumeratedShapes.shapes):
        shapes = [tuple(s.shape) for s in t.enumeratedShapes.shapes]
        if len({len(s) for s in shapes}) != 1:
            return None
        return tuple(int(d[0]) if len(set(d)) == 1 else None for d in zip(*shapes))
    return tuple(int(d) for d in t.shape) if len(t.shape) else None


def _image_output_shape(it) -> tuple | None:
    """(height, width) of an image feature whose size is fixed, else None."""
    flex = it.WhichOneof("SizeFlexibility")
    if flex == "imageSizeRange":
        w, h = it.imageSizeRange.widthRange, it.imageSizeRange.heightRange
        fixed = w.lowerBound == w.upperBound and h.lowerBound == h.upperBound and w.lowerBound > 0 and h.lowerBound > 0
        return (int(h.lowerBound), int(w.lowerBound)) if fixed else None
    if flex == "enumeratedSizes" and len(it.enumeratedSizes.sizes):
        sizes = {(int(s.height), int(s.width)) for s in it.enumeratedSizes.sizes}
        return sizes.pop() if len(sizes) == 1 else None
    return (int(it.height), int(it.width)) if it.width > 0 and it.height > 0 else None


def _spec_tensor(feature, activation=None) -> Tensor:
    """A feature as a Tensor; `activation` applies to multi-arrays only."""
    kind = feature.type.WhichOneof("Type")
    if kind == "multiArrayType":
        t = feature.type.multiArrayType
        return Tensor(feature.name, _DTYPES.get(t.dataType, f"array type {t.dataType}"), _array_shape(t), activation)
    if kind == "imageType" and feature.type.imageType.colorSpace in _IMAGE_OUTPUT_DTYPES:
        it = feature.type.imageType
        return Tensor(feature.name, _IMAGE_OUTPUT_DTYPES[it.colorSpace], _image_output_shape(it), image=True)
    return Tensor(feature.name, (kind or "unknown").removesuffix("Type"), ())


def _spec_image(feature) -> ImageInput:
    it = feature.type.imageType
    size_range = sizes = None
    if it.WhichOneof("SizeFlexibility") == "imageSizeRange":
        r = it.imageSizeRange
        size_range = ((int(r.widthRange.lowerBound), int(r.widthRange.upperBound)),
                      (int(r.heightRange.lowerBound), int(r.heightRange.upperBound)))
    elif it.WhichOneof("SizeFlexibility") == "enumeratedSizes":
        sizes = tuple((int(s.width), int(s.height)) for s in it.enumeratedSizes.sizes)
    return ImageInput(feature.name, (int(it.width), int(it.height)), _COLOR_LAYOUTS.get(it.colorSpace, "unknown"),
                      size_range, sizes)


def _one_image(path, images: list, others: list) -> ImageInput:
    """The model's image input. `images` holds (ImageInput, optional) pairs,
    `others` the descriptions of required inputs that are not images; every
    input but the first image must be optional."""
    if not images:
        has = ", ".join(others) or "none"
        raise ModelError(f"{path}: not a segmentation model: it has no image input (inputs: {has})")
    required = [image.name for image, optional in images[1:] if not optional] + others
    if required:
        raise ModelError(f"{path}: not a segmentation model coreseg can feed: besides the image input "
                         f"{images[0][0].name!r} it requires {', '.join(required)}")
    return images[0][0]


def read(path) -> CoreMLFile:
    """What a ``.mlpackage`` or ``.mlmodel`` declares (weights are not read)."""
    path = Path(path)
    spec, fmt = read_spec(path)
    desc = spec.description
    images, others = [], []
    for f in desc.input:
        if f.type.WhichOneof("Type") == "imageType":
            images.append((_spec_image(f), f.type.isOptional))
        elif not f.type.isOptional:
            t = _spec_tensor(f)
            others.append(t.describe())
    image = _one_image(path, images, others)
    outputs = [_spec_tensor(f, output_activation(spec, f.name)) for f in desc.output]
    return CoreMLFile(
        path=path, format=fmt, model_type=spec.WhichOneof("Type"), spec_version=int(spec.specificationVersion),
        image=image, outputs=outputs, metadata=dict(desc.metadata.userDefined),
        author=desc.metadata.author, license=desc.metadata.license, version=desc.metadata.versionString,
        description=desc.metadata.shortDescription,
        preprocessing=image_preprocessing(spec, image.name, image.color_layout),
    )


# ---- Core ML's description of a compiled model (.mlmodelc) ---------------------


def _described_shape(f: dict) -> tuple | None:
    constraint = f.get("shape_constraint") or {}
    kind = constraint.get("type")
    if kind == "range":
        return tuple(lo if lo == hi else None for lo, hi in constraint["ranges"]) or None
    if kind == "enumerated" and constraint.get("shapes"):
        shapes = [tuple(s) for s in constraint["shapes"]]
        if len({len(s) for s in shapes}) != 1:
            return None
        return tuple(d[0] if len(set(d)) == 1 else None for d in zip(*shapes))
    return tuple(f["shape"]) or None


def _described_image_shape(f: dict) -> tuple | None:
    """(height, width) of a described image feature whose size is fixed."""
    constraint = f.get("size_constraint") or {}
    kind = constraint.get("type")
    if kind == "range":
        (w0, w1), (h0, h1) = constraint["width_range"], constraint["height_range"]
        return (int(h0), int(w0)) if w0 == w1 and h0 == h1 and w0 > 0 and h0 > 0 else None
    if kind == "enumerated" and constraint.get("sizes"):
        sizes = {(int(h), int(w)) for w, h in constraint["sizes"]}
        return sizes.pop() if len(sizes) == 1 else None
    h, w = f["shape"] if len(f.get("shape") or ()) == 2 else (0, 0)
    return (int(h), int(w)) if h > 0 and w > 0 else None


def _described_output(f: dict) -> Tensor:
    """An output Core ML describes (with no activation: it does not say)."""
    if f["kind"] == "multiArray":
        return Tensor(f["name"], f["dtype"], _described_shape(f))
    if f["kind"] == "image" and f.get("pixel_format") in _IMAGE_OUTPUT_FORMATS:
        return Tensor(f["name"], _IMAGE_OUTPUT_FORMATS[f["pixel_format"]], _described_image_shape(f), image=True)
    return Tensor(f["name"], f["kind"], ())


def _described_image(f: dict, color_layout: str) -> ImageInput:
    h, w = f["shape"]
    constraint = f.get("size_constraint") or {}
    size_range = sizes = None
    if constraint.get("type") == "range":
        (w0, w1), (h0, h1) = constraint["width_range"], constraint["height_range"]
        size_range = ((w0, -1 if w1 >= _UNBOUNDED else w1), (h0, -1 if h1 >= _UNBOUNDED else h1))
    elif constraint.get("type") == "enumerated":
        sizes = tuple(tuple(s) for s in constraint["sizes"])
    kind = _PIXEL_FORMATS.get(f.get("pixel_format", ""), "unknown")
    layout = color_layout if kind == "color" else kind
    return ImageInput(f["name"], (int(w), int(h)), layout, size_range, sizes)


def _compiled_color_layout(path: Path, input_name: str) -> str:
    """RGB or BGR from a compiled model's metadata.json (written by Core ML's
    compiler; MLModelDescription does not say), else "unknown"."""
    try:
        meta = json.loads((path / "metadata.json").read_text())
        entry = meta[0] if isinstance(meta, list) else meta
        for f in entry.get("inputSchema", []):
            if f.get("name") == input_name and str(f.get("colorspace", "")).upper() in ("RGB", "BGR"):
                return str(f["colorspace"]).upper()
    except (OSError, ValueError, AttributeError, KeyError, IndexError, TypeError, RecursionError):
        pass
    return "unknown"


def from_description(desc: dict, path) -> CoreMLFile:
    """A CoreMLFile from Core ML's MLModelDescription of a loaded model, as
    ``coreseg._coreml.Model.describe()`` returns it (all a compiled
    .mlmodelc can tell). Core ML keeps features in dictionaries, so there is
    no order among them."""
    path = Path(path)
    images = [f for f in desc["inputs"] if f["kind"] == "image"]
    others = [f["name"] for f in desc["inputs"] if f["kind"] != "image" and not f.get("optional")]
    layout = _compiled_color_layout(path, images[0]["name"]) if images else "unknown"
    image = _one_image(path, [(_described_image(f, layout), f.get("optional", False)) for f in images], others)
    outputs = [_described_output(f) for f in desc["outputs"]]
    meta = desc["metadata"]
    return CoreMLFile(
        path=path, format=path.suffix.lstrip(".").lower() or "mlmodelc", model_type="compiled", spec_version=0,
        image=image, outputs=outputs, metadata=dict(desc["creator_defined"]), author=meta.get("author", ""),
        license=meta.get("license", ""), version=meta.get("version", ""),
        description=meta.get("description", ""),
    )


# ---- the contract ---------------------------------------------------------------


def describe(file: CoreMLFile, *, labels=None, output=None, output_layout=None, output_activation=None,
             threshold=None, ordered: bool = True) -> tuple[ModelInfo, OutputContract]:
    """The ModelInfo and output contract of a Core ML model, with what the
    user said at `load` (see coreseg.load).

    `ordered` is False for a compiled model's description, whose outputs
    have no order: then, without ``output=``, two candidates of the same
    kind are an error naming them rather than a guess.
    """
    path, meta = file.path, file.metadata
    model_labels, colors = parse_preview_params(meta.get(PREVIEW_PARAMS_KEY), path)
    if model_labels is None:
        model_labels = labels_from_metadata(meta, str(path))
    names, colors = given_labels(model_labels, colors, labels)
    if file.image.color_layout == "GRAY16F":
        raise ModelError(f"{path}: input {file.image.name!r} is a 16-bit float grayscale image "
                         "(kCVPixelFormatType_OneComponent16Half), which coreseg does not feed yet")
    if output is None and not ordered:
        _refuse_unordered_choice(file)
    out = output_contract(file.outputs, meta, str(path), input_size=file.image.size,
                          num_labels=None if names is None else len(names), output=output,
                          output_layout=output_layout, output_activation=output_activation, threshold=threshold)
    names, colors = labels_for_output(names, colors, out)
    tensor = next(t for t in file.outputs if t.name == out.name)
    image = file.image
    # An image input states its own pixel order and scaling; Core ML
    # converts the pixels itself.
    sources = {"color_layout": "model", "normalization": "model"}
    if labels is not None:
        sources["labels"] = "load"
    sources.update(out.info_sources())
    info = ModelInfo(
        path=path, format=file.format, model_type=file.model_type, spec_version=file.spec_version,
        preview_type=meta.get(PREVIEW_TYPE_KEY), labels=names, colors=colors,
        input_name=image.name, input_size=image.size, input_color_layout=image.color_layout,
        input_size_range=image.size_range, input_sizes=image.sizes,
        output_name=out.name, output_dtype=tensor.dtype,
        output_shape=None if tensor.shape is None else tuple(-1 if d is None else d for d in tensor.shape),
        author=file.author, license=file.license, version=file.version, description=file.description,
        user_defined=dict(meta), output_kind=out.kind, output_layout=out.layout,
        output_activation=out.activation,
        output_threshold=out.threshold if out.kind in ("binary", "multilabel") else None,
        input_preprocessing=file.preprocessing, sources=sources,
    )
    return info, out


def _refuse_unordered_choice(file: CoreMLFile) -> None:
    kinds = [(segmentation_kind(t), t) for t in file.outputs]
    for kind in ("labels", "scores"):
        same = [t for k, t in kinds if k == kind]
        if len(same) > 1:
            raise ModelError(f"{file.path}: several outputs could be the segmentation "
                             f"({', '.join(t.describe() for t in same)}) and a compiled model does not "
                             "order them: pass output=NAME")
        if same:
            return
