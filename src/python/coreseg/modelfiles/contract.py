"""The model contract: one set of rules, for every backend, for what a
segmentation model takes and returns and how coreseg reads it.

A backend describes its model's tensors (`Tensor`); `input_contract` and
`output_contract` turn them, with the model's metadata and what the user
said at `load`, into an `InputContract` and an `OutputContract`, or refuse
with a `ModelError` that says what the model has and what would make it
work. Nothing here guesses silently: a layout is taken from the shapes only
when the shapes allow one reading.

Inputs
    uint8, float16 or float32; NHWC or NCHW; RGB or BGR; fixed or dynamic
    height and width. Float inputs are fed ``(pixel / 255 - mean) / std``.
Outputs
    an integer class map with any unit axes (``(h, w)``, ``(1, h, w)``,
    ``(1, h, w, 1)``, ...); float scores NCHW ``[1, C, h, w]`` or NHWC
    ``[1, h, w, C]``; or a single channel, a binary (background,
    foreground) model.

Metadata keys (ONNX ``metadata_props``, Core ML user-defined metadata)::

    coreseg.input.color_layout    "RGB" | "BGR"
    coreseg.input.normalization   "unit" | "symmetric" | "imagenet"
    coreseg.input.mean / .std     JSON lists of 3 numbers on the 0..1 scale
    coreseg.output.activation     "logits" | "softmax" | "sigmoid" | "none"
    classes                       "a,b,c" (Hugging Face exporters' labels)
"""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass

import numpy as np

from .. import kernels
from .info import ModelError

__all__ = [
    "NORMALIZATIONS",
    "ACTIVATIONS",
    "Tensor",
    "InputContract",
    "OutputContract",
    "input_contract",
    "output_contract",
    "normalization",
    "labels_from_metadata",
]

COLOR_LAYOUT_KEY = "coreseg.input.color_layout"
NORMALIZATION_KEY = "coreseg.input.normalization"
MEAN_KEY = "coreseg.input.mean"
STD_KEY = "coreseg.input.std"
ACTIVATION_KEY = "coreseg.output.activation"
CLASSES_KEY = "classes"

#: Named (mean, std) presets, on the 0..1 scale: "unit" feeds 0..1,
#: "symmetric" -1..1, "imagenet" torchvision's ImageNet statistics.
NORMALIZATIONS = {
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "symmetric": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

#: What a float output holds: "logits" (raw scores: coreseg applies softmax,
#: or sigmoid to a single channel), "softmax" (probabilities over classes),
#: "sigmoid" (per-class probabilities), "none" (scores of no known kind:
#: classes by argmax or threshold, no probabilities).
ACTIVATIONS = ("logits", "softmax", "sigmoid", "none")

BINARY_NAMES = ["background", "foreground"]


@dataclass(frozen=True)
class Tensor:
    """A model input or output as its file describes it.

    shape holds ints, with None for a dynamic axis; shape is None when even
    the rank is unknown (a Core ML output of a model with flexible input
    sizes declares none). dtype is a numpy dtype name ("uint8", "float32",
    "int64", ...). activation is what the graph says produced it
    ("sigmoid", "softmax") or None when it does not say.
    """

    name: str
    dtype: str
    shape: tuple | None
    activation: str | None = None

    def describe(self) -> str:
        if self.shape is None:
            return f"{self.name} {self.dtype} [flexible]"
        if self.shape == ():  # a scalar, or a feature that is not an array
            return f"{self.name} ({self.dtype})"
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} {self.dtype} [{dims}]"


@dataclass(frozen=True)
class InputContract:
    """How an image is fed to the model.

    Attributes
    ----------
    name : str
    dtype : numpy dtype (uint8, float16 or float32)
    layout : {"NHWC", "NCHW"}
    size : (width, height) or None
        None when the model takes any size (then the image's own, or `load`'s
        ``size=``).
    color_layout : {"RGB", "BGR"}
    mean, std : (3,) float32 ndarray
        Normalisation of float inputs on the 0..1 scale.
    normalization : str
        The preset name, or "custom".
    batch_dynamic : bool
    """

    name: str
    dtype: np.dtype
    layout: str
    size: tuple[int, int] | None
    color_layout: str
    mean: np.ndarray
    std: np.ndarray
    normalization: str
    batch_dynamic: bool

    def feed(self, rgb: np.ndarray) -> np.ndarray:
        """The input tensor (batch of 1) from an (h, w, 3) uint8 image
        already resized and in `color_layout` order."""
        if self.dtype == np.uint8:
            x = rgb
        else:
            # Exactly (pixel / 255 - mean) / std in float32, as a plain numpy
            # preprocessing would compute it, so scores match such a run.
            x = rgb.astype(np.float32)
            x /= np.float32(255)
            if self.mean.any():
                x -= self.mean
            if (self.std != 1).any():
                x /= self.std
        if self.layout == "NCHW":
            x = x.transpose(2, 0, 1)
        return np.ascontiguousarray(x, dtype=self.dtype)[None]


@dataclass(frozen=True)
class OutputContract:
    """Which output is the segmentation and how to read it.

    Attributes
    ----------
    name : str
    kind : {"labels", "scores", "binary"}
        An integer class map; float per-class scores; one float channel.
    layout : {"NCHW", "NHWC"} or None
        Where the class axis is (None for class maps).
    activation : str
        One of ACTIVATIONS ("none" for class maps).
    threshold : float
        Binary models: foreground where the output is above it, in the
        output's own units (0.5 for probabilities, 0.0 for logits).
    channels : int or None
        Number of classes the output has (2 for binary models).
    """

    name: str
    kind: str
    layout: str | None
    activation: str
    threshold: float
    channels: int | None

    def class_axis_first(self, raw: np.ndarray) -> np.ndarray:
        """The output (batch of 1) as (C, h, w), a view where possible."""
        a = raw[0] if raw.ndim == 4 else raw
        if a.ndim != 3:
            raise ValueError(f"output {self.name} has shape {raw.shape}; expected 3 or 4 axes")
        return a.transpose(2, 0, 1) if self.layout == "NHWC" else a

    def stride(self, shape, input_size) -> tuple[int, int]:
        """Input pixels per output pixel, (x, y), for an output of `shape`
        fed an input of `input_size` (width, height); (1, 1) when either is
        unknown or the output is not the input over one whole stride."""
        if input_size is None or shape is None:
            return (1, 1)
        if self.kind == "labels":
            dims = [d for d in shape if d != 1]
            h, w = dims[-2:] if len(dims) >= 2 else (-1, -1)
        elif self.layout == "NHWC":
            h, w = shape[-3], shape[-2]
        else:
            h, w = shape[-2], shape[-1]
        if h is None or w is None or h <= 0 or w <= 0 or input_size[0] % w or input_size[1] % h:
            return (1, 1)
        return (input_size[0] // w, input_size[1] // h)

    def labels(self, raw: np.ndarray) -> np.ndarray:
        """(h, w) int32 class map from one image's raw output."""
        if self.kind == "labels":
            return class_map(raw, self.name)
        planes = self.class_axis_first(raw)
        if self.kind == "binary":
            return (planes[0] > self.threshold).astype(np.int32)
        if planes.dtype not in (np.float32, np.float16):
            planes = planes.astype(np.float32)
        return kernels.argmax(planes)  # float32/16 read in place

    def scores(self, raw: np.ndarray) -> np.ndarray | None:
        """(C, h, w) float32 probabilities, or None (class maps, "none")."""
        if self.kind == "labels" or self.activation == "none":
            return None
        planes = self.class_axis_first(raw).astype(np.float32)
        if self.kind == "binary":
            p = _sigmoid(planes[0]) if self.activation == "logits" else planes[0]
            return np.stack([1 - p, p])
        if self.activation == "logits":
            planes = planes - planes.max(axis=0, keepdims=True)
            np.exp(planes, out=planes)
            planes /= planes.sum(axis=0, keepdims=True)
        return np.ascontiguousarray(planes)

    def decision_scores(self, scores: np.ndarray) -> np.ndarray:
        """Scores whose argmax is the class map: for binary models with a
        threshold other than 0.5 in probability, a constant plane at the
        threshold replaces background (argmax(t, p) = 1 exactly where p > t)."""
        if self.kind != "binary":
            return scores
        t = self.threshold
        if self.activation == "logits":
            t = float(_sigmoid(np.float32(t)))
        if t == 0.5:
            return scores
        return np.stack([np.full_like(scores[1], t), scores[1]])


def _sigmoid(x):
    return (1 / (1 + np.exp(-np.asarray(x, np.float32)))).astype(np.float32)


def class_map(raw: np.ndarray, name: str = "output") -> np.ndarray:
    """(h, w) int32 from an integer class map with unit axes ((1, h, w),
    (h, w, 1), (1, 1, h, w), ...); int64 ids must fit int32."""
    shape = list(raw.shape)
    while len(shape) > 2 and shape[0] == 1:
        shape.pop(0)
    while len(shape) > 2 and shape[-1] == 1:
        shape.pop()
    if len(shape) != 2:
        raise ValueError(f"output {name} has shape {raw.shape}, which is not a class map (h, w) with unit axes")
    labels = raw.reshape(shape)
    if labels.dtype == np.int32:
        return labels
    if labels.size:
        info = np.iinfo(np.int32)
        low, high = labels.min(), labels.max()
        if low < info.min or high > info.max:
            raise ValueError(f"output {name} has class id {low if low < info.min else high}, "
                             "which does not fit int32")
    return labels.astype(np.int32)


def _triple(value, what: str, where: str) -> np.ndarray:
    try:
        if isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, numbers.Real):
            value = [value] * 3
        arr = np.asarray(value, np.float64)
        assert arr.shape == (3,) and np.isfinite(arr).all()
    except (ValueError, TypeError, AssertionError, RecursionError):
        raise ModelError(f"{where}: {what} must be 3 numbers on the 0..1 scale (or a JSON list of them), "
                         f"got {value!r}") from None
    return arr


def normalization(metadata: dict, mean=None, std=None, where: str = "model") -> tuple[np.ndarray, np.ndarray, str]:
    """(mean, std, name) for a float input: `load`'s mean/std first (a preset
    name as `mean` sets both), then the metadata, then "unit"."""
    presets = ", ".join(repr(k) for k in NORMALIZATIONS)
    if isinstance(mean, str):
        if mean not in NORMALIZATIONS:
            raise ValueError(f"mean must be 3 numbers or a preset ({presets}), got {mean!r}")
        if std is not None:
            raise ValueError(f"mean={mean!r} is a preset and sets std too; do not pass std")
        m, s = NORMALIZATIONS[mean]
        return np.asarray(m, np.float64), np.asarray(s, np.float64), mean
    name = metadata.get(NORMALIZATION_KEY)
    if name is not None and name not in NORMALIZATIONS:
        raise ModelError(f"{where}: metadata {NORMALIZATION_KEY} must be one of {presets}, got {name!r}")
    m0, s0 = NORMALIZATIONS[name or "unit"]
    std_from = "std"
    if MEAN_KEY in metadata:
        m0, name = _triple(metadata[MEAN_KEY], f"metadata {MEAN_KEY}", where), "custom"
    if STD_KEY in metadata:
        s0, name = _triple(metadata[STD_KEY], f"metadata {STD_KEY}", where), "custom"
        std_from = f"metadata {STD_KEY}"
    if mean is not None:
        m0, name = _triple(mean, "mean", "load"), "custom"
    if std is not None:
        s0, name, std_from = _triple(std, "std", "load"), "custom", "std"
    m, s = np.asarray(m0, np.float64), np.asarray(s0, np.float64)
    if (s == 0).any():
        raise ModelError(f"{where}: {std_from} must not contain 0, got {s.tolist()}")
    return m, s, name or "unit"


def labels_from_metadata(metadata: dict, where: str) -> list[str] | None:
    """Labels from the Hugging Face ``classes`` string ("a,b,c"), or None."""
    text = metadata.get(CLASSES_KEY)
    if text is None:
        return None
    names = [n.strip() for n in str(text).split(",")]
    if not all(names):
        raise ModelError(f"{where}: metadata {CLASSES_KEY!r} must be comma-separated class names, got {text!r}")
    return names


def _is_float(dtype: str) -> bool:
    return dtype in ("float16", "float32", "float64")


def _is_int(dtype: str) -> bool:
    return dtype in ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64")


def input_contract(tensor: Tensor, metadata: dict, where: str, *, layout=None, mean=None, std=None,
                   color_layout=None) -> InputContract:
    """The input contract of a model's image input (rank 4, 3 channels)."""
    shape = tensor.shape
    if len(shape) != 4 or tensor.dtype not in ("uint8", "float16", "float32"):
        raise ModelError(f"{where}: not a segmentation model: its input must be one uint8 or float image "
                         f"tensor of rank 4 (NHWC or NCHW), and it is {tensor.describe()}")
    if layout is not None:
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"layout must be 'NHWC' or 'NCHW', got {layout!r}")
        axis = 3 if layout == "NHWC" else 1
        if shape[axis] not in (3, None):
            raise ModelError(f"{where}: layout={layout!r} puts the colour channels on axis {axis}, but input "
                             f"{tensor.describe()} has {shape[axis]} there")
    else:
        nhwc, nchw = shape[3] == 3, shape[1] == 3
        if nhwc and nchw:
            raise ModelError(f"{where}: input {tensor.describe()} is ambiguous: axis 1 and axis 3 both have 3 "
                             "entries, so it could be NCHW or NHWC; say which with layout='NCHW' or "
                             "layout='NHWC'")
        if not (nhwc or nchw):
            raise ModelError(f"{where}: not a segmentation model: input {tensor.describe()} has no axis of 3 "
                             "colour channels (axis 1 for NCHW, axis 3 for NHWC); if its channels are "
                             "dynamic, say where they are with layout='NCHW' or layout='NHWC'")
        layout = "NHWC" if nhwc else "NCHW"
    h, w = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
    color = (color_layout or metadata.get(COLOR_LAYOUT_KEY) or "RGB").upper()
    if color not in ("RGB", "BGR"):
        raise ModelError(f"{where}: the colour layout must be RGB or BGR, got {color!r} "
                         f"(metadata {COLOR_LAYOUT_KEY} or load(color_layout=))")
    m, s, norm = normalization(metadata, mean, std, where)
    return InputContract(
        name=tensor.name, dtype=np.dtype(tensor.dtype), layout=layout,
        size=(w, h) if w and h else None, color_layout=color, mean=m.astype(np.float32),
        std=s.astype(np.float32), normalization=norm if tensor.dtype != "uint8" else "none (uint8)",
        batch_dynamic=shape[0] is None,
    )


def segmentation_kind(t: Tensor) -> str | None:
    """What a model output can be read as: "labels", "scores", or None for
    a tensor that cannot be either. A tensor of unknown rank is judged by
    its dtype; its shape is checked per result."""
    if t.shape is None:
        return "labels" if _is_int(t.dtype) else "scores" if _is_float(t.dtype) else None
    non_unit = [d for d in t.shape if d is not None and d != 1]  # dynamic axes are checked per result
    if _is_int(t.dtype) and 2 <= len(t.shape) <= 4 and len(non_unit) <= 2:
        return "labels"
    if _is_float(t.dtype) and len(t.shape) in (3, 4):
        return "scores"
    return None


def _spatial_ratio_fits(hw, size) -> bool:
    """Whether output spatial dims (h, w) are the input's divided by one
    whole stride (or equal)."""
    h, w = hw
    if size is None or h is None or w is None:
        return False
    W, H = size
    return H % h == 0 and W % w == 0 and H // h == W // w


def output_contract(outputs: list[Tensor], metadata: dict, where: str, *, input_size=None, num_labels=None,
                    output=None, output_layout=None, output_activation=None, threshold=None) -> OutputContract:
    """Choose the segmentation output and say how to read it."""
    has = ", ".join(t.describe() for t in outputs) or "none"
    if output is not None:
        chosen = [t for t in outputs if t.name == output]
        if not chosen:
            raise ModelError(f"{where}: no output named {output!r}; the outputs are: {has}")
        t = chosen[0]
        kind = segmentation_kind(t)
        if kind is None:
            raise ModelError(f"{where}: output {t.describe()} is neither an integer class map nor float "
                             "scores [1, C, h, w] / [1, h, w, C]")
    else:
        # The first class map, else the first float scores tensor.
        kinds = [(segmentation_kind(t), t) for t in outputs]
        t = next((t for k, t in kinds if k == "labels"), None) or next((t for k, t in kinds if k == "scores"), None)
        if t is None:
            raise ModelError(f"{where}: not a segmentation model: no output is an integer class map or float "
                             f"scores [1, C, h, w] / [1, h, w, C]; the outputs are: {has}")
        kind = segmentation_kind(t)
    if output_activation is not None and output_activation not in ACTIVATIONS:
        raise ValueError(f"output_activation must be one of {', '.join(ACTIVATIONS)}, got {output_activation!r}")
    if output_layout is not None and output_layout not in ("NCHW", "NHWC"):
        raise ValueError(f"output_layout must be 'NCHW' or 'NHWC', got {output_layout!r}")
    if kind == "labels":
        if threshold is not None:
            raise ValueError(f"threshold applies to single-channel score outputs; {t.describe()} is a class map")
        return OutputContract(t.name, "labels", None, "none", 0.0, num_labels)
    activation = output_activation or metadata.get(ACTIVATION_KEY) or t.activation
    if activation is not None and activation not in ACTIVATIONS:
        raise ModelError(f"{where}: metadata {ACTIVATION_KEY} must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {activation!r}")
    if t.shape is None:
        # Unknown until a result comes: the backend calls this again with
        # the result's shape. Only what does not depend on it is checked.
        return OutputContract(t.name, "scores", output_layout, activation or "logits",
                              0.0 if threshold is None else float(threshold), None)

    shape = t.shape if len(t.shape) == 4 else (1,) + tuple(t.shape)
    if len(t.shape) == 4 and shape[0] not in (1, None):
        raise ModelError(f"{where}: output {t.describe()} has a batch of {shape[0]}; expected 1")
    layout = output_layout or _score_layout(t, shape, where, input_size, num_labels)
    channels = shape[1] if layout == "NCHW" else shape[3]
    if channels == 1:
        if activation is None:
            raise ModelError(f"{where}: output {t.describe()} is a single channel (a binary model), and nothing "
                             "says whether it holds probabilities or logits: pass output_activation='sigmoid' "
                             f"(probabilities, threshold 0.5) or 'logits' (threshold 0), or set the metadata "
                             f"{ACTIVATION_KEY}")
        if activation == "softmax":
            raise ModelError(f"{where}: a softmax over a single channel is always 1; output {t.describe()} "
                             "needs output_activation='sigmoid' or 'logits'")
        default = 0.0 if activation == "logits" else 0.5
        if num_labels not in (None, 2):
            raise ModelError(f"{where}: output {t.describe()} is binary (one channel: background, foreground) "
                             f"but the model has {num_labels} labels; give it 2")
        return OutputContract(t.name, "binary", layout, activation,
                              default if threshold is None else float(threshold), 2)
    if threshold is not None:
        raise ValueError(f"threshold applies to single-channel outputs; {t.describe()} has {channels} classes "
                         "(the class is the argmax)")
    if num_labels is not None and channels is not None and channels != num_labels:
        raise ModelError(f"{where}: {num_labels} labels for {channels} score channels in output {t.describe()}")
    return OutputContract(t.name, "scores", layout, activation or "logits", 0.0, channels)


def _score_layout(t: Tensor, shape, where, input_size, num_labels) -> str:
    """NCHW or NHWC for a float output, from what the shapes allow."""
    c_first, c_last = shape[1], shape[3]
    options = {"NCHW": (c_first, (shape[2], shape[3])), "NHWC": (c_last, (shape[1], shape[2]))}
    evidence = [
        # the class count of the labels (2 labels also fit one binary channel)
        lambda c, hw: num_labels is not None and c is not None and (c == num_labels or (c == 1 and num_labels == 2)),
        # a single channel
        lambda c, hw: c == 1,
        # the spatial axes are the input's over one stride
        lambda c, hw: _spatial_ratio_fits(hw, input_size),
        # the class axis is fixed while the spatial axes are dynamic
        lambda c, hw: c is not None and hw[0] is None and hw[1] is None,
    ]
    for test in evidence:
        fits = [name for name, (c, hw) in options.items() if test(c, hw)]
        if len(fits) == 1:
            return fits[0]
    labels = f"{num_labels} labels" if num_labels is not None else "no labels"
    raise ModelError(f"{where}: cannot tell the class axis of output {t.describe()}: it could be NCHW "
                     f"({c_first} classes) or NHWC ({c_last} classes), and the model has {labels}; pass "
                     "output_layout='NCHW' or 'NHWC', or give the model its labels")
