"""coreseg.dist on a local Ray instance (``ray.init(num_cpus=2)``): the same
confusion matrices, per-class tables and files as one process."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import coreseg
from coreseg import demo
from coreseg.groundtruth import DatagenClasses, datapoint_folders
from coreseg.metrics import ConfusionMatrix
from coreseg.evaluation.boundary import BoundaryCounts, merge_boundary
from coreseg.evaluation.scoring import DatapointScorer, merge_scores
from shared_fixtures import DATAGEN

ray = pytest.importorskip("ray", reason="coreseg.dist needs Ray: pip install '.[ray]'")
pytest.importorskip("cv2", reason="Datagen ground truth needs OpenCV: pip install '.[images]'")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    return demo.write_datapoints(root, range(2_000_000, 2_000_010))


def one_process(folders):
    scorer = DatapointScorer(coreseg.load("demo"), DatagenClasses.from_dataset(folders))
    scores = [scorer(f) for f in folders]
    return merge_scores(scores, len(scorer.names), scorer.names), scores


@pytest.mark.parametrize("ship_model", [False, True])
def test_evaluate_datapoints_equals_one_process(cluster, scenes, ship_model):
    from coreseg import dist

    ds = ray.data.from_items([{"index": i, "datapoint": str(f)} for i, f in enumerate(scenes)])
    result = dist.evaluate("demo", ds, batch_size=3, ship_model=ship_model)
    expected, scores = one_process(scenes)
    assert result.matrix.names == expected.names
    np.testing.assert_array_equal(result.matrix.matrix, expected.matrix)
    assert result.matrix.table() == expected.table()
    assert result.per_image == [{"image": s.image, "miou": s.miou, "boundary_miou": s.boundary_miou} for s in scores]
    assert result.failed == [] and result.skipped == []
    # Boundary counts: each batch's summed on the driver, as the matrix.
    edges = merge_boundary(scores, len(expected.names), expected.names)
    np.testing.assert_array_equal(result.boundary.counts, edges.counts)
    assert result.boundary.images == 10 and result.boundary.table() == edges.table()


@pytest.mark.skipif(not DATAGEN.is_dir(), reason=f"the shared Datagen fixtures are not at {DATAGEN}")
def test_evaluate_datagen_equals_one_process(cluster):
    from coreseg import dist

    folders = datapoint_folders(DATAGEN)
    classes = DatagenClasses.from_dataset(folders)
    groups = {"sky": [n for n in classes.names if n.startswith("human.")]}  # as `eval --map "sky=human.*"`
    ds = ray.data.from_items([{"index": i, "datapoint": str(f)} for i, f in enumerate(folders)])
    result = dist.evaluate("demo", ds, class_map=groups, batch_size=16)
    scorer = DatapointScorer(coreseg.load("demo"), classes, groups)
    scores = [s for s in map(scorer, folders) if s is not None]
    expected = merge_scores(scores, len(scorer.names), scorer.names)
    np.testing.assert_array_equal(result.matrix.matrix, expected.matrix)
    assert result.matrix.table() == expected.table() and len(result.per_image) == len(scores) == 80
    assert result.skipped == [str(DATAGEN / "ir_datapoint_00014")]  # infrared: no photo


def test_evaluate_image_rows_and_a_failing_image(cluster):
    from coreseg import dist

    model = coreseg.load("demo")
    rows, expected = [], ConfusionMatrix(len(demo.CLASSES), demo.CLASSES)
    for i in range(6):
        image, labels = demo.scene(2_300_000 + i, (160 + 8 * i, 120))
        rows.append({"name": f"s{i}", "image": image, "gt": labels})
        expected.update(labels, model.predict(image).labels)
    # A ground truth of another shape cannot be scored: reported, the rest kept.
    rows.append({"name": "bad", "image": rows[0]["image"], "gt": np.zeros((3, 3, 3), np.int32)})
    result = dist.evaluate("demo", ray.data.from_items(rows), batch_size=2)
    np.testing.assert_array_equal(result.matrix.matrix, expected.matrix)
    assert [r["image"] for r in result.per_image] == [f"s{i}" for i in range(6)]
    assert [f["image"] for f in result.failed] == ["bad"] and "ValueError" in result.failed[0]["error"]


def test_evaluate_refuses_a_dataset_it_cannot_read(cluster):
    from coreseg import dist

    with pytest.raises(ValueError, match=r"expected a 'datapoint' column, or 'image' and 'gt' columns; got \['x'\]"):
        dist.evaluate("demo", ray.data.from_items([{"x": 1}]))


def test_segment_writes_the_same_files_as_the_cli(cluster, tmp_path):
    from PIL import Image

    from coreseg import dist

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):
        Image.fromarray(demo.scene(2_400_000 + i, (200, 150))[0]).save(photos / f"p{i}.png")
    r = subprocess.run([sys.executable, "-m", "coreseg", "segment", "demo", str(photos), "--out", str(tmp_path / "cli"),
                        "--jobs", "1", "--export", "coco"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    paths = sorted(photos.iterdir())
    ds = ray.data.from_items([{"index": i, "path": str(p)} for i, p in enumerate(paths)])
    result = dist.segment("demo", ds, tmp_path / "ray", exports=["coco"], batch_size=1)
    assert result.failed == [] and [e["image"] for e in result.report] == [str(p) for p in paths]

    def files(folder):
        return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())}

    assert files(tmp_path / "cli") == files(tmp_path / "ray")
    with pytest.raises(FileExistsError, match=r"p0.overlay.png exists \(and 11 more\); pass overwrite=True"):
        dist.segment("demo", ds, tmp_path / "ray")


def test_cli_eval_on_a_local_ray_instance(scenes, tmp_path):
    # A Ray instance of the command's own (--ray local), beside this test's.
    root = scenes[0].parent
    runs = {}
    for name, extra in (("jobs", ["--jobs", "1"]), ("ray", ["--ray", "local", "--ray-ship-model"])):
        r = subprocess.run([sys.executable, "-m", "coreseg", "eval", "demo", str(root), "--out", str(tmp_path / name),
                            *extra], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        runs[name] = {f: (tmp_path / name / f).read_bytes() for f in ("report.json", "classes.csv", "table.txt",
                                                                      "confusion.png")}
    assert runs["jobs"] == runs["ray"]  # boundary counts, table and csv columns included
    report = json.loads(runs["ray"]["report.json"])
    assert report["images"] == 10 and report["boundary"]["images"] == 10
    assert report["boundary"]["mean_boundary_iou"] > 0 and b"B-IoU" in runs["ray"]["table.txt"]


@pytest.fixture(scope="module")
def wide_scenes(tmp_path_factory):
    """2:1 photos: the crop modes differ (the demo model's input is 4:3)."""
    return demo.write_datapoints(tmp_path_factory.mktemp("wide"), range(2_000_000, 2_000_006), size=(320, 160))


@pytest.mark.parametrize("crop", ["fit", "center"])
def test_evaluate_scores_the_photo_under_every_crop_mode(cluster, wide_scenes, crop):
    """Datapoints and image rows: the photo's own class map, at the ground
    truth's resolution, the pixels a centre crop never saw left out (not
    the model's input, padding and all, stretched over the ground truth)."""
    from coreseg import dist

    ds = ray.data.from_items([{"index": i, "datapoint": str(f)} for i, f in enumerate(wide_scenes)])
    result = dist.evaluate("demo", ds, batch_size=2, crop=crop)
    model = coreseg.load("demo", crop=crop)
    scorer = DatapointScorer(model, DatagenClasses.from_dataset(wide_scenes))
    expected = merge_scores([scorer(f) for f in wide_scenes], len(scorer.names), scorer.names)
    np.testing.assert_array_equal(result.matrix.matrix, expected.matrix)
    assert result.matrix.miou() > 0.65  # 0.35 (fit) and 0.51 (center) when the model's input was scored
    rows, by_hand, seen_pixels = [], ConfusionMatrix(len(demo.CLASSES), demo.CLASSES), 0
    edges = BoundaryCounts(len(demo.CLASSES), demo.CLASSES)
    for i in range(4):
        image, labels = demo.scene(2_300_100 + i, (240, 100 + 20 * i))
        rows.append({"name": f"s{i}", "image": image, "gt": labels})
        full = model.predict(image).full_labels()
        seen = full >= 0
        seen_pixels += int(seen.sum())
        by_hand.update(labels[seen][None], full[seen][None])
        edges.add(labels, full, seen=seen)
    result = dist.evaluate("demo", ray.data.from_items(rows), batch_size=2, crop=crop)
    np.testing.assert_array_equal(result.matrix.matrix, by_hand.matrix)
    np.testing.assert_array_equal(result.boundary.counts, edges.counts)  # unseen pixels in no count
    assert result.boundary.images == 4 and edges.counts.any()
    assert result.matrix.matrix.sum() == seen_pixels and result.failed == []


def test_segment_refuses_every_existing_output_as_the_cli_does(cluster, tmp_path):
    from PIL import Image

    from coreseg import dist

    photo = tmp_path / "p.png"
    Image.fromarray(demo.scene(2_400_100, (96, 64))[0]).save(photo)
    ds = ray.data.from_items([{"index": 0, "path": str(photo)}])
    out = tmp_path / "out"
    out.mkdir()
    for name in ("annotations.json", "p.polygons.json", "p.masks"):
        existing = out / name
        existing.mkdir() if name.endswith(".masks") else existing.write_text("mine\n")
        export = {"annotations.json": "coco", "p.polygons.json": "polygons", "p.masks": "masks"}[name]
        with pytest.raises(FileExistsError, match=rf"{name} exists; pass overwrite=True"):
            dist.segment("demo", ds, out, exports=[export])
        assert sorted(p.name for p in out.iterdir()) == [name]  # nothing written
        r = subprocess.run([sys.executable, "-m", "coreseg", "segment", "demo", str(photo), "--out", str(out),
                            "--export", export], capture_output=True, text=True, timeout=300)
        assert r.returncode == 1 and f"{name} exists" in r.stderr  # the same rule
        result = dist.segment("demo", ds, out, exports=[export], overwrite=True)
        assert result.failed == []
        if name.endswith(".masks"):
            assert any(p.suffix == ".png" for p in existing.iterdir())
        else:
            assert json.loads(existing.read_text())  # replaced by coreseg's own
        shutil.rmtree(out)
        out.mkdir()
    with pytest.raises(ValueError, match="unknown export 'mask'"):
        dist.segment("demo", ds, out, exports=["mask"])
