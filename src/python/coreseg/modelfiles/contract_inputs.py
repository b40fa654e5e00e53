"""The input half of the model contract: how an image is fed to a model
(layout, colour order, normalisation), from its input tensor, metadata and
what the user said at `load`."""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass

import numpy as np

from .info import ModelError
from .metadata_keys import (
    COLOR_LAYOUT_KEY,
    LAYOUT_KEY,
    MAX_SIDE_KEY,
    MEAN_KEY,
    MULTIPLE_KEY,
    NORMALIZATION_KEY,
    NORMALIZATIONS,
    STD_KEY,
)
from .settings import arg
from .tensor import Tensor

__all__ = ["InputContract", "SizeRule", "input_contract", "normalization", "size_rule", "parse_size"]

#: Most pixels on a side of a dynamic input, and the largest multiple.
MAX_INPUT_SIDE = 1 << 14


@dataclass(frozen=True)
class SizeRule:
    """How an image's size becomes the input size of a model that takes
    any: scaled down, aspect kept, until its long side is at most
    `max_side` (None: no cap), then each side rounded to the nearest
    multiple of `multiple` (at least one multiple, and never past the cap).
    Networks with strided layers need the multiple (32 for most); the cap
    keeps a 12 MP photo from costing 50x a 1 MP one."""

    multiple: int = 32
    max_side: int | None = 1024

    def size_for(self, image_size) -> tuple[int, int]:
        """The input (width, height) for an image of `image_size`."""
        w, h = (float(v) for v in image_size)
        if self.max_side is not None and max(w, h) > self.max_side:
            scale = self.max_side / max(w, h)
            w, h = w * scale, h * scale
        m = self.multiple
        top = None if self.max_side is None else max(m, self.max_side // m * m)

        def side(v: float) -> int:
            n = max(m, int(round(v / m)) * m)
            return n if top is None else min(n, top)

        return side(w), side(h)

    def describe(self) -> str:
        cap = "" if self.max_side is None else f", long side at most {self.max_side}"
        multiple = "" if self.multiple == 1 else f", sides multiples of {self.multiple}"
        return f"input size: the image's{cap}{multiple}"


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
        Normalisation of float inputs on the 0..1 scale, in the order the
        channels are fed (`color_layout`; `load` and the metadata state
        them in R, G, B order).
    normalization : str
        The preset name, "custom", or "none (uint8)" for uint8 inputs.
    batch_dynamic : bool
    sources : dict of str to str
        Where "layout", "color_layout", "normalization" (and "size_rule"
        for inputs of any size) came from: "model", "load" or "assumed"
        (coreseg.modelfiles.settings).
    rule : SizeRule or None
        How an image's size becomes the input's, when the model takes any
        size (None: `size` is fixed).
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
    sources: dict
    rule: SizeRule | None = None

    def feed(self, rgb: np.ndarray) -> np.ndarray:
        """The input tensor (batch of 1) from an (h, w, 3) uint8 image
        already resized and in `color_layout` order."""
        if self.dtype == np.uint8:
            x = rgb
        elif self.normalization == "raw":
            x = rgb.astype(np.float32)  # 0..255 exactly
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


def normalization(metadata: dict, mean=None, std=None, where: str = "model") -> tuple[np.ndarray, np.ndarray, str, str]:
    """(mean, std, name, source) for a float input: `load`'s mean/std first
    (a preset name as `mean` sets both), then the metadata, then "unit",
    assumed."""
    presets = ", ".join(repr(k) for k in NORMALIZATIONS)
    if isinstance(mean, str):
        if mean not in NORMALIZATIONS:
            raise ValueError(f"{arg('normalization')} must be 3 numbers or a preset ({presets}), got {mean!r}")
        if std is not None:
            raise ValueError(f"{arg('normalization', mean)} is a preset and sets {arg('std')} too; do not pass both")
        m, s = NORMALIZATIONS[mean]
        return np.asarray(m, np.float64), np.asarray(s, np.float64), mean, "load"
    stated = any(k in metadata for k in (NORMALIZATION_KEY, MEAN_KEY, STD_KEY))
    source = "load" if mean is not None or std is not None else "model" if stated else "assumed"
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
        m0, name = _triple(mean, arg("mean"), "load"), "custom"
    if std is not None:
        s0, name, std_from = _triple(std, arg("std"), "load"), "custom", arg("std")
    m, s = np.asarray(m0, np.float64), np.asarray(s0, np.float64)
    if (s == 0).any():
        raise ModelError(f"{where}: {std_from} must not contain 0, got {s.tolist()}")
    return m, s, name or "unit", source


def _positive(value, what: str, limit: int) -> int:
    """A whole number in 1..limit, from an int or its text (metadata)."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    n = int(value)
    if not 1 <= n <= limit:
        raise ValueError(f"{what} must be in 1..{limit}, got {n}")
    return n


def parse_size(text):
    """(width, height) or "image" from "W,H", "WxH" or "image" (the
    metadata's and the command line's spelling) or a pair."""
    if isinstance(text, str):
        if text.strip().lower() == "image":
            return "image"
        parts = text.lower().replace("x", ",").split(",")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            w, h = (int(p) for p in parts)
            if w > 0 and h > 0:
                return (w, h)
        raise ValueError(f"a size is WIDTH,HEIGHT (or WIDTHxHEIGHT, or 'image'), got {text!r}")
    return tuple(text)


def size_rule(metadata: dict, multiple=None, max_side=None) -> tuple[SizeRule, str]:
    """The SizeRule of an input of any size, and where it came from:
    `load`'s multiple/max_side first (max_side 0 or "none": no cap), then
    the metadata, then 32 and 1024, assumed."""
    source = "load" if multiple is not None or max_side is not None else "assumed"
    if multiple is None and MULTIPLE_KEY in metadata:
        multiple, source = metadata[MULTIPLE_KEY], "model"
    if max_side is None and MAX_SIDE_KEY in metadata:
        max_side, source = metadata[MAX_SIDE_KEY], source if source == "load" else "model"
    rule = SizeRule()
    if multiple is not None:
        rule = SizeRule(_positive(multiple, arg("multiple"), 1024), rule.max_side)
    if max_side is not None:
        no_cap = str(max_side).strip().lower() in ("0", "none")
        rule = SizeRule(rule.multiple, None if no_cap else _positive(max_side, arg("max_side"), MAX_INPUT_SIDE))
    return rule, source


def input_contract(tensor: Tensor, metadata: dict, where: str, *, layout=None, mean=None, std=None,
                   color_layout=None, multiple=None, max_side=None) -> InputContract:
    """The input contract of a model's image input (rank 4, 3 channels)."""
    shape = tensor.shape
    if len(shape) != 4 or tensor.dtype not in ("uint8", "float16", "float32"):
        raise ModelError(f"{where}: not a segmentation model: its input must be one uint8 or float image "
                         f"tensor of rank 4 (NHWC or NCHW), and it is {tensor.describe()}")
    layout_source = "load" if layout is not None else "model"
    if layout is None and metadata.get(LAYOUT_KEY) is not None:
        layout = str(metadata[LAYOUT_KEY]).upper()
        if layout not in ("NHWC", "NCHW"):
            raise ModelError(f"{where}: metadata {LAYOUT_KEY} must be 'NHWC' or 'NCHW', got {layout!r}")
    if layout is not None:
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"{arg('layout')} must be 'NHWC' or 'NCHW', got {layout!r}")
        axis = 3 if layout == "NHWC" else 1
        if shape[axis] not in (3, None):
            raise ModelError(f"{where}: {arg('layout', layout)} puts the colour channels on axis {axis}, but "
                             f"input {tensor.describe()} has {shape[axis]} there")
    else:
        nhwc, nchw = shape[3] == 3, shape[1] == 3
        if nhwc and nchw:
            raise ModelError(f"{where}: input {tensor.describe()} is ambiguous: axis 1 and axis 3 both have 3 "
                             f"entries, so it could be NCHW or NHWC; say which with {arg('layout', 'NCHW')} or "
                             f"{arg('layout', 'NHWC')}")
        if not (nhwc or nchw):
            raise ModelError(f"{where}: not a segmentation model: input {tensor.describe()} has no axis of 3 "
                             "colour channels (axis 1 for NCHW, axis 3 for NHWC); if its channels are "
                             f"dynamic, say where they are with {arg('layout', 'NCHW')} or {arg('layout', 'NHWC')}")
        layout = "NHWC" if nhwc else "NCHW"
    h, w = (shape[1], shape[2]) if layout == "NHWC" else (shape[2], shape[3])
    color_source = "load" if color_layout else "model" if metadata.get(COLOR_LAYOUT_KEY) else "assumed"
    color = str(color_layout or metadata.get(COLOR_LAYOUT_KEY) or "RGB").upper()
    if color not in ("RGB", "BGR"):
        raise ModelError(f"{where}: the colour layout must be RGB or BGR, got {color!r} "
                         f"(metadata {COLOR_LAYOUT_KEY} or {arg('color_layout')})")
    if tensor.dtype == "uint8" and (mean is not None or std is not None):
        raise ValueError(f"{arg('normalization')}, {arg('std')}: input {tensor.describe()} takes uint8 pixels as they "
                         "are; there is nothing to normalise")
    m, s, norm, norm_source = normalization(metadata, mean, std, where)
    if tensor.dtype == "uint8":
        norm_source = "model"  # pixels are fed as they are
    if color == "BGR":  # mean and std are stated in R, G, B order; the pixels are fed B, G, R
        m, s = m[::-1], s[::-1]
    sources = {"layout": layout_source, "color_layout": color_source, "normalization": norm_source}
    rule = None
    if not (w and h):
        rule, sources["size_rule"] = size_rule(metadata, multiple, max_side)
    elif multiple is not None or max_side is not None:
        raise ValueError(f"{arg('multiple')} and {arg('max_side')} apply to models that take any input size; "
                         f"{tensor.describe()} takes {w}x{h}")
    return InputContract(
        name=tensor.name, dtype=np.dtype(tensor.dtype), layout=layout,
        size=(w, h) if w and h else None, color_layout=color, mean=m.astype(np.float32),
        std=s.astype(np.float32), normalization=norm if tensor.dtype != "uint8" else "none (uint8)",
        batch_dynamic=shape[0] is None, sources=sources, rule=rule,
    )
