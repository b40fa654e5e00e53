"""Bad input raises TypeError/ValueError naming the argument, identically in
the native API and the reference."""

import numpy as np
import pytest

import coreseg
from coreseg import reference

APIS = pytest.mark.parametrize("api", [coreseg, reference], ids=["native", "reference"])

LAB = np.zeros((4, 5), np.int32)
IMG = np.zeros((8, 10, 3), np.uint8)
PAL = coreseg.default_palette(3)


@APIS
@pytest.mark.parametrize("labels, error, message", [
    (np.zeros((4, 5), np.int64), TypeError, "labels must have dtype int32, uint8 or uint16, got int64"),
    (np.zeros((4, 5), np.float32), TypeError, "labels must have dtype int32, uint8 or uint16, got float32"),
    (np.zeros((4, 5), bool), TypeError, "labels must have dtype"),
    (np.zeros((4, 5, 1), np.int32), ValueError, r"labels must be a 2-D array, got shape \(4, 5, 1\)"),
    (np.zeros(5, np.uint8), ValueError, "labels must be a 2-D array"),
    ("labels.png", TypeError, "labels must be an array"),
])
def test_bad_labels(api, labels, error, message):
    for call in (lambda: api.render_mask(labels, 1), lambda: api.colorize(labels, PAL),
                 lambda: api.resize_labels(labels, (3, 3)), lambda: api.composite(IMG, labels, PAL)):
        with pytest.raises(error, match=message):
            call()


@APIS
@pytest.mark.parametrize("image, error, message", [
    (np.zeros((8, 10, 3), np.float32), TypeError, "image must have dtype uint8, got float32"),
    (np.zeros((8, 10, 3), np.uint16), TypeError, "image must have dtype uint8, got uint16"),
    (np.zeros((8, 10, 2), np.uint8), ValueError, r"image must have shape \(h, w, 3\) or \(h, w, 4\), got \(8, 10, 2\)"),
    (np.zeros((8, 10), np.uint8), ValueError, "image must have shape"),
])
def test_bad_image(api, image, error, message):
    with pytest.raises(error, match=message):
        api.composite(image, LAB, PAL)
    with pytest.raises(error, match=message):
        api.resize_image(image, (4, 4))


@APIS
@pytest.mark.parametrize("palette, error, message", [
    (np.zeros((3, 5), np.uint8), ValueError, r"palette must have shape \(n, 4\) or \(n, 3\), got \(3, 5\)"),
    (np.zeros(4, np.uint8), ValueError, "palette must have shape"),
    (np.zeros((3, 4), np.float64), TypeError, "palette must have dtype uint8, got float64"),
    ([[0, 0, 300, 0]], ValueError, "palette values must be in 0..255"),
    ([[0, 0, -1]], ValueError, "palette values must be in 0..255"),
])
def test_bad_palette(api, palette, error, message):
    with pytest.raises(error, match=message):
        api.colorize(LAB, palette)
    with pytest.raises(error, match=message):
        api.composite(IMG, LAB, palette)


@APIS
@pytest.mark.parametrize("opacity, error", [
    (float("nan"), ValueError), (-0.1, ValueError), (1.5, ValueError), ("0.5", TypeError), (None, TypeError),
])
def test_bad_opacity(api, opacity, error):
    with pytest.raises(error, match="opacity"):
        api.composite(IMG, LAB, PAL, opacity=opacity)


@APIS
def test_bad_colors_and_ids(api):
    with pytest.raises(ValueError, match="color values must be in 0..255"):
        api.render_mask(LAB, 1, color=(0, 0, 256))
    with pytest.raises(ValueError, match="color must have 3 or 4 values"):
        api.render_mask(LAB, 1, color=(0, 0))
    with pytest.raises(ValueError, match="not a hex colour"):
        api.render_mask(LAB, 1, color="#12345")
    with pytest.raises(TypeError, match="outline values must be integers"):
        api.composite(IMG, LAB, PAL, outline=(0.5, 0, 0))
    with pytest.raises(TypeError, match="selected must contain integers"):
        api.render_mask(LAB, [1, 2.5])
    with pytest.raises(TypeError, match="selected must be an integer or a sequence"):
        api.render_mask(LAB, "sky")
    with pytest.raises(TypeError, match="selected must contain integers, got dtype float64"):
        api.render_mask(LAB, np.array([1.0]))


@APIS
def test_bad_sizes_and_layouts(api):
    with pytest.raises(TypeError, match=r"size must be \(width, height\)"):
        api.resize_labels(LAB, 5)
    with pytest.raises(TypeError, match="size must be two integers"):
        api.resize_image(IMG, (4.0, 3))
    with pytest.raises(ValueError, match=r"size must be at least \(1, 1\), got \(0, 3\)"):
        api.resize_image(IMG, (0, 3))
    with pytest.raises(ValueError, match=r"size must be at least \(0, 0\)"):
        api.resize_labels(LAB, (-1, 3))
    with pytest.raises(ValueError, match="layout must be one of RGBA, BGRA, ARGB, RGB, BGR, got 'YUV'"):
        api.resize_image(IMG, (4, 4), layout="YUV")
    with pytest.raises(ValueError, match="labels is empty: there is nothing to resize from"):
        api.resize_labels(np.zeros((0, 3), np.uint8), (4, 4))
    with pytest.raises(ValueError, match="labels is empty but image is not"):
        api.composite(IMG, np.zeros((0, 3), np.uint8), PAL)
    with pytest.raises(ValueError, match="image is empty"):
        api.resize_image(np.zeros((0, 3, 3), np.uint8), (4, 4))


@APIS
def test_bad_out(api):
    with pytest.raises(ValueError, match=r"out must have shape \(4, 5, 4\), got \(4, 4, 4\)"):
        api.colorize(LAB, PAL, out=np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(TypeError, match="out must have dtype uint8, got int32"):
        api.colorize(LAB, PAL, out=np.zeros((4, 5, 4), np.int32))
    with pytest.raises(TypeError, match="out must have dtype int32, got uint8"):
        api.resize_labels(LAB, (2, 2), out=np.zeros((2, 2), np.uint8))
    with pytest.raises(TypeError, match="out must be a numpy array"):
        api.colorize(LAB, PAL, out=[[0]])
    readonly = np.zeros((4, 5, 4), np.uint8)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="out must be writable"):
        api.colorize(LAB, PAL, out=readonly)
    with pytest.raises(ValueError, match="out must have packed rows"):
        api.colorize(LAB, PAL, out=np.zeros((4, 10, 4), np.uint8)[:, ::2])
    image = np.zeros((8, 10, 4), np.uint8)
    with pytest.raises(ValueError, match="out overlaps an input array"):
        api.composite(image, LAB, PAL, out=image[::-1])
    labels = np.zeros((4, 4), np.uint8)
    with pytest.raises(ValueError, match="out overlaps an input array"):
        api.resize_labels(labels, (4, 4), out=labels)


def test_bindings_check_arrays_themselves():
    # The extension never trusts its caller: arrays the kernels cannot read
    # are refused even when coreseg.kernels is bypassed.
    from coreseg import _native

    out = np.zeros((4, 5, 4), np.uint8)
    with pytest.raises(TypeError, match="labels must have dtype int32, uint8 or uint16, got float64"):
        _native.colorize(np.zeros((4, 5)), PAL, out)
    with pytest.raises(ValueError, match="labels must have packed rows"):
        _native.colorize(np.zeros((4, 10), np.int32)[:, ::2], PAL, out)
    with pytest.raises(ValueError, match="image must have packed pixels"):
        _native.resize_image(np.zeros((4, 5, 3), np.uint8)[..., ::-1], [0, 1, 2, 3], out)
    with pytest.raises(ValueError, match="out must have shape"):
        _native.colorize(np.zeros((3, 5), np.int32), PAL, out)
    with pytest.raises(ValueError, match="opacity must be a number in"):
        _native.composite(IMG, LAB, PAL, float("nan"), None, np.zeros_like(IMG))
    with pytest.raises(ValueError, match="SIMD backend 'mmx' is not available"):
        _native.set_simd_backend("mmx")
    with pytest.raises(ValueError, match=r"n must be in 1..256, got 0"):
        coreseg.set_num_threads(0)


@APIS
def test_bad_scores(api):
    with pytest.raises(TypeError, match="scores must have dtype float32 or float16, got float64"):
        api.upsample_argmax(np.zeros((3, 4, 5)), (8, 8))
    with pytest.raises(ValueError, match=r"scores must have shape \(classes, h, w\)"):
        api.upsample_argmax(np.zeros((4, 5), np.float32), (8, 8))
    with pytest.raises(ValueError, match="scores must have at least one class"):
        api.upsample_argmax(np.zeros((0, 4, 5), np.float32), (8, 8))
    with pytest.raises(ValueError, match="scores has 65537 classes; at most 65536"):
        api.upsample_argmax(np.zeros((65537, 1, 1), np.float32), (8, 8))
    with pytest.raises(ValueError, match="scores is empty"):
        api.upsample_argmax(np.zeros((2, 0, 5), np.float32), (8, 8))
    with pytest.raises(TypeError, match=r"size must be \(width, height\)"):
        api.upsample_argmax(np.zeros((2, 4, 5), np.float32), 8)
    with pytest.raises(ValueError, match=r"out must have shape \(8, 9\)"):
        api.upsample_argmax(np.zeros((2, 4, 5), np.float32), (9, 8), out=np.zeros((9, 8), np.int32))


@APIS
def test_bad_logits(api):
    with pytest.raises(TypeError, match="logits must have dtype float32 or float16, got float64"):
        api.argmax(np.zeros((3, 4, 5)))
    with pytest.raises(ValueError, match=r"logits must have shape \(classes, h, w\)"):
        api.argmax(np.zeros((4, 5), np.float32))
    with pytest.raises(ValueError, match=r"must have one image \(shape \(1, classes, h, w\)\), got shape \(2, 3, 4, 5\)"):
        api.argmax(np.zeros((2, 3, 4, 5), np.float32))
    with pytest.raises(ValueError, match="logits must have at least one class"):
        api.argmax(np.zeros((0, 4, 5), np.float32))
    with pytest.raises(ValueError, match=r"out must have shape \(4, 5\)"):
        api.argmax(np.zeros((3, 4, 5), np.float32), out=np.zeros((5, 4), np.int32))
