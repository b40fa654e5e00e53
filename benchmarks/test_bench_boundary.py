"""boundary_counts (Boundary IoU and boundary F counts of every class) on a
1920x1080 map with 20 classes, at the default distance (2 % of the
diagonal: 44 px) and tolerance (0.8 %: 18 px), beside what users run
today: boundary-iou-api's mask_to_boundary per class in OpenCV (3x3
erosion d times - OpenCV runs it as one erosion by a (2d+1)^2 square -
plus dilations for the F-score's matching), and a memcpy floor."""

import cv2
import numpy as np
import pytest
from conftest import slow

from coreseg import kernels, reference

BOUNDARY = "boundary_counts 1920x1080, 20 classes, d=44, t=18"
CLASSES, DISTANCE, TOLERANCE = 20, 44, 18


def _blocky(rng, shape, classes, block):
    h, w = shape
    small = rng.integers(0, classes, (h // block + 1, w // block + 1))
    return np.repeat(np.repeat(small, block, 0), block, 1)[:h, :w]


@pytest.fixture(scope="module")
def gt_pred():
    rng = np.random.default_rng(2)
    gt = _blocky(rng, (1080, 1920), CLASSES, 40).astype(np.int32)
    # An upsampled model output: right or wrong in small blocks (4x4).
    pred = np.where(_blocky(rng, gt.shape, 10, 4) > 0, gt, _blocky(rng, gt.shape, CLASSES, 8)).astype(np.int32)
    return gt, pred


def _counts(gt, pred, erode):
    """All 7 columns per class the way the official code makes bands:
    a binary mask per class, its band by `erode`, its contour the band of
    distance 1, the matching by dilating the other map's contour."""
    tolerance_square = np.ones((2 * TOLERANCE + 1, 2 * TOLERANCE + 1), np.uint8)
    out = np.zeros((CLASSES, 7), np.int64)
    for c in range(CLASSES):
        masks = (gt == c).astype(np.uint8), (pred == c).astype(np.uint8)
        band_g, band_p = (m - erode(m, DISTANCE) for m in masks)
        contour_g, contour_p = (m - erode(m, 1) for m in masks)
        near_g, near_p = cv2.dilate(contour_g, tolerance_square), cv2.dilate(contour_p, tolerance_square)
        out[c] = [np.count_nonzero(a) for a in (band_g, band_p, band_g & band_p, contour_p, contour_p & near_g,
                                                contour_g, contour_g & near_p)]
    return out


def _erode_iterations(mask, d):
    # boundary-iou-api's mask_to_boundary: zero padding, 3x3 erosion d times.
    h, w = mask.shape
    padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    return cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=d)[1:h + 1, 1:w + 1]


def opencv_official(gt, pred):
    return _counts(gt, pred, _erode_iterations)


def test_coreseg(benchmark, gt_pred):
    benchmark.group = BOUNDARY
    gt, pred = gt_pred
    out = np.empty((CLASSES, 7), np.int64)
    benchmark(kernels.boundary_counts, gt, pred, CLASSES, DISTANCE, TOLERANCE, None, out)
    np.testing.assert_array_equal(out, opencv_official(gt, pred))


def test_coreseg_one_thread(benchmark, gt_pred, one_thread):
    benchmark.group = BOUNDARY
    out = np.empty((CLASSES, 7), np.int64)
    benchmark(kernels.boundary_counts, *gt_pred, CLASSES, DISTANCE, TOLERANCE, None, out)


def test_opencv_mask_to_boundary(benchmark, gt_pred):
    benchmark.group = BOUNDARY
    slow(benchmark, lambda: opencv_official(*gt_pred))


def test_reference(benchmark, gt_pred):
    benchmark.group = BOUNDARY
    slow(benchmark, lambda: reference.boundary_counts(*gt_pred, CLASSES, DISTANCE, TOLERANCE))


def test_memcpy_floor(benchmark, gt_pred):
    # Both maps have to be read once.
    benchmark.group = BOUNDARY
    both = np.stack(gt_pred)
    out = np.empty_like(both)
    benchmark(np.copyto, out, both)
