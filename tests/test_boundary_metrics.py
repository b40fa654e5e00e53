"""BoundaryCounts: Boundary IoU and boundary F over a dataset, from counts
that merge in any order and across processes; the default distance is the
official boundary-iou-api's, per image."""

import json
import math
import pickle

import cv2
import numpy as np
import pytest

from coreseg import kernels
from coreseg.evaluation.boundary import BoundaryCounts, boundary_distance, boundary_tolerance, merge_boundary


def blocky(rng, shape, classes, block):
    h, w = shape
    small = rng.integers(0, classes, (h // block + 1, w // block + 1))
    return np.repeat(np.repeat(small, block, 0), block, 1)[:h, :w].astype(np.int32)


def official_boundary_iou(gt, dt, dilation_ratio=0.02):
    """boundary-iou-api's boundary_iou of two binary masks (its
    mask_to_boundary with the paper's dilation rule)."""
    def mask_to_boundary(mask):
        h, w = mask.shape
        dilation = max(1, int(round(dilation_ratio * np.sqrt(h ** 2 + w ** 2))))
        padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        eroded = cv2.erode(padded, np.ones((3, 3), np.uint8), iterations=dilation)[1:h + 1, 1:w + 1]
        return mask - eroded

    g, d = mask_to_boundary(gt.astype(np.uint8)), mask_to_boundary(dt.astype(np.uint8))
    return ((g * d) > 0).sum(), ((g + d) > 0).sum()


def pairs(seed, count=5, classes=4):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        h, w = rng.integers(30, 120, 2)
        gt = blocky(rng, (h, w), classes, int(rng.integers(4, 15)))
        pred = np.where(blocky(rng, (h, w), 4, 3) > 0, gt, blocky(rng, (h, w), classes, 5)).astype(np.int32)
        out.append((gt, pred))
    return out


@pytest.mark.parametrize("shape", [(1080, 1920), (480, 640), (512, 512), (1, 1), (10, 10), (375, 500),
                                   (1024, 2048), (37, 3)])
def test_default_distance_is_the_official_rule(shape):
    h, w = shape
    diag = np.sqrt(h ** 2 + w ** 2)
    official = int(round(0.02 * diag))
    assert boundary_distance(shape) == max(1, official)
    assert boundary_tolerance(shape) == max(1, int(np.ceil(0.008 * diag)))


def test_known_sizes():
    assert (boundary_distance((1080, 1920)), boundary_tolerance((1080, 1920))) == (44, 18)
    assert (boundary_distance((480, 640)), boundary_tolerance((480, 640))) == (16, 7)


def test_boundary_iou_over_a_dataset_is_the_papers_counts_added():
    # Each image with its own size and its own 2 % distance; per class the
    # intersections and unions of the official code, summed over images.
    data = pairs(1)
    b = BoundaryCounts(4)
    for gt, pred in data:
        b.add(gt, pred)
    for c in range(4):
        inter = union = 0
        for gt, pred in data:
            i, u = official_boundary_iou(gt == c, pred == c)
            inter, union = inter + i, union + u
        assert b.iou()[c] == inter / union
    assert b.images == len(data)
    assert b.mean_iou() == pytest.approx(np.mean(b.iou()))


def test_f_score_counts():
    # A square moved 3 pixels right: with tolerance 3 every contour pixel
    # matches. With 2, of the predicted contour (76 pixels) its right side
    # misses (20 pixels, 3 from the ground truth's right side and corners),
    # and its left side but the 3 pixels at each end that the top and bottom
    # sides reach (14); the recall is the mirror image.
    gt = np.zeros((40, 40), np.int32)
    gt[10:30, 10:30] = 1
    pred = np.zeros((40, 40), np.int32)
    pred[10:30, 13:33] = 1
    loose = BoundaryCounts(2, distance=2, tolerance=3).add(gt, pred)
    assert loose.f_score()[1] == 1.0
    tight = BoundaryCounts(2, distance=2, tolerance=2).add(gt, pred)
    p, r = tight.precision()[1], tight.recall()[1]
    assert p == r == (76 - 20 - 14) / 76
    assert tight.f_score()[1] == pytest.approx(2 * p * r / (p + r))


def test_merge_in_any_order_and_across_processes():
    data = pairs(2, count=6)
    whole = BoundaryCounts(4, ignore_index=None)
    for gt, pred in data:
        whole.add(gt, pred)
    parts = [BoundaryCounts(4) for _ in range(3)]
    for i, (gt, pred) in enumerate(data):
        parts[i % 3].add(gt, pred)
    # As if from other processes: pickled, or sent as sparse rows.
    sent = [pickle.loads(pickle.dumps(p)) for p in parts]
    merged = sent[2] + sent[0] + sent[1]
    np.testing.assert_array_equal(merged.counts, whole.counts)
    assert merged.images == whole.images
    rows = BoundaryCounts(4)
    for p in reversed(parts):
        rows.add_sparse(*p.sparse())
    np.testing.assert_array_equal(rows.counts, whole.counts)
    # Fewer classes merge into more through sparse rows.
    wide = BoundaryCounts(9).add_sparse(*parts[0].sparse())
    np.testing.assert_array_equal(wide.counts[:4], parts[0].counts)
    assert not wide.counts[4:].any()


def test_merge_boundary_of_per_image_scores():
    # What the scorers send back per image (ImageScore-like: name, sparse rows).
    class Score:
        def __init__(self, image, boundary):
            self.image, self.boundary = image, boundary

    data = pairs(6, count=4)
    scores = [Score(f"img{i}", BoundaryCounts(4).add(gt, pred).sparse()) for i, (gt, pred) in enumerate(data)]
    scores.append(Score("not counted", None))
    whole = BoundaryCounts(4)
    for gt, pred in data:
        whole.add(gt, pred)
    merged = merge_boundary(reversed(scores), 4)
    np.testing.assert_array_equal(merged.counts, whole.counts)
    assert merged.images == 4
    with pytest.raises(ValueError, match="img0: class id 3 is beyond 3 classes"):
        merge_boundary(scores, 3)


def test_merge_refuses_what_does_not_add_up():
    with pytest.raises(ValueError, match="cannot merge 3 classes into 4"):
        BoundaryCounts(4).merge(BoundaryCounts(3))
    with pytest.raises(ValueError, match="distance 5 pixels into counts made with the default rule"):
        BoundaryCounts(4).merge(BoundaryCounts(4, distance=5))
    with pytest.raises(ValueError, match="tolerance"):
        BoundaryCounts(4, tolerance=1) + BoundaryCounts(4, tolerance=2)
    with pytest.raises(ValueError, match="ignore_index 255 into counts made with ignore_index None"):
        BoundaryCounts(4).merge(BoundaryCounts(4, ignore_index=255))
    with pytest.raises(TypeError):
        BoundaryCounts(4).merge(np.zeros((4, 7), np.int64))
    with pytest.raises(ValueError, match="beyond 4 classes"):
        BoundaryCounts(4).add_sparse([5], np.zeros((1, 7), np.int64))
    with pytest.raises(ValueError, match="twice"):
        BoundaryCounts(4).add_sparse([1, 1], np.zeros((2, 7), np.int64))


def test_unseen_pixels_are_left_out():
    # A centre crop's outside (-1 from prediction_at; UNSEEN in a label
    # PNG, given as `seen`): nothing there counts, and its edge is a border.
    rng = np.random.default_rng(3)
    gt = blocky(rng, (50, 70), 3, 6)
    pred = blocky(rng, (50, 70), 3, 5)
    cut = BoundaryCounts(3, distance=4, tolerance=2).add(gt[:, 10:60], pred[:, 10:60])
    pred_unseen = pred.copy()
    pred_unseen[:, :10] = pred_unseen[:, 60:] = -1
    a = BoundaryCounts(3, distance=4, tolerance=2).add(gt, pred_unseen)
    np.testing.assert_array_equal(a.counts, cut.counts)
    seen = np.zeros(gt.shape, bool)
    seen[:, 10:60] = True
    png = np.where(seen, pred, 65535).astype(np.uint16)
    b = BoundaryCounts(3, distance=4, tolerance=2).add(gt.astype(np.uint8), png, seen=seen)
    np.testing.assert_array_equal(b.counts, cut.counts)
    # With an ignore value of the dataset's own, both are left out.
    gt_void = gt.astype(np.uint8)
    gt_void[20:25] = 255
    c = BoundaryCounts(3, ignore_index=255, distance=4, tolerance=2).add(gt_void, pred_unseen)
    d = BoundaryCounts(3, ignore_index=255, distance=4, tolerance=2).add(gt_void[:, 10:60], pred[:, 10:60])
    np.testing.assert_array_equal(c.counts, d.counts)


def test_a_prediction_of_another_size_is_mapped_onto_the_ground_truth():
    rng = np.random.default_rng(4)
    gt = blocky(rng, (60, 80), 3, 8)
    small = blocky(rng, (15, 20), 3, 2)
    a = BoundaryCounts(3).add(gt, small)
    b = BoundaryCounts(3).add(gt, kernels.resize_labels(small, (80, 60)))
    np.testing.assert_array_equal(a.counts, b.counts)
    with pytest.raises(ValueError, match="seen"):
        BoundaryCounts(3).add(gt, small, seen=np.ones(small.shape, bool))


def test_scores_undefined_absent_and_not_scored():
    gt = np.zeros((20, 20), np.int32)
    gt[5:15, 5:15] = 1
    pred = np.zeros((20, 20), np.int32)
    pred[5:15, 5:15] = 2  # class 1 missed, class 2 made up, class 3 nowhere
    b = BoundaryCounts(5, ["bg", "a", "b", "c", "--"], distance=2, tolerance=1).add(gt, pred)
    assert b.iou()[1] == 0 and b.iou()[2] == 0
    assert b.f_score()[1] == 0 and b.f_score()[2] == 0
    assert math.isnan(b.precision()[1]) and b.recall()[1] == 0
    assert math.isnan(b.iou()[3]) and math.isnan(b.f_score()[3])
    assert math.isnan(b.iou()[4])  # "--": never scored
    assert [r["name"] for r in b.rows()] == ["bg", "a", "b", "c"]
    # An ignore index that is a class id: that class is left out of the scores.
    ignored = BoundaryCounts(3, ignore_index=0, distance=2, tolerance=1).add(gt, pred)
    assert math.isnan(ignored.iou()[0]) and ignored.counts[0, 0] == 0


def test_reports():
    data = pairs(5, count=2)
    b = BoundaryCounts(4, ["sky", "road", "car", "person"])
    for gt, pred in data:
        b.add(gt, pred)
    d = json.loads(json.dumps(b.to_dict(), allow_nan=False))
    assert d["mean_boundary_iou"] == pytest.approx(b.mean_iou())
    assert [c["name"] for c in d["classes"]] == ["sky", "road", "car", "person"]
    assert d["counts"] == b.counts.tolist() and d["distance"] is None
    table = b.table()
    assert table.splitlines()[0].split() == ["class", "B-IoU", "B-F", "B-prec", "B-rec"]
    assert f"{b.iou()[2]:6.3f}" in table.splitlines()[3]
    assert "2.0% of each image's diagonal" in table


def test_bad_arguments():
    with pytest.raises(ValueError, match="distance must be None"):
        BoundaryCounts(3, distance=-1)
    with pytest.raises(ValueError, match="names has 2 entries for 3 classes"):
        BoundaryCounts(3, ["a", "b"])
    with pytest.raises(ValueError, match="pred has value 5 outside"):
        BoundaryCounts(3).add(np.zeros((4, 4), np.int32), np.full((4, 4), 5, np.int32))
    with pytest.raises(ValueError, match="seen must be a bool array"):
        BoundaryCounts(3).add(np.zeros((4, 4), np.int32), np.zeros((4, 4), np.int32), seen=np.ones((4, 4)))
