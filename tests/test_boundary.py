"""boundary_counts: native equals coreseg.reference bit for bit (random,
blocky and edge-case maps, any thread count), both equal a direct OpenCV
implementation of the paper's definition (boundary-iou-api's
mask_to_boundary, per class), and bad input is refused with the same
words by both."""

import cv2
import numpy as np
import pytest

import coreseg
from coreseg import kernels, reference
from coreseg.kernels import BOUNDARY_COLUMNS

COLUMNS = len(BOUNDARY_COLUMNS)


def blocky(rng, shape, classes, block, dtype=np.int32):
    h, w = shape
    small = rng.integers(0, classes, (h // block + 1, w // block + 1))
    return np.repeat(np.repeat(small, block, 0), block, 1)[:h, :w].astype(dtype)


def both(gt, pred, n, d, t, ignore=None):
    native = kernels.boundary_counts(gt, pred, n, d, t, ignore)
    ref = reference.boundary_counts(gt, pred, n, d, t, ignore)
    assert native.dtype == ref.dtype == np.int64
    assert native.shape == ref.shape == (n, COLUMNS)
    np.testing.assert_array_equal(native, ref)
    return native


# --- the paper's definition, as its official code computes it -------------

def mask_to_boundary(mask: np.ndarray, dilation: int) -> np.ndarray:
    """boundary-iou-api's mask_to_boundary with a given dilation: the mask
    padded by one pixel of zeros, eroded by a 3x3 square `dilation` times,
    subtracted from the mask."""
    h, w = mask.shape
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=dilation)[1:h + 1, 1:w + 1]
    return mask - eroded


def opencv_counts(gt, pred, n, d, t, ignore=None):
    """Per class: masks, their bands (mask_to_boundary), their contours
    (mask_to_boundary with dilation 1) and the contours dilated by a
    (2t+1)^2 square for the matching."""
    counted = gt != ignore if ignore is not None else np.ones(gt.shape, bool)
    square = np.ones((2 * t + 1, 2 * t + 1), np.uint8)
    out = np.zeros((n, COLUMNS), np.int64)
    for c in range(n):
        g, p = (gt == c).astype(np.uint8), (pred == c).astype(np.uint8)
        band_g, band_p = mask_to_boundary(g, d).astype(bool), mask_to_boundary(p, d).astype(bool)
        contour_g, contour_p = mask_to_boundary(g, 1), mask_to_boundary(p, 1)
        near_g, near_p = cv2.dilate(contour_g, square).astype(bool), cv2.dilate(contour_p, square).astype(bool)
        contour_g, contour_p = contour_g.astype(bool), contour_p.astype(bool)
        out[c] = [np.count_nonzero(m & counted) for m in (
            band_g, band_p, band_g & band_p, contour_p, contour_p & near_g, contour_g, contour_g & near_p)]
    return out


@pytest.mark.parametrize("seed", range(6))
def test_equals_the_papers_definition_on_blocky_maps(seed):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(20, 90, 2)
    n = int(rng.integers(2, 7))
    gt = blocky(rng, (h, w), n, int(rng.integers(3, 12)))
    # A prediction: the ground truth, wrong in blocks (as an upsampled model is).
    pred = np.where(blocky(rng, (h, w), 4, 3) > 0, gt, blocky(rng, (h, w), n, 5)).astype(np.int32)
    ignore = None
    if seed % 2:
        ignore = 255
        gt[blocky(rng, (h, w), 8, 4) == 0] = ignore
    for d, t in [(1, 0), (2, 1), (3, 3), (7, 2), (int(round(0.02 * np.hypot(h, w))), 4)]:
        expected = opencv_counts(gt, pred, n, d, t, ignore)
        np.testing.assert_array_equal(both(gt, pred, n, d, t, ignore), expected)


def test_the_band_is_the_official_band():
    # The band of each class, as a map, against mask_to_boundary with the
    # paper's own dilation rule for this size (2 % of the diagonal).
    rng = np.random.default_rng(7)
    labels = blocky(rng, (150, 210), 5, 17)
    d = max(1, int(round(0.02 * np.hypot(*labels.shape))))
    assert d == 5
    band = reference.boundary_band(labels, d)
    for c in range(5):
        official = mask_to_boundary((labels == c).astype(np.uint8), d).astype(bool)
        np.testing.assert_array_equal(band & (labels == c), official)


def test_a_square_by_hand():
    # 9x9 of class 0 with a 3x3 square of class 1 in the middle, d = 1: the
    # band of 0 is its outer ring (32) and the ring around the square (16);
    # the square's is its own ring (8). The prediction moves the square one
    # pixel right: with tolerance 1 every contour pixel matches, with 0 only
    # those on both contours.
    gt = np.zeros((9, 9), np.int32)
    gt[3:6, 3:6] = 1
    pred = np.zeros((9, 9), np.int32)
    pred[3:6, 4:7] = 1
    counts = both(gt, pred, 2, 1, 1)
    assert counts[:, 0].tolist() == [32 + 16, 8]
    assert counts[:, 1].tolist() == [32 + 16, 8]
    # Class 1's rings share 4 pixels (columns 4 and 5, rows 3 and 5); class
    # 0's the outer ring and the 10 pixels around both squares' overlap.
    assert counts[1, 2] == 4
    assert counts[:, 3].tolist() == counts[:, 4].tolist() == [48, 8]
    assert counts[:, 5].tolist() == counts[:, 6].tolist() == [48, 8]
    exact = both(gt, pred, 2, 1, 0)
    assert exact[1, 4] == exact[1, 6] == 4


@pytest.mark.parametrize("dtype", [np.int32, np.uint8, np.uint16])
def test_random_maps(dtype, threads):
    # Noise: nearly every pixel is on a contour; every search path runs.
    rng = np.random.default_rng(int(np.dtype(dtype).itemsize))
    for i in range(40):
        h, w = rng.integers(1, 24, 2)
        n = int(rng.integers(1, 5))
        gt = rng.integers(0, n, (h, w)).astype(dtype)
        pred = rng.integers(0, n, (h, w)).astype(dtype)
        ignore = (None, 255, 0)[i % 3]  # none, outside the classes (in both maps), a class id
        if ignore == 255:
            gt[rng.random((h, w)) < 0.2] = 255
            pred[rng.random((h, w)) < 0.1] = 255
        both(gt, pred, n, int(rng.integers(0, 6)), int(rng.integers(0, 6)), ignore)


def test_blocky_maps_every_distance():
    rng = np.random.default_rng(3)
    gt = blocky(rng, (41, 57), 6, 5)
    pred = blocky(rng, (41, 57), 6, 4)
    for d in range(0, 12):
        for t in (0, 1, 2, 5, 9):
            both(gt, pred, 6, d, t)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 1), (1, 37), (37, 1), (2, 40), (40, 2), (3, 3)])
def test_thin_maps(shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    gt = blocky(rng, shape, 3, 3)
    pred = blocky(rng, shape, 3, 2)
    for d, t in [(0, 0), (1, 0), (1, 1), (2, 3), (50, 50)]:
        counts = both(gt, pred, 3, d, t)
        if d >= 1 and min(shape) <= 2:  # every pixel touches the border: on the band and the contour
            assert counts[:, 0].sum() == counts[:, 5].sum() == gt.size
        if d >= 2:  # every pixel is within 2 of the border
            assert counts[:, 0].sum() == counts[:, 1].sum() == gt.size


def test_distances_larger_than_the_image():
    rng = np.random.default_rng(4)
    gt = blocky(rng, (13, 19), 4, 4)
    pred = blocky(rng, (13, 19), 4, 3)
    big = both(gt, pred, 4, 1000, 1000)
    # Every pixel is within 1000 of the border: each map's band is all of it.
    assert big[:, 0].sum() == big[:, 1].sum() == gt.size
    np.testing.assert_array_equal(big, both(gt, pred, 4, 19, 19))
    np.testing.assert_array_equal(big, kernels.boundary_counts(gt, pred, 4, 2**62, 2**62))


def test_distance_zero_is_an_empty_band():
    rng = np.random.default_rng(5)
    gt, pred = blocky(rng, (20, 20), 3, 4), blocky(rng, (20, 20), 3, 4)
    counts = both(gt, pred, 3, 0, 2)
    assert not counts[:, :3].any() and counts[:, 3].sum() > 0


def test_empty_maps():
    for shape in [(0, 0), (0, 5), (5, 0)]:
        e = np.zeros(shape, np.int32)
        assert not both(e, e, 3, 2, 2).any()


def test_ignore_index():
    rng = np.random.default_rng(6)
    gt = blocky(rng, (30, 40), 4, 5)
    pred = blocky(rng, (30, 40), 4, 5)
    void = blocky(rng, (30, 40), 5, 3) == 0
    gt[void] = 255
    counts = both(gt, pred, 4, 2, 2, 255)
    # Ignored pixels count nowhere; the rest as without ignore.
    assert counts[:, 0].sum() + counts[:, 5].sum() <= 2 * np.count_nonzero(~void)
    # They are a label of their own: the pixels beside them are on the band.
    without = both(np.where(void, 3, gt).astype(np.int32), pred, 4, 2, 2)
    assert not np.array_equal(counts, without)
    # pred may hold the ignore value (no class, e.g. never seen); an ignore
    # index inside the class range is a class in pred, ignored in gt.
    pred[void] = 255
    both(gt, pred, 4, 2, 2, 255)
    both(np.where(void, 2, gt).astype(np.int32), np.where(void, 1, pred).astype(np.int32), 4, 3, 1, 2)


def test_negative_ignore_and_unseen_pixels():
    rng = np.random.default_rng(8)
    gt = blocky(rng, (25, 31), 3, 4)
    pred = blocky(rng, (25, 31), 3, 3)
    pred[:, :6] = -1
    gt[:, :6] = -1
    counts = both(gt, pred, 3, 2, 2, -1)
    # Nothing left of column 6 is counted, and that region is a label of
    # no class: the same counts as the maps cut there (its edge is the border).
    cut = both(gt[:, 6:], pred[:, 6:], 3, 2, 2)
    np.testing.assert_array_equal(counts, cut)


def test_strided_and_flipped_inputs():
    rng = np.random.default_rng(9)
    base_g = blocky(rng, (60, 80), 5, 6)
    base_p = blocky(rng, (60, 80), 5, 5)
    for view in (lambda a: a[::2, ::3], lambda a: a[::-1], lambda a: a[:, ::-1], lambda a: a.T,
                 lambda a: a[5:40, 7:71], lambda a: np.asfortranarray(a)):
        g, p = view(base_g), view(base_p)
        counts = both(g, p, 5, 3, 2)
        np.testing.assert_array_equal(counts, kernels.boundary_counts(g.copy(), p.copy(), 5, 3, 2))


def test_out_arrays():
    rng = np.random.default_rng(10)
    gt, pred = blocky(rng, (30, 30), 4, 5), blocky(rng, (30, 30), 4, 4)
    expected = both(gt, pred, 4, 2, 1)
    out = np.full((4, COLUMNS), -7, np.int64)
    assert kernels.boundary_counts(gt, pred, 4, 2, 1, out=out) is out
    np.testing.assert_array_equal(out, expected)
    wide = np.full((4, 2 * COLUMNS), -7, np.int64)
    kernels.boundary_counts(gt, pred, 4, 2, 1, out=wide[:, :COLUMNS])
    np.testing.assert_array_equal(wide[:, :COLUMNS], expected)
    assert (wide[:, COLUMNS:] == -7).all()
    ref_out = np.empty((4, COLUMNS), np.int64)
    reference.boundary_counts(gt, pred, 4, 2, 1, out=ref_out)
    np.testing.assert_array_equal(ref_out, expected)


def test_threads_do_not_change_the_counts():
    # Large enough that every pass splits over the pool (rows and columns).
    rng = np.random.default_rng(11)
    gt = blocky(rng, (1100, 900), 12, 23, np.uint8)
    pred = np.where(blocky(rng, gt.shape, 5, 4) > 0, gt, blocky(rng, gt.shape, 12, 9)).astype(np.uint8)
    before = coreseg.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3, 8):
            coreseg.set_num_threads(n)
            results.append(kernels.boundary_counts(gt, pred, 12, 20, 8, 0))
    finally:
        coreseg.set_num_threads(before)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    small = (slice(0, 300), slice(0, 250))
    both(gt[small], pred[small], 12, 20, 8, 0)


BAD = [
    # (arguments changed, error type, words)
    (dict(gt=np.zeros((4, 4), np.float32)), TypeError, "gt must have dtype int32, uint8 or uint16"),
    (dict(pred=np.zeros((4, 4), np.int64)), TypeError, "pred must have dtype int32, uint8 or uint16"),
    (dict(gt=np.zeros((4, 4, 1), np.int32)), ValueError, "gt must be a 2-D array"),
    (dict(pred=np.zeros((4, 5), np.int32)), ValueError, "gt and pred must have the same shape"),
    (dict(gt="labels.png"), TypeError, "gt must be an array"),
    (dict(num_classes=0), ValueError, "num_classes must be an integer in 1..16384"),
    (dict(num_classes=16385), ValueError, "num_classes must be an integer in 1..16384"),
    (dict(distance=-1), ValueError, "distance must be >= 0"),
    (dict(distance=2.5), TypeError, "distance must be an integer number of pixels"),
    (dict(tolerance=True), TypeError, "tolerance must be an integer number of pixels"),
    (dict(tolerance=-3), ValueError, "tolerance must be >= 0"),
    (dict(ignore_index="void"), TypeError, "ignore_index must be None or an integer"),
    (dict(out=np.zeros((2, COLUMNS), np.int64)), ValueError, "out must have shape (3, 7), got (2, 7)"),
    (dict(out=np.zeros((3, 7), np.int32)), TypeError, "out must have dtype int64"),
]


@pytest.mark.parametrize("change,error,words", BAD)
def test_bad_input(change, error, words):
    args = dict(gt=np.zeros((4, 4), np.int32), pred=np.zeros((4, 4), np.int32), num_classes=3, distance=1,
                tolerance=1, ignore_index=None, out=None)
    args.update(change)
    for f in (kernels.boundary_counts, reference.boundary_counts):
        with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
            f(**args)


@pytest.mark.parametrize("gt_value,pred_value,ignore,words", [
    (3, 0, None, "gt has value 3 outside [0, 3)"),
    (0, 7, None, "pred has value 7 outside [0, 3)"),
    (0, 7, 255, "pred has value 7 outside [0, 3) that is not ignore_index"),
    (-1, -2, -2, "gt has value -1 outside [0, 3) that is not ignore_index"),
    (255, 3, 255, "pred has value 3 outside [0, 3) that is not ignore_index"),
])
def test_values_outside_the_classes(gt_value, pred_value, ignore, words):
    gt = np.zeros((5, 6), np.int32)
    pred = np.zeros((5, 6), np.int32)
    gt[3, 2], pred[3, 2] = gt_value, pred_value
    gt[4, 5] = pred[4, 5] = 99  # later in raster order: not the one named
    for f in (kernels.boundary_counts, reference.boundary_counts):
        with pytest.raises(ValueError) as e:
            f(gt, pred, 3, 2, 1, ignore)
        assert str(e.value) == words


def test_first_bad_value_in_raster_order_gt_before_pred():
    gt = np.zeros((6, 7), np.int32)
    pred = np.zeros((6, 7), np.int32)
    pred[2, 3], gt[2, 3], gt[2, 4], pred[1, 6] = 8, 9, 10, 11
    for f in (kernels.boundary_counts, reference.boundary_counts):
        with pytest.raises(ValueError, match=r"^pred has value 11 outside \[0, 3\)$"):
            f(gt, pred, 3, 1, 1)
        pred[1, 6] = 0
        with pytest.raises(ValueError, match=r"^gt has value 9 outside \[0, 3\)$"):
            f(gt, pred, 3, 1, 1)
        pred[1, 6] = 11


def test_the_native_binding_checks_its_own_arguments():
    # What the Python front already refuses, the binding refuses too.
    from coreseg import _native

    z = np.zeros((4, 4), np.int32)
    out = np.zeros((3, COLUMNS), np.int64)
    for args, words in [((z, z, 3, -1, 1, None, out), "distance must be >= 0"),
                        ((z, z, 3, 1, -1, None, out), "tolerance must be >= 0"),
                        ((z, z, 0, 1, 1, None, out), "num_classes must be in 1..16384"),
                        ((z, z[:3], 3, 1, 1, None, out), "gt and pred must have the same shape"),
                        ((z, z, 3, 1, 1, None, out[:, ::2]), "out must have shape"),
                        ((z, z.astype(np.float32), 3, 1, 1, None, out), "pred must have dtype")]:
        with pytest.raises((ValueError, TypeError), match=words):
            _native.boundary_counts(*args)


def test_exported():
    assert coreseg.kernels.boundary_counts is kernels.boundary.boundary_counts
    assert BOUNDARY_COLUMNS[0] == "gt_band" and len(BOUNDARY_COLUMNS) == 7
