"""Boundary IoU and boundary F in `coreseg eval`: report.json's "boundary"
holds the same integer counts as `BoundaryCounts` over the same images, on
every path (photos with ground truth, Datagen datapoints, label maps; one
process and --jobs 2; Ray: tests/test_dist.py and the --ray runs of
tests/test_eval_datasets.py, which compare every output file with --jobs
1), per class in table.txt and classes.csv, per image in per_image; pixels
a centre crop never saw are counted nowhere."""

import csv
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from coreseg import demo
from coreseg.evaluation.boundary import BoundaryCounts
from coreseg.evaluation.scoring import UNSEEN, image_boundary, score_maps
from coreseg.metrics import ConfusionMatrix, align_classes

Image = pytest.importorskip("PIL.Image", reason="ground truth PNGs need Pillow: pip install '.[images]'")
pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here")

DEMO = list(demo.CLASSES)
CSV_BOUNDARY = ["boundary_iou", "boundary_f", "boundary_precision", "boundary_recall"]


def run(*args):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def photos_and_gt(root, seeds, size):
    """Demo scenes as photos and palette ground truth, a 255 ("void") band
    down the left edge; returns (photos dir, gt dir, {stem: labels})."""
    photos, gt = root / "photos", root / "gt"
    photos.mkdir()
    gt.mkdir()
    truth = {}
    for seed in seeds:
        photo, labels = demo.scene(seed, size)
        labels = labels.astype(np.int32)
        labels[:, :3] = 255
        Image.fromarray(photo).save(photos / f"s{seed}.png")
        Image.fromarray(labels.astype(np.uint8), mode="L").save(gt / f"s{seed}.png")
        truth[f"s{seed}"] = labels
    return photos, gt, truth


def by_hand(photos, truth, crop="fill"):
    """BoundaryCounts of the demo model's own class map of each photo (the
    Python API, -1 where unseen) against its ground truth; also each
    image's own, by stem."""
    import coreseg

    model = coreseg.load("demo", crop=crop)
    scored, gt_ids, model_ids = align_classes(DEMO, DEMO)
    total, per_image = BoundaryCounts(len(scored), scored, ignore_index=255), {}
    for stem, labels in truth.items():
        gt = np.where(labels == 255, 255, gt_ids[np.where(labels == 255, 0, labels)]).astype(np.int32)
        full = model.predict(photos / f"{stem}.png").full_labels()
        pred = np.where(full >= 0, model_ids[np.maximum(full, 0)], -1).astype(np.int32)
        total.add(gt, pred)
        per_image[stem] = BoundaryCounts(len(scored), scored, ignore_index=255).add(gt, pred)
    return total, per_image


def read_csv(path):
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_report_holds_the_counts_of_boundary_counts_and_jobs_2_gives_the_same(tmp_path):
    photos, gt, truth = photos_and_gt(tmp_path, range(2_600_000, 2_600_005), (120, 90))
    runs = {}
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        r = run("eval", "demo", "--images", photos, "--gt", gt, "--names", ",".join(DEMO), "--ignore-index", "255",
                "--worst", "0", "--jobs", jobs, "--out", out)
        assert r.returncode == 0, r.stderr
        runs[jobs] = {f: (out / f).read_bytes() for f in ("report.json", "classes.csv", "table.txt")}
        runs[jobs]["stdout"] = r.stdout.replace(str(out), "OUT")
    assert runs["1"] == runs["2"]  # integer counts: bit for bit, whichever process scored which image
    report = json.loads(runs["1"]["report.json"])
    expected, per_image = by_hand(photos, truth)
    b = report["boundary"]
    assert b["counts"] == expected.counts.tolist() and b["images"] == 5
    assert np.array(b["counts"])[:, 0].sum() > 0  # the scenes have edges
    assert b["mean_boundary_iou"] == pytest.approx(expected.mean_iou(), abs=0)
    assert b["mean_boundary_f"] == pytest.approx(expected.mean_f_score(), abs=0)
    assert b["rule"] == expected.rule() and b["distance"] is None and b["tolerance"] is None
    assert [(r["image"], r["boundary_miou"]) for r in report["per_image"]] == [
        (s, per_image[s].mean_iou()) for s in truth]
    # A band of edges is a harder test than the interiors: below mask IoU here.
    assert 0 < b["mean_boundary_iou"] < report["miou"]


def test_table_csv_and_summary_carry_the_boundary_scores(tmp_path):
    photos, gt, truth = photos_and_gt(tmp_path, range(2_600_100, 2_600_103), (96, 72))
    out = tmp_path / "e"
    r = run("eval", "demo", "--images", photos, "--gt", gt, "--names", ",".join(DEMO), "--ignore-index", "255",
            "--worst", "0", "--jobs", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    expected, _ = by_hand(photos, truth)
    table = (out / "table.txt").read_text()
    assert expected.table(present_only=True) in table and table in r.stdout
    header = table.splitlines()[len(table.split("\n\n")[0].splitlines()) + 1]
    assert header.split() == ["class", "B-IoU", "B-F", "B-prec", "B-rec"]
    summary = r.stdout.splitlines()[-1]
    assert (f"boundary mIoU {expected.mean_iou():.4f}, mean boundary F {expected.mean_f_score():.4f} over 3 images"
            in summary)
    rows = read_csv(out / "classes.csv")
    assert list(rows[0])[-4:] == CSV_BOUNDARY and list(rows[0])[:2] == ["id", "name"]
    by_id = {c["id"]: c for c in report["boundary"]["classes"]}
    assert [int(row["id"]) for row in rows] == sorted(by_id)  # one row per scored class, aligned by id
    for row in rows:
        want = by_id[int(row["id"])]
        assert row["name"] == want["name"]
        for k in CSV_BOUNDARY:
            assert row[k] == ("" if want[k] is None else repr(want[k])), (row["name"], k)
    assert all(row["boundary_iou"] and row["boundary_f"] for row in rows)  # every demo class is in these scenes


def test_a_centre_crop_leaves_the_unseen_pixels_out_of_the_boundaries(tmp_path):
    photos, gt, truth = photos_and_gt(tmp_path, range(2_600_200, 2_600_203), (160, 72))  # wider than 4:3
    out = tmp_path / "e"
    r = run("eval", "demo", "--images", photos, "--gt", gt, "--names", ",".join(DEMO), "--ignore-index", "255",
            "--crop", "center", "--worst", "0", "--jobs", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    counts = np.array(json.loads((out / "report.json").read_text())["boundary"]["counts"])
    expected, _ = by_hand(photos, truth, crop="center")
    np.testing.assert_array_equal(counts, expected.counts)
    # The ground truth's own contours where the model saw nothing are in no
    # count: fewer than in the whole ground truth, and than the fill crop's.
    whole = BoundaryCounts(len(DEMO), DEMO, ignore_index=255)
    for labels in truth.values():
        whole.add(labels, labels)
    filled, _ = by_hand(photos, truth, crop="fill")
    gt_contour = 5
    assert counts[:, gt_contour].sum() < filled.counts[:, gt_contour].sum() == whole.counts[:, gt_contour].sum()


def test_datapoints_on_two_workers_give_boundary_counts_of_the_api(tmp_path):
    pytest.importorskip("cv2", reason="Datagen ground truth needs OpenCV: pip install '.[images]'")
    import coreseg
    from coreseg.evaluation.scoring import DatapointScorer, merge_scores
    from coreseg.evaluation.boundary import merge_boundary
    from coreseg.groundtruth import DatagenClasses, load_datapoint

    folders = demo.write_datapoints(tmp_path / "d", range(2_600_300, 2_600_304))
    classes = DatagenClasses.from_dataset(folders)
    out = tmp_path / "e"
    r = run("eval", "demo", tmp_path / "d", "--jobs", "2", "--worst", "0", "--out", out)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    scorer = DatapointScorer(coreseg.load("demo"), classes)
    expected = BoundaryCounts(len(scorer.names), scorer.names)
    for f in folders:
        point = load_datapoint(f, classes)
        full = coreseg.load("demo").predict(point.image).full_labels()
        expected.add(scorer.gt_lut[point.labels], scorer.lut[full])
    assert report["boundary"]["counts"] == expected.counts.tolist() and report["boundary"]["images"] == 4
    scores = [scorer(f) for f in folders]
    merged = merge_boundary(scores, len(scorer.names), scorer.names)
    np.testing.assert_array_equal(merged.counts, expected.counts)
    assert merge_scores(scores, len(scorer.names), scorer.names).matrix.tolist() == report["confusion_matrix"]


def test_label_maps_with_unseen_pixels_and_stray_ids_under_void_still_score(tmp_path):
    """--pred/--gt: UNSEEN pixels (a centre crop's outside) are counted
    nowhere; a predicted id beyond the classes over void ground truth, which
    the confusion matrix has always accepted, is accepted here too."""
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    expected, whole = BoundaryCounts(3, ignore_index=255), BoundaryCounts(3, ignore_index=255)
    for i in range(3):
        gt = np.zeros((60, 80), np.int32)
        gt[10:40, 15 + i:50] = 1
        gt[45:, :] = 2
        gt[:, :4] = 255  # void
        pred = gt.copy()
        pred[12:42, 18:52] = 1
        pred[:, :4] = 7  # no class, only over void
        pred[:, 70:] = UNSEEN  # never seen
        Image.fromarray(gt.astype(np.uint8), mode="L").save(gt_dir / f"p{i}.png")
        Image.fromarray(pred.astype(np.uint16)).save(pred_dir / f"p{i}.png")
        seen = pred != UNSEEN
        expected.add(gt, np.where(seen & (pred < 3), pred, -1).astype(np.int32))
        whole.add(gt, gt)
    out = tmp_path / "e"
    r = run("eval", "--pred", pred_dir, "--gt", gt_dir, "--num-classes", "3", "--ignore-index", "255", "--worst", "0",
            "--out", out)
    assert r.returncode == 0, r.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["boundary"]["counts"] == expected.counts.tolist()
    # The unseen columns are in no count: the ground truth's contours there are not either.
    assert 0 < expected.counts[:, 5].sum() < whole.counts[:, 5].sum()


def test_image_boundary_accepts_what_the_confusion_matrix_accepts():
    gt = np.zeros((30, 30), np.int32)
    gt[8:20, 8:20] = 1
    gt[:, :3] = 255
    pred = gt.copy()
    pred[:, :3] = 9  # beyond 2 classes, but only where the ground truth is ignored
    ConfusionMatrix(2, ignore_index=255).update(gt, pred)  # accepted, as it always was
    b = image_boundary(gt, pred, 2, ignore_index=255)
    # Counted as if the model had not seen those pixels.
    np.testing.assert_array_equal(b.counts, BoundaryCounts(2, ignore_index=255).add(gt, np.where(
        gt == 255, -1, pred).astype(np.int32)).counts)
    score = score_maps("x", gt, pred, 2, ignore_index=255)
    np.testing.assert_array_equal(score.boundary[1], b.counts[score.boundary[0]])
    assert score.boundary_miou == b.mean_iou() and math.isfinite(score.boundary_miou)
    # Beyond the classes where the ground truth is scored: refused, in the confusion matrix's words.
    pred[15, 15] = 9
    with pytest.raises(ValueError, match=r"pred has value 9 outside \[0, 2\)"):
        score_maps("x", gt, pred, 2, ignore_index=255)
