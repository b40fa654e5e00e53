"""coreseg._native.convert_array: the kernel the Core ML backend copies
results with (strided, any of int32/float16/float32/float64 to another),
against numpy's own conversions, bit for bit."""

import numpy as np
import pytest

from coreseg import _native

TYPES = [np.int32, np.float16, np.float32, np.float64]


def views(a):
    """The array itself and strided views of it, as Core ML's padded rows
    and other layouts look: a sliced last axis, a transpose, reversed rows."""
    yield a
    yield a[..., ::2]
    yield a.swapaxes(-1, -2)
    yield a[::-1]


@pytest.mark.parametrize("src_type", TYPES)
@pytest.mark.parametrize("dst_type", [np.float16, np.float32, np.float64])
def test_float_destinations_match_numpy(src_type, dst_type):
    rng = np.random.default_rng(0)
    base = (rng.standard_normal((2, 3, 7, 10)) * 300).astype(src_type)
    for src in views(base):
        out = np.empty(src.shape, dst_type)
        _native.convert_array(src, out)
        expected = src.astype(dst_type)
        assert out.tobytes() == expected.tobytes()


@pytest.mark.parametrize("src_type", TYPES)
def test_whole_numbers_become_int32(src_type):
    ids = np.random.default_rng(1).integers(-1000, 1000, (5, 9, 11)).astype(src_type)
    for src in views(ids):
        out = np.empty(src.shape, np.int32)
        _native.convert_array(src, out)
        np.testing.assert_array_equal(out, src.astype(np.int32))
    out = np.empty((1, 3), np.int32)
    _native.convert_array(np.array([[-2147483648.0, 0.0, 2147483647.0]]), out)
    assert out.tolist() == [[-2147483648, 0, 2147483647]]


@pytest.mark.parametrize("bad", [0.5, np.nan, np.inf, -np.inf, 2147483648.0, -2147483649.0])
def test_floats_that_are_no_class_id_are_errors(bad):
    src = np.array([[1.0, 2.0], [3.0, bad]])
    with pytest.raises(ValueError, match="which is not a whole number that fits int32"):
        _native.convert_array(src, np.empty((2, 2), np.int32))


def test_float_to_half_rounds_as_numpy():
    # Every float16 boundary case: ties (to even), subnormals, the smallest
    # normal, overflow to inf near 65520, NaN and signed zeros.
    special = np.array([0.0, -0.0, 1e-8, 2.0**-25, 2.0**-24, 3 * 2.0**-25, 2.0**-14 - 2.0**-26, 2.0**-14,
                        65504.0, 65519.99, 65520.0, 1e6, -1e6, np.inf, -np.inf, 1 + 2.0**-11, 1 + 3 * 2.0**-11,
                        2049.0, 2051.0], np.float32)
    bits = np.random.default_rng(2).integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32)
    values = np.concatenate([special, bits.view(np.float32)])
    with np.errstate(invalid="ignore"):  # NaN payloads
        wide = values.astype(np.float64)  # float32 values: exact as float64 too
    for src in (values, wide):
        out = np.empty(src.shape, np.float16)
        _native.convert_array(src, out)
        with np.errstate(over="ignore", invalid="ignore"):
            expected = src.astype(np.float16)
        nan = np.isnan(expected)
        assert np.array_equal(np.isnan(out), nan)
        assert out[~nan].tobytes() == expected[~nan].tobytes()


def test_bad_arguments():
    with pytest.raises(TypeError, match="src must have dtype int32, float16, float32 or float64, got uint8"):
        _native.convert_array(np.zeros(3, np.uint8), np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="out must have as many elements as src"):
        _native.convert_array(np.zeros(3, np.float32), np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="writable C-contiguous"):
        _native.convert_array(np.zeros((3, 3), np.float32), np.zeros((3, 3), np.int32).T)
    empty = np.zeros((0, 4), np.int32)
    _native.convert_array(np.zeros((0, 4), np.float32), empty)  # nothing to do
