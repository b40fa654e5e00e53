"""Reading photos fast and writing maps fast, without changing a pixel:
`read_image`'s simplejpeg path and reduced-scale decode against Pillow's,
and the greyscale PNG writer against Pillow's and OpenCV's readers."""

import numpy as np
import pytest

import coreseg
from coreseg.files import images as _images

Image = pytest.importorskip("PIL.Image", reason="image files need Pillow: pip install '.[images]'")
ImageOps = pytest.importorskip("PIL.ImageOps")
cv2 = pytest.importorskip("cv2", reason="reading PNGs back with OpenCV: pip install '.[groundtruth]'")
pytest.importorskip("simplejpeg", reason="the fast JPEG path needs simplejpeg: pip install '.[images]'")


def photo(w, h, seed=0):
    y, x = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + y) % 256], -1)
    return (img + rng.integers(-20, 20, img.shape)).clip(0, 255).astype(np.uint8)


def save_jpeg(path, array, orientation=None, mode=None):
    im = Image.fromarray(array)
    if mode:
        im = im.convert(mode)
    kwargs = {"quality": 90}
    if orientation is not None:
        exif = im.getexif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif
    im.save(path, **kwargs)
    return path


def read_with_pillow(path, min_size=None, monkeypatch=None):
    with monkeypatch.context() as m:
        m.setattr(_images, "_decode_jpeg", lambda *a: None)
        return coreseg.read_image(path, min_size=min_size)


def pillow_reference(path, scale=1):
    """What a user gets from Pillow alone: draft, EXIF transpose, RGB."""
    im = Image.open(path)
    if scale > 1:
        im.draft(im.mode, (im.size[0] // scale, im.size[1] // scale))
    return np.asarray(ImageOps.exif_transpose(im).convert("RGB"))


@pytest.mark.parametrize("orientation", [None, 1, 2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_simplejpeg_and_pillow_decode_the_same_pixels(tmp_path, monkeypatch, orientation, mode):
    path = save_jpeg(tmp_path / "p.jpg", photo(203, 117, orientation or 0), orientation, mode)
    fast = coreseg.read_image(path)
    assert fast.dtype == np.uint8 and fast.flags.c_contiguous
    np.testing.assert_array_equal(fast, read_with_pillow(path, monkeypatch=monkeypatch))
    np.testing.assert_array_equal(fast, pillow_reference(path))


@pytest.mark.parametrize("orientation", [1, 6])
@pytest.mark.parametrize("min_size, scale", [((448, 448), 2), ((200, 100), 8), ((240, 135), 8), ((241, 135), 4),
                                             ((3000, 10), 1), ((1, 1), 8)])
def test_reduced_decode_keeps_the_requested_size(tmp_path, monkeypatch, orientation, min_size, scale):
    # 1920x1080 stored; with orientation 6 it is shown 1080x1920, and min_size is in the shown frame.
    array = photo(1920, 1080)
    path = save_jpeg(tmp_path / "p.jpg", array, orientation)
    if orientation == 6:
        min_size = min_size[::-1]
    got = coreseg.read_image(path, min_size=min_size)
    shown = (1080, 1920) if orientation == 1 else (1920, 1080)
    assert got.shape == (-(-shown[0] // scale), -(-shown[1] // scale), 3)
    if scale > 1:  # otherwise no reduction meets min_size and the photo is decoded whole
        assert got.shape[1] >= min_size[0] and got.shape[0] >= min_size[1]
    np.testing.assert_array_equal(got, read_with_pillow(path, min_size, monkeypatch))
    np.testing.assert_array_equal(got, pillow_reference(path, scale))


def test_min_size_leaves_other_formats_whole(tmp_path):
    Image.fromarray(photo(64, 48)).save(tmp_path / "p.png")
    assert coreseg.read_image(tmp_path / "p.png", min_size=(8, 8)).shape == (48, 64, 3)


@pytest.mark.parametrize("bad", [(0, 10), (10, -1)])
def test_min_size_must_be_positive(tmp_path, bad):
    path = save_jpeg(tmp_path / "p.jpg", photo(32, 32))
    with pytest.raises(ValueError, match="min_size"):
        coreseg.read_image(path, min_size=bad)


def test_cmyk_jpeg_is_converted_as_pillow_does(tmp_path):
    path = save_jpeg(tmp_path / "p.jpg", photo(40, 30), mode="CMYK")
    np.testing.assert_array_equal(coreseg.read_image(path), pillow_reference(path))


def test_truncated_jpeg_is_an_error_naming_the_file(tmp_path):
    data = save_jpeg(tmp_path / "p.jpg", photo(320, 240)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cut.jpg"):
        coreseg.read_image(tmp_path / "cut.jpg")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (257, 301)])
def test_grey_png_round_trips_through_pillow_and_opencv(tmp_path, dtype, shape):
    rng = np.random.default_rng(shape[0])
    labels = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    for array in (labels, labels[:, ::-1], labels.astype(labels.dtype.newbyteorder())):  # strided, big-endian
        _images.write_png(tmp_path / "m.png", array)
        np.testing.assert_array_equal(cv2.imread(str(tmp_path / "m.png"), cv2.IMREAD_UNCHANGED), array)
        with Image.open(tmp_path / "m.png") as im:
            assert im.mode == ("L" if dtype == np.uint8 else "I;16")
            np.testing.assert_array_equal(np.asarray(im), array)


def test_grey_png_refuses_an_empty_map(tmp_path):
    with pytest.raises(ValueError, match="0x4"):
        _images.write_png(tmp_path / "m.png", np.zeros((4, 0), np.uint16))
    assert not (tmp_path / "m.png").exists()
