"""HEIC photos (what iPhones save) as they come: with alpha, with 10 bits a
sample, and turned by their orientation once — on the way in to `predict`,
`read_image` and the command line, as for JPEGs."""

import subprocess
import sys

import numpy as np
import pytest

import coreseg

pillow_heif = pytest.importorskip("pillow_heif", reason="HEIC photos need pillow-heif: pip install '.[heic]'")
Image = pytest.importorskip("PIL.Image")
pillow_heif.register_heif_opener()  # for writing the test files; coreseg registers it itself to read

H, W = 64, 96


def _ramps():
    yy, xx = np.mgrid[0:H, 0:W]
    return xx, yy


def test_alpha_is_kept(tmp_path):
    xx, yy = _ramps()
    rgba = np.stack([xx * 2, yy * 3, np.full_like(xx, 128), np.where(xx < W // 2, 255, yy * 4)], -1).astype(np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.heic", quality=-1)
    got = coreseg.read_image(tmp_path / "a.heic")
    assert got.shape == (H, W, 4) and got.dtype == np.uint8
    np.testing.assert_array_equal(got[..., 3], rgba[..., 3])  # the alpha plane, exactly
    assert np.abs(got[..., :3].astype(int) - rgba[..., :3]).max() <= 4  # colour through YCbCr
    # A photo with alpha is segmented on its colour; the overlay keeps its size and alpha.
    result = coreseg.load("demo").predict(tmp_path / "a.heic")
    assert result.full_labels().shape == (H, W)
    assert result.overlay(got).shape == (H, W, 4)


def test_ten_bit_samples_are_scaled_to_eight(tmp_path):
    xx, yy = _ramps()
    ten = np.stack([xx * 10, yy * 16, np.full_like(xx, 512)], -1).astype(np.uint16)  # 0..1023
    # pillow-heif takes 16-bit data left-aligned and writes the file at 10 bits.
    pillow_heif.from_bytes(mode="RGB;16", size=(W, H), data=(ten << 6).tobytes()).save(tmp_path / "t.heic", quality=-1)
    assert pillow_heif.open_heif(tmp_path / "t.heic").info["bit_depth"] == 10
    got = coreseg.read_image(tmp_path / "t.heic")
    assert got.shape == (H, W, 3) and got.dtype == np.uint8
    expected = ten.astype(np.float64) * 255 / 1023  # 1023 is 255, not 1023 % 256 or 1023 >> 8 alone
    assert np.abs(got - expected).mean() < 1.5 and np.abs(got - expected).max() <= 8


@pytest.mark.parametrize("orientation, turn", [(3, 2), (6, -1), (8, 1)])
def test_orientation_is_applied_once(tmp_path, orientation, turn):
    stored = np.full((H, W, 3), 30, np.uint8)
    stored[: H // 4, : W // 4] = 230  # a bright corner shows which way the photo is turned
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "o.heic", exif=exif.tobytes(), quality=-1)
    Image.fromarray(stored).save(tmp_path / "o.jpg", exif=exif.tobytes(), quality=100)
    displayed = np.rot90(stored, turn)
    heic, jpeg = coreseg.read_image(tmp_path / "o.heic"), coreseg.read_image(tmp_path / "o.jpg")
    assert heic.shape == jpeg.shape == displayed.shape
    # Near the displayed photo, and far from it turned once more (libheif turns
    # it, and its EXIF orientation must not turn it again).
    assert np.abs(heic.astype(int) - displayed).mean() < 3
    assert np.abs(jpeg.astype(int) - displayed).mean() < 3
    assert coreseg.load("demo").predict(tmp_path / "o.heic").full_labels().shape == displayed.shape[:2]


def test_the_command_line_reads_heic_and_writes_jpeg(tmp_path):
    xx, yy = _ramps()
    Image.fromarray(np.stack([xx * 2, yy * 3, xx + yy], -1).astype(np.uint8)).save(tmp_path / "IMG_0001.HEIC")
    done = subprocess.run([sys.executable, "-m", "coreseg", "segment", "demo", "IMG_0001.HEIC", "--out", "out"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["IMG_0001.areas.json", "IMG_0001.labels.png", "IMG_0001.overlay.jpg"], written
    with Image.open(tmp_path / "out/IMG_0001.overlay.jpg") as im:
        assert im.format == "JPEG" and im.size == (W, H)
