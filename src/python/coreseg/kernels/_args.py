"""Argument checking shared by the native API (coreseg.kernels) and its numpy
twin (coreseg.reference), so both accept and reject exactly the same input
with the same messages."""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Sequence

import numpy as np

LABEL_DTYPES = (np.dtype(np.int32), np.dtype(np.uint8), np.dtype(np.uint16))

#: Output byte orders of resize_image: layout name -> RGBA channel per byte.
LAYOUTS = {
    "RGBA": (0, 1, 2, 3),
    "BGRA": (2, 1, 0, 3),
    "ARGB": (3, 0, 1, 2),
    "RGB": (0, 1, 2),
    "BGR": (2, 1, 0),
}


#: Most classes upsample_argmax takes (its per-row buffers are classes x width).
MAX_SCORE_CLASSES = 1 << 16

#: Longest side (height or width, in elements) of any array a kernel reads or
#: writes: positions are held in int32 and index maps are per side.
MAX_SIDE = 1 << 24

#: resize_image shrinks at most this much per axis in one pass (beyond it
#: its 14-bit filter coefficients no longer keep within 1 of Pillow).
MAX_DOWNSCALE = 2048

#: Most classes confusion_matrix counts (its output is classes^2 int64: 2 GiB).
MAX_CONFUSION_CLASSES = 1 << 14

INT64 = (-(1 << 63), (1 << 63) - 1)


def is_int(v) -> bool:
    """An integer and not a bool; plain ints skip the slower ABC check (it
    runs on every kernel call)."""
    return type(v) is int or (not isinstance(v, bool) and isinstance(v, numbers.Integral))


def check_sides(a: np.ndarray, name: str, sides: int = 2) -> None:
    for n in a.shape[:sides]:
        if n > MAX_SIDE:
            raise ValueError(f"{name} has a side of {n} elements; coreseg takes at most {MAX_SIDE}")


def _aligned(a: np.ndarray) -> np.ndarray:
    """`a`, or a copy of it when its elements are not on their natural
    alignment (e.g. a uint16 view at an odd byte offset): the native rows
    load them directly."""
    return a if a.flags.aligned else a.copy()


def physical_memory() -> int | None:
    """Bytes of RAM, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _bytes_text(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if n < 1024 or unit == "EiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"


def _as_array(value, name: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array, got {type(value).__name__}")
    return np.asarray(value)


def labels_array(labels, name: str = "labels") -> np.ndarray:
    """A 2-D int32/uint8/uint16 label map in native byte order with packed
    rows (arrays whose rows are not packed are copied once)."""
    a = _as_array(labels, name)
    if a.dtype not in LABEL_DTYPES and (a.dtype.newbyteorder("=") not in LABEL_DTYPES or a.dtype.kind == "b"):
        raise TypeError(f"{name} must have dtype int32, uint8 or uint16, got {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {a.shape}")
    check_sides(a, name)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.size and a.shape[1] > 1 and a.strides[1] != a.itemsize:
        a = np.ascontiguousarray(a)
    return _aligned(a)


def image_array(image, name: str = "image") -> np.ndarray:
    """An (h, w, 3) or (h, w, 4) uint8 image with packed pixels (copied once
    when its pixels are not packed, e.g. image[:, ::2] or image[..., ::-1])."""
    a = _as_array(image, name)
    if a.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8, got {a.dtype}")
    if a.ndim != 3 or a.shape[2] not in (3, 4):
        raise ValueError(f"{name} must have shape (h, w, 3) or (h, w, 4), got {a.shape}")
    check_sides(a, name)
    c = a.shape[2]
    if a.size and (a.strides[2] != 1 or (a.shape[1] > 1 and a.strides[1] != c)):
        a = np.ascontiguousarray(a)
    return a


def palette_array(palette, name: str = "palette") -> np.ndarray:
    """An (n, 4) uint8 RGBA palette; (n, 3) gets alpha 255. Integer arrays
    are accepted when every value is in 0..255."""
    a = _as_array(palette, name)
    if a.ndim != 2 or a.shape[1] not in (3, 4):
        raise ValueError(f"{name} must have shape (n, 4) or (n, 3), got {a.shape}")
    if a.dtype != np.uint8:
        if a.dtype.kind not in "iu" or a.dtype.kind == "b":
            raise TypeError(f"{name} must have dtype uint8, got {a.dtype}")
        if a.size and (a.min() < 0 or a.max() > 255):
            raise ValueError(f"{name} values must be in 0..255")
        a = a.astype(np.uint8)
    if a.shape[1] == 3:
        a = np.concatenate([a, np.full((a.shape[0], 1), 255, np.uint8)], axis=1)
    return np.ascontiguousarray(a)


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


def out_array(out, shape: tuple[int, ...], dtype, inputs=(), allow_same=None) -> np.ndarray:
    """`out` checked against the result's shape and dtype, or a new array.

    An `out` that overlaps one of `inputs` is refused (the result would depend
    on the order of writes), except that it may be `allow_same` itself, the
    very same view, for kernels that work in place."""
    dtype = np.dtype(dtype)
    if out is None:
        nbytes = math.prod(shape) * dtype.itemsize
        # Asking the OS for its RAM costs a microsecond; no machine has under 1 GiB.
        ram = physical_memory() if nbytes >= 1 << 30 else None
        if ram is not None and nbytes > ram:
            raise MemoryError(f"the result would take {_bytes_text(nbytes)} (shape {tuple(shape)}), more than this "
                              f"machine's {_bytes_text(ram)} of memory")
        return np.empty(shape, dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.dtype != dtype:
        if out.dtype.newbyteorder("=") == dtype:
            raise TypeError(f"out must have dtype {dtype} in this machine's byte order, got {out.dtype.str} "
                            f"({'big' if out.dtype.byteorder == '>' else 'little'}-endian)")
        raise TypeError(f"out must have dtype {dtype}, got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got {out.shape}")
    if not out.flags.writeable:
        raise ValueError("out must be writable")
    if not out.flags.aligned:
        raise ValueError("out is not aligned to its element size")
    expect = out.itemsize
    packed = out.flags.c_contiguous  # the common case: no per-axis check
    for i in range(out.ndim - 1, 0 if out.ndim > 1 else -1, -1) if out.size and not packed else ():
        if out.shape[i] > 1 and out.strides[i] != expect:
            raise ValueError("out must have packed rows (C-contiguous within each row)" if out.ndim > 1
                             else "out must be contiguous")
        expect *= out.shape[i]
    for a in inputs:
        if not np.may_share_memory(out, a):
            continue
        same = a is allow_same and (
            out is a
            or (out.__array_interface__["data"][0] == a.__array_interface__["data"][0] and out.strides == a.strides)
        )
        if not same:
            raise ValueError("out overlaps an input array; pass a separate array")
    return out


def logits_array(logits, name: str = "logits") -> np.ndarray:
    """(classes, h, w) float32/float16 logits; a leading batch axis of 1 is
    dropped. Arrays whose rows are not packed are copied once."""
    a = _as_array(logits, name)
    if a.dtype.newbyteorder("=") not in (np.dtype(np.float32), np.dtype(np.float16)):
        raise TypeError(f"{name} must have dtype float32 or float16, got {a.dtype}")
    if a.ndim == 4:
        if a.shape[0] != 1:
            raise ValueError(f"{name} must have one image (shape (1, classes, h, w)), got shape {a.shape}")
        a = a[0]
    if a.ndim != 3:
        raise ValueError(f"{name} must have shape (classes, h, w) or (1, classes, h, w), got {a.shape}")
    if a.shape[0] < 1:
        raise ValueError(f"{name} must have at least one class")
    check_sides(a[0], name)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.size and ((a.shape[2] > 1 and a.strides[2] != a.itemsize) or a.strides[0] % a.itemsize
                   or a.strides[1] % a.itemsize):
        a = np.ascontiguousarray(a)
    return _aligned(a)


def scores_array(scores, name: str = "scores") -> np.ndarray:
    """(classes, h, w) float32/float16 scores, as logits_array, with the
    class-count limit of upsample_argmax."""
    a = logits_array(scores, name)
    if a.shape[0] > MAX_SCORE_CLASSES:
        raise ValueError(f"{name} has {a.shape[0]} classes; at most {MAX_SCORE_CLASSES} are supported")
    return a


def color_map(rgb, name: str = "rgb") -> np.ndarray:
    """An (h, w, 3) uint8/uint16 colour-coded map with packed pixels."""
    a = _as_array(rgb, name)
    if a.dtype.newbyteorder("=") not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise TypeError(f"{name} must have dtype uint8 or uint16, got {a.dtype}")
    if a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"{name} must have shape (h, w, 3), got {a.shape}")
    check_sides(a, name)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    if a.size and (a.strides[2] != a.itemsize or (a.shape[1] > 1 and a.strides[1] != 3 * a.itemsize)):
        a = np.ascontiguousarray(a)
    return _aligned(a)


def color_table(colors, dtype, name: str = "colors") -> np.ndarray:
    """An (n, 3) C-contiguous table of `dtype` without duplicate colours."""
    a = _as_array(colors, name)
    if a.ndim != 2 or a.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n, 3), got {a.shape}")
    if a.dtype != dtype:
        if a.dtype.kind not in "iu":
            raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {a.dtype}")
        info = np.iinfo(dtype)
        if a.size and (a.min() < info.min or a.max() > info.max):
            raise ValueError(f"{name} values must fit {np.dtype(dtype)} like the map")
        a = a.astype(dtype)
    a = _aligned(np.ascontiguousarray(a))
    unique, counts = np.unique(a, axis=0, return_counts=True)
    if len(unique) != len(a):
        dup = tuple(int(v) for v in unique[counts > 1][0])
        raise ValueError(f"{name} lists the colour {dup} more than once")
    return a


def unknown_arg(unknown):
    if unknown is None:
        return None
    if not is_int(unknown) or not -2**31 <= unknown < 2**31:
        raise TypeError(f"unknown must be None or an int32 class id, got {unknown!r}")
    return int(unknown)


def unknown_colors_error(rgb: np.ndarray, mask: np.ndarray) -> ValueError:
    """The error for pixels whose colour is not in the table: how many, and
    the first few colours (in raster order)."""
    colors = rgb[mask]
    _, first = np.unique(colors, axis=0, return_index=True)
    shown = [tuple(int(v) for v in colors[i]) for i in sorted(first)[:5]]
    more = f" (first 5 of {len(first)})" if len(first) > 5 else ""
    return ValueError(f"rgb has {int(mask.sum())} pixels whose colour is not in colors: "
                      f"{', '.join(map(str, shown))}{more}; pass unknown= to give them an id")


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


def same_shape(gt: np.ndarray, pred: np.ndarray) -> None:
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred must have the same shape, got {gt.shape} and {pred.shape}")


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


def state_array(state, shape, dtype, inputs=()) -> np.ndarray:
    """A smoothing state: a writable, aligned, C-contiguous native array of
    this shape and dtype that shares no memory with `inputs`."""
    if not isinstance(state, np.ndarray):
        raise TypeError(f"state must be a numpy array, got {type(state).__name__}")
    if state.dtype != np.dtype(dtype):
        raise TypeError(f"state must have dtype {np.dtype(dtype)}, got {state.dtype}")
    if state.shape != tuple(shape):
        raise ValueError(f"state must have shape {tuple(shape)} for these inputs, got {state.shape}")
    if not (state.flags.c_contiguous and state.flags.writeable and state.flags.aligned):
        raise ValueError("state must be a writable, aligned, C-contiguous array")
    if any(np.may_share_memory(state, a) for a in inputs):
        raise ValueError("state must not share memory with the inputs")
    return state


def hysteresis_args(state, labels, frames, scores, margin):
    """`hysteresis_update`'s arguments checked, in the order both the kernel
    and its reference check them: (labels, frames, scores, margin)."""
    labels = labels_array(labels)
    if labels.dtype != np.int32:
        raise TypeError(f"labels must have dtype int32, got {labels.dtype}")
    frames = int_arg(frames, "frames", 1, 1 << 20)
    if (scores is None) != (margin is None):
        raise TypeError("scores and margin go together: a margin is a difference of scores")
    if scores is not None:
        scores = logits_array(scores, "scores")
        if scores.shape[1:] != labels.shape:
            raise ValueError(f"scores {scores.shape} and labels {labels.shape} differ in size")
        margin = float(margin)
        if not np.isfinite(margin):
            raise ValueError(f"margin must be finite, got {margin}")
    state_array(state, (3, *labels.shape), np.int32, inputs=(labels,))
    return labels, frames, scores, margin
