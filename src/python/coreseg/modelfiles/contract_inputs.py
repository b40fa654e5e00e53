"""The input half of the model contract: how an image is fed to a model
(layout, colour order, normalisation), from its input tensor, metadata and
what the user said at `load`."""

from __future__ import annotations

import json
import numbers
from dataclasses import dataclass

import numpy as np

from .info import ModelError
from .metadata_keys import COLOR_LAYOUT_KEY, MEAN_KEY, NORMALIZATION_KEY, NORMALIZATIONS, STD_KEY
from .tensor import Tensor

__all__ = ["InputContract", "input_contract", "normalization"]


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
