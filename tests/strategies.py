"""Hypothesis strategies for label maps, images and palettes, including the
edge cases every kernel must handle: empty, 1x1, odd widths, widths that are
not a multiple of any vector size, and non-contiguous views."""

import numpy as np
from hypothesis import strategies as st

LABEL_DTYPES = [np.int32, np.uint8, np.uint16]

# Views of a larger array that a user might pass.
VIEWS = ["contiguous", "crop", "row_step", "col_step", "flip_rows", "transpose"]


def _view(base, kind):
    if kind == "crop":
        return base[1:-1, 1:-1]
    if kind == "row_step":
        return base[::2]
    if kind == "col_step":
        return base[:, ::2]
    if kind == "flip_rows":
        return base[::-1]
    if kind == "transpose":
        return np.swapaxes(base, 0, 1)
    return base


def _base_shape(kind, h, w):
    return {
        "crop": (h + 2, w + 2),
        "row_step": (2 * h, w),
        "col_step": (h, 2 * w),
        "transpose": (w, h),
    }.get(kind, (h, w))


@st.composite
def label_maps(draw, min_side=0, max_h=24, max_w=70, max_label=40):
    dtype = draw(st.sampled_from(LABEL_DTYPES))
    h = draw(st.integers(min_side, max_h))
    w = draw(st.integers(min_side, max_w))
    kind = draw(st.sampled_from(VIEWS))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = _base_shape(kind, h, w)
    info = np.iinfo(dtype)
    values = rng.integers(0, max_label + 3, shape)
    # Some extreme values: the largest of the dtype, negatives for int32.
    extreme = rng.random(shape) < 0.05
    values[extreme] = rng.choice([info.max, info.min, -1 if info.min < 0 else info.max], extreme.sum())
    base = values.astype(dtype)
    labels = _view(base, kind)
    assert labels.shape == (h, w)
    return labels


@st.composite
def images(draw, min_side=0, max_h=30, max_w=80):
    channels = draw(st.sampled_from([3, 4]))
    h = draw(st.integers(min_side, max_h))
    w = draw(st.integers(min_side, max_w))
    kind = draw(st.sampled_from(VIEWS + ["channels_reversed"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "channels_reversed":
        return rng.integers(0, 256, (h, w, channels), dtype=np.uint8)[..., ::-1]
    bh, bw = _base_shape(kind, h, w)
    base = rng.integers(0, 256, (bh, bw, channels), dtype=np.uint8)
    return _view(base, kind)


@st.composite
def palettes(draw, max_n=45):
    n = draw(st.integers(0, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    pal = rng.integers(0, 256, (n, 4), dtype=np.uint8)
    # Alpha extremes must be exact: 0 leaves the pixel, 255 replaces it.
    pal[rng.random(n) < 0.2, 3] = 0
    pal[rng.random(n) < 0.2, 3] = 255
    return pal


opacities = st.one_of(st.sampled_from([0.0, 1.0, 0.5]), st.floats(0.0, 1.0))
colors = st.tuples(*[st.integers(0, 255)] * 4)
