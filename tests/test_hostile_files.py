"""Hostile and unlucky files: package manifests that point outside the
package, deeply nested JSON, decompression bombs, a disk that fills up or a
failure mid-write, symlinks at output paths, a bad image in a batch. Each
gets one clear error naming the file, and nothing outside the output is
ever written."""

import errno
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest

import coreseg
from coreseg import ModelError
from coreseg.files import safe_io as _files
from coreseg.files.images import read_image, write_png

cm = pytest.importorskip("coreml_models", reason="coremltools has no wheel for this platform")


def run(*args):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def png_declaring(path, width, height):
    """A few dozen bytes of PNG that declare width x height pixels."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture
def package(tmp_path):
    path = tmp_path / "m.mlpackage"
    cm.segmenter().save(str(path))
    return path


def manifest(package):
    return json.loads((package / "Manifest.json").read_text())


def point_spec_at(package, name):
    data = manifest(package)
    data["itemInfoEntries"][data["rootModelIdentifier"]]["path"] = name
    (package / "Manifest.json").write_text(json.dumps(data))


# ---- model packages ---------------------------------------------------------------


@pytest.mark.parametrize("where", ["../../outside.mlmodel", "/etc/passwd", "com.apple.CoreML/../../../outside.mlmodel"])
def test_a_manifest_cannot_point_outside_the_package(package, tmp_path, where):
    outside = tmp_path / "outside.mlmodel"
    outside.write_bytes(b"precious")
    point_spec_at(package, where)
    with pytest.raises(ModelError, match="which is outside the package"):
        coreseg.inspect(package)
    with pytest.raises(ModelError, match="which is outside the package"):
        coreseg.annotate(package, ["a", "b", "c"], tmp_path / "copy.mlpackage", force=True)
    assert outside.read_bytes() == b"precious"


def test_a_symlinked_spec_cannot_lead_outside(package, tmp_path):
    outside = tmp_path / "outside.mlmodel"
    spec, _ = coreseg.modelfiles.coreml_file.spec_file(package)
    outside.write_bytes(spec.read_bytes())
    spec.unlink()
    spec.symlink_to(outside)
    with pytest.raises(ModelError, match="which is outside the package"):
        coreseg.annotate(package, ["a", "b", "c"], tmp_path / "copy.mlpackage")
    assert outside.read_bytes() == spec.read_bytes()


def test_a_huge_manifest_is_not_read(package):
    (package / "Manifest.json").write_text(" " * (2 << 20) + "{}")
    with pytest.raises(ModelError, match="Manifest.json is larger than a manifest can be"):
        coreseg.inspect(package)


def test_deeply_nested_json_is_a_clear_error(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.mlpackage"
    cm.segmenter(user_defined={cm.PARAMS: deep}).save(str(path))
    with pytest.raises(ModelError, match="nested too deeply"):
        coreseg.inspect(path)
    deep_json = tmp_path / "deep.json"
    deep_json.write_text(deep)
    with pytest.raises(ValueError, match="deep.json: the JSON is nested too deeply to read"):
        _files.read_json(deep_json)
    from coreseg.groundtruth import GroundTruthError, read_color_table

    with pytest.raises(GroundTruthError, match="nested too deeply"):
        read_color_table(deep_json)


# ---- images ------------------------------------------------------------------------


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path):
    bomb = png_declaring(tmp_path / "bomb.png", 100_000, 100_000)
    assert bomb.stat().st_size < 100
    with pytest.raises(ValueError, match=r"bomb.png: 100000x100000 is 10000000000 pixels, more than coreseg decodes"):
        read_image(bomb)
    big = png_declaring(tmp_path / "big.png", 12_000, 12_000)  # 144 megapixels of zlib
    with pytest.raises(ValueError, match="more than coreseg decodes"):
        read_image(big)
    done = run("segment", "demo", bomb, "--out", tmp_path / "out")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "more than coreseg decodes" in done.stderr
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_the_pixel_limit_can_be_raised(tmp_path, monkeypatch):
    image = np.zeros((30, 40, 3), np.uint8)
    write_png(tmp_path / "small.png", image)
    monkeypatch.setenv("CORESEG_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ValueError, match=r"40x30 is 1200 pixels, more than coreseg decodes \(1000"):
        read_image(tmp_path / "small.png")
    monkeypatch.setenv("CORESEG_MAX_IMAGE_PIXELS", "1200")
    assert read_image(tmp_path / "small.png").shape == (30, 40, 3)


# ---- writing ---------------------------------------------------------------------------


def test_a_failure_mid_write_leaves_the_old_file(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"the good old file")

    def half_then_fail(tmp):
        with open(tmp, "wb") as f:
            f.write(b"half of a new fi")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"No space left on device \(writing .*out.png\)"):
        _files.atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"the good old file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]  # no temporary left


def test_outputs_replace_symlinks_never_their_targets(tmp_path):
    precious = tmp_path / "precious.txt"
    precious.write_text("do not touch")
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").symlink_to(precious)
    (out / "b.png").symlink_to(tmp_path / "nowhere.png")  # dangling
    write_png(out / "a.png", np.zeros((2, 2, 3), np.uint8))
    write_png(out / "b.png", np.zeros((2, 2, 3), np.uint8))
    assert precious.read_text() == "do not touch" and not (tmp_path / "nowhere.png").exists()
    assert not (out / "a.png").is_symlink() and read_image(out / "a.png").shape == (2, 2, 3)


def test_segment_keeps_going_past_a_bad_image(tmp_path):
    good = tmp_path / "good.png"
    write_png(good, np.full((40, 60, 3), 90, np.uint8))
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "out"
    stopped = run("segment", "demo", good, bad, "--out", out)
    assert stopped.returncode == 1 and "bad.png: not a readable image" in stopped.stderr
    assert not out.exists()  # every input is checked before anything is written
    kept = run("segment", "demo", good, bad, "--out", out, "--keep-going")
    assert kept.returncode == 1
    assert (out / "good.overlay.png").is_file() and not (out / "bad.overlay.png").exists()
    assert "skipped" in kept.stderr and "bad.png" in kept.stderr and "1 of 2 images failed" in kept.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporaries
