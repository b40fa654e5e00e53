"""resize_labels equals Pillow's NEAREST exactly; resize_image is within 1
of Pillow's BILINEAR per channel."""

import numpy as np
import pytest

import coreseg

Image = pytest.importorskip("PIL.Image", reason="Pillow is in the test extra: pip install '.[test]'")

SIZE_PAIRS = [(1, 1), (1, 7), (7, 1), (3, 2), (37, 1000), (448, 4032), (448, 3024), (448, 1920),
              (448, 1080), (1000, 37), (4032, 448), (5, 5), (513, 512), (999, 1001)]


@pytest.mark.parametrize("src, dst", SIZE_PAIRS)
def test_resize_labels_matches_pillow_nearest(src, dst):
    rng = np.random.default_rng(src * 7919 + dst)
    labels = rng.integers(0, 2**31 - 1, (3, src)).astype(np.int32)
    ours = coreseg.resize_labels(labels, (dst, 3))
    theirs = np.asarray(Image.fromarray(labels).resize((dst, 3), Image.NEAREST))
    np.testing.assert_array_equal(ours, theirs)
    # The same mapping along rows.
    ours_t = coreseg.resize_labels(np.ascontiguousarray(labels.T), (3, dst))
    np.testing.assert_array_equal(ours_t, theirs.T)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32])
def test_resize_labels_2d_matches_pillow(dtype):
    rng = np.random.default_rng(9)
    labels = rng.integers(0, 200, (45, 61)).astype(dtype)
    for size in [(448, 448), (17, 9), (61, 45), (200, 31)]:
        theirs = np.asarray(Image.fromarray(labels).resize(size, Image.NEAREST))
        np.testing.assert_array_equal(coreseg.resize_labels(labels, size), theirs)


def _smooth_photo(rng, h, w, channels):
    # Gradients plus noise: like a photo, with edges and flat regions.
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255 // max(w - 1, 1)), (y * 255 // max(h - 1, 1)), ((x + y) * 3) % 256], -1)
    noisy = base + rng.integers(-40, 41, (h, w, 3))
    img = np.clip(noisy, 0, 255).astype(np.uint8)
    if channels == 4:
        img = np.concatenate([img, np.full((h, w, 1), 255, np.uint8)], -1)
    return img


@pytest.mark.parametrize("src, dst", [
    ((1008, 756), (448, 448)), ((640, 480), (513, 385)), ((101, 77), (448, 448)), ((300, 200), (300, 200)),
    ((4032 // 3, 3024 // 3), (224, 224)), ((64, 64), (1, 1)), ((9, 7), (50, 3)),
])
@pytest.mark.parametrize("channels", [3, 4])
def test_resize_image_within_one_of_pillow(src, dst, channels):
    rng = np.random.default_rng(src[0] + dst[0] + channels)
    w, h = src
    for img in (_smooth_photo(rng, h, w, channels), rng.integers(0, 256, (h, w, channels), np.uint8)):
        if channels == 4:
            img[..., 3] = 255  # opaque: Pillow premultiplies alpha, we do not
        theirs = np.asarray(Image.fromarray(img).resize(dst, Image.BILINEAR)).astype(int)
        ours = coreseg.resize_image(img, dst, "RGBA" if channels == 4 else "RGB").astype(int)
        assert np.abs(ours - theirs).max() <= 1
        if src == dst:
            np.testing.assert_array_equal(ours, img)  # same size: unchanged


def test_resize_image_layouts_are_permutations():
    rng = np.random.default_rng(11)
    img = rng.integers(0, 256, (50, 70, 3), np.uint8)
    rgba = coreseg.resize_image(img, (20, 10), "RGBA")
    assert (rgba[..., 3] == 255).all()
    np.testing.assert_array_equal(coreseg.resize_image(img, (20, 10), "BGRA"), rgba[..., [2, 1, 0, 3]])
    np.testing.assert_array_equal(coreseg.resize_image(img, (20, 10), "ARGB"), rgba[..., [3, 0, 1, 2]])
    np.testing.assert_array_equal(coreseg.resize_image(img, (20, 10), "RGB"), rgba[..., :3])
    np.testing.assert_array_equal(coreseg.resize_image(img, (20, 10), "bgr"), rgba[..., [2, 1, 0]])
