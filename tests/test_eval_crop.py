"""Scores under Vision's crop and scale modes: what is scored is the
photo's own class map (`Segmentation.full_labels()`, at the ground truth's
resolution), never the model's input stretched over the ground truth (a
letterbox's padding scored as the photo's top and bottom rows), and the
pixels a centre crop never saw are left out; on every path (the API, `eval
--crop` in one process and on workers; Ray: tests/test_dist.py)."""

import json
import subprocess
import sys

import numpy as np
import pytest

import coreseg
from coreseg import demo
from coreseg.evaluation.scoring import DatapointScorer, merge_scores, prediction_at, seen_only
from coreseg.groundtruth import DatagenClasses, datapoint_folders, load_datapoint
from coreseg.metrics import ConfusionMatrix

pytest.importorskip("cv2", reason="Datagen ground truth needs OpenCV: pip install '.[images]'")
pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here")

SIZE = (320, 160)  # 2:1 photos; the demo model's input is square


@pytest.fixture(scope="module")
def wide_scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("wide")
    demo.write_datapoints(root, range(2_000_000, 2_000_006), size=SIZE)
    return root


def by_hand(model, folders, classes):
    """The spec, pixel by pixel: the photo's class map at its resolution,
    each pixel the model saw counted once. Returns the matrix and how many
    pixels the model saw (its placements' source rectangles)."""
    scorer = DatapointScorer(model, classes)
    cm = ConfusionMatrix(len(scorer.names), scorer.names)
    source_pixels = 0
    for folder in folders:
        point = load_datapoint(folder, classes)
        seg = model.predict(point.image)
        full = seg.full_labels()
        assert full.shape == point.labels.shape
        x, y, w, h = seg.placement.source if seg.placement is not None else (0, 0, *SIZE)
        source_pixels += w * h
        seen = full >= 0
        assert seen.sum() == w * h and seen[y : y + h, x : x + w].all()
        cm.matrix += coreseg.confusion_matrix(scorer.gt_lut[point.labels][seen][None],
                                              scorer.lut[full[seen]][None], cm.num_classes)
    return cm, source_pixels


@pytest.mark.parametrize("crop", ["fill", "fit", "center"])
def test_datapoint_scorer_scores_the_photo_not_the_model_input(wide_scenes, crop):
    folders = datapoint_folders(wide_scenes)
    classes = DatagenClasses.from_dataset(folders)
    model = coreseg.load("demo", crop=crop)
    scorer = DatapointScorer(model, classes)
    got = merge_scores([scorer(f) for f in folders], len(scorer.names), scorer.names)
    expected, seen_pixels = by_hand(model, folders, classes)
    np.testing.assert_array_equal(got.matrix, expected.matrix)
    assert got.matrix.sum() == seen_pixels
    photo_pixels = len(folders) * SIZE[0] * SIZE[1]
    assert seen_pixels < photo_pixels if crop == "center" else seen_pixels == photo_pixels
    # The demo model on its own kind of scene, whatever the mode (the
    # model's input stretched over the photo scored 0.35 with fit, 0.51
    # with center).
    assert got.miou() > 0.65, got.table()


def test_prediction_at_keeps_unseen_pixels_out():
    model = coreseg.load("demo", crop="center")
    image, _ = demo.scene(2_000_100, (200, 100))
    seg = model.predict(image)
    x, _, w, _ = seg.placement.source
    assert 0 < x and x + w < 200
    full = seg.full_labels().copy()
    pred = prediction_at(seg, (100, 200))  # the photo's resolution
    np.testing.assert_array_equal(pred, full)
    assert (pred[:, :x] == -1).all() and (pred[:, x + w :] == -1).all() and (pred[:, x : x + w] >= 0).all()
    half = prediction_at(seg, (50, 100))  # a ground truth at half the photo's resolution
    np.testing.assert_array_equal(half, coreseg.resize_labels(full, (100, 50)))
    gt = np.arange(50 * 100, dtype=np.int32).reshape(50, 100)
    g, p = seen_only(gt, half)
    seen = half >= 0
    assert g.shape == p.shape == (1, int(seen.sum())) and (p >= 0).all()
    np.testing.assert_array_equal(g[0], gt[seen])
    g, p = seen_only(gt, np.zeros_like(gt))  # all seen: the arrays as they are
    assert g is gt and p.shape == (50, 100)


def run(*args):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("crop", ["fit", "center"])
def test_cli_eval_crop_in_one_process_and_on_workers(wide_scenes, tmp_path, crop):
    folders = datapoint_folders(wide_scenes)
    classes = DatagenClasses.from_dataset(folders)
    expected, _ = by_hand(coreseg.load("demo", crop=crop), folders, classes)
    files = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        r = run("eval", "demo", wide_scenes, "--crop", crop, "--jobs", jobs, "--out", out)
        assert r.returncode == 0, r.stderr
        report = json.loads((out / "report.json").read_text())
        assert report["confusion_matrix"] == expected.matrix.tolist()
        files[jobs] = {f: (out / f).read_bytes() for f in ("report.json", "classes.csv", "table.txt")}
    assert files["1"] == files["2"]


def test_a_negative_id_from_the_model_is_an_error_not_unseen():
    from coreseg.results.segmentation import Segmentation

    seg = Segmentation(np.array([[0, -2], [1, 1]], np.int32), (2, 2), None, np.zeros((2, 4), np.uint8))
    with pytest.raises(ValueError, match="the model predicted id -2"):
        prediction_at(seg, (2, 2))
    seg = Segmentation(np.array([[0, 1], [1, 1]], np.int32), (2, 2), None, np.zeros((2, 4), np.uint8))
    np.testing.assert_array_equal(prediction_at(seg, (4, 4)), np.kron([[0, 1], [1, 1]], np.ones((2, 2), int)))
