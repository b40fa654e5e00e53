"""The command line as a user drives it through a working day: folders and
globs of photos, output formats, legends, highlighted classes, label maps
fed to `eval`, and the papercuts a new user met (each test drives the CLI
or API the way the user did)."""

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import coreseg
from coreseg import demo

pytestmark = pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None,
                                reason="the demo model runs through onnxruntime here: pip install '.[onnx]'")


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    (d / "more").mkdir()
    paths = []
    for i, (name, size) in enumerate([("a.png", (160, 120)), ("b.jpg", (120, 160)), ("more/c.png", (100, 80))]):
        image, _ = demo.scene(4_000_000 + i, size)
        Image.fromarray(image).save(d / name, quality=95)
        paths.append(d / name)
    return d


def outputs(folder):
    return sorted(p.name for p in folder.iterdir())


def test_folders_globs_and_formats(photos, tmp_path):
    r = run("segment", "demo", photos, "--out", tmp_path / "flat")
    assert r.returncode == 0, r.stderr
    # JPEG photos get JPEG overlays, PNGs PNG ones; label maps are always 16-bit PNG.
    assert outputs(tmp_path / "flat") == ["a.areas.json", "a.labels.png", "a.overlay.png",
                                          "b.areas.json", "b.labels.png", "b.overlay.jpg"]
    r = run("segment", "demo", photos, "--recursive", "--out", tmp_path / "deep", "--format", "webp")
    assert r.returncode == 0, r.stderr
    assert "c.overlay.webp" in outputs(tmp_path / "deep") and "b.overlay.webp" in outputs(tmp_path / "deep")
    r = run("segment", "demo", str(photos / "*.png"), "--out", tmp_path / "glob")
    assert r.returncode == 0 and outputs(tmp_path / "glob") == ["a.areas.json", "a.labels.png", "a.overlay.png"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("segment", "demo", empty)
    assert r.returncode == 1 and "no images or videos in this folder (--recursive looks in subfolders)" in r.stderr


def test_overlays_have_a_legend_unless_told(photos, tmp_path):
    image = np.asarray(Image.open(photos / "a.png"))
    model = coreseg.load("demo")
    seg = model.predict(image)
    plain = seg.overlay(image, 0.6, (255, 255, 255, 255), smooth=model.has_scores)
    assert run("segment", "demo", photos / "a.png", "--out", tmp_path / "n", "--no-legend").returncode == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "n" / "a.overlay.png")), plain)
    assert run("segment", "demo", photos / "a.png", "--out", tmp_path / "l").returncode == 0
    with_legend = np.asarray(Image.open(tmp_path / "l" / "a.overlay.png"))
    differs = np.any(with_legend != plain, axis=2)
    ys, xs = np.nonzero(differs)
    assert differs.any() and ys.min() == 0 and xs.min() == 0  # a panel in the top-left corner, nothing else
    np.testing.assert_array_equal(with_legend[ys.max() + 1:], plain[ys.max() + 1:])


def test_the_cli_legend_is_the_public_draw_legend(photos, tmp_path):
    """What notebooks call (`coreseg.drawing.legend.draw_legend`, exported
    as coreseg.draw_legend) is what `segment` draws, with --label too."""
    from coreseg.drawing.legend import draw_legend

    image = np.asarray(Image.open(photos / "a.png"))
    seg = coreseg.load("demo").predict(image)
    outline = (255, 255, 255, 255)
    assert run("segment", "demo", photos / "a.png", "--out", tmp_path / "l").returncode == 0
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "l" / "a.overlay.png")),
                                  draw_legend(seg.overlay(image, 0.6, outline), seg))
    assert run("segment", "demo", photos / "a.png", "--out", tmp_path / "h", "--label", "sky", "--label",
               "hill", "--color", "#00FF00").returncode == 0
    want = draw_legend(seg.overlay(image, 0.6, outline, classes=["sky", "hill"], color="#00FF00"), seg,
                       classes=["sky", "hill"], color="#00FF00")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "h" / "a.overlay.png")), want)


def test_draw_legend_draws_in_place_or_into_out(photos):
    from coreseg.drawing.legend import draw_legend, legend_entries

    image = np.asarray(Image.open(photos / "a.png")).copy()
    seg = coreseg.load("demo").predict(image)
    kept = image.copy()
    copy = draw_legend(image, seg, out=np.empty_like(image))
    np.testing.assert_array_equal(image, kept)  # out= given: the image is left alone
    assert draw_legend(image, seg) is image  # else in place, as on a fresh overlay
    np.testing.assert_array_equal(image, copy)
    differs = np.any(copy != kept, axis=2)
    ys, xs = np.nonzero(differs)
    assert ys.min() == 0 and xs.min() == 0 and not differs[ys.max() + 1:].any()  # the corner panel only
    # The same as drawing the entries themselves in their palette.
    entries, palette = legend_entries(seg)
    assert [name for _, name, _ in entries] == [name for _, name, _ in seg.legend()]
    np.testing.assert_array_equal(draw_legend(kept.copy(), entries, palette), copy)
    # One class asked: listed even where absent, in magenta (as overlay(classes=) draws it).
    entries, palette = legend_entries(seg, classes=["sun"])
    assert [(k, name) for k, name, _ in entries] == [(1, "sun")] and tuple(palette[1]) == (255, 0, 255, 255)
    rgba = np.dstack([kept, np.zeros(kept.shape[:2], np.uint8)])
    assert (draw_legend(rgba, seg)[:ys.max() + 1, :xs.max() + 1, 3] == 255).all()  # an opaque panel


def test_draw_legend_refuses_what_it_cannot_draw(photos):
    from coreseg.drawing.legend import draw_legend

    image = np.asarray(Image.open(photos / "a.png"))
    seg = coreseg.load("demo").predict(image)
    with pytest.raises(TypeError, match="needs the palette"):
        draw_legend(image.copy(), seg.legend())
    with pytest.raises(TypeError, match="Segmentation or a list"):
        draw_legend(image.copy(), "sky")
    with pytest.raises(ValueError, match=r"\(H, W, 3\|4\) uint8"):
        draw_legend(image.astype(np.float32), seg)
    frozen = image.copy()
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only: pass out="):
        draw_legend(frozen, seg)
    with pytest.raises(ValueError, match="out must have shape"):
        draw_legend(image, seg, out=np.empty((4, 4, 3), np.uint8))
    with pytest.raises(KeyError, match="moon"):
        draw_legend(image.copy(), seg, classes=["moon"])
    # Entries and a palette are checked as a segmentation's palette is.
    with pytest.raises(ValueError, match=r"palette must be \(n, 4\) uint8 RGBA colours, got uint8 \(8, 3\)"):
        draw_legend(image.copy(), seg.legend(), seg.palette[:, :3])
    with pytest.raises(ValueError, match="ids in the palette's 0..7, got \\(9, 'x', 0.5\\)"):
        draw_legend(image.copy(), [(9, "x", 0.5)], seg.palette)


def test_a_class_map_models_background_edge_is_the_apis(photos, tmp_path):
    """A model without scores: --background's matte is feathered, as
    replace_background's default, and the model's own pixels with --blocky
    (it used to be blocky either way)."""
    model = coreseg.load(demo.model_path("onnx"), output_activation="none")
    image = np.asarray(Image.open(photos / "a.png"))
    seg = model.predict(image)
    assert seg.scores is None
    for extra, smooth in (([], True), (["--blocky"], False)):
        out = tmp_path / str(smooth)
        r = run("segment", demo.model_path("onnx"), photos / "a.png", "--activation", "none", "--out", out,
                "--background", "#00FF00", "--keep", "sky", *extra)
        assert r.returncode == 0, r.stderr
        np.testing.assert_array_equal(np.asarray(Image.open(out / "a.background.png")),
                                      seg.replace_background(image, "#00FF00", classes=["sky"], smooth=smooth))
    soft = seg.matte(["sky"])
    assert ((soft > 0) & (soft < 255)).any() and set(np.unique(seg.matte(["sky"], smooth=False))) == {0, 255}


def test_refine_pulls_the_photo_backgrounds_matte_onto_its_edges(photos, tmp_path):
    image = np.asarray(Image.open(photos / "a.png"))
    seg = coreseg.load("demo").predict(image)
    for extra, refine in ((["--refine"], True), (["--refine-radius", "3"], 3.0)):
        out = tmp_path / str(refine)
        # The flag before the input: it takes no value, so the photo is not read as its radius.
        r = run("segment", "demo", "--background", "#00FF00", "--keep", "sky", *extra, photos / "a.png",
                "--out", out)
        assert r.returncode == 0, r.stderr
        want = seg.replace_background(image, "#00FF00", classes=["sky"], refine=refine)
        np.testing.assert_array_equal(np.asarray(Image.open(out / "a.background.png")), want)
    assert not np.array_equal(want, seg.replace_background(image, "#00FF00", classes=["sky"]))
    r = run("segment", "demo", photos / "a.png", "--out", tmp_path / "x", "--refine")
    assert r.returncode == 1 and "no --background was given" in r.stderr
    r = run("segment", "demo", photos / "a.png", "--out", tmp_path / "x", "--background", "blur", "--refine-radius",
            "0")
    assert r.returncode == 2 and "--refine-radius" in r.stderr and "radius must be a number in [1" in r.stderr
    assert not (tmp_path / "x").exists()


def test_label_highlights_only_that_class(photos, tmp_path):
    image = np.asarray(Image.open(photos / "a.png"))
    r = run("segment", "demo", photos / "a.png", "--label", "sky", "--out", tmp_path, "--no-legend")
    assert r.returncode == 0, r.stderr
    overlay = np.asarray(Image.open(tmp_path / "a.overlay.png"))
    labels = np.asarray(Image.open(tmp_path / "a.labels.png")).astype(np.int64)
    sky = labels == demo.CLASSES.index("sky")
    assert sky.any()
    near = sky.copy()  # the sky and its outline, one pixel either side of its edge
    near[1:] |= sky[:-1]
    near[:-1] |= sky[1:]
    near[:, 1:] |= sky[:, :-1]
    near[:, :-1] |= sky[:, 1:]
    np.testing.assert_array_equal(overlay[~near], image[~near])  # no other class drawn or outlined
    edge = np.zeros_like(sky)  # outlined: the label differs from the right or lower neighbour
    edge[:, :-1] |= sky[:, :-1] != sky[:, 1:]
    edge[:-1] |= sky[:-1] != sky[1:]
    inside = sky & ~edge
    got, was = overlay[inside].astype(int), image[inside].astype(int)
    # Magenta at 60%: red and blue rise (or stay at 255), green falls (or stays at 0).
    assert (got[:, 0] >= was[:, 0]).all() and (got[:, 1] <= was[:, 1]).all() and (got != was).any()
    r = run("segment", "demo", photos / "a.png", "--label", "Sky", "--out", tmp_path / "x")
    assert r.returncode == 1 and "did you mean 'sky'" in r.stderr


def test_segment_label_maps_feed_eval(photos, tmp_path):
    assert run("segment", "demo", photos / "a.png", photos / "b.jpg", "--out", tmp_path / "pred").returncode == 0
    gt = tmp_path / "gt"
    gt.mkdir()
    for stem in ("a", "b"):
        (gt / f"{stem}.png").write_bytes((tmp_path / "pred" / f"{stem}.labels.png").read_bytes())
    r = run("eval", "--pred", tmp_path / "pred", "--gt", gt, "--out", tmp_path / "ev")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "ev" / "report.json").read_text())["miou"] == 1.0


def test_papercuts(tmp_path, photos):
    assert run("--version").stdout.strip() == f"coreseg {coreseg.__version__}"
    r = run("info", tmp_path / "nothing.onnx", "--debug")  # --debug after the command
    assert r.returncode == 1 and "Traceback" in r.stderr
    r = run("annotate", "demo", "--labels", "nofile.txt", "-o", tmp_path / "x.onnx")
    assert r.returncode == 1 and "nofile.txt: no such file" in r.stderr and not (tmp_path / "x.onnx").exists()
    from coreseg.groundtruth import datapoint_folders

    with pytest.raises(FileNotFoundError, match="missing: no such folder"):
        datapoint_folders(tmp_path / "missing")
    r = run("segment", "demo", photos / "a.png", cwd=tmp_path)  # the default output folder is its own
    assert r.returncode == 0 and "coreseg-out" in r.stdout and (tmp_path / "coreseg-out" / "a.overlay.png").is_file()


def test_segmentation_shows_itself_in_jupyter(photos):
    seg = coreseg.load("demo").predict(photos / "a.png")
    png = seg._repr_png_()
    assert png.startswith(b"\x89PNG")
    import io

    with Image.open(io.BytesIO(png)) as im:
        assert im.size == (160, 120)  # the image's size, at most 640 wide
    big = coreseg.load("demo").predict(np.zeros((900, 2000, 3), np.uint8))
    with Image.open(io.BytesIO(big._repr_png_())) as im:
        assert im.size == (640, 288)


def test_heic_needs_its_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # as if not installed: importing it fails
    (tmp_path / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic")
    with pytest.raises(ImportError, match=r"reading HEIC photos needs pillow-heif: pip install 'coreseg\[heic\]'"):
        coreseg.load("demo").predict(tmp_path / "IMG_0001.HEIC")


def _label_png(path, labels):
    Image.fromarray(labels.astype(np.uint8)).save(path)


def test_eval_ignore_index_and_per_image_scores(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    a = np.zeros((8, 8), np.uint8)
    a[:, 4:] = 1
    a[0, 0] = 2  # class 2: ignored in ground truth
    b = a.copy()
    b[7, 7] = 2  # ... and predicted where it is not
    _label_png(gt / "x.png", a)
    _label_png(pred / "x.labels.png", b)
    r = run("eval", "--pred", pred, "--gt", gt, "--ignore-index", "2", "--num-classes", "3", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert [c["id"] for c in report["classes"]] == [0, 1]  # class 2 in no table and no mean
    iou1 = 31 / 32  # one class-1 pixel predicted as 2: an error, not dropped
    assert report["miou"] == pytest.approx((1 + iou1) / 2)
    # One image: its boundary mIoU is the dataset's.
    assert report["per_image"] == [{"image": "x", "miou": pytest.approx((1 + iou1) / 2),
                                    "boundary_miou": report["boundary"]["mean_boundary_iou"]}]
    assert 0 < report["per_image"][0]["boundary_miou"] < 1
    assert report["classes"][1]["precision"] == 1.0 and report["classes"][1]["recall"] == pytest.approx(iou1)
    # An ignore value outside the classes does not make 256 of them.
    c = a.copy()
    c[0, 0] = 255
    _label_png(gt / "x.png", c)
    _label_png(pred / "x.labels.png", np.where(c == 255, 0, c))
    r = run("eval", "--pred", pred, "--gt", gt, "--ignore-index", "255", "--out", tmp_path / "f")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "f" / "report.json").read_text())["num_classes"] == 2


def test_eval_reads_each_label_png_once_and_grows_the_class_count(tmp_path, monkeypatch):
    from coreseg.evaluation import scoring
    from coreseg.cli import main

    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    rng = np.random.default_rng(5)
    maps = [rng.integers(0, top, (6, 9)).astype(np.uint8) for top in (2, 5, 3)]  # the largest id in the middle
    for i, m in enumerate(maps):
        _label_png(gt / f"{i}.png", m)
        _label_png(pred / f"{i}.labels.png", np.roll(m, 1, axis=1))
    reads = []
    real = scoring.read_label_png
    monkeypatch.setattr(scoring, "read_label_png", lambda path: reads.append(path) or real(path))
    # In this process (--jobs 1), where the reads are counted (scoring only: worst/ reads its images again).
    assert main(["eval", "--pred", str(pred), "--gt", str(gt), "--out", str(tmp_path / "a"), "--jobs", "1",
                 "--worst", "0"]) == 0
    assert len(reads) == 6 and len(set(reads)) == 6
    assert main(["eval", "--pred", str(pred), "--gt", str(gt), "--num-classes", "5", "--out", str(tmp_path / "b")]) == 0
    grown, told = (json.loads((tmp_path / d / "report.json").read_text()) for d in "ab")
    assert grown["num_classes"] == 5 and grown["classes"] == told["classes"] and grown["miou"] == told["miou"]
    assert grown["per_image"] == told["per_image"]


def test_eval_says_when_no_class_matches(tmp_path):
    from shared_fixtures import DATAGEN

    if not DATAGEN.is_dir():
        pytest.skip(f"the Datagen fixtures are not at {DATAGEN} (set CORESEG_SHARED)")
    r = run("eval", "demo", DATAGEN, "--out", tmp_path / "e")
    assert r.returncode == 1 and "none of the model's classes" in r.stderr and "every score would be 0" in r.stderr


def test_eval_scores_a_model_on_mapped_dataset_classes(tmp_path):
    from shared_fixtures import DATAGEN

    if not DATAGEN.is_dir():
        pytest.skip(f"the Datagen fixtures are not at {DATAGEN} (set CORESEG_SHARED)")
    # The demo model's "sky" stands for every human.* class of the faces.
    r = run("eval", "demo", DATAGEN, "--map", "sky=human.*", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    names = [c["name"] for c in report["classes"]]
    assert "sky" in names and not any(n.startswith("human.") for n in names)
    assert "model: sun" in names and "background" in names
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"spaceship": ["human.*"]}))
    r = run("eval", "demo", DATAGEN, "--map", mapping, "--out", tmp_path / "f")
    assert r.returncode == 1 and "the model has no class 'spaceship'" in r.stderr
    r = run("eval", "demo", DATAGEN, "--map", "sky=alien.*", "--out", tmp_path / "g")
    assert r.returncode == 1 and "alien.* matches no dataset class for 'sky'" in r.stderr


def test_confusion_png_has_values_and_a_scale():
    from coreseg.evaluation.heatmap import confusion_heatmap

    matrix = np.array([[90, 10, 0], [5, 95, 0], [0, 0, 0]])
    shares = confusion_heatmap(matrix, ["sky", "tree", "road"])
    counts = confusion_heatmap(matrix, ["sky", "tree", "road"], counts=True)
    h, w = min(shares.shape[0], counts.shape[0]), min(shares.shape[1], counts.shape[1])
    assert not np.array_equal(shares[:h // 2, :w // 2], counts[:h // 2, :w // 2])  # other numbers in the cells
    # The first cell (share 0.9, dark) holds white text: not one flat colour.
    dark = (np.array([255, 255, 255]) + (np.array([8, 48, 107]) - 255) * 0.9).astype(int)
    ys, xs = np.nonzero((shares == dark).all(axis=2))
    first = xs.min()  # the cell's left edge (the scale, further right, has this shade too)
    cell = shares[ys.min():ys.min() + 20, first:first + 20]
    assert (cell == 255).all(axis=2).any()  # white digits on the dark cell
    # A colour scale: a column of many shades from blue to white.
    shades = [len(np.unique(shares[:, x], axis=0)) for x in range(shares.shape[1])]
    assert max(shades) > 100


def test_greyscale_arrays_and_float_images():
    from coreseg.files.images import as_image

    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    np.testing.assert_array_equal(as_image(grey), np.dstack([grey] * 3))
    np.testing.assert_array_equal(as_image(grey[..., None]), np.dstack([grey] * 3))
    with pytest.raises(TypeError, match=r"float image \(float32\); .*\(image \* 255\).round\(\).astype\(np.uint8\)"):
        as_image(np.zeros((3, 4, 3), np.float32))
    seg = coreseg.load("demo").predict(np.full((60, 80), 128, np.uint8))  # a greyscale frame predicts
    assert seg.image_size == (80, 60)


def test_every_option_has_help_text():
    import argparse

    from coreseg.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    missing = [f"{name} {action.dest}" for name, sub in commands.items() for action in sub._actions
               if not isinstance(action, argparse._HelpAction) and not action.help]
    assert missing == []


def test_areas_only_decodes_photos_at_reduced_scale(tmp_path, monkeypatch):
    from coreseg.files import images as _images
    from coreseg.cli import main

    image, _ = demo.scene(4_100_000, (1024, 768))
    Image.fromarray(image).save(tmp_path / "big.jpg", quality=95)
    sizes = []
    real = _images.read_image

    def spy(path, *, min_size=None):
        got = real(path, min_size=min_size)
        sizes.append(got.shape[:2])
        return got

    monkeypatch.setattr(_images, "read_image", spy)
    assert main(["segment", "demo", str(tmp_path / "big.jpg"), "--areas-only", "--out", str(tmp_path / "few")]) == 0
    assert main(["segment", "demo", str(tmp_path / "big.jpg"), "--out", str(tmp_path / "all")]) == 0
    assert outputs(tmp_path / "few") == ["big.areas.json"]
    w, h = coreseg.load("demo").input_size
    assert sizes[0] != sizes[1] == (768, 1024) and sizes[0][0] >= h and sizes[0][1] >= w
    few = json.loads((tmp_path / "few" / "big.areas.json").read_text())
    full = json.loads((tmp_path / "all" / "big.areas.json").read_text())
    assert few.keys() == full.keys() and all(abs(few[k] - full[k]) < 0.01 for k in full)
    r = run("segment", "demo", tmp_path / "big.jpg", "--areas-only", "--export", "masks", "--out", tmp_path / "x")
    assert r.returncode != 0 and "--areas-only" in r.stderr
