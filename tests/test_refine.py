"""refine_matte (a guided filter with the photo as the guide) against its
numpy twin in coreseg.reference, bit for bit, under every SIMD backend and
thread count; what it does to mattes (edges pulled onto the photo's,
flat photos and large eps smooth, certain mattes untouched); its limits and
bad input."""

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import images

from coreseg import _native, kernels, reference

SETTINGS = settings(max_examples=int(os.environ.get("CORESEG_HYPOTHESIS_EXAMPLES", "60")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
APIS = pytest.mark.parametrize("api", [kernels, reference], ids=["native", "reference"])
RADII = [1.0, 1.5, 2.0, 3.9, 4.0, 5.5, 8.0, 8.1, 12.0, 31.9, 100.0, 1024.0]


def assert_same(native, ref):
    assert native.dtype == ref.dtype and native.shape == ref.shape
    np.testing.assert_array_equal(native, ref)


def matte_like(rng, h, w):
    """A model's matte: 0 and 255 regions with soft values between."""
    kinds = rng.integers(0, 3, (h, (w + 15) // 16 + 1))
    runs = np.repeat(kinds, 16, axis=1)[:, rng.integers(0, 16):][:, :w]
    soft = rng.integers(0, 256, (h, w))
    return np.where(runs == 0, 0, np.where(runs == 1, 255, soft)).astype(np.uint8)


def edge_scene(h=48, w=96, photo_edge=40, matte_edge=(44, 60), contrast=(30, 200)):
    """A photo with a vertical step at `photo_edge` (plus a little noise) and
    a model's matte whose edge is a ramp over `matte_edge`: the blurry,
    misplaced edge an enlarged mask has."""
    rng = np.random.default_rng(5)
    photo = np.full((h, w, 3), contrast[0], np.int64)
    photo[:, photo_edge:] = contrast[1]
    photo = np.clip(photo + rng.integers(-2, 3, photo.shape), 0, 255).astype(np.uint8)
    x = np.arange(w)
    ramp = np.clip((x - matte_edge[0]) / (matte_edge[1] - matte_edge[0]), 0, 1)
    matte = np.tile(np.round(ramp * 255).astype(np.uint8), (h, 1))
    return photo, matte


def crossing(row) -> float:
    """Where a rising row of a matte passes 127.5 (linear between pixels)."""
    row = row.astype(np.float64)
    i = int(np.argmax(row > 127.5))
    return i - 1 + (127.5 - row[i - 1]) / (row[i] - row[i - 1])


# ---------------------------------------------------------------- bit-exact


@SETTINGS
@given(guide=images(min_side=1), radius=st.one_of(st.sampled_from(RADII), st.floats(1.0, 60.0)),
       eps=st.one_of(st.sampled_from([1e-6, 1e-3, 100.0]), st.floats(1e-6, 100.0)), seed=st.integers(0, 2**32 - 1))
def test_native_is_the_reference(backend, guide, radius, eps, seed):
    rng = np.random.default_rng(seed)
    matte = matte_like(rng, *guide.shape[:2])
    assert_same(kernels.refine_matte(matte, guide, radius, eps), reference.refine_matte(matte, guide, radius, eps))


@pytest.mark.parametrize("radius", [1.5, 6.0, 17.0, 100.0])
@pytest.mark.parametrize("channels", [3, 4])
def test_large_split_over_threads_and_in_place(backend, threads, radius, channels):
    # Sides that are no multiple of the reduction (partial blocks), every
    # SIMD step and tail, bands over threads; a photo with edges and a
    # matte with soft edges; in place on the matte.
    rng = np.random.default_rng(int(radius) * 10 + channels)
    guide = rng.integers(0, 256, (397, 611, channels), np.uint8)
    guide[100:300, 200:400] = (240, 200, 90, 255)[:channels]
    matte = matte_like(rng, 397, 611)
    expected = reference.refine_matte(matte, guide, radius, 2e-3)
    assert_same(kernels.refine_matte(matte, guide, radius, 2e-3), expected)
    assert kernels.refine_matte(matte, guide, radius, 2e-3, out=matte) is matte
    assert_same(matte, expected)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2000), (1500, 1), (2, 3), (9, 1), (17, 33)])
@pytest.mark.parametrize("radius", [1.0, 8.0, 300.0])
def test_thin_and_tiny_images(backend, shape, radius):
    rng = np.random.default_rng(sum(shape))
    guide = rng.integers(0, 256, shape + (3,), np.uint8)
    matte = matte_like(rng, *shape)
    assert_same(kernels.refine_matte(matte, guide, radius), reference.refine_matte(matte, guide, radius))


def test_views_strides_and_out(backend):
    rng = np.random.default_rng(9)
    base = rng.integers(0, 256, (80, 130, 4), np.uint8)
    matte_base = matte_like(rng, 80, 130)
    views = [
        (base[::-1, :, :3], matte_base[::-1]),  # negative row strides
        (base[5:70, 7:120], matte_base[5:70, 7:120]),  # crops
        (base[:, ::2], matte_base[:, ::2]),  # pixels not packed: copied once
        (base[..., ::-1], matte_base),  # channels reversed (BGR A)
        (np.asfortranarray(base[:, :, :3]), np.asfortranarray(matte_base)),
    ]
    for guide, matte in views:
        want = reference.refine_matte(np.ascontiguousarray(matte), np.ascontiguousarray(guide), 5.0)
        assert_same(kernels.refine_matte(matte, guide, 5.0), want)
        # out= a strided view into a larger array: written there and nowhere else.
        big = np.full((matte.shape[0] + 2, matte.shape[1] + 6), 77, np.uint8)
        out = big[1:-1, 3:-3]
        assert kernels.refine_matte(matte, guide, 5.0, out=out) is out
        assert_same(out, want)
        assert (big[0] == 77).all() and (big[-1] == 77).all() and (big[:, :3] == 77).all() and (big[:, -3:] == 77).all()
    empty = kernels.refine_matte(np.zeros((0, 5), np.uint8), np.zeros((0, 5, 3), np.uint8))
    assert empty.shape == (0, 5) and empty.dtype == np.uint8


def test_the_plan_is_the_same_arithmetic():
    for radius in [1.0, 1.49, 1.5, 2.5, 3.99, 4.0, 7.99, 8.0, 11.9, 12.0, 63.0, 100.0, 1023.99, 1024.0]:
        assert _native.refine_plan(radius) == reference.refine_plan(radius), radius
    assert reference.refine_plan(1.0) == (1, 1) and reference.refine_plan(3.9) == (1, 4)
    assert reference.refine_plan(8.0) == (4, 2) and reference.refine_plan(31.0) == (15, 2)
    assert reference.refine_plan(1024.0) == (256, 4)
    for radius in np.linspace(1, 1024, 500):
        s, r = reference.refine_plan(radius)
        assert 1 <= s <= 256 and 1 <= r <= 4 and abs(s * r - radius) <= s / 2 + 1e-9


# ---------------------------------------------------------------- behaviour


@pytest.mark.parametrize("radius", [8.0, 16.0])
def test_a_photo_edge_pulls_a_blurry_matte_edge_onto_it(radius):
    # The model's edge: a ramp over 20 pixels, half way up at 44, 4 pixels
    # off the photo's edge (at 40, between pixels 39 and 40).
    photo, matte = edge_scene(matte_edge=(34, 54))
    assert abs(crossing(matte[24]) - 44) < 0.6
    refined = kernels.refine_matte(matte, photo, radius)
    for row in refined[::7].astype(int):
        # The step is now the photo's ...
        assert abs(crossing(row) - 40) < 0.6, row
        # ... and steep: most of the rise in the one pixel of the photo's
        # edge (the ramp rose under 13 levels a pixel).
        assert row[40] - row[39] > 80, row
    # Away from every edge, certain stays near certain (the windows of a
    # 16-pixel radius, averaged twice, reach 30 pixels and more).
    assert (refined[:, :16] <= 5).all() and (refined[:, 80:] >= 250).all()


def test_a_flat_photo_leaves_the_matte_smooth():
    # Nothing to follow: A = 0, and the matte is averaged twice over the
    # windows (a blur of about the radius), never made steeper.
    _, matte = edge_scene()
    flat = np.full(matte.shape + (3,), 128, np.uint8)
    refined = kernels.refine_matte(matte, flat, 8.0).astype(int)
    assert np.abs(np.diff(refined, axis=1)).max() <= np.abs(np.diff(matte.astype(int), axis=1)).max()
    assert (refined == refined[:1]).all()  # columns stay columns
    assert abs(crossing(refined[0]) - crossing(matte[0])) < 0.6  # the edge does not move
    # Exactly the twice box-filtered matte, computed independently in float.
    s, r = reference.refine_plan(8.0)
    box = box_mean(box_mean(block_mean(matte.astype(np.float64), s), r), r)
    assert s == 4 and abs(refined[0, 52] - np.interp(52, (np.arange(box.shape[1]) + 0.5) * s - 0.5, box[0])) < 1.5


def block_mean(a, s):
    h, w = -(-a.shape[0] // s), -(-a.shape[1] // s)
    padded = np.pad(a, ((0, h * s - a.shape[0]), (0, w * s - a.shape[1])), mode="edge")
    return padded.reshape(h, s, w, s).mean(axis=(1, 3))


def box_mean(a, r):
    """Means over (2r + 1)^2 windows clipped at the edges."""
    out = np.empty_like(a)
    for y in range(a.shape[0]):
        for x in range(a.shape[1]):
            out[y, x] = a[max(0, y - r): y + r + 1, max(0, x - r): x + r + 1].mean()
    return out


def test_large_eps_ignores_the_photo_and_a_smooth_matte_stays():
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (60, 90, 3), np.uint8)  # all texture
    ramp = np.tile(np.linspace(0, 255, 90).round().astype(np.uint8), (60, 1))  # a smooth matte
    calm = kernels.refine_matte(ramp, photo, 4.0, eps=100.0).astype(int)
    flat = kernels.refine_matte(ramp, np.full_like(photo, 99), 4.0, eps=100.0).astype(int)
    assert np.abs(calm - flat).max() <= 1  # the photo's texture barely counts
    assert np.abs(calm - ramp)[8:-8, 8:-8].max() <= 1  # a ramp is its own box mean
    # The photo's edge: followed at a small eps, not at a large one.
    photo, matte = edge_scene(matte_edge=(34, 54))
    sharp = kernels.refine_matte(matte, photo, 8.0, eps=1e-3)[24].astype(int)
    soft = kernels.refine_matte(matte, photo, 8.0, eps=100.0)[24].astype(int)
    assert sharp[40] - sharp[39] > 80 and soft[40] - soft[39] < 16
    assert abs(crossing(soft) - 44) < 1


def test_certain_mattes_stay_exactly_certain():
    rng = np.random.default_rng(4)
    photo = rng.integers(0, 256, (37, 53, 4), np.uint8)
    for value in (0, 255):
        matte = np.full((37, 53), value, np.uint8)
        for radius in (1.0, 8.0, 40.0):
            assert (kernels.refine_matte(matte, photo, radius, eps=1e-6) == value).all()


def test_a_matte_on_the_photos_edge_stays_there():
    photo, _ = edge_scene()
    matte = np.where(photo[..., 0] > 100, 255, 0).astype(np.uint8)
    refined = kernels.refine_matte(matte, photo, 8.0).astype(int)
    # The step stays in its pixel, a little softer: the fit's slope is
    # var / (var + eps) of the step's and the coefficients are averages
    # (23 levels off next to it, under one on average).
    assert np.abs(refined - matte).max() <= 24 and np.abs(refined - matte).mean() < 1
    assert (refined[:, 40] - refined[:, 39] > 200).all()


# ---------------------------------------------------------------- bad input


@APIS
def test_refuses_bad_input(api):
    guide = np.zeros((4, 5, 3), np.uint8)
    matte = np.zeros((4, 5), np.uint8)
    for radius, error, message in [
        (0.5, ValueError, r"radius must be a number in \[1, MAX_REFINE_RADIUS = 1024\], got 0.5"),
        (1024.5, ValueError, "MAX_REFINE_RADIUS"),
        (float("nan"), ValueError, "radius must be a number in"),
        (True, TypeError, "radius must be a number of pixels"),
        ("3", TypeError, "radius must be a number of pixels"),
    ]:
        with pytest.raises(error, match=message):
            api.refine_matte(matte, guide, radius)
    for eps, error, message in [
        (0.0, ValueError, r"eps must be a number in \[1e-06, 100\] \(a variance of 0..1 values\), got 0.0"),
        (101.0, ValueError, "eps must be a number in"),
        (float("nan"), ValueError, "eps must be a number in"),
        (None, TypeError, "eps must be a number"),
    ]:
        with pytest.raises(error, match=message):
            api.refine_matte(matte, guide, 4.0, eps)
    with pytest.raises(TypeError, match="guide must have dtype uint8, got float32"):
        api.refine_matte(matte, guide.astype(np.float32))
    with pytest.raises(ValueError, match=r"guide must have shape \(h, w, 3\) or \(h, w, 4\), got \(4, 5\)"):
        api.refine_matte(matte, matte)
    with pytest.raises(TypeError, match=r"matte must have dtype uint8 \(255 = foreground\), got float32"):
        api.refine_matte(matte.astype(np.float32), guide)
    with pytest.raises(ValueError, match=r"matte must have shape \(4, 5\) \(the guide's height and width\), got \(5, 4\)"):
        api.refine_matte(matte.T, guide)
    with pytest.raises(ValueError, match="out overlaps an input"):
        api.refine_matte(matte, guide, out=guide.reshape(-1)[:20].reshape(4, 5))
    with pytest.raises(ValueError, match=r"out must have shape \(4, 5\)"):
        api.refine_matte(matte, guide, out=np.zeros((5, 4), np.uint8))
    assert api.refine_matte(matte, guide, np.float32(2.5), np.float64(0.01)).shape == (4, 5)


def test_the_binding_checks_what_it_is_given():
    # The Python layer normalises; the binding still refuses what it cannot read.
    guide = np.zeros((4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match=r"matte must have shape \(4, 5\)"):
        _native.refine_matte(np.zeros((4, 6), np.uint8), guide, 4.0, 1e-3, np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="radius must be a number in"):
        _native.refine_matte(np.zeros((4, 5), np.uint8), guide, 0.0, 1e-3, np.zeros((4, 5), np.uint8))
    with pytest.raises(ValueError, match="eps must be a number in"):
        _native.refine_matte(np.zeros((4, 5), np.uint8), guide, 4.0, float("nan"), np.zeros((4, 5), np.uint8))


def test_exported():
    assert kernels.refine_matte.__module__ == "coreseg.kernels.refine" and kernels.MAX_REFINE_RADIUS == 1024
    assert _native.MAX_REFINE_RADIUS == 1024
    assert "refine_matte" in reference.__all__ and "refine_plan" in reference.__all__
