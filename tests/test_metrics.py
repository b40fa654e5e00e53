"""Metric values against scikit-learn, ConfusionMatrix behaviour, reports, drift."""

import json
import math

import numpy as np
import pytest

import coreseg
from coreseg.metrics import ConfusionMatrix
from coreseg.monitor import DriftMonitor, js_divergence

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is in the test extra")


def _random_case(seed, c=7, shape=(40, 60)):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, c, shape).astype(np.int32)
    pred = np.where(rng.random(shape) < 0.6, gt, rng.integers(0, c, shape)).astype(np.uint8)
    return gt, pred


@pytest.mark.parametrize("seed", range(5))
def test_against_scikit_learn(seed):
    c = 7
    gt, pred = _random_case(seed, c)
    cm = ConfusionMatrix(c).update(gt, pred)
    np.testing.assert_array_equal(cm.matrix, sklearn_metrics.confusion_matrix(gt.ravel(), pred.ravel(), labels=range(c)))
    np.testing.assert_allclose(cm.iou(), sklearn_metrics.jaccard_score(gt.ravel(), pred.ravel(), labels=range(c), average=None))
    np.testing.assert_allclose(cm.dice(), sklearn_metrics.f1_score(gt.ravel(), pred.ravel(), labels=range(c), average=None))
    assert math.isclose(cm.pixel_accuracy(), sklearn_metrics.accuracy_score(gt.ravel(), pred.ravel()))
    assert math.isclose(cm.mean_class_accuracy(), sklearn_metrics.balanced_accuracy_score(gt.ravel(), pred.ravel()))
    assert math.isclose(cm.miou(), sklearn_metrics.jaccard_score(gt.ravel(), pred.ravel(), average="macro"))


def test_absent_classes_are_nan_and_left_out_of_means():
    gt = np.array([[0, 0, 1]], np.int32)
    pred = np.array([[0, 1, 1]], np.int32)
    cm = ConfusionMatrix(4, ["a", "b", "--", "d"]).update(gt, pred)
    iou = cm.iou()
    assert iou[0] == 0.5 and iou[1] == 0.5 and np.isnan(iou[2]) and np.isnan(iou[3])
    assert cm.miou() == 0.5
    # frequency-weighted: 2/3 * 0.5 + 1/3 * 0.5
    assert math.isclose(cm.frequency_weighted_iou(), 0.5)
    table = cm.table()
    assert "--" not in table and "d" in table and "mIoU" in table
    data = json.loads(cm.to_json())
    assert data["miou"] == 0.5 and [c["name"] for c in data["classes"]] == ["a", "b", "d"]
    assert data["classes"][2]["iou"] is None
    csv_text = cm.to_csv()
    assert csv_text.splitlines()[0] == "id,name,iou,dice,recall,precision,gt_pixels,gt_share,predicted_pixels"
    assert csv_text.splitlines()[3].startswith("3,d,,")


def test_update_merge_and_sizes():
    gt, pred = _random_case(10)
    whole = ConfusionMatrix(7).update(gt, pred)
    a = ConfusionMatrix(7).update(gt[:20], pred[:20])
    b = ConfusionMatrix(7).update(gt[20:], pred[20:])
    np.testing.assert_array_equal(a.merge(b).matrix, whole.matrix)
    # A prediction at model resolution is mapped onto the ground truth.
    small = pred[::2, ::2]
    cm = ConfusionMatrix(7).update(gt, small)
    np.testing.assert_array_equal(cm.matrix, coreseg.confusion_matrix(gt, coreseg.resize_labels(small, (60, 40)), 7))
    with pytest.raises(ValueError, match="cannot merge 3 classes into 7"):
        whole.merge(ConfusionMatrix(3))
    with pytest.raises(ValueError, match="names has 2 entries for 7 classes"):
        ConfusionMatrix(7, ["a", "b"])
    ignoring = ConfusionMatrix(7, ignore_index=3).update(gt, pred)
    assert ignoring.matrix[3].sum() == 0 and ignoring.matrix.sum() == (gt != 3).sum()


def test_js_divergence():
    assert js_divergence([1, 0], [1, 0]) == 0
    assert math.isclose(js_divergence([1, 0], [0, 1]), 1.0)
    assert 0 < js_divergence([3, 1], [1, 3]) < 1
    with pytest.raises(ValueError, match="differ in length"):
        js_divergence([1], [1, 2])


def test_drift_monitor_flags_moved_classes_and_lighting():
    from coreseg import demo

    monitor = DriftMonitor(len(demo.CLASSES), demo.CLASSES, threshold=0.1)
    for seed in range(40):
        image, labels = demo.scene(seed, (64, 48))
        monitor.add_baseline(labels, image)
    # A batch of new scenes from the same generator: no drift.
    images, maps = zip(*[demo.scene(seed, (64, 48)) for seed in range(100, 110)])
    steady = monitor.check(list(maps), list(images))
    assert not steady.drifted and steady.class_score < 0.02 and steady.image_score < 0.05
    assert steady.moved == []
    # A night-time camera that sees only road.
    dark = [(im * 0.2).astype(np.uint8) for im in images]
    road = [np.full_like(m, demo.CLASSES.index("road")) for m in maps]
    report = monitor.check(road, dark)
    assert report.drifted and report.class_score > 0.5 and report.image_score > 0.5
    assert report.moved[0][1] == "road" and report.moved[0][3] == 1.0
    assert report.moved[1][1] == "sky" and report.moved[1][3] == 0.0
    assert (report.color_shift < -20).all()
    # One frame is scored like a batch of one.
    single = monitor.check(maps[0], images[0])
    assert math.isclose(single.class_score, monitor.check([maps[0]], [images[0]]).class_score)
    with pytest.raises(ValueError, match="the baseline is empty"):
        DriftMonitor(3).check(np.zeros((2, 2), np.uint8))
