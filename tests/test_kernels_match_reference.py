"""Every native kernel equals its numpy twin in coreseg.reference bit for bit,
under every SIMD backend this CPU has, for random and edge-case input."""

import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import colors, images, label_maps, opacities, palettes

import coreseg
from coreseg import reference

# Fewer under the sanitizers (.ci/sanitize sets CORESEG_HYPOTHESIS_EXAMPLES).
SETTINGS = settings(max_examples=int(os.environ.get("CORESEG_HYPOTHESIS_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_same(native, ref):
    assert native.dtype == ref.dtype
    assert native.shape == ref.shape
    np.testing.assert_array_equal(native, ref)


@SETTINGS
@given(labels=label_maps(), selected=st.one_of(st.integers(-3, 45), st.lists(st.integers(-3, 45), max_size=20)),
       color=colors)
def test_render_mask(backend, labels, selected, color):
    assert_same(coreseg.render_mask(labels, selected, color),
                reference.render_mask(labels, selected, color))


def test_render_mask_many_ids_and_extremes(backend):
    # More than 8 ids takes the lookup-table path; huge and negative ids the
    # compare path; ids the dtype cannot hold never match.
    rng = np.random.default_rng(1)
    for dtype in (np.int32, np.uint8, np.uint16):
        labels = rng.integers(0, 300, (33, 67)).astype(dtype)
        for selected in [list(range(0, 300, 7)), [5, 2**31 - 1, -5, 70000], [-1, 256, 65536]]:
            assert_same(coreseg.render_mask(labels, selected), reference.render_mask(labels, selected))


@SETTINGS
@given(labels=label_maps(), palette=palettes())
def test_colorize(backend, labels, palette):
    assert_same(coreseg.colorize(labels, palette), reference.colorize(labels, palette))


@SETTINGS
@given(labels=label_maps(min_side=1), w=st.integers(0, 90), h=st.integers(0, 40))
def test_resize_labels(backend, labels, w, h):
    assert_same(coreseg.resize_labels(labels, (w, h)), reference.resize_labels(labels, (w, h)))


@SETTINGS
@given(image=images(), labels=label_maps(min_side=1, max_h=12, max_w=20), palette=palettes(),
       opacity=opacities, outline=st.one_of(st.none(), colors))
def test_composite(backend, image, labels, palette, opacity, outline):
    assert_same(coreseg.composite(image, labels, palette, opacity, outline),
                reference.composite(image, labels, palette, opacity, outline))


@SETTINGS
@given(image=images(min_side=1), w=st.integers(1, 70), h=st.integers(1, 40),
       layout=st.sampled_from(["RGBA", "BGRA", "ARGB", "RGB", "BGR"]))
def test_resize_image(backend, image, w, h, layout):
    assert_same(coreseg.resize_image(image, (w, h), layout),
                reference.resize_image(image, (w, h), layout))


def test_resize_image_large_downscale(backend):
    # The model-input case: a photo many times the model's size, so the
    # filter has many taps (the SIMD rows' multi-tap loops).
    rng = np.random.default_rng(2)
    image = rng.integers(0, 256, (605, 806, 4), np.uint8)
    for size in [(64, 64), (17, 45), (448, 448)]:
        assert_same(coreseg.resize_image(image, size, "BGRA"),
                    reference.resize_image(image, size, "BGRA"))


def test_composite_large_upscale(backend, threads):
    # A model-sized map onto a much larger photo, split over threads.
    rng = np.random.default_rng(3)
    labels = np.repeat(np.repeat(rng.integers(0, 30, (28, 28)), 16, 0), 16, 1).astype(np.int32)
    image = rng.integers(0, 256, (1011, 1333, 4), np.uint8)
    palette = coreseg.default_palette(30, alpha=160)
    assert_same(coreseg.composite(image, labels, palette, 0.8, outline=(255, 255, 255, 255)),
                reference.composite(image, labels, palette, 0.8, outline=(255, 255, 255, 255)))


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("in_place", [False, True], ids=["out", "in-place"])
@pytest.mark.parametrize("outline", [None, (255, 255, 255, 255), (200, 30, 90, 140)],
                         ids=["fill", "opaque-outline", "translucent-outline"])
def test_composite_bands_of_short_runs(backend, threads, channels, in_place, outline):
    # Rows of many short runs repeated over bands of output rows (blended
    # from a row of terms, several rows per call); bands whose runs differ
    # from the last band's in a few pixels (only those terms rewritten);
    # clear classes among the runs (copied); and a full-resolution tail of
    # one row per band (run by run).
    rng = np.random.default_rng(7)
    labels = np.repeat(np.repeat(rng.integers(0, 40, (12, 60)), 6, 0), 3, 1).astype(np.int32)
    for y in range(1, 72, 2):  # boundaries moved by a pixel or two
        x = int(rng.integers(1, 178))
        labels[y, x:x + 2] = labels[y, x - 1]
    image = rng.integers(0, 256, (331, 587, channels), np.uint8)
    palette = coreseg.default_palette(40, alpha=170)
    palette[::7, 3] = 0  # clear classes
    expected = reference.composite(image, labels, palette, 0.9, outline=outline)
    out = image if in_place else None
    result = coreseg.composite(image, labels, palette, 0.9, outline=outline, out=out)
    assert_same(result, expected)
    # A full-resolution map: every band is one output row.
    full = coreseg.resize_labels(labels, (587, 331))
    full[::3] = np.roll(full[::3], 1, axis=1)
    image = rng.integers(0, 256, (331, 587, channels), np.uint8)
    assert_same(coreseg.composite(image, full, palette, 0.9, outline=outline),
                reference.composite(image, full, palette, 0.9, outline=outline))


def test_results_do_not_depend_on_thread_count(threads):
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 50, (448, 448)).astype(np.int32)
    image = rng.integers(0, 256, (777, 1001, 3), np.uint8)
    palette = coreseg.default_palette(50, alpha=128)
    assert_same(coreseg.colorize(labels, palette), reference.colorize(labels, palette))
    assert_same(coreseg.render_mask(labels, [3, 4]), reference.render_mask(labels, [3, 4]))
    assert_same(coreseg.resize_labels(labels, (1001, 777)), reference.resize_labels(labels, (1001, 777)))
    assert_same(coreseg.composite(image, labels, palette, outline="#FFFFFF"),
                reference.composite(image, labels, palette, outline="#FFFFFF"))
    assert_same(coreseg.resize_image(image, (300, 200), "ARGB"),
                reference.resize_image(image, (300, 200), "ARGB"))


@pytest.mark.parametrize("api", [coreseg, reference], ids=["native", "reference"])
def test_out_is_written_and_returned(api):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 9, (20, 31)).astype(np.uint16)
    image = rng.integers(0, 256, (40, 50, 4), np.uint8)
    palette = coreseg.default_palette(9)
    cases = [
        (lambda out: api.render_mask(labels, 3, out=out), np.zeros((20, 31, 4), np.uint8)),
        (lambda out: api.colorize(labels, palette, out=out), np.zeros((20, 31, 4), np.uint8)),
        (lambda out: api.resize_labels(labels, (50, 40), out=out), np.zeros((40, 50), np.uint16)),
        (lambda out: api.composite(image, labels, palette, out=out), np.zeros((40, 50, 4), np.uint8)),
        (lambda out: api.resize_image(image, (10, 7), "BGRA", out=out), np.zeros((7, 10, 4), np.uint8)),
    ]
    for call, out in cases:
        expected = call(None)
        assert call(out) is out
        np.testing.assert_array_equal(out, expected)
    # A row-strided out (a crop of a bigger buffer) is written in place.
    big = np.zeros((30, 40, 4), np.uint8)
    window = big[5:25, 3:34]
    api.colorize(labels, palette, out=window)
    np.testing.assert_array_equal(window, api.colorize(labels, palette))
    assert not big[:5].any() and not big[25:].any() and not big[:, :3].any() and not big[:, 34:].any()


@pytest.mark.parametrize("api", [coreseg, reference], ids=["native", "reference"])
def test_composite_in_place(api):
    rng = np.random.default_rng(6)
    image = rng.integers(0, 256, (64, 80, 3), np.uint8)
    labels = rng.integers(0, 5, (8, 10)).astype(np.int32)
    palette = coreseg.default_palette(5, alpha=100)
    expected = reference.composite(image, labels, palette, outline=(0, 0, 0))
    assert api.composite(image, labels, palette, outline=(0, 0, 0), out=image) is image
    np.testing.assert_array_equal(image, expected)


def test_semantics_by_hand():
    # Small cases whose answer is written out, so the reference itself is
    # checked against the spec and not only against the native code.
    labels = np.array([[0, 1], [2, 7]], np.int32)
    palette = np.array([[10, 20, 30, 255], [200, 100, 0, 0], [0, 0, 0, 128]], np.uint8)
    image = np.full((2, 2, 4), 100, np.uint8)
    for api in (coreseg, reference):
        over = api.composite(image, labels, palette)
        assert over[0, 0].tolist() == [10, 20, 30, 100]  # alpha 255: colour, image alpha kept
        assert over[0, 1].tolist() == [100, 100, 100, 100]  # alpha 0: unchanged
        # (100*127 + 0*128)/255 = 49.8 -> 50
        assert over[1, 0].tolist() == [50, 50, 50, 100]
        assert over[1, 1].tolist() == [100, 100, 100, 100]  # label 7 outside the palette
        half = api.composite(image, labels, palette, opacity=0.5)
        # alpha floor(255*0.5 + 0.5) = 128: (100*127 + 10*128)/255 = 54.8 -> 55
        assert half[0, 0, 0] == 55
        col = api.colorize(labels, palette)
        assert col[1, 1].tolist() == [0, 0, 0, 0] and col[0, 1].tolist() == [200, 100, 0, 0]
        # Outline: every pixel of a 2x2 map of 4 classes has a differing
        # right or lower neighbour, except the bottom-right one.
        edged = api.composite(image, labels, palette, opacity=0.0, outline=(255, 0, 0, 255))
        assert edged[0, 0].tolist() == [255, 0, 0, 100] and edged[1, 1].tolist() == [100, 100, 100, 100]
        # Upscaling by 2 repeats each label on a 2x2 block (Pillow NEAREST).
        up = api.resize_labels(labels, (4, 4))
        assert up.tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 7, 7], [2, 2, 7, 7]]
        flat = np.full((9, 13, 3), 77, np.uint8)
        assert (api.resize_image(flat, (5, 4), "BGRA") == [77, 77, 77, 255]).all()


@st.composite
def logits_arrays(draw):
    dtype = draw(st.sampled_from([np.float32, np.float16]))
    c, h, w = draw(st.integers(1, 25)), draw(st.integers(0, 9)), draw(st.integers(0, 70))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Few distinct values so ties are frequent; NaN and infinities too.
    values = rng.integers(-2, 3, (c, h, w + 3)).astype(dtype)
    special = rng.random(values.shape)
    values[special < 0.03] = np.nan
    values[(special >= 0.03) & (special < 0.05)] = -np.inf
    values[(special >= 0.05) & (special < 0.06)] = np.inf
    view = draw(st.sampled_from(["contiguous", "padded_rows", "batch", "col_step"]))
    if view == "padded_rows":
        return values[..., 1 : w + 1]
    return _plane_view(values, w, view)


def _plane_view(values, w, view):
    """The first w columns of (C, h, w + pad) planes as "contiguous", with a
    leading "batch" axis, or read through a "col_step" view."""
    if view == "batch":
        return values[None, ..., :w]
    if view == "col_step":
        return np.ascontiguousarray(np.repeat(values[..., :w], 2, axis=2))[..., ::2]
    return np.ascontiguousarray(values[..., :w])


@SETTINGS
@given(logits=logits_arrays())
def test_argmax(backend, logits):
    assert_same(coreseg.argmax(logits), reference.argmax(logits))


def test_argmax_semantics_by_hand():
    logits = np.array([[[1.0, np.nan, 0.0, -np.inf]],
                       [[3.0, 2.0, 0.0, -np.inf]],
                       [[3.0, np.nan, -1.0, np.nan]]], np.float32)
    for api in (coreseg, reference):
        # first maximum wins; NaN never wins; all -inf/NaN gives 0
        assert api.argmax(logits).tolist() == [[1, 1, 0, 0]]
        assert api.argmax(logits.astype(np.float16)).tolist() == [[1, 1, 0, 0]]
    rng = np.random.default_rng(0)
    big = rng.standard_normal((21, 130, 170)).astype(np.float32)
    np.testing.assert_array_equal(coreseg.argmax(big), np.argmax(big, axis=0))


@st.composite
def score_arrays(draw):
    """Per-class probabilities, smooth (as a model gives them) or with ties,
    NaN and values outside [0, 1]; contiguous or read through a view."""
    dtype = draw(st.sampled_from([np.float32, np.float16]))
    c, h, w = draw(st.integers(1, 12)), draw(st.integers(1, 9)), draw(st.integers(1, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if draw(st.booleans()):
        e = np.exp(3 * rng.standard_normal((c, h, w + 3)))
        values = (e / e.sum(0)).astype(dtype)
    else:
        values = rng.integers(0, 3, (c, h, w + 3)).astype(dtype) / 2  # ties everywhere
        special = rng.random(values.shape)
        values[special < 0.03] = np.nan
        values[(special >= 0.03) & (special < 0.05)] = -0.5
        values[(special >= 0.05) & (special < 0.07)] = 7
    view = draw(st.sampled_from(["contiguous", "crop", "batch", "col_step"]))
    if view == "crop":  # rows and planes strided, as a letterbox crop of scores
        return values[:, h // 3 :, 1 : w + 1]
    return _plane_view(values, w, view)


@SETTINGS
@given(scores=score_arrays(), size=st.tuples(st.integers(0, 90), st.integers(0, 40)))
def test_upsample_argmax(backend, scores, size):
    assert_same(coreseg.upsample_argmax(scores, size), reference.upsample_argmax(scores, size))


def test_upsample_argmax_threads_and_large(threads):
    # Large enough to be split over the pool; 21 classes as PASCAL VOC.
    rng = np.random.default_rng(3)
    e = np.exp(4 * np.kron(rng.standard_normal((21, 8, 8)), np.ones((4, 4)))).astype(np.float32)
    scores = e / e.sum(0)
    assert_same(coreseg.upsample_argmax(scores, (700, 500)), reference.upsample_argmax(scores, (700, 500)))


def test_upsample_argmax_semantics():
    # Sampling as torch's bilinear interpolate(align_corners=False): source
    # x = (i + 0.5) * 2 / 8 - 0.5 = -0.375, -0.125, 0.125, ... 1.375; clamped
    # at the edges. Class 1 takes over past the midpoint 0.5.
    p1 = np.array([[0.2, 0.8]], np.float32)
    scores = np.stack([1 - p1, p1])
    for api in (coreseg, reference):
        assert api.upsample_argmax(scores, (8, 1)).tolist() == [[0, 0, 0, 0, 1, 1, 1, 1]]
        # A tie at the midpoint goes to the lower class id, and NaN counts as 0.
        tie = np.array([[[1.0, 0.0]], [[0.0, 1.0]]], np.float32)
        assert api.upsample_argmax(tie, (3, 1)).tolist() == [[0, 0, 1]]
        nan = np.array([[[np.nan]], [[0.1]]], np.float32)
        assert api.upsample_argmax(nan, (2, 2)).tolist() == [[1, 1], [1, 1]]
        # Same size: the plain argmax of the (quantised) scores.
        rng = np.random.default_rng(0)
        s = rng.random((5, 6, 7)).astype(np.float32)
        np.testing.assert_array_equal(api.upsample_argmax(s, (7, 6)), np.argmax(s, axis=0))
        assert api.upsample_argmax(s, (0, 4)).shape == (4, 0)


def test_upsample_argmax_agrees_with_float_bilinear():
    """Away from near-ties, the quantised arithmetic picks the class that
    float bilinear interpolation (torch's convention, here in numpy) does."""
    rng = np.random.default_rng(5)
    e = np.exp(3 * rng.standard_normal((6, 12, 10)))
    scores = (e / e.sum(0)).astype(np.float32)
    w, h = 53, 61

    def coords(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0

    y0, y1, ly = coords(12, h)
    x0, x1, lx = coords(10, w)
    s = scores.astype(np.float64)
    rows = s[:, y0] * (1 - ly)[:, None] + s[:, y1] * ly[:, None]
    interp = rows[:, :, x0] * (1 - lx) + rows[:, :, x1] * lx
    top2 = np.sort(interp, axis=0)[-2:]
    clear = top2[1] - top2[0] > 0.01
    got = coreseg.upsample_argmax(scores, (w, h))
    np.testing.assert_array_equal(got[clear], np.argmax(interp, axis=0)[clear])
    assert clear.mean() > 0.9


@st.composite
def color_maps(draw):
    dtype = draw(st.sampled_from([np.uint8, np.uint16]))
    n = draw(st.integers(1, 40))
    h, w = draw(st.integers(0, 12)), draw(st.integers(0, 50))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    hi = np.iinfo(dtype).max
    colors = np.unique(rng.integers(0, hi + 1, (n, 3)).astype(dtype), axis=0)
    rng.shuffle(colors)
    ids = np.repeat(rng.integers(0, len(colors), (h, (w + 2) // 3)), 3, axis=1)[:, :w]  # runs, as in real maps
    rgb = colors[ids]
    if draw(st.booleans()) and rgb.size:  # some colours that are not in the table
        rgb[rng.random((h, w)) < 0.1] = np.array([hi, 0, hi - 1], dtype)
    if draw(st.booleans()):
        rgb = np.ascontiguousarray(np.repeat(rgb, 2, axis=1))[:, ::2]  # pixels not packed
    return rgb, colors


@SETTINGS
@given(case=color_maps(), unknown=st.sampled_from([None, -1, 7]))
def test_decode_colors(case, unknown):
    rgb, colors = case
    try:
        expected = reference.decode_colors(rgb, colors, unknown)
    except ValueError as e:
        with pytest.raises(ValueError, match=re.escape(str(e))):
            coreseg.decode_colors(rgb, colors, unknown)
        return
    assert_same(coreseg.decode_colors(rgb, colors, unknown), expected)


@SETTINGS
@given(gt=label_maps(max_label=12), seed=st.integers(0, 2**32 - 1), ignore=st.sampled_from([None, 0, 3, 255]))
def test_confusion_matrix(threads, gt, seed, ignore):
    rng = np.random.default_rng(seed)
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 15, gt.shape)).astype(
        rng.choice([np.int32, np.uint8, np.uint16]))
    c = 14
    try:
        expected = reference.confusion_matrix(gt, pred, c, ignore)
    except ValueError as e:
        with pytest.raises(ValueError, match=re.escape(str(e))):
            coreseg.confusion_matrix(gt, pred, c, ignore)
        return
    assert_same(coreseg.confusion_matrix(gt, pred, c, ignore), expected)


@SETTINGS
@given(labels=label_maps(max_label=12), c=st.sampled_from([1, 13, 15, 300]))
def test_class_histogram(threads, labels, c):
    try:
        expected = reference.class_histogram(labels, c)
    except ValueError as e:
        with pytest.raises(ValueError, match=re.escape(str(e))):
            coreseg.class_histogram(labels, c)
        return
    assert_same(coreseg.class_histogram(labels, c), expected)


def test_metric_errors_name_the_first_bad_value_at_any_thread_count(threads):
    # Bad values in several row bands: the error names the first in raster
    # order, however the bands were split.
    gt = np.zeros((600, 500), np.int32)
    pred = np.zeros((600, 500), np.int32)
    gt[550, 3] = 99
    pred[400, 7] = -4
    pred[20, 499] = 20
    for api in (coreseg, reference):
        with pytest.raises(ValueError, match=r"^pred has value 20 outside \[0, 10\)$"):
            api.confusion_matrix(gt, pred, 10)
        with pytest.raises(ValueError, match=r"^gt has value 99 outside \[0, 10\)$"):
            api.confusion_matrix(gt, np.zeros_like(pred), 10)
        # ignore_index drops the pixel, whatever its prediction
        m = api.confusion_matrix(gt, np.where(gt == 99, 55, 0).astype(np.int32), 10, ignore_index=99)
        assert m[0, 0] == gt.size - 1 and m.sum() == gt.size - 1
        with pytest.raises(ValueError, match=r"^labels has value 99 outside \[0, 10\)$"):
            api.class_histogram(gt, 10)


def test_scores_with_unaligned_rows_are_copied_once():
    # Rows that start off the element grid (row stride 30 bytes, planes
    # 152): never read unaligned by the kernels, argmax and upsample_argmax alike.
    rng = np.random.default_rng(2)
    values = rng.random((3, 5, 7)).astype(np.float32)
    buf = np.zeros(3 * 152, np.uint8)
    raw = np.lib.stride_tricks.as_strided(buf, (3, 5, 28), (152, 30, 1), writeable=True)
    raw[...] = values.view(np.uint8).reshape(3, 5, 28)
    odd = raw.view(np.float32)
    assert odd.strides == (152, 30, 4) and (odd == values).all()
    assert_same(coreseg.argmax(odd), reference.argmax(values))
    assert_same(coreseg.upsample_argmax(odd, (11, 9)), reference.upsample_argmax(values, (11, 9)))
