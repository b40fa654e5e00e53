"""Array checks shared by the native API (coreseg.kernels) and its numpy
twin (coreseg.kernels.reference): dtypes, shapes, sides, strides and
`out=` arrays, so both accept and reject exactly the same arrays with the
same messages. Scalar arguments are checked in _args.py."""

from __future__ import annotations

import math
import os

import numpy as np

LABEL_DTYPES = (np.dtype(np.int32), np.dtype(np.uint8), np.dtype(np.uint16))

#: Most classes upsample_argmax takes (its per-row buffers are classes x width).
MAX_SCORE_CLASSES = 1 << 16

#: Longest side (height or width, in elements) of any array a kernel reads or
#: writes: positions are held in int32 and index maps are per side.
MAX_SIDE = 1 << 24


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


def out_array(out, shape: tuple[int, ...], dtype, inputs=(), allow_same=None) -> np.ndarray:
    """`out` checked against the result's shape and dtype, or a new array.

    An `out` that overlaps one of `inputs` is refused (the result would depend
    on the order of writes), except that it may be `allow_same` itself (an
    array, or a tuple of arrays any of which), the very same view, for
    kernels that work in place."""
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
    # Rows may have any stride; within a row, elements are packed. A 1-D out
    # (class_histogram's counts) is a column of one-element rows: any stride.
    for i in range(out.ndim - 1, 0, -1) if out.size and not packed else ():
        if out.shape[i] > 1 and out.strides[i] != expect:
            raise ValueError("out must have packed rows (C-contiguous within each row)")
        expect *= out.shape[i]
    allowed = allow_same if isinstance(allow_same, tuple) else (allow_same,)
    for a in inputs:
        if not np.may_share_memory(out, a):
            continue
        same = any(a is s for s in allowed if s is not None) and (
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


def unknown_colors_error(rgb: np.ndarray, mask: np.ndarray) -> ValueError:
    """The error for pixels whose colour is not in the table: how many, and
    the first few colours (in raster order)."""
    colors = rgb[mask]
    _, first = np.unique(colors, axis=0, return_index=True)
    shown = [tuple(int(v) for v in colors[i]) for i in sorted(first)[:5]]
    more = f" (first 5 of {len(first)})" if len(first) > 5 else ""
    return ValueError(f"rgb has {int(mask.sum())} pixels whose colour is not in colors: "
                      f"{', '.join(map(str, shown))}{more}; pass unknown= to give them an id")


def same_shape(gt: np.ndarray, pred: np.ndarray) -> None:
    if gt.shape != pred.shape:
        raise ValueError(f"gt and pred must have the same shape, got {gt.shape} and {pred.shape}")


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


def alpha_array(alpha, shape, name: str = "alpha", of: str = "foreground") -> np.ndarray:
    """An (h, w) uint8 plane of exactly `shape` with packed rows (copied
    once when they are not, e.g. alpha[:, ::2] or a transposed view)."""
    a = _as_array(alpha, name)
    if a.dtype != np.uint8:
        raise TypeError(f"{name} must have dtype uint8 (255 = foreground), got {a.dtype}")
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {a.shape}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} (the {of}'s height and width), got {a.shape}")
    check_sides(a, name)
    if a.size and a.shape[1] > 1 and a.strides[1] != 1:
        a = np.ascontiguousarray(a)
    return a
