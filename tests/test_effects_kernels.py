"""The background effects (blend, blur, upsample_matte; refine_matte has
tests/test_refine.py, and joins the shared checks here) against their numpy
twins in coreseg.reference, bit for bit, under every SIMD backend and
thread count; their semantics by hand; their limits and bad input."""

import math
import os
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import images

import coreseg
from coreseg import _native, reference

SETTINGS = settings(max_examples=int(os.environ.get("CORESEG_HYPOTHESIS_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
APIS = pytest.mark.parametrize("api", [coreseg, reference], ids=["native", "reference"])


def assert_same(native, ref):
    assert native.dtype == ref.dtype and native.shape == ref.shape
    np.testing.assert_array_equal(native, ref)


def matte_like(rng, h, w):
    """An alpha plane as a matte is: runs of 0 and 255 (whole SIMD steps of
    either take the copy paths) with soft values between."""
    kinds = rng.integers(0, 3, (h, (w + 15) // 16 + 1))
    runs = np.repeat(kinds, 16, axis=1)[:, rng.integers(0, 16):][:, :w]
    soft = rng.integers(0, 256, (h, w))
    return np.where(runs == 0, 0, np.where(runs == 1, 255, soft)).astype(np.uint8)


# ---------------------------------------------------------------- blend


@st.composite
def blend_cases(draw):
    fg = draw(images())
    h, w, c = fg.shape
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["image", "image", "flipped", "rgb", "rgba", "hex"]))
    if kind == "image":
        bg = rng.integers(0, 256, (h, w, c), np.uint8)
    elif kind == "flipped":
        bg = rng.integers(0, 256, (h, w, c), np.uint8)[::-1]
    elif kind == "rgb":
        bg = tuple(int(v) for v in rng.integers(0, 256, 3))
    elif kind == "rgba":
        bg = tuple(int(v) for v in rng.integers(0, 256, 4))
    else:
        bg = "#%02x%02x%02x" % tuple(int(v) for v in rng.integers(0, 256, 3))
    alpha = matte_like(rng, h, w)
    view = draw(st.sampled_from(["contiguous", "crop", "col_step"]))
    if view == "crop" and h and w:
        alpha = np.pad(alpha, 1)[1:-1, 1:-1]
    elif view == "col_step":
        alpha = np.repeat(alpha, 2, axis=1)[:, ::2]  # rows not packed: copied once
    return fg, bg, alpha


@SETTINGS
@given(case=blend_cases())
def test_blend(backend, case):
    fg, bg, alpha = case
    assert_same(coreseg.blend(fg, bg, alpha), reference.blend(fg, bg, alpha))


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("where", ["new", "foreground", "background"])
def test_blend_large_and_in_place(backend, threads, channels, where):
    # Wide enough for every SIMD step and the tails, tall enough to be
    # split over threads; in place on either input.
    rng = np.random.default_rng(channels)
    fg = rng.integers(0, 256, (611, 1037, channels), np.uint8)
    bg = rng.integers(0, 256, (611, 1037, channels), np.uint8)
    alpha = matte_like(rng, 611, 1037)
    expected = reference.blend(fg, bg, alpha)
    out = {"new": None, "foreground": fg, "background": bg}[where]
    got = coreseg.blend(fg, bg, alpha, out=out)
    assert out is None or got is out
    assert_same(got, expected)


def test_blend_semantics_by_hand():
    fg = np.array([[[200, 100, 0, 7], [200, 100, 0, 7], [200, 100, 0, 7]]], np.uint8)
    bg = np.array([[[0, 50, 255, 99]] * 3], np.uint8)
    alpha = np.array([[255, 0, 128]], np.uint8)
    for api in (coreseg, reference):
        out = api.blend(fg, bg, alpha)
        assert out[0, 0].tolist() == [200, 100, 0, 7]  # 255: the foreground
        assert out[0, 1].tolist() == [0, 50, 255, 7]  # 0: the background, the foreground's alpha kept
        # 128: (200*128 + 0*127)/255 = 100.4, (100*128 + 50*127)/255 = 75.1, (0 + 255*127)/255 = 127
        assert out[0, 2].tolist() == [100, 75, 127, 7]
        # A colour: tuple, "#hex", 1-D array; its alpha is never used.
        for colour in [(0, 50, 255), (0, 50, 255, 0), "#0032FF", np.array([0, 50, 255], np.uint8)]:
            assert api.blend(fg, colour, alpha).tolist() == out.tolist()
        # Exactly composite's rounding: a composite of a one-class map with
        # the foreground's colour is the same blend.
        img = np.full((2, 3, 3), 10, np.uint8)
        over = api.blend(np.full((2, 3, 3), 240, np.uint8), img, np.full((2, 3), 77, np.uint8))
        pal = np.array([[240, 240, 240, 77]], np.uint8)
        assert over.tolist() == api.composite(img, np.zeros((1, 1), np.int32), pal).tolist()


@APIS
def test_blend_refuses_bad_input(api):
    fg = np.zeros((4, 5, 3), np.uint8)
    a = np.zeros((4, 5), np.uint8)
    cases = [
        ((fg.astype(np.uint16), fg, a), TypeError, "foreground must have dtype uint8, got uint16"),
        ((np.zeros((4, 5, 2), np.uint8), (1, 2, 3), a), ValueError, r"foreground must have shape \(h, w, 3\)"),
        ((fg, np.zeros((4, 5, 4), np.uint8), a), ValueError, r"background must have the shape of foreground"),
        ((fg, np.zeros((4, 5, 3), np.float32), a), TypeError, "background must have dtype uint8"),
        ((fg, (1, 2), a), ValueError, "background must have 3 or 4 values"),
        ((fg, (1, 2, 256), a), ValueError, r"background values must be in 0..255"),
        ((fg, "#12345", a), ValueError, "not a hex colour"),
        ((fg, fg, a.astype(np.float32)), TypeError, "alpha must have dtype uint8"),
        ((fg, fg, a.astype(bool)), TypeError, "alpha must have dtype uint8"),
        ((fg, fg, a[:, :4]), ValueError, r"alpha must have shape \(4, 5\)"),
        ((fg, fg, a[None]), ValueError, "alpha must be a 2-D array"),
        ((fg, fg, None), TypeError, "alpha must be an array"),
    ]
    for args, error, message in cases:
        with pytest.raises(error, match=message):
            api.blend(*args)
    bg = np.zeros((5, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="out overlaps an input"):
        api.blend(fg, bg[1:], a, out=bg[:4])  # overlaps the background, not the same view
    shared = np.zeros(60, np.uint8)  # out and alpha in one buffer
    with pytest.raises(ValueError, match="out overlaps an input"):
        api.blend(fg, fg, shared[:20].reshape(4, 5), out=shared.reshape(4, 5, 3))
    with pytest.raises(ValueError, match=r"out must have shape \(4, 5, 3\)"):
        api.blend(fg, fg, a, out=np.zeros((4, 5, 4), np.uint8))


# ---------------------------------------------------------------- blur

# Radii that reach every kind of plan: f = 1 (a full-size Gaussian; a
# centre split over two taps below about 0.8), f = 2..8, the largest
# reductions (637.5 is the first radius of f = 255, whose enlargement
# weights come closest to 256); and the radii at which f steps.
RADII = [0.01, 0.4, 0.8, 1.0, 2.4999, 2.5, 3.3, 4.999, 5.0, 7.5, 9.9, 20.0, 33.3, 100.0, 637.5, 640.0, 1024.0]


@SETTINGS
@given(image=images(), radius=st.one_of(st.sampled_from(RADII), st.floats(0.05, 80.0)))
def test_blur(backend, image, radius):
    assert_same(coreseg.blur(image, radius), reference.blur(image, radius))


@pytest.mark.parametrize("radius", [1.7, 6.0, 21.5, 300.0])
@pytest.mark.parametrize("channels", [3, 4])
def test_blur_large_and_in_place(backend, threads, radius, channels):
    # Sides that are no multiple of the factor (partial blocks at the right
    # and bottom), split over threads, in place.
    rng = np.random.default_rng(int(radius))
    image = rng.integers(0, 256, (397, 611, channels), np.uint8)
    image[100:300, 200:400] = 255  # edges: the enlargement's steepest slopes
    expected = reference.blur(image, radius)
    assert_same(coreseg.blur(image, radius), expected)
    assert coreseg.blur(image, radius, out=image) is image
    assert_same(image, expected)


@pytest.mark.parametrize("radius", [637.5, 1024.0])
def test_blur_largest_reduction(backend, radius):
    # f = 255 over several blocks: the enlargement's weights reach 255 (at
    # f = 256 they would reach 256, which pmulhrsw's int16 cannot hold).
    rng = np.random.default_rng(11)
    for shape in [(3, 2000, 3), (1100, 7, 4), (600, 1300, 4)]:
        image = rng.integers(0, 256, shape, np.uint8)
        assert_same(coreseg.blur(image, radius), reference.blur(image, radius))


def test_blur_plan_is_the_same_arithmetic():
    rng = np.random.default_rng(0)
    for radius in RADII + list(rng.uniform(0.01, 1024, 300)) + list(rng.uniform(0.01, 12, 300)):
        f, offsets, coeffs = reference.blur_plan(radius)
        assert _native.blur_plan(radius) == (f, offsets, coeffs), radius
        assert f == min(255, max(1, math.floor(radius / 2.5)))
        assert sum(coeffs) == 65536 and len(coeffs) % 2 == 0 and len(offsets) == len(coeffs)
        assert all(0 <= c <= 32767 for c in coeffs)


def test_blur_semantics():
    rng = np.random.default_rng(1)
    flat = np.full((37, 53, 4), (9, 200, 77, 255), np.uint8)
    for api in (coreseg, reference):
        for radius in (0.5, 3.0, 12.0, 1024.0):
            assert (api.blur(flat, radius) == flat).all()  # the weights sum to exactly one
        # A radius far beyond the image: its mean colour, nearly.
        noise = rng.integers(0, 256, (30, 40, 3), np.uint8)
        far = api.blur(noise, 1000.0).astype(float)
        assert np.abs(far - noise.reshape(-1, 3).mean(0)).max() < 2
        assert api.blur(np.zeros((0, 5, 3), np.uint8), 4.0).shape == (0, 5, 3)
        assert api.blur(np.full((1, 1, 3), 9, np.uint8), 50.0).tolist() == [[[9, 9, 9]]]


@pytest.mark.parametrize("radius", [1.0, 1.5, 3.0, 5.0, 8.0, 20.0, 40.0])
def test_blur_standard_deviation_is_the_radius(radius):
    # The variance of a blurred step's derivative, along x and y, averaged
    # over the step's position in the reduction's blocks (a block boundary
    # or not changes it by up to 2%).
    f = reference.blur_plan(radius)[0]
    variances = []
    for shift in range(f):
        step = np.zeros((8, 1600, 3), np.uint8)
        step[:, 800 + shift:] = 255
        for out in (coreseg.blur(step, radius)[4, :, 0],
                    coreseg.blur(step.transpose(1, 0, 2).copy(), radius)[:, 4, 0]):
            d = np.diff(out.astype(float))
            x = np.arange(len(d)) + 0.5
            mu = (d * x).sum() / d.sum()
            variances.append((d * (x - mu) ** 2).sum() / d.sum())
            assert abs(mu - 799.5 - shift) < 0.02 * radius  # not shifted
    assert abs(math.sqrt(np.mean(variances)) / radius - 1) < 0.015


def test_blur_is_opencvs_gaussian_within_a_few_levels():
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(2)
    image = np.zeros((300, 400, 3), np.uint8)
    image[50:200, 100:300] = (255, 200, 50)
    image[::7] = 255
    image = np.clip(image.astype(int) + rng.integers(-40, 40, image.shape), 0, 255).astype(np.uint8)
    for radius in (1.5, 3.0, 8.0, 20.0, 40.0):
        want = cv2.GaussianBlur(image.astype(np.float32), (0, 0), radius, borderType=cv2.BORDER_REPLICATE)
        m = 3 * int(radius) + 2
        diff = np.abs(coreseg.blur(image, radius).astype(float) - want)[m:-m, m:-m]
        assert diff.mean() < 1.0 and diff.max() <= 4, (radius, diff.mean(), diff.max())


@APIS
def test_blur_refuses_bad_input(api):
    img = np.zeros((4, 5, 3), np.uint8)
    for radius, error, message in [
        (0.0, ValueError, r"radius must be a number in \(0, MAX_BLUR_RADIUS = 1024\], got 0.0"),
        (-1, ValueError, "radius must be a number in"),
        (1024.5, ValueError, "MAX_BLUR_RADIUS"),
        (float("nan"), ValueError, "radius must be a number in"),
        (float("inf"), ValueError, "radius must be a number in"),
        (True, TypeError, "radius must be a number of pixels"),
        ("3", TypeError, "radius must be a number of pixels"),
        (None, TypeError, "radius must be a number of pixels"),
    ]:
        with pytest.raises(error, match=message):
            api.blur(img, radius)
    with pytest.raises(TypeError, match="image must have dtype uint8, got float32"):
        api.blur(img.astype(np.float32), 3)
    with pytest.raises(ValueError, match=r"image must have shape \(h, w, 3\) or \(h, w, 4\), got \(4, 5, 1\)"):
        api.blur(img[..., :1], 3)
    with pytest.raises(ValueError, match="out overlaps an input"):
        api.blur(img[:, :4], 3, out=img[:, 1:])
    assert api.blur(img, np.float32(2.5)).shape == img.shape  # numpy scalars are numbers too
    assert coreseg.MAX_BLUR_RADIUS == _native.MAX_BLUR_RADIUS == 1024


# ---------------------------------------------------------------- upsample_matte


@st.composite
def plane_arrays(draw):
    """Probabilities as models give them (smooth, summing to one), binary
    planes (a class map's 0/1), or hostile values (NaN, < 0, > 1); read
    contiguous or through views."""
    dtype = draw(st.sampled_from([np.float32, np.float16]))
    k, h, w = draw(st.integers(1, 6)), draw(st.integers(1, 12)), draw(st.integers(1, 40))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["softmax", "binary", "hostile"]))
    if kind == "softmax":
        e = np.exp(3 * rng.standard_normal((k, h, w + 3)))
        values = e / e.sum(0)
    elif kind == "binary":
        values = (rng.random((k, h, w + 3)) < 0.4).astype(float)
    else:
        values = rng.random((k, h, w + 3))
        special = rng.random(values.shape)
        values[special < 0.05] = np.nan
        values[(special >= 0.05) & (special < 0.1)] = -0.5
        values[(special >= 0.1) & (special < 0.15)] = 3.0
    values = values.astype(dtype)
    view = draw(st.sampled_from(["contiguous", "crop", "batch", "col_step"]))
    if view == "crop":
        return values[:, h // 3:, 1:w + 1]
    if view == "batch":
        return np.ascontiguousarray(values[None, ..., :w])
    if view == "col_step":
        return np.repeat(values[..., :w], 2, axis=2)[..., ::2]
    return np.ascontiguousarray(values[..., :w])


@SETTINGS
@given(planes=plane_arrays(), size=st.tuples(st.integers(0, 120), st.integers(0, 50)),
       reduce=st.sampled_from(["sum", "max"]))
def test_upsample_matte(backend, planes, size, reduce):
    assert_same(coreseg.upsample_matte(planes, size, reduce), reference.upsample_matte(planes, size, reduce))


@pytest.mark.parametrize("reduce", ["sum", "max"])
def test_upsample_matte_large(backend, threads, reduce):
    # A model-sized soft blob onto a photo-sized matte (mostly flat spans,
    # a band of soft ones), and hard 0/1 planes (a class map's feathered edge).
    yy, xx = np.mgrid[0:144, 0:256]
    blob = np.clip((1.1 - np.hypot((xx - 128) / 60, (yy - 72) / 50)) * 4, 0, 1)
    hard = (np.random.default_rng(5).random((144, 256)) < 0.5).astype(float)
    planes = np.stack([blob * 0.6, blob * 0.5, hard * 0.3]).astype(np.float32)
    for size in [(1333, 750), (1920, 1080), (200, 100)]:
        assert_same(coreseg.upsample_matte(planes, size, reduce), reference.upsample_matte(planes, size, reduce))


def test_upsample_matte_semantics_by_hand():
    for api in (coreseg, reference):
        # Half-pixel centres: from 1x2 to 4x1 the weights on the right pixel
        # are 0, 64, 192 (rounded 1/256s), 256: 255 * w / 256 rounded half up.
        assert api.upsample_matte(np.array([[[0.0, 1.0]]], np.float32), (4, 1)).tolist() == [[0, 64, 191, 255]]
        # p = 0.5 is 16384 / 32767 of one: 127.5039 -> 128; flat planes stay flat.
        half = np.full((1, 3, 3), 0.5, np.float32)
        assert (api.upsample_matte(half, (7, 5)) == 128).all()
        assert (api.upsample_matte(np.ones((1, 2, 2), np.float32), (5, 5)) == 255).all()
        # sum clamps at one; max takes the largest; NaN and < 0 count as 0.
        planes = np.array([[[0.7, np.nan]], [[0.6, -1.0]]], np.float32)
        assert api.upsample_matte(planes, (2, 1), "sum").tolist() == [[255, 0]]
        assert api.upsample_matte(planes, (2, 1), "max").tolist() == [[179, 0]]
        # Same size: each pixel's own value.
        p = np.random.default_rng(0).random((1, 6, 7)).astype(np.float32)
        want = np.floor(np.floor(p[0].astype(np.float64) * 32767 + 0.5) * 255 / 32767 + 0.5)
        np.testing.assert_array_equal(api.upsample_matte(p, (7, 6)), want)
        assert api.upsample_matte(p, (0, 3)).shape == (3, 0)


def test_upsample_matte_is_float_bilinear_within_one():
    # torch's bilinear interpolate(align_corners=False), in float, then * 255.
    rng = np.random.default_rng(6)
    p = rng.random((2, 13, 17)).astype(np.float32)
    w, h = 101, 59

    def coords(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0

    y0, y1, ly = coords(13, h)
    x0, x1, lx = coords(17, w)
    s = np.minimum(p.astype(np.float64).sum(0), 1)
    rows = s[y0] * (1 - ly)[:, None] + s[y1] * ly[:, None]
    want = (rows[:, x0] * (1 - lx) + rows[:, x1] * lx) * 255
    assert np.abs(coreseg.upsample_matte(p, (w, h)).astype(float) - want).max() <= 1.0


@APIS
def test_upsample_matte_refuses_bad_input(api):
    p = np.zeros((2, 3, 4), np.float32)
    for args, error, message in [
        ((p.astype(np.float64), (4, 4)), TypeError, "planes must have dtype float32 or float16, got float64"),
        ((p[0], (4, 4)), ValueError, r"planes must have shape \(classes, h, w\)"),
        ((p[:0], (4, 4)), ValueError, "planes must have at least one class"),
        ((np.zeros((65537, 1, 1), np.float32), (4, 4)), ValueError, "planes has 65537 classes; at most 65536"),
        ((p[:, :0], (4, 4)), ValueError, "planes is empty: there is nothing to upsample from"),
        ((p, (4, -1)), ValueError, "size must be at least"),
        ((p, (2**24 + 1, 1)), ValueError, "size must be at most"),
        ((p, 4), TypeError, r"size must be \(width, height\)"),
    ]:
        with pytest.raises(error, match=message):
            api.upsample_matte(*args)
    for reduce in ("mean", None, "SUM"):
        with pytest.raises(ValueError, match="reduce must be one of 'sum', 'max'"):
            api.upsample_matte(p, (4, 4), reduce)
    with pytest.raises(TypeError, match="out must have dtype uint8"):
        api.upsample_matte(p, (4, 4), out=np.zeros((4, 4), np.int32))


# ---------------------------------------------------------------- all three


def refine_of(api):
    """refine_matte of an API (coreseg exports it from coreseg.kernels)."""
    return getattr(api, "refine_matte", None) or coreseg.kernels.refine_matte


@APIS
def test_out_is_written_and_returned(api):
    rng = np.random.default_rng(8)
    fg = rng.integers(0, 256, (40, 50, 4), np.uint8)
    bg = rng.integers(0, 256, (40, 50, 4), np.uint8)
    alpha = matte_like(rng, 40, 50)
    planes = rng.random((2, 10, 12)).astype(np.float32)
    for call, shape in [(lambda out: api.blend(fg, bg, alpha, out=out), (40, 50, 4)),
                        (lambda out: api.blend(fg, "#00ff00", alpha, out=out), (40, 50, 4)),
                        (lambda out: api.blur(fg, 6.0, out=out), (40, 50, 4)),
                        (lambda out: api.upsample_matte(planes, (50, 40), "max", out=out), (40, 50)),
                        (lambda out: refine_of(api)(alpha, fg, 6.0, out=out), (40, 50))]:
        expected = call(None)
        out = np.zeros(shape, np.uint8)
        assert call(out) is out
        np.testing.assert_array_equal(out, expected)
        # A crop of a bigger buffer (a row stride of its own) is written in
        # place and nothing around it.
        big = np.zeros((shape[0] + 10, shape[1] + 9) + shape[2:], np.uint8)
        window = big[5:5 + shape[0], 3:3 + shape[1]]
        call(window)
        np.testing.assert_array_equal(window, expected)
        window[...] = 0
        assert not big.any()


def test_a_video_loop_allocates_nothing():
    # With out= every call writes into the caller's arrays; the blur's
    # scratch is kept between calls (the resident memory does not grow).
    rng = np.random.default_rng(9)
    frame = rng.integers(0, 256, (270, 480, 4), np.uint8)
    planes = rng.random((1, 64, 64)).astype(np.float32)
    matte, blurred, out = np.empty((270, 480), np.uint8), np.empty_like(frame), np.empty_like(frame)
    for _ in range(3):
        coreseg.upsample_matte(planes, (480, 270), out=matte)
        coreseg.kernels.refine_matte(matte, frame, 8.0, out=matte)  # in place
        coreseg.blur(frame, 12.0, out=blurred)
        assert coreseg.blend(frame, blurred, matte, out=out) is out
    refined = reference.refine_matte(reference.upsample_matte(planes, (480, 270)), frame, 8.0)
    np.testing.assert_array_equal(out, reference.blend(frame, reference.blur(frame, 12.0), refined))


@pytest.mark.parametrize("kernel", ["blend", "blur", "upsample_matte", "refine_matte"])
def test_the_gil_is_released(kernel):
    # As test_runtime's check: with a 30 s switch interval the counting
    # thread only runs while the main thread is inside a call that released
    # the GIL.
    rng = np.random.default_rng(10)
    image = rng.integers(0, 256, (1500, 2000, 4), np.uint8)
    alpha = rng.integers(0, 256, (1500, 2000), np.uint8)
    planes = rng.random((3, 200, 300)).astype(np.float32)
    call = {"blend": lambda: coreseg.blend(image, image[::-1], alpha),
            "blur": lambda: coreseg.blur(image, 3.0),
            "upsample_matte": lambda: coreseg.upsample_matte(planes, (2000, 1500)),
            "refine_matte": lambda: coreseg.kernels.refine_matte(alpha, image, 12.0)}[kernel]
    ticks = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks[0] += 1
            time.sleep(0)

    interval = sys.getswitchinterval()
    t = threading.Thread(target=count)
    t.start()
    sys.setswitchinterval(30.0)
    try:
        during = 0
        for _ in range(20):
            before = ticks[0]
            call()
            during = ticks[0] - before
            if during:
                break
    finally:
        sys.setswitchinterval(interval)
        stop.set()
        t.join()
    assert during > 0


def test_exported_everywhere():
    for name in ("blend", "blur", "upsample_matte", "MAX_BLUR_RADIUS"):
        assert name in coreseg.__all__ and getattr(coreseg, name) is getattr(coreseg.kernels, name)
    for name in ("blend", "blur", "blur_plan", "upsample_matte"):
        assert callable(getattr(reference, name))
