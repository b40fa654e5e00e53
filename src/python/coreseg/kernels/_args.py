"""Scalar argument checks shared by the native API (coreseg.kernels) and its
numpy twin (coreseg.kernels.reference): sizes, colours, ids, factors and
limits, so both accept and reject exactly the same input with the same
messages. Arrays are checked in _arrays.py."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np

from . import _arrays
from ._arrays import MAX_SIDE

#: Output byte orders of resize_image: layout name -> RGBA channel per byte.
LAYOUTS = {
    "RGBA": (0, 1, 2, 3),
    "BGRA": (2, 1, 0, 3),
    "ARGB": (3, 0, 1, 2),
    "RGB": (0, 1, 2),
    "BGR": (2, 1, 0),
}

#: resize_image shrinks at most this much per axis in one pass (beyond it
#: its 14-bit filter coefficients no longer keep within 1 of Pillow).
MAX_DOWNSCALE = 2048

#: Most classes confusion_matrix counts (its output is classes^2 int64: 2 GiB).
MAX_CONFUSION_CLASSES = 1 << 14

#: Largest blur radius (pixels): blur reduces the image at most 255 times
#: per axis (its column sums are uint16), and beyond 1024 the small image
#: of a 255x reduction would need ever wider passes.
MAX_BLUR_RADIUS = 1024

#: How upsample_matte combines its planes per pixel.
MATTE_REDUCTIONS = ("sum", "max")

#: refine_matte's limits: its radius (pixels of the photo; the reduction is
#: at most 256x, its block sums under 2^24, so beyond 1024 the small window
#: would grow past what its fixed point was sized for) and eps (in (0..1)^2 units, as in He et al.: below 1e-6 the
#: slope A of a near-flat window passes what the fixed point holds, and
#: above 100 the result no longer changes).
MAX_REFINE_RADIUS = 1024
REFINE_EPS_RANGE = (1e-6, 100.0)

INT64 = (-(1 << 63), (1 << 63) - 1)


def is_int(v) -> bool:
    """An integer and not a bool; plain ints skip the slower ABC check (it
    runs on every kernel call)."""
    return type(v) is int or (not isinstance(v, bool) and isinstance(v, numbers.Integral))


def rgba(color, name: str) -> tuple[int, int, int, int]:
    """(r, g, b, a) from 3 or 4 integers in 0..255 or a "#RRGGBB[AA]" string."""
    if isinstance(color, str):
        from .palette import parse_color

        return parse_color(color)
    if type(color) not in (tuple, list) and (not isinstance(color, (Sequence, np.ndarray)) or isinstance(color, bytes)):
        raise TypeError(f"{name} must be (r, g, b[, a]) or '#RRGGBB[AA]', got {color!r}")
    values = list(color)
    if len(values) not in (3, 4):
        raise ValueError(f"{name} must have 3 or 4 values, got {len(values)}")
    out = []
    for v in values:
        if not is_int(v):
            raise TypeError(f"{name} values must be integers, got {v!r}")
        if not 0 <= int(v) <= 255:
            raise ValueError(f"{name} values must be in 0..255, got {int(v)}")
        out.append(int(v))
    if len(out) == 3:
        out.append(255)
    return tuple(out)


def selected_ids(selected) -> list[int]:
    """The class ids of `selected`: one integer or a sequence of integers."""
    if is_int(selected):
        return [int64_arg(int(selected), "selected")]
    if isinstance(selected, np.ndarray):
        if selected.dtype.kind not in "iu":
            raise TypeError(f"selected must contain integers, got dtype {selected.dtype}")
        return [int(v) for v in selected.ravel()]
    if type(selected) not in (tuple, list) and (
            isinstance(selected, (str, bytes)) or not isinstance(selected, (Sequence, set, frozenset))):
        raise TypeError(f"selected must be an integer or a sequence of integers, got {selected!r}")
    ids = []
    for v in selected:
        if not is_int(v):
            raise TypeError(f"selected must contain integers, got {v!r}")
        ids.append(int(v))
    return [int64_arg(v, "selected") for v in ids]


def int64_arg(value: int, name: str) -> int:
    """An integer that fits int64 (what the native kernels take)."""
    if not INT64[0] <= value <= INT64[1]:
        raise ValueError(f"{name} must fit int64 (-2**63..2**63-1), got {value}")
    return value


def size_arg(size, name: str = "size", minimum: int = 1) -> tuple[int, int]:
    """(width, height) as two integers >= minimum."""
    if not isinstance(size, (Sequence, np.ndarray)) or isinstance(size, (str, bytes)) or len(size) != 2:
        raise TypeError(f"{name} must be (width, height), got {size!r}")
    w, h = size
    for v in (w, h):
        if not is_int(v):
            raise TypeError(f"{name} must be two integers (width, height), got {size!r}")
    if w < minimum or h < minimum:
        raise ValueError(f"{name} must be at least ({minimum}, {minimum}), got {tuple(size)}")
    if w > MAX_SIDE or h > MAX_SIDE:
        raise ValueError(f"{name} must be at most ({MAX_SIDE}, {MAX_SIDE}), got {tuple(size)}")
    return int(w), int(h)


def resize_factor(image_size, size) -> None:
    """Refuse a resize_image that shrinks an axis more than MAX_DOWNSCALE times."""
    for axis, n_in, n_out in (("width", image_size[0], size[0]), ("height", image_size[1], size[1])):
        if n_out > 0 and n_in > n_out * MAX_DOWNSCALE:
            raise ValueError(f"resize_image cannot shrink the {axis} from {n_in} to {n_out} pixels in one pass "
                             f"(at most {MAX_DOWNSCALE}x per axis); resize in two steps")


def opacity_arg(opacity) -> float:
    if type(opacity) is not float and (isinstance(opacity, bool) or not isinstance(opacity, numbers.Real)):
        raise TypeError(f"opacity must be a number in [0, 1], got {opacity!r}")
    value = float(opacity)
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"opacity must be in [0, 1], got {value}")
    return value


def layout_arg(layout) -> tuple[int, ...]:
    if not isinstance(layout, str) or layout.upper() not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    return LAYOUTS[layout.upper()]


def unknown_arg(unknown):
    if unknown is None:
        return None
    if not is_int(unknown) or not -2**31 <= unknown < 2**31:
        raise TypeError(f"unknown must be None or an int32 class id, got {unknown!r}")
    return int(unknown)


def num_classes_arg(num_classes, limit: int) -> int:
    if not is_int(num_classes) or not 1 <= num_classes <= limit:
        raise ValueError(f"num_classes must be an integer in 1..{limit}, got {num_classes!r}")
    return int(num_classes)


def ignore_index_arg(ignore_index) -> int | None:
    if ignore_index is None:
        return None
    if not is_int(ignore_index):
        raise TypeError(f"ignore_index must be None or an integer, got {ignore_index!r}")
    return int64_arg(int(ignore_index), "ignore_index")


def unit_float(value, name: str) -> float:
    """A float in [0, 1]."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= v <= 1.0:  # NaN fails too
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def int_arg(value, name: str, low: int, high: int) -> int:
    """An integer in [low, high] (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be in {low}..{high}, got {value}")
    return int(value)


def hysteresis_args(state, labels, frames, scores, margin):
    """`hysteresis_update`'s arguments checked, in the order both the kernel
    and its reference check them: (labels, frames, scores, margin)."""
    labels = _arrays.labels_array(labels)
    if labels.dtype != np.int32:
        raise TypeError(f"labels must have dtype int32, got {labels.dtype}")
    frames = int_arg(frames, "frames", 1, 1 << 20)
    if (scores is None) != (margin is None):
        raise TypeError("scores and margin go together: a margin is a difference of scores")
    if scores is not None:
        scores = _arrays.logits_array(scores, "scores")
        if scores.shape[1:] != labels.shape:
            raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in size")
        margin = float(margin)
        if not np.isfinite(margin):
            raise ValueError(f"margin must be finite, got {margin}")
    _arrays.state_array(state, (3, *labels.shape), np.int32, inputs=(labels,))
    return labels, frames, scores, margin


def blur_radius(radius) -> float:
    """A blur radius in pixels: a finite number in (0, MAX_BLUR_RADIUS]."""
    if type(radius) is not float and (isinstance(radius, bool) or not isinstance(radius, numbers.Real)):
        raise TypeError(f"radius must be a number of pixels, got {radius!r}")
    value = float(radius)
    if not 0.0 < value <= MAX_BLUR_RADIUS:  # NaN fails too
        raise ValueError(f"radius must be a number in (0, MAX_BLUR_RADIUS = {MAX_BLUR_RADIUS}], got {value}")
    return value


def refine_radius(radius) -> float:
    """refine_matte's radius in pixels: a number in [1, MAX_REFINE_RADIUS]."""
    if type(radius) is not float and (isinstance(radius, bool) or not isinstance(radius, numbers.Real)):
        raise TypeError(f"radius must be a number of pixels, got {radius!r}")
    value = float(radius)
    if not 1.0 <= value <= MAX_REFINE_RADIUS:  # NaN fails too
        raise ValueError(f"radius must be a number in [1, MAX_REFINE_RADIUS = {MAX_REFINE_RADIUS}], got {value}")
    return value


def refine_eps(eps) -> float:
    """refine_matte's eps: a number in [1e-6, 100] ((0..1)^2 units)."""
    if type(eps) is not float and (isinstance(eps, bool) or not isinstance(eps, numbers.Real)):
        raise TypeError(f"eps must be a number, got {eps!r}")
    value = float(eps)
    low, high = REFINE_EPS_RANGE
    if not low <= value <= high:  # NaN fails too
        raise ValueError(f"eps must be a number in [{low:g}, {high:g}] (a variance of 0..1 values), got {value}")
    return value


def matte_reduce(reduce) -> str:
    if not isinstance(reduce, str) or reduce not in MATTE_REDUCTIONS:
        raise ValueError(f"reduce must be one of {', '.join(map(repr, MATTE_REDUCTIONS))}, got {reduce!r}")
    return reduce


def background_arg(background, foreground: np.ndarray):
    """blend's background: an image of the foreground's shape (returned as
    an array), or a colour - (r, g, b[, a]) ints, "#RRGGBB[AA]" or a 1-D
    array of 3 or 4 - returned as an (r, g, b, a) tuple."""
    if isinstance(background, (str, tuple, list)) or (isinstance(background, np.ndarray) and background.ndim == 1):
        return rgba(background, "background")
    b = _arrays.image_array(background, "background")
    if b.shape != foreground.shape:
        raise ValueError(f"background must have the shape of foreground {foreground.shape}, got {b.shape}")
    return b
