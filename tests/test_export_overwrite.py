"""`segment --export masks --force`: the STEM.masks folder is written whole
(under a temporary name, then put in place), so masks of classes no longer
present do not stay, and a symlink in its place is replaced, never written
through; and one overwrite rule for every output (`run_outputs`; Ray's
`coreseg.dist.segment` in tests/test_dist.py)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from coreseg.drawing.image_outputs import check_exports, run_outputs
from coreseg.files.safe_io import atomic_folder, existing_paths, refuse_existing

Image = pytest.importorskip("PIL.Image", reason="images need Pillow: pip install '.[images]'")


def run(*args):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_folder_replaces_a_folder_whole(tmp_path):
    target = tmp_path / "x.masks"
    atomic_folder(target, lambda d: (Path(d) / "001-a.png").write_bytes(b"a"))
    assert listing(target) == ["001-a.png"]
    atomic_folder(target, lambda d: (Path(d) / "002-b.png").write_bytes(b"b"))
    assert listing(target) == ["002-b.png"]  # nothing of the first run left
    assert listing(tmp_path) == ["x.masks"]  # no temporary or old folder left


def test_atomic_folder_replaces_a_symlink_and_leaves_its_target(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    out = tmp_path / "out"
    out.mkdir()
    link = out / "x.masks"
    link.symlink_to(outside, target_is_directory=True)
    atomic_folder(link, lambda d: (Path(d) / "001-a.png").write_bytes(b"a"))
    assert not link.is_symlink() and listing(link) == ["001-a.png"]
    assert listing(outside) == ["keep.txt"] and (outside / "keep.txt").read_text() == "mine"
    dangling = out / "y.masks"
    dangling.symlink_to(tmp_path / "nowhere")
    atomic_folder(dangling, lambda d: None)
    assert dangling.is_dir() and not dangling.is_symlink() and not (tmp_path / "nowhere").exists()


def test_atomic_folder_failure_leaves_what_was_there(tmp_path):
    target = tmp_path / "x.masks"
    atomic_folder(target, lambda d: (Path(d) / "001-a.png").write_bytes(b"a"))

    def fail(d):
        (Path(d) / "002-b.png").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="x.masks"):
        atomic_folder(target, fail)
    assert listing(target) == ["001-a.png"] and listing(tmp_path) == ["x.masks"]
    with pytest.raises(KeyboardInterrupt):
        atomic_folder(target, lambda d: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert listing(target) == ["001-a.png"] and listing(tmp_path) == ["x.masks"]


def test_run_outputs_lists_every_output_and_existing_counts_symlinks(tmp_path):
    images = [Path("a.jpg"), Path("b.png")]
    fmt = {Path("a.jpg"): "jpg", Path("b.png"): "png"}.get
    names = [p.name for p in run_outputs(tmp_path, images, fmt, exports={"masks", "polygons", "coco"})]
    assert names == ["a.overlay.jpg", "a.labels.png", "a.areas.json", "a.masks", "a.polygons.json",
                     "b.overlay.png", "b.labels.png", "b.areas.json", "b.masks", "b.polygons.json",
                     "annotations.json"]
    assert [p.name for p in run_outputs(tmp_path, images, fmt, areas_only=True)] == ["a.areas.json", "b.areas.json"]
    (tmp_path / "a.masks").symlink_to(tmp_path / "nowhere")  # dangling: still in the way
    paths = run_outputs(tmp_path, images, fmt, exports={"masks"})
    assert existing_paths(paths) == [tmp_path / "a.masks"]
    with pytest.raises(FileExistsError, match=r"a.masks exists; pass --force to overwrite"):
        refuse_existing(paths, False)
    refuse_existing(paths, True)
    with pytest.raises(ValueError, match="unknown export 'mask'; the exports are masks, polygons, coco"):
        check_exports(["mask"])
    assert check_exports("coco") == {"coco"}


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_segment_force_writes_the_masks_folder_whole(tmp_path, jobs):
    pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here")
    from coreseg import demo

    photos = tmp_path / "photos"
    photos.mkdir()
    image, _ = demo.scene(2_000_300, (160, 120))
    Image.fromarray(image).save(photos / "p.png")
    Image.fromarray(demo.scene(2_000_301, (160, 120))[0]).save(photos / "q.png")
    out = tmp_path / "out"
    assert run("segment", "demo", photos, "--export", "masks", "--out", out, "--jobs", jobs).returncode == 0
    first = listing(out / "p.masks")
    # An earlier run's mask of a class this one does not find.
    stale = out / "p.masks" / "999-stale.png"
    stale.write_bytes((out / "p.masks" / first[0]).read_bytes())
    # And q.masks a symlink to a folder outside --out.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "notes.txt").write_text("not coreseg's")
    os.rename(out / "q.masks", tmp_path / "q-before")
    (out / "q.masks").symlink_to(outside, target_is_directory=True)
    r = run("segment", "demo", photos, "--export", "masks", "--out", out, "--jobs", jobs)
    assert r.returncode == 1 and "exists" in r.stderr and "pass --force" in r.stderr
    r = run("segment", "demo", photos, "--export", "masks", "--out", out, "--jobs", jobs, "--force")
    assert r.returncode == 0, r.stderr
    assert listing(out / "p.masks") == first  # the stale mask is gone
    assert not (out / "q.masks").is_symlink() and listing(out / "q.masks") == listing(tmp_path / "q-before")
    assert listing(outside) == ["notes.txt"]  # nothing written outside --out
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left


def test_segment_refuses_a_dangling_symlink_without_force(tmp_path):
    pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here")
    from coreseg import demo

    Image.fromarray(demo.scene(2_000_302, (64, 48))[0]).save(tmp_path / "p.png")
    out = tmp_path / "out"
    out.mkdir()
    (out / "p.masks").symlink_to(tmp_path / "elsewhere")
    r = run("segment", "demo", tmp_path / "p.png", "--export", "masks", "--out", out)
    assert r.returncode == 1 and f"{out / 'p.masks'} exists" in r.stderr
    assert not (tmp_path / "elsewhere").exists()
    r = run("segment", "demo", tmp_path / "p.png", "--export", "masks", "--out", out, "--force")
    assert r.returncode == 0, r.stderr
    assert (out / "p.masks").is_dir() and not (out / "p.masks").is_symlink() and not (tmp_path / "elsewhere").exists()
