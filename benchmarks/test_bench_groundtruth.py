"""decode_colors on a 4032x3024 16-bit map with 40 colours; confusion_matrix
on 2048x1024 with 134 classes."""

import numpy as np
import pytest
from conftest import slow

import coreseg
from coreseg import reference

DECODE = "decode_colors 4032x3024 uint16, 40 colours"
CONFUSION = "confusion_matrix 2048x1024, 134 classes"


def _blocky(rng, shape, classes, block):
    h, w = shape
    small = rng.integers(0, classes, (h // block + 1, w // block + 1))
    return np.repeat(np.repeat(small, block, 0), block, 1)[:h, :w]


@pytest.fixture(scope="module")
def color_coded():
    rng = np.random.default_rng(0)
    colors = np.unique(rng.integers(0, 65536, (40, 3)), axis=0).astype(np.uint16)
    ids = _blocky(rng, (3024, 4032), len(colors), 24)
    return np.ascontiguousarray(colors[ids]), colors


@pytest.fixture(scope="module")
def gt_pred():
    rng = np.random.default_rng(1)
    gt = _blocky(rng, (1024, 2048), 134, 16).astype(np.int32)
    # A prediction is an upsampled model output: right or wrong in small blocks
    # (4x4, a stride-4 model), not pixel by pixel.
    pred = np.where(_blocky(rng, gt.shape, 10, 4) > 0, gt, _blocky(rng, gt.shape, 134, 8)).astype(np.int32)
    return gt, pred


def numpy_decode(rgb, colors):
    # The best numpy idiom: pack each colour into one integer, then look it
    # up in the sorted table.
    def pack(a):
        a = a.astype(np.uint64)
        return a[..., 0] | (a[..., 1] << np.uint64(16)) | (a[..., 2] << np.uint64(32))

    keys = pack(colors)
    order = np.argsort(keys)
    return order[np.searchsorted(keys[order], pack(rgb))].astype(np.int32)


def test_decode_coreseg(benchmark, color_coded):
    benchmark.group = DECODE
    rgb, colors = color_coded
    out = np.empty(rgb.shape[:2], np.int32)
    benchmark(coreseg.decode_colors, rgb, colors, None, out)
    np.testing.assert_array_equal(out, numpy_decode(rgb, colors))


def test_decode_numpy(benchmark, color_coded):
    benchmark.group = DECODE
    slow(benchmark, lambda: numpy_decode(*color_coded))


def test_decode_reference(benchmark, color_coded):
    benchmark.group = DECODE
    slow(benchmark, lambda: reference.decode_colors(*color_coded))


def test_decode_memcpy_floor(benchmark, color_coded):
    # The map has to be read once.
    benchmark.group = DECODE
    rgb = color_coded[0]
    out = np.empty_like(rgb)
    benchmark(np.copyto, out, rgb)


def test_confusion_coreseg(benchmark, gt_pred):
    benchmark.group = CONFUSION
    gt, pred = gt_pred
    out = np.empty((134, 134), np.int64)
    benchmark(coreseg.confusion_matrix, gt, pred, 134, None, out)
    np.testing.assert_array_equal(out, np.bincount(gt.ravel() * 134 + pred.ravel(), minlength=134 * 134).reshape(134, 134))


def test_confusion_numpy_bincount(benchmark, gt_pred):
    benchmark.group = CONFUSION
    gt, pred = gt_pred
    benchmark(lambda: np.bincount(gt.ravel() * 134 + pred.ravel(), minlength=134 * 134).reshape(134, 134))


def test_confusion_reference(benchmark, gt_pred):
    benchmark.group = CONFUSION
    slow(benchmark, lambda: reference.confusion_matrix(*gt_pred, 134))


def test_confusion_memcpy_floor(benchmark, gt_pred):
    # Both maps have to be read once.
    benchmark.group = CONFUSION
    both = np.stack(gt_pred)
    out = np.empty_like(both)
    benchmark(np.copyto, out, both)


def test_decode_coreseg_one_thread(benchmark, color_coded, one_thread):
    benchmark.group = DECODE
    rgb, colors = color_coded
    out = np.empty(rgb.shape[:2], np.int32)
    benchmark(coreseg.decode_colors, rgb, colors, None, out)


def test_confusion_coreseg_one_thread(benchmark, gt_pred, one_thread):
    benchmark.group = CONFUSION
    gt, pred = gt_pred
    out = np.empty((134, 134), np.int64)
    benchmark(coreseg.confusion_matrix, gt, pred, 134, None, out)
