"""The output half of the model contract: which output is the class map or
the scores, its layout and activation, and how a raw output becomes a
class map."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels
from .info import ModelError
from .metadata_keys import ACTIVATION_KEY, ACTIVATIONS
from .tensor import Tensor, _is_float, _is_int

__all__ = ["OutputContract", "output_contract", "class_map", "segmentation_kind"]


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
