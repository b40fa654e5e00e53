"""The output half of the model contract: which output is the class map or
the scores, its layout and activation, and how a raw output becomes a
class map.

Output kinds ("kind"):

labels
    an integer class map (any unit axes), or a Core ML grayscale image of
    class ids;
scores
    one-of-N scores, C >= 2 channels: logits (coreseg applies the softmax)
    or probabilities (a softmax the graph or spec ends in: never applied
    twice); the class is the argmax;
binary
    one channel, any rank (background, foreground): the foreground is
    where it is above the threshold;
multilabel
    C >= 2 independent sigmoid channels: a pixel may be in several classes
    or none. The class map gets a background: 0 where no channel is above
    the threshold, else 1 + the strongest channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import kernels
from .info import ModelError
from .metadata_keys import ACTIVATION_KEY, ACTIVATIONS, BINARY_NAMES, OUTPUT_KEY, OUTPUT_LAYOUT_KEY, THRESHOLD_KEY
from .settings import arg
from .tensor import Tensor, _is_float, _is_int

__all__ = ["OutputContract", "output_contract", "class_map", "segmentation_kind", "labels_for_output", "KINDS"]

KINDS = ("labels", "scores", "binary", "multilabel")


@dataclass(frozen=True)
class OutputContract:
    """Which output is the segmentation and how to read it.

    Attributes
    ----------
    name : str
    kind : {"labels", "scores", "binary", "multilabel"}
        An integer class map; one-of-N scores; one float channel;
        independent sigmoid channels (see the module docstring).
    layout : {"NCHW", "NHWC"} or None
        Where the class axis is (None for class maps).
    activation : str
        One of ACTIVATIONS ("none" for class maps).
    threshold : float
        Binary and multi-label models: a class is present where its channel
        is above it, in the output's own units (0.5 for probabilities, 0.0
        for logits).
    channels : int or None
        Number of score channels (1 for binary models); None until a result
        shows it, for outputs whose shape the file does not give.
    sources : dict of str to str
        Where "layout", "activation" and "threshold" came from: "model",
        "load" or "assumed" (coreseg.modelfiles.settings).
    """

    name: str
    kind: str
    layout: str | None
    activation: str
    threshold: float
    channels: int | None
    sources: dict = field(default_factory=dict)

    def info_sources(self) -> dict:
        """The output's entries of `ModelInfo.sources`: where its layout,
        activation and (binary, multi-label) threshold came from; none for
        a class map."""
        if self.kind == "labels":
            return {}
        sources = {"output_layout": self.sources["layout"], "output_activation": self.sources["activation"]}
        if self.kind in ("binary", "multilabel"):
            sources["threshold"] = self.sources["threshold"]
        return sources

    @property
    def resolved(self) -> bool:
        """False while the output's shape is known only from a result."""
        return self.kind == "labels" or self.channels is not None

    @property
    def num_classes(self) -> int | None:
        """Class ids the class map can hold: the channels, 2 for binary
        models, 1 + the channels for multi-label ones (background first)."""
        if self.channels is None:
            return None
        return {"binary": 2, "multilabel": self.channels + 1}.get(self.kind, self.channels)

    def class_axis_first(self, raw: np.ndarray) -> np.ndarray:
        """The output (batch of 1) as (C, h, w), a view where possible."""
        a = raw[0] if raw.ndim == 4 else raw
        if a.ndim == 2 and self.kind == "binary":  # one channel of rank 2: (h, w)
            return a[None]
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
        labels = kernels.argmax(planes)  # float32/16 read in place
        if self.kind == "multilabel":
            labels += 1
            labels[planes.max(axis=0) <= self.threshold] = 0  # no class present: background
        return labels

    def scores(self, raw: np.ndarray) -> np.ndarray | None:
        """(C, h, w) float32 probabilities, or None (class maps, "none").
        One-of-N: over the classes (summing to 1); binary: [1 - p, p];
        multi-label: each channel's own probability, as the model gave it
        (the background is not a channel)."""
        if self.kind == "labels" or self.activation == "none":
            return None
        planes = self.class_axis_first(raw).astype(np.float32)
        if self.kind == "multilabel":
            return np.ascontiguousarray(_sigmoid(planes) if self.activation == "logits" else planes)
        if self.kind == "binary":
            p = _sigmoid(planes[0]) if self.activation == "logits" else planes[0]
            return np.stack([1 - p, p])
        if self.activation == "logits":
            planes = planes - planes.max(axis=0, keepdims=True)
            np.exp(planes, out=planes)
            planes /= planes.sum(axis=0, keepdims=True)
        return np.ascontiguousarray(planes)

    def probability_threshold(self) -> float:
        """The threshold on the probability scale `scores` are on."""
        t = self.threshold
        return float(_sigmoid(np.float32(t))) if self.activation == "logits" else t

    def decision_scores(self, scores: np.ndarray) -> np.ndarray:
        """Scores whose argmax is the class map: for binary models with a
        threshold other than 0.5 in probability, a constant plane at the
        threshold replaces background (argmax(t, p) = 1 exactly where p > t);
        for multi-label models, that plane is the background, before the
        channels (argmax(t, p1..pC) = 0 where none is above t)."""
        if self.kind not in ("binary", "multilabel"):
            return scores
        t = np.float32(self.probability_threshold())
        if self.kind == "multilabel":
            return np.concatenate([np.full_like(scores[:1], t), scores])
        if t == 0.5:
            return scores
        return np.stack([np.full_like(scores[1], t), scores[1]])


def labels_for_output(labels, colors, out: OutputContract):
    """(labels, colors) as the class map's ids read them: a binary model's
    default names; a multi-label model's C channel names behind "background"
    (id 0, no channel above the threshold), whose colour is transparent."""
    if out.kind == "binary" and labels is None:
        return list(BINARY_NAMES), colors
    if out.kind == "multilabel" and labels is not None and len(labels) == out.channels:
        if colors is not None:
            colors = np.concatenate([np.zeros((1, 4), np.uint8), colors])
        return ["background", *labels], colors
    return labels, colors


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


def segmentation_kind(t: Tensor) -> str | None:
    """What a model output can be read as: "labels", "scores", or None for
    a tensor that cannot be either. A tensor of unknown rank is judged by
    its dtype; its shape is checked per result. A float tensor of rank 2
    is one channel (h, w)."""
    if t.image:
        return "labels"
    if t.shape is None:
        return "labels" if _is_int(t.dtype) else "scores" if _is_float(t.dtype) else None
    non_unit = [d for d in t.shape if d is not None and d != 1]  # dynamic axes are checked per result
    if _is_int(t.dtype) and 2 <= len(t.shape) <= 4 and len(non_unit) <= 2:
        return "labels"
    if _is_float(t.dtype) and len(t.shape) in (3, 4):
        return "scores"
    if _is_float(t.dtype) and len(t.shape) == 2 and _plane(t.shape):
        return "scores"  # one channel, (h, w)
    return None


def _plane(shape) -> bool:
    """Whether a rank-2 shape can be an image plane (h, w): both sides
    known and more than 1, or both dynamic (not a batch of vectors)."""
    known = [d for d in shape if d is not None]
    return len(known) in (0, 2) and all(d > 1 for d in known)


def _spatial_ratio_fits(hw, size) -> bool:
    """Whether output spatial dims (h, w) are the input's divided by one
    whole stride (or equal)."""
    h, w = hw
    if size is None or h is None or w is None:
        return False
    W, H = size
    return H % h == 0 and W % w == 0 and H // h == W // w


def _metadata_threshold(metadata: dict, where: str):
    text = metadata.get(THRESHOLD_KEY)
    if text is None:
        return None
    try:
        value = float(text)
        assert np.isfinite(value)
    except (ValueError, TypeError, AssertionError):
        raise ModelError(f"{where}: metadata {THRESHOLD_KEY} must be a number, got {text!r}") from None
    return value


def output_contract(outputs: list[Tensor], metadata: dict, where: str, *, input_size=None, num_labels=None,
                    output=None, output_layout=None, output_activation=None, threshold=None,
                    input_layout=None) -> OutputContract:
    """Choose the segmentation output and say how to read it.

    What the user said at `load` comes first, then the model's metadata
    (coreseg.output.* keys), then what the graph and the shapes say; what
    none of them says is assumed, and recorded as such in ``sources``.
    `input_layout` breaks a tie between NCHW and NHWC that the shapes
    leave, for an output of unknown shape resolved from its first result
    (the backend passes it then, and only then).
    """
    has = ", ".join(t.describe() for t in outputs) or "none"
    layout_source = "load" if output_layout is not None else "model"
    output = output if output is not None else metadata.get(OUTPUT_KEY)
    if output_layout is None and metadata.get(OUTPUT_LAYOUT_KEY) is not None:
        output_layout = str(metadata[OUTPUT_LAYOUT_KEY]).upper()
        if output_layout not in ("NCHW", "NHWC"):
            raise ModelError(f"{where}: metadata {OUTPUT_LAYOUT_KEY} must be 'NCHW' or 'NHWC', got {output_layout!r}")
    threshold_source = "load" if threshold is not None else "model"
    if threshold is None:
        threshold = _metadata_threshold(metadata, where)
    if threshold is None:
        threshold_source = "assumed"
    elif not np.isfinite(float(threshold)):
        raise ValueError(f"{arg('threshold')} must be a finite number, got {threshold!r}")
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
        raise ValueError(f"{arg('output_activation')} must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {output_activation!r}")
    if output_layout is not None and output_layout not in ("NCHW", "NHWC"):
        raise ValueError(f"{arg('output_layout')} must be 'NCHW' or 'NHWC', got {output_layout!r}")
    if kind == "labels":
        if threshold_source == "load":
            raise ValueError(f"{arg('threshold')} applies to score outputs; {t.describe()} is a class map")
        return OutputContract(t.name, "labels", None, "none", 0.0, num_labels,
                              {"layout": "model", "activation": "model", "threshold": "model"})
    activation_source = ("load" if output_activation is not None else
                         "model" if metadata.get(ACTIVATION_KEY) is not None or t.activation is not None
                         else "assumed")
    activation = output_activation or metadata.get(ACTIVATION_KEY) or t.activation
    if activation is not None and activation not in ACTIVATIONS:
        raise ModelError(f"{where}: metadata {ACTIVATION_KEY} must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {activation!r}")
    sources = {"layout": layout_source, "activation": activation_source, "threshold": threshold_source}
    shape = None if t.shape is None else (1, 1) + tuple(t.shape) if len(t.shape) == 2 else (
        t.shape if len(t.shape) == 4 else (1,) + tuple(t.shape))
    if shape is None or (output_layout is None and _unknown_classes(shape)):
        # Unknown until a result comes: the backend calls this again with
        # the result's shape. Only what does not depend on it is checked.
        if sources["layout"] == "model":
            sources["layout"] = "assumed" if shape is None else "model"
        return OutputContract(t.name, "scores", output_layout, activation or "logits",
                              0.0 if threshold is None else float(threshold), None, sources)
    if len(t.shape) == 4 and shape[0] not in (1, None):
        raise ModelError(f"{where}: output {t.describe()} has a batch of {shape[0]}; expected 1")
    if output_layout is None:
        output_layout, sources["layout"] = _score_layout(t, shape, where, input_size, num_labels, input_layout)
    layout = output_layout
    channels = shape[1] if layout == "NCHW" else shape[3]
    if channels == 1:
        if activation is None:
            raise ModelError(f"{where}: output {t.describe()} is a single channel (a binary model), and nothing "
                             f"says whether it holds probabilities or logits: pass {arg('output_activation', 'sigmoid')} "
                             f"(probabilities, threshold 0.5) or {arg('output_activation', 'logits')} (threshold 0), "
                             f"or set the metadata {ACTIVATION_KEY}")
        if activation == "softmax":
            raise ModelError(f"{where}: a softmax over a single channel is always 1; output {t.describe()} "
                             f"needs {arg('output_activation', 'sigmoid')} or {arg('output_activation', 'logits')}")
        default = 0.0 if activation == "logits" else 0.5
        if num_labels not in (None, 2):
            raise ModelError(f"{where}: output {t.describe()} is binary (one channel: background, foreground) "
                             f"but the model has {num_labels} labels; give it 2 ({arg('labels')})")
        return OutputContract(t.name, "binary", layout, activation,
                              default if threshold is None else float(threshold), 1, sources)
    if activation == "sigmoid" and channels is not None:
        # Independent classes: C names, or C + 1 with the background first.
        if num_labels is not None and num_labels not in (channels, channels + 1):
            raise ModelError(f"{where}: output {t.describe()} has {channels} independent (sigmoid) channels, a "
                             f"multi-label model: it takes {channels} class names ({arg('labels')}), or "
                             f"{channels + 1} with the background first; the model has {num_labels}")
        return OutputContract(t.name, "multilabel", layout, activation,
                              0.5 if threshold is None else float(threshold), channels, sources)
    if threshold_source == "load":
        raise ValueError(f"{arg('threshold')} applies to single-channel and multi-label (sigmoid) outputs; "
                         f"{t.describe()} has {channels} one-of-{channels} classes (the class is the argmax)")
    if num_labels is not None and channels is not None and channels != num_labels:
        raise ModelError(f"{where}: {num_labels} labels for {channels} score channels in output {t.describe()}")
    if activation is None:
        activation = "logits"  # assumed: a softmax applied to probabilities keeps their argmax
    return OutputContract(t.name, "scores", layout, activation, 0.0, channels, sources)


def _unknown_classes(shape) -> bool:
    """Whether neither candidate class axis of a rank-4 shape is known."""
    return shape[1] is None and shape[3] is None


def _score_layout(t: Tensor, shape, where, input_size, num_labels, input_layout=None) -> tuple[str, str]:
    """(NCHW or NHWC, its source) for a float output, from what the shapes
    allow ("model"); else, for a result's shape that fits both, as the
    input is laid out ("assumed")."""
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
            return fits[0], "model"
    if input_layout in options:
        return input_layout, "assumed"
    labels = f"{num_labels} labels" if num_labels is not None else "no labels"

    def classes(c) -> str:
        return "a dynamic number of classes" if c is None else f"{c} classes"

    raise ModelError(f"{where}: cannot tell the class axis of output {t.describe()}: it could be NCHW "
                     f"({classes(c_first)}) or NHWC ({classes(c_last)}), and the model has {labels}; pass "
                     f"{arg('output_layout', 'NCHW')} or {arg('output_layout', 'NHWC')}, or name its classes "
                     f"({arg('labels')})")
