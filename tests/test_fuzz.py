"""Fuzzing: every public kernel called with random, often hostile, arguments.

Shapes (0-sized, 1x1, very wide or tall), dtypes and byte orders, strides
(negative, non-contiguous, unaligned, Fortran), read-only arrays, `out=`
that aliases an input or is wrong, palettes of 0, 1 or 65536 entries,
labels outside the palette and at the integer limits, NaN/inf/negative
opacities, sizes 0, negative or huge. For each call:

- where coreseg.reference accepts the arguments, the native kernel must
  accept them and return the same array, bit for bit;
- where the reference refuses them (TypeError, ValueError, or MemoryError
  before allocating), the native kernel must refuse them with the same type;
- nothing else may happen: any other exception fails the test, and a crash
  kills it (.ci/sanitize runs this file under ASan and UBSan).

A fixed seed and CORESEG_FUZZ_CASES cases per kernel (default 300) in CI;
a longer run on demand, e.g. CORESEG_FUZZ_CASES=20000 CORESEG_FUZZ_SEED=7.
"""

import os

import numpy as np
import pytest

import coreseg
from coreseg import reference

CASES = int(os.environ.get("CORESEG_FUZZ_CASES", "300"))
SEED = int(os.environ.get("CORESEG_FUZZ_SEED", "20261123"))
REFUSED = (TypeError, ValueError, MemoryError)

LABEL_DTYPES = ["int32", "uint8", "uint16", ">i4", ">u2", "int64", "int16", "float32", "bool"]
FLOAT_DTYPES = ["float32", "float16", ">f4", ">f2", "float64", "int32"]


def shape2(rng):
    """(h, w): mostly small, sometimes empty, 1x1, very wide or very tall."""
    r = rng.random()
    if r < 0.08:
        return (0, int(rng.integers(0, 5))) if rng.random() < 0.5 else (int(rng.integers(0, 5)), 0)
    if r < 0.16:
        return (1, 1)
    if r < 0.22:
        return (1, int(rng.integers(500, 3000)))
    if r < 0.28:
        return (int(rng.integers(500, 3000)), 1)
    return int(rng.integers(1, 40)), int(rng.integers(1, 40))


def layout(rng, a):
    """`a` as one of the memory layouts a caller can hand over."""
    r = rng.random()
    if r < 0.45 or a.ndim == 0:
        return a
    if r < 0.55:
        return a[::-1]  # negative row stride
    if r < 0.62 and a.ndim >= 2:
        wide = np.zeros(a.shape[:1] + (a.shape[1] * 2,) + a.shape[2:], a.dtype)
        wide[:, ::2] = a
        return wide[:, ::2]  # elements not packed
    if r < 0.62:
        spaced = np.zeros((a.shape[0] * 3,), a.dtype)
        spaced[1::3] = a
        return spaced[1::3]  # a strided 1-D array
    if r < 0.70:
        return np.asfortranarray(a)
    if r < 0.80 and a.itemsize > 1:
        raw = np.zeros(a.nbytes + 1, np.uint8)[1:]  # unaligned
        view = raw.view(a.dtype).reshape(a.shape)
        view[...] = a
        return view
    if r < 0.90:
        a = a.copy()
        a.setflags(write=False)
        return a
    return np.ascontiguousarray(a)


def labels(rng, shape=None, limit=None):
    shape = shape or shape2(rng)
    dtype = np.dtype(LABEL_DTYPES[int(rng.integers(len(LABEL_DTYPES)))] if rng.random() < 0.3 else "int32")
    top = limit if limit is not None else int(rng.choice([3, 20, 300, 70000]))
    values = rng.integers(0, max(top, 1), shape)
    if rng.random() < 0.15 and values.size:  # the integer limits and negative ids
        values.flat[int(rng.integers(values.size))] = int(rng.choice([-1, 2**31 - 1, -2**31, 65535, 255]))
    with np.errstate(all="ignore"):
        a = values.astype(dtype) if dtype.kind != "b" else values.astype(bool)
    return layout(rng, a)


def image(rng, shape=None):
    h, w = shape or shape2(rng)
    c = int(rng.choice([3, 4, 4, 2])) if rng.random() < 0.1 else int(rng.choice([3, 4]))
    dtype = np.uint8 if rng.random() < 0.93 else rng.choice([np.uint16, np.float32])
    return layout(rng, rng.integers(0, 256, (h, w, c)).astype(dtype))


def palette(rng):
    n = int(rng.choice([0, 1, 3, 21, 256, 65536]))
    c = 4 if rng.random() < 0.8 else 3
    p = rng.integers(0, 256, (n, c))
    return p.astype(np.uint8) if rng.random() < 0.9 else p.astype(np.int64) * int(rng.choice([1, 2]))


def size(rng, shape):
    r = rng.random()
    if r < 0.07:
        return (int(rng.integers(-3, 1)), int(rng.integers(-3, 5)))
    if r < 0.12:
        return (int(rng.choice([2**24 + 1, 10**9, 2**40])), 3)
    if r < 0.17:
        return (0, 0)
    h, w = shape[:2]
    return (max(1, int(w * rng.uniform(0.2, 3))) if w else 4, max(1, int(h * rng.uniform(0.2, 3))) if h else 4)


def out_for(rng, shape, dtype, inputs):
    """None, a right `out`, or a wrong one (shape, dtype, order, aliasing)."""
    r = rng.random()
    if r < 0.55:
        return None
    if r < 0.65 and inputs and inputs[0].size and inputs[0].dtype == np.dtype(dtype) and inputs[0].shape == shape:
        return inputs[0]  # aliasing an input
    if r < 0.72:
        return np.zeros(tuple(s + 1 for s in shape), dtype)
    if r < 0.78:
        return np.zeros(shape, np.float64 if np.dtype(dtype) != np.float64 else np.int32)
    if r < 0.83:
        return np.zeros(shape, np.dtype(dtype).newbyteorder(">")) if np.dtype(dtype).itemsize > 1 else None
    return layout(rng, np.zeros(shape, dtype))


def opacity(rng):
    return float(rng.choice([0.0, 0.4, 1.0, np.nan, np.inf, -0.5, 1.5])) if rng.random() < 0.3 else float(rng.random())


def scores(rng, limit=None):
    h, w = shape2(rng)
    c = int(rng.choice([1, 2, 3, 21])) if rng.random() < 0.9 else 0
    dtype = np.dtype(FLOAT_DTYPES[int(rng.integers(len(FLOAT_DTYPES)))] if rng.random() < 0.3 else "float32")
    values = rng.random((c, h, w))
    if rng.random() < 0.2 and values.size:
        values.flat[int(rng.integers(values.size))] = float(rng.choice([np.nan, np.inf, -np.inf, 2.0, -1.0]))
    with np.errstate(invalid="ignore"):  # inf/NaN into an int32 "scores" array
        a = values.astype(dtype)
    return layout(rng, a[None] if rng.random() < 0.2 else a)


# Each maker returns (positional args, keyword args) for one call.
def make_render_mask(rng):
    lab = labels(rng)
    selected = list(rng.integers(-2, 25, int(rng.integers(0, 5))))
    if rng.random() < 0.1:
        selected = [2**70] if rng.random() < 0.5 else "1"
    color = tuple(int(v) for v in rng.integers(0, 256, 4)) if rng.random() < 0.9 else (300, 0, 0)
    return (lab, selected, color), {"out": out_for(rng, lab.shape + (4,), np.uint8, [lab])}


def make_colorize(rng):
    lab = labels(rng)
    return (lab, palette(rng)), {"out": out_for(rng, lab.shape + (4,), np.uint8, [lab])}


def make_resize_labels(rng):
    lab = labels(rng)
    sz = size(rng, lab.shape)
    shape = (sz[1], sz[0]) if min(sz) >= 0 and max(sz) < 10**6 else (1, 1)
    return (lab, sz), {"out": out_for(rng, shape, lab.dtype if lab.dtype.isnative else "int32", [lab])}


def make_composite(rng):
    img = image(rng)
    lab = labels(rng, shape=img.shape[:2] if rng.random() < 0.8 else None)
    outline = None if rng.random() < 0.6 else tuple(int(v) for v in rng.integers(0, 256, 4))
    return (img, lab, palette(rng), opacity(rng), outline), {"out": out_for(rng, img.shape, np.uint8, [img])}


def make_resize_image(rng):
    img = image(rng)
    sz = size(rng, img.shape)
    lay = str(rng.choice(["RGBA", "BGRA", "ARGB", "RGB", "BGR", "XYZ"]))
    shape = (sz[1], sz[0], len(lay)) if min(sz) >= 0 and max(sz) < 10**6 else (1, 1, 4)
    return (img, sz, lay), {"out": out_for(rng, shape, np.uint8, [img])}


def make_argmax(rng):
    s = scores(rng)
    planes = s[0] if s.ndim == 4 else s
    return (s,), {"out": out_for(rng, planes.shape[1:], np.int32, [s])}


def make_upsample_argmax(rng):
    s = scores(rng)
    planes = s[0] if s.ndim == 4 else s
    if planes.dtype.kind == "f" and planes.size:
        with np.errstate(all="ignore"):
            s = np.clip(s, 0, 1).astype(s.dtype) if rng.random() < 0.8 else s
    sz = size(rng, planes.shape[1:])
    shape = (sz[1], sz[0]) if min(sz) >= 0 and max(sz) < 10**6 else (1, 1)
    return (s, sz), {"out": out_for(rng, shape, np.int32, [s])}


def make_decode_colors(rng):
    h, w = shape2(rng)
    dtype = np.uint8 if rng.random() < 0.6 else np.uint16
    table = np.unique(rng.integers(0, 4, (6, 3)), axis=0).astype(dtype)
    rgb = table[rng.integers(0, len(table), (h, w))] if len(table) else np.zeros((h, w, 3), dtype)
    if rng.random() < 0.3 and rgb.size:
        rgb[0, 0] = 9  # a colour not in the table
    unknown = None if rng.random() < 0.5 else int(rng.choice([-1, 255, 2**31]))
    return (layout(rng, rgb), table), {"unknown": unknown, "out": out_for(rng, (h, w), np.int32, [])}


def make_confusion_matrix(rng):
    c = int(rng.choice([1, 3, 3, 21, 21, 400, 0, 16385]))
    shape = shape2(rng)
    spill = int(rng.random() < 0.2)  # sometimes a value just out of range
    gt = labels(rng, shape, max(c, 1) + spill)
    pred = labels(rng, shape if rng.random() < 0.95 else None, max(c, 1))
    ignore = None if rng.random() < 0.5 else int(rng.choice([0, c, 255, -1, 2**64]))
    n = c if 1 <= c <= 16384 else 1
    return (gt, pred, c), {"ignore_index": ignore, "out": out_for(rng, (n, n), np.int64, [])}


def make_class_histogram(rng):
    c = int(rng.choice([1, 3, 300, 2**17 + 3, 0]))
    lab = labels(rng, limit=max(c, 1) + int(rng.random() < 0.2))
    n = max(c, 1)
    return (lab, c), {"out": out_for(rng, (n,), np.int64, [lab])}


def make_ema_update(rng):
    s = scores(rng)
    planes = s[0] if s.ndim == 4 else s
    state = rng.standard_normal(planes.shape).astype(np.float32)
    if rng.random() < 0.1:
        state = state.astype(rng.choice(["float64", ">f4", "float16"]))
    elif rng.random() < 0.1 and state.ndim == 3 and state.shape[2] > 1:
        state = np.zeros(planes.shape[:2] + (planes.shape[2] * 2,), np.float32)[..., ::2]  # not contiguous
    elif rng.random() < 0.05:
        state = np.zeros((1, 1, 1), np.float32)
    alpha = float(rng.choice([0.0, 0.25, 1.0, rng.random(), np.nan, -0.1, 1.5]))
    return (), {"state": state, "scores": s, "alpha": alpha}


def make_hysteresis_update(rng):
    h, w = shape2(rng)
    c = int(rng.choice([1, 3, 21]))
    lab = labels(rng, (h, w), c + int(rng.random() < 0.1))
    state = np.stack([rng.integers(0, c, (h, w)), rng.integers(0, c, (h, w)),
                      rng.choice([0, 1, 2, 5, -1, 2**31 - 1, -2**31], (h, w))]).astype(np.int32)
    if rng.random() < 0.05:
        state = state.astype(np.int64)
    elif rng.random() < 0.05:
        state = state[:, ::-1]
    frames = rng.choice([1, 2, 3, 5, 0, 2**21]) if rng.random() < 0.95 else True
    kwargs = {"state": state, "labels": lab, "frames": frames}
    if rng.random() < 0.5:
        s = rng.random((c, h, w)).astype(rng.choice(["float32", "float16"]))
        kwargs["scores"] = s if rng.random() < 0.9 else s[:, :1]
        kwargs["margin"] = float(rng.choice([0.0, 0.2, 0.5, np.nan, np.inf])) if rng.random() < 0.95 else None
    return (), kwargs



def color_arg(rng):
    """A colour as callers pass one: 3 or 4 ints, "#hex", a 1-D array, or wrong."""
    r = rng.random()
    if r < 0.5:
        return tuple(int(v) for v in rng.integers(0, 256, int(rng.choice([3, 4]))))
    if r < 0.6:
        return "#%02X%02X%02X" % tuple(int(v) for v in rng.integers(0, 256, 3))
    if r < 0.7:
        return rng.integers(0, 256, 3).astype(rng.choice(["uint8", "int64"]))
    if r < 0.85:
        return [int(v) for v in rng.integers(0, 256, 4)]
    wrong = [(1, 2), (0, 0, 300), (-1, 0, 0), "#GG0000", (1.5, 2, 3), None, np.zeros((2, 3), np.uint8)]
    return wrong[int(rng.integers(len(wrong)))]


def alpha_plane(rng, shape):
    if rng.random() < 0.1:  # wrong shape or dtype
        shape = (shape[0] + 1, shape[1]) if rng.random() < 0.5 else shape
        return rng.integers(0, 256, shape).astype(rng.choice(["uint16", "float32", "bool", "uint8"]))
    a = rng.integers(0, 256, shape).astype(np.uint8)
    if a.size and rng.random() < 0.5:  # mattes: mostly 0 and 255
        a[rng.random(shape) < 0.7] = rng.choice([0, 255])
    return layout(rng, a)


def make_blend(rng):
    fg = image(rng)
    hw = fg.shape[:2] if fg.ndim == 3 else (1, 1)
    if rng.random() < 0.55:
        bg = layout(rng, rng.integers(0, 256, fg.shape).astype(np.uint8)) if rng.random() < 0.9 else image(rng)
    else:
        bg = color_arg(rng)
    alpha = alpha_plane(rng, hw)
    out = out_for(rng, fg.shape, np.uint8, [fg])
    if isinstance(bg, np.ndarray) and bg.ndim == 3 and rng.random() < 0.1:
        out = bg  # in place on the background
    return (fg, bg, alpha), {"out": out}


def make_blur(rng):
    img = image(rng)
    if rng.random() < 0.2:
        odd = [0.0, -1.0, np.nan, np.inf, 1024.0, 1024.5, 1e9, 0.01, True, "3", None, np.float32(7.5)]
        radius = odd[int(rng.integers(len(odd)))]
    else:
        radius = float(rng.choice([0.3, 1.0, 2.5, 4.99, 5.0, 12.0, 40.0, 300.0])) if rng.random() < 0.5 \
            else float(rng.uniform(0.05, 60.0))
    return (img, radius), {"out": out_for(rng, img.shape, np.uint8, [img])}


def make_upsample_matte(rng):
    s = scores(rng)
    planes = s[0] if s.ndim == 4 else s
    if planes.dtype.kind == "f" and planes.size:
        with np.errstate(all="ignore"):
            s = np.clip(s, 0, 1).astype(s.dtype) if rng.random() < 0.7 else s
    sz = size(rng, planes.shape[1:])
    shape = (sz[1], sz[0]) if min(sz) >= 0 and max(sz) < 10**6 else (1, 1)
    reduce = str(rng.choice(["sum", "max", "sum", "mean"]))
    return (s, sz, reduce), {"out": out_for(rng, shape, np.uint8, [s])}


def make_refine_matte(rng):
    guide = image(rng)
    hw = guide.shape[:2] if guide.ndim == 3 else (1, 1)
    matte = alpha_plane(rng, hw)
    if rng.random() < 0.2:
        odd = [0.0, 0.99, -1.0, np.nan, np.inf, 1024.0, 1024.5, True, "3", None, np.float32(7.5)]
        radius = odd[int(rng.integers(len(odd)))]
    else:
        radius = float(rng.choice([1.0, 2.0, 4.0, 7.9, 8.0, 33.0, 1024.0])) if rng.random() < 0.5 \
            else float(rng.uniform(1.0, 80.0))
    eps = [1e-6, 1e-3, 0.5, 100.0, 9e-7, 100.5, np.nan, -1.0, "1"][int(rng.integers(9))] if rng.random() < 0.3 \
        else float(10 ** rng.uniform(-6, 2))
    out = out_for(rng, hw, np.uint8, [guide, matte])
    if isinstance(matte, np.ndarray) and matte.dtype == np.uint8 and matte.flags.writeable and rng.random() < 0.1:
        out = matte  # in place
    return (matte, guide, radius, eps), {"out": out}


MAKERS = {name[len("make_"):]: fn for name, fn in globals().items() if name.startswith("make_")}


def _base(out):
    """The writable array `out` is a strided view into, or None."""
    if not isinstance(out, np.ndarray) or not out.flags.writeable or out.size == 0:
        return None
    base = out
    while isinstance(base.base, np.ndarray):
        base = base.base
    return base if base is not out and base.flags.writeable else None


def outcome(fn, args, kwargs):
    try:
        return fn(*args, **kwargs), None
    except REFUSED as e:
        return None, e


@pytest.mark.parametrize("name", sorted(MAKERS))
def test_native_kernels_match_the_reference_or_refuse_alike(name):
    rng = np.random.default_rng([SEED, sorted(MAKERS).index(name)])
    native, ref = getattr(coreseg.kernels, name), getattr(reference, name)
    accepted = 0
    for case in range(CASES):
        args, kwargs = MAKERS[name](rng)
        # Both write into the same `out` (its layout is part of the case):
        # the reference's result is kept, and `out` restored in between.
        out = kwargs.get("out", kwargs.get("state"))  # smoothing kernels update their state in place
        before = out.copy() if isinstance(out, np.ndarray) else None
        want, ref_error = outcome(ref, args, kwargs)
        if want is not None:
            want = want.copy()
        if before is not None and out.flags.writeable:
            out[...] = before
        base = _base(out)
        around = base.copy() if base is not None else None
        got, error = outcome(native, args, kwargs)
        where = f"{name} case {case} (CORESEG_FUZZ_SEED={SEED})"
        if around is not None:  # nothing written outside `out` (a view of a larger array)
            written = out.copy()
            out[...] = before
            assert np.array_equal(base, around, equal_nan=True), f"{where}: native wrote outside out"
            out[...] = written
        if ref_error is not None:
            assert error is not None, f"{where}: the reference refused ({ref_error!r}) but native accepted"
            assert type(error) is type(ref_error), f"{where}: native raised {error!r}, reference {ref_error!r}"
            continue
        assert error is None, f"{where}: native refused ({error!r}) what the reference accepted"
        accepted += 1
        assert got.dtype == want.dtype and got.shape == want.shape, where
        assert np.array_equal(got, want, equal_nan=got.dtype.kind == "f"), f"{where}: native differs from the reference"
    assert accepted >= CASES // 10, f"{name}: too few valid cases ({accepted}) to mean anything"
