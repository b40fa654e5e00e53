"""The `coreseg` command, end to end in a temporary folder."""

import json
import subprocess
import sys

import numpy as np
import pytest

try:
    import coreml_models as cm
except ImportError:  # coremltools has no wheel for this platform
    cm = None
needs_coremltools = pytest.mark.skipif(cm is None, reason="coremltools has no wheel for this platform")
needs_onnxruntime = pytest.mark.skipif(
    __import__("importlib").util.find_spec("onnxruntime") is None,
    reason="the ONNX backend needs onnxruntime: pip install '.[onnx]'")


def run(*args):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    if cm is None:
        pytest.skip("coremltools has no wheel for this platform")
    path = tmp_path_factory.mktemp("cli") / "seg.mlpackage"
    cm.segmenter().save(str(path))
    return path


@needs_coremltools
def test_info_text_and_json(model):
    r = run("info", model)
    assert r.returncode == 0, r.stderr
    # Sizes are width x height, array shapes are shapes: one convention each.
    assert "input   image: 24x16 (width x height) RGB image" in r.stdout
    assert "output  semanticPredictions: int32 class map, shape (16, 24)" in r.stdout
    assert "seg.mlpackage: mlpackage (mlProgram, spec v" in r.stdout
    assert "Traceback" not in r.stderr and "scikit-learn" not in r.stderr and "Torch" not in r.stderr
    r = run("info", model, "--json")
    data = json.loads(r.stdout)
    assert data["input_size"] == [24, 16] and data["labels"] is None


@needs_coremltools
def test_annotate_then_info(model, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("background\nsky\n\ntree\n")
    out = tmp_path / "annotated.mlpackage"
    r = run("annotate", model, "--labels", labels, "--colors", "#000000,#87CEEB,#228B22", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "3 labels with colours" in r.stdout
    data = json.loads(run("info", out, "--json").stdout)
    assert data["labels"] == ["background", "sky", "tree"]
    assert data["colors"] == ["#000000FF", "#87CEEBFF", "#228B22FF"]
    # Refuses to overwrite without --force; with it, replaces.
    r = run("annotate", model, "--labels", "a,b", "-o", out)
    assert r.returncode == 1 and "exists; pass force=True (--force)" in r.stderr
    r = run("annotate", model, "--labels", '["x", "y"]', "-o", out, "--force")
    assert r.returncode == 0, r.stderr
    assert json.loads(run("info", out, "--json").stdout)["labels"] == ["x", "y"]
    json_labels = tmp_path / "labels.json"
    json_labels.write_text(json.dumps(["p", "q"]))
    assert run("annotate", model, "--labels", json_labels, "-o", out, "--force").returncode == 0
    assert json.loads(run("info", out, "--json").stdout)["labels"] == ["p", "q"]


def test_errors_are_one_line_without_traceback(tmp_path):
    r = run("info", tmp_path / "missing.mlpackage")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("coreseg info: error: ") and "no such file or folder" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("--debug", "info", tmp_path / "missing.mlpackage")
    assert r.returncode != 0 and "Traceback" in r.stderr and "ModelError" in r.stderr
    r = run("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_selfcheck():
    r = run("selfcheck")
    assert r.returncode == 0, r.stderr
    assert "all kernels match the reference" in r.stdout


def _png(path):
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im), im.mode


@needs_onnxruntime
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    r = run("demo", "--out", out, "--width", "400", "--height", "300")
    assert r.returncode == 0, r.stderr
    overlay, mode = _png(out / "overlay.png")
    mask, _ = _png(out / "mask.png")
    assert overlay.shape[:2] == (300, 400)  # the legend is drawn on the image, not beside it
    assert mask.shape[:2] == (300, 400)
    # The legend panel (top left) holds the swatch colour of every class it lists.
    from coreseg import demo

    panel = overlay[:150, :200, :3].reshape(-1, 3)
    listed = [line.split()[0] for line in r.stdout.splitlines()[2:10] if "%" in line and "-" not in line.split()[1]]
    assert listed, r.stdout
    for name in listed:
        color = bytes.fromhex(demo.COLORS[demo.CLASSES.index(name)][1:])
        assert (panel == np.frombuffer(color, np.uint8)).all(axis=1).any(), name
    assert "mIoU" in r.stdout and "inference" in r.stdout and "preprocess" in r.stdout
    miou = float(next(line for line in r.stdout.splitlines() if line.startswith("mIoU")).split()[1])
    assert miou > 0.5
    # A second run does not overwrite without --force.
    before = (out / "overlay.png").read_bytes()
    r = run("demo", "--out", out)
    assert r.returncode == 1 and "exists (and 1 more); pass --force" in r.stderr
    assert (out / "overlay.png").read_bytes() == before
    assert run("demo", "--out", out, "--force", "--seed", "2000001").returncode == 0


@needs_onnxruntime
def test_demo_on_a_users_photo(tmp_path):
    from PIL import Image

    from coreseg import demo

    photo, _ = demo.scene(3_000_000, (200, 150))
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=95)
    r = run("demo", "--image", tmp_path / "photo.jpg", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert "mIoU" not in r.stdout  # no ground truth for a photo
    overlay, _ = _png(tmp_path / "o" / "overlay.png")
    assert overlay.shape[:2] == (150, 200)  # the photo's size: the legend is drawn on it
    assert overlay[3, 3, :3].min() > 180  # under the legend's translucent white panel


@needs_onnxruntime
def test_segment_end_to_end(tmp_path):
    from PIL import Image

    import coreseg
    from coreseg import demo

    paths = []
    for i, size in enumerate([(320, 240), (200, 300)]):
        image, _ = demo.scene(3_000_100 + i, size)
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(image).save(paths[-1])
    out = tmp_path / "out"
    r = run("segment", "demo", *paths, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert [e["image"] for e in report] == [str(p) for p in paths]
    model = coreseg.load("demo")
    for p in paths:
        image = np.asarray(Image.open(p))
        overlay, _ = _png(out / f"{p.stem}.overlay.png")
        labels, mode = _png(out / f"{p.stem}.labels.png")
        assert overlay.shape[:2] == image.shape[:2] and mode.startswith("I;16")
        # The demo model gives logits: edges come from its scores.
        np.testing.assert_array_equal(labels, model.predict(image).full_labels(smooth=True))
        areas = json.loads((out / f"{p.stem}.areas.json").read_text())
        assert set(areas) <= set(demo.CLASSES) and abs(sum(areas.values()) - 1) < 1e-6
    # Existing outputs are refused, then replaced with --force.
    r = run("segment", "demo", *paths, "--out", out)
    assert r.returncode == 1 and "pass --force to overwrite" in r.stderr
    r = run("segment", "demo", paths[0], "--out", out, "--force", "--label", "sky", "--label", "road", "--blocky")
    assert r.returncode == 0, r.stderr
    labels, _ = _png(out / f"{paths[0].stem}.labels.png")
    np.testing.assert_array_equal(labels, model.predict(np.asarray(Image.open(paths[0]))).full_labels())
    assert "segmented 1 image into" in r.stdout


@needs_onnxruntime
def test_segment_errors(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "a.png")
    r = run("segment", "demo", tmp_path / "a.png", "--label", "spaceship", "--out", tmp_path)
    assert r.returncode == 1
    assert "no label 'spaceship'" in r.stderr and "valid labels: sky, sun, hill" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("segment", "demo", tmp_path / "missing.png", "--out", tmp_path / "o")
    assert r.returncode == 1 and "no such image file" in r.stderr
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "sub" / "a.png")
    r = run("segment", "demo", tmp_path / "a.png", tmp_path / "sub" / "a.png", "--out", tmp_path / "o")
    assert r.returncode == 1 and "two images are named 'a'" in r.stderr
    r = run("segment", tmp_path / "nope.onnx", tmp_path / "a.png")
    assert r.returncode == 1 and "no such file" in r.stderr


@needs_coremltools
def test_info_demo():
    r = run("info", "demo")
    assert r.returncode == 0, r.stderr
    assert "0:sky, 1:sun, 2:hill" in r.stdout and "own colours" in r.stdout


@needs_onnxruntime
def test_eval_demo_model_on_the_datagen_fixtures(tmp_path):
    from shared_fixtures import DATAGEN as datagen

    if not datagen.is_dir():
        pytest.skip(f"the shared Datagen fixtures are not at {datagen}")
    out = tmp_path / "eval"
    # A landscape model on faces: no class in common, so no score means anything.
    r = run("eval", "demo", datagen, "--out", out)
    assert r.returncode == 1 and "none of the model's classes" in r.stderr and not out.exists()
    # With its first class called "background" (a Datagen class), it is scored once --map says background
    # alone is what they share (without it, that is refused too: every other score would be 0).
    from coreseg import demo

    renamed = tmp_path / "renamed.onnx"
    labels = ",".join(["background"] + list(demo.CLASSES[1:]))
    assert run("annotate", demo.model_path("onnx"), "--labels", labels, "-o", renamed).returncode == 0
    r = run("eval", renamed, datagen, "--out", out)
    assert r.returncode == 1 and "background aside" in r.stderr and not out.exists()
    r = run("eval", renamed, datagen, "--out", out, "--map", "background=background")
    assert r.returncode == 0, r.stderr
    assert "over 80 images" in r.stdout
    assert "skipped 1 datapoint(s) without a photo: ir_datapoint_00014" in r.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 80 and len(report["confusion_matrix"]) == 33 + 7
    assert len(report["per_image"]) == 80 and report["mean_of_per_image_miou"] is not None
    assert sum(map(sum, report["confusion_matrix"])) == 80 * 128 * 128
    names = [c["name"] for c in report["classes"]]
    assert "human.head.hair" in names and "model: sun" in names
    heat, _ = _png(out / "confusion.png")
    assert heat.ndim == 3 and min(heat.shape[:2]) > 300
    assert (out / "classes.csv").read_text().startswith("id,name,iou")
    r = run("eval", renamed, datagen, "--out", out, "--map", "background=background")
    assert r.returncode == 1 and "pass --force" in r.stderr


@needs_onnxruntime
def test_eval_label_pngs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    gts, preds = [], []
    for i in range(3):
        g = rng.integers(0, 4, (20, 30)).astype(np.uint8)
        p = np.where(rng.random((20, 30)) < 0.8, g, 3).astype(np.uint8)
        Image.fromarray(g).save(tmp_path / "gt" / f"{i}.png")
        Image.fromarray(p.astype(np.uint16)).save(tmp_path / "pred" / f"{i}.png")  # 16-bit is fine too
        gts.append(g)
        preds.append(p)
    (tmp_path / "names.txt").write_text("a\nb\nc\nd\n")
    out = tmp_path / "out"
    r = run("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--names", tmp_path / "names.txt",
            "--out", out)
    assert r.returncode == 0, r.stderr
    from coreseg.metrics import ConfusionMatrix

    expected = ConfusionMatrix(4)
    for g, p in zip(gts, preds):
        expected.update(g, p)
    report = json.loads((out / "report.json").read_text())
    assert report["confusion_matrix"] == expected.matrix.tolist()
    assert abs(report["miou"] - expected.miou()) < 1e-12 and report["names"] == ["a", "b", "c", "d"]
    (tmp_path / "gt" / "9.png").write_bytes((tmp_path / "gt" / "0.png").read_bytes())
    r = run("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", tmp_path / "o2")
    assert r.returncode == 1 and "no prediction for 9" in r.stderr
    r = run("eval", "demo", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt")
    assert r.returncode == 1 and "give either MODEL DATASET_DIR, or --pred DIR --gt DIR" in r.stderr
