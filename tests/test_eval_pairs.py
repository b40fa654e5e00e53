"""`eval --pred DIR --gt DIR`: label PNGs of every depth, pairs that cannot
be scored refused by name, and `segment`'s own label maps (a centre crop's
unseen pixels included) scored as they are."""

import json
import subprocess
import sys

import numpy as np
import pytest

from coreseg.evaluation.scoring import UNSEEN, PairScorer, read_label_png

Image = pytest.importorskip("PIL.Image", reason="label PNGs need Pillow: pip install '.[images]'")


def run(*args):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def folders(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    return gt, pred


def save(path, labels, mode=None):
    if mode == "1":
        Image.fromarray(labels.astype(bool)).save(path)
    else:
        Image.fromarray(labels).save(path)


def test_one_bit_pngs_are_label_maps(tmp_path):
    gt, pred = folders(tmp_path)
    rng = np.random.default_rng(3)
    a = rng.random((30, 20)) < 0.5
    b = np.where(rng.random(a.shape) < 0.9, a, ~a)
    save(gt / "m.png", a, "1")
    save(pred / "m.labels.png", b, "1")
    with Image.open(gt / "m.png") as im:
        assert im.mode == "1"
    np.testing.assert_array_equal(read_label_png(gt / "m.png"), a.astype(np.uint8))
    r = run("eval", "--pred", pred, "--gt", gt, "--out", tmp_path / "e", "--jobs", "1")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    expected = [[int((~a & ~b).sum()), int((~a & b).sum())], [int((a & ~b).sum()), int((a & b).sum())]]
    assert report["confusion_matrix"] == expected


def test_a_prediction_of_another_size_is_refused_naming_both_files(tmp_path):
    gt, pred = folders(tmp_path)
    labels = np.arange(60 * 40, dtype=np.uint8).reshape(40, 60) % 3
    save(gt / "t.png", labels)
    save(pred / "t.labels.png", np.ascontiguousarray(labels.T))  # 40x60 against 60x40
    save(gt / "ok.png", labels)
    save(pred / "ok.labels.png", labels)
    for jobs in ("1", "2"):
        r = run("eval", "--pred", pred, "--gt", gt, "--out", tmp_path / jobs, "--jobs", jobs)
        assert r.returncode == 1, r.stderr
        assert f"{pred / 't.labels.png'} is 40x60, but its ground truth {gt / 't.png'} is 60x40" in r.stderr
        report = json.loads((tmp_path / jobs / "report.json").read_text())
        assert report["images"] == 1 and [f["image"] for f in report["failed"]] == ["t"]
    with pytest.raises(ValueError, match="a prediction must have its ground truth's size"):
        PairScorer()(("t", gt / "t.png", pred / "t.labels.png"))


def test_two_label_maps_of_one_image_are_refused(tmp_path):
    gt, pred = folders(tmp_path)
    labels = np.zeros((4, 5), np.uint8)
    save(gt / "y.png", labels)
    save(pred / "y.png", labels)
    save(pred / "y.labels.png", labels + 1)
    r = run("eval", "--pred", pred, "--gt", gt, "--out", tmp_path / "e")
    assert r.returncode == 1 and not (tmp_path / "e").exists()
    assert f"{pred / 'y.labels.png'} and {pred / 'y.png'} are both label maps of image 'y' (--pred)" in r.stderr
    (pred / "y.png").unlink()
    save(gt / "y.labels.png", labels)  # in the ground truth too
    r = run("eval", "--pred", pred, "--gt", gt, "--out", tmp_path / "e")
    assert r.returncode == 1 and "are both label maps of image 'y' (--gt)" in r.stderr
    (gt / "y.labels.png").unlink()
    (pred / "y.overlay.png").write_bytes(b"not a label map, and not read")
    assert run("eval", "--pred", pred, "--gt", gt, "--out", tmp_path / "e").returncode == 0


def test_when_every_image_fails_the_error_names_one(tmp_path):
    gt, pred = folders(tmp_path)
    for stem in ("a", "b"):
        save(gt / f"{stem}.png", np.zeros((4, 6), np.uint8))
        save(pred / f"{stem}.labels.png", np.zeros((6, 4), np.uint8))
    for jobs in ("1", "2"):
        r = run("eval", "--pred", pred, "--gt", gt, "--out", tmp_path / jobs, "--jobs", jobs)
        assert r.returncode == 1
        line = r.stderr.strip().splitlines()[-1]
        assert line.startswith("coreseg eval: error: every image failed (2 of 2); the first, a: ValueError: "), line
        assert str(pred / "a.labels.png") in line and str(gt / "a.png") in line
    # A value the counts cannot hold names the file that holds it.
    save(gt / "a.png", np.full((4, 6), 40000, np.uint16))
    save(pred / "a.labels.png", np.zeros((4, 6), np.uint8))
    with pytest.raises(ValueError, match=rf"{gt / 'a.png'} has id 40000, and at most 16384 classes"):
        PairScorer()(("a", gt / "a.png", pred / "a.labels.png"))
    with pytest.raises(ValueError, match=rf"{pred / 'a.labels.png'} against {gt / 'a.png'}: gt has value 40000"):
        PairScorer(num_classes=3)(("a", gt / "a.png", pred / "a.labels.png"))


def test_segment_crop_center_label_maps_feed_eval(tmp_path):
    pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here")
    import coreseg
    from coreseg import demo

    photos = tmp_path / "photos"
    photos.mkdir()
    truth = {}
    for i, size in enumerate([(320, 120), (120, 200)]):  # wider and taller than the model's input
        image, labels = demo.scene(2_000_200 + i, size)
        Image.fromarray(image).save(photos / f"s{i}.png")
        truth[f"s{i}"] = labels
    out = tmp_path / "out"
    r = run("segment", "demo", photos, "--crop", "center", "--out", out, "--jobs", "1")
    assert r.returncode == 0, r.stderr
    gt = tmp_path / "gt"
    gt.mkdir()
    model = coreseg.load("demo", crop="center")
    from coreseg.metrics import ConfusionMatrix

    expected = ConfusionMatrix(len(demo.CLASSES))
    for stem, labels in truth.items():
        written = np.asarray(Image.open(out / f"{stem}.labels.png")).astype(np.int32)
        seen = written != UNSEEN
        assert not seen.all() and seen.any()  # a centre crop leaves some of each photo unseen
        seg = model.predict(photos / f"{stem}.png")
        np.testing.assert_array_equal(seen, seg.full_labels(smooth=seg.scores is not None) >= 0)
        expected.update(labels[seen][None], written[seen][None])
        save(gt / f"{stem}.png", labels.astype(np.uint8))
    r = run("eval", "--pred", out, "--gt", gt, "--num-classes", len(demo.CLASSES), "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["confusion_matrix"] == expected.matrix.tolist()
    assert sum(map(sum, report["confusion_matrix"])) == sum(
        int((np.asarray(Image.open(out / f"{s}.labels.png")) != UNSEEN).sum()) for s in truth)
    # Its own label maps as the ground truth: a perfect score, unseen pixels and all.
    r = run("eval", "--pred", out, "--gt", out, "--out", tmp_path / "self")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "self" / "report.json").read_text())["miou"] == 1.0


def test_unseen_is_no_class_id():
    from coreseg.kernels._args import MAX_CONFUSION_CLASSES

    assert UNSEEN == 65535 and UNSEEN >= MAX_CONFUSION_CLASSES
