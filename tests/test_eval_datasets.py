"""`coreseg eval MODEL` on datasets as they come: --images/--gt folders, a
list file, VOC and Cityscapes trees (generated here, tiny), ground truth as
palette, id or colour-coded PNGs; unmatched files and classes with nothing
in common refused clearly; --jobs and Ray give what one process gives."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from coreseg import demo
from coreseg.metrics import ConfusionMatrix, align_classes

Image = pytest.importorskip("PIL.Image", reason="ground truth PNGs need Pillow: pip install '.[images]'")
pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here")

DEMO = list(demo.CLASSES)
COLORS_RGB = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in demo.COLORS], np.uint8)
FILES = ("report.json", "classes.csv", "table.txt", "confusion.png")


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=600, env=env)


def outputs(folder):
    found = {f: (folder / f).read_bytes() for f in FILES}
    found.update({f"worst/{p.name}": p.read_bytes() for p in sorted((folder / "worst").iterdir())})
    return found


def palette_png(path, labels, palette=None):
    """A palette ("P") PNG whose indices are `labels`."""
    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    flat = (palette if palette is not None else COLORS_RGB).astype(np.uint8).reshape(-1)
    im.putpalette(flat.tolist() + [0] * (768 - len(flat)))
    im.save(path)




def scenes(seeds, size=(96, 72), void=True):
    """{stem: (photo, labels)}: demo scenes, a band of 255 ("void", as VOC
    draws object borders) along the left edge."""
    out = {}
    for seed in seeds:
        photo, labels = demo.scene(seed, size)
        labels = labels.astype(np.int32)
        if void:
            labels[:, :3] = 255
        out[f"s{seed}"] = (photo, labels)
    return out


def expected(data, folder, suffix, names=DEMO, dataset_names=DEMO, ignore=255, to_dataset=None):
    """The confusion matrix a run must give: the demo model's own class map
    of each photo (the Python API) against the ground truth, classes
    aligned by name."""
    import coreseg

    model = coreseg.load("demo")
    scored, gt_ids, model_ids = align_classes(DEMO, dataset_names)
    cm = ConfusionMatrix(len(scored), scored, ignore_index=ignore)
    for stem, (_, labels) in data.items():
        gt = to_dataset[labels] if to_dataset is not None else labels
        gt = np.where(gt == ignore, ignore, gt_ids[np.where(gt == ignore, 0, gt)])
        pred = model_ids[model.predict(folder / f"{stem}{suffix}").full_labels()]
        cm.update(gt, pred)
    return cm


def voc_tree(root, data, val):
    for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / sub).mkdir(parents=True)
    for stem, (photo, labels) in data.items():
        Image.fromarray(photo).save(root / "JPEGImages" / f"{stem}.jpg", quality=95)
        palette_png(root / "SegmentationClass" / f"{stem}.png", labels)
    stems = sorted(data)
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(s for s in stems if s in val) + "\n")
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(s for s in stems if s not in val) + "\n")
    # A photo without ground truth, as VOC's JPEGImages has thousands: not an error.
    Image.fromarray(data[stems[0]][0]).save(root / "JPEGImages" / "detection_only.jpg")


def test_a_voc_tree_is_scored_on_its_val_split_with_255_ignored(tmp_path):
    data = scenes(range(2_500_000, 2_500_005))
    val = {"s2500001", "s2500003"}
    voc_tree(tmp_path / "VOCdevkit" / "VOC2012", data, val)
    # The demo's classes are not VOC's: the dataset's own names are given (--names; VOC's otherwise).
    r = run("eval", "demo", tmp_path, "--names", ",".join(DEMO), "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["layout"] == "voc" and "split val (2 images)" in report["description"]
    assert [row["image"] for row in report["per_image"]] == sorted(val)
    cm = expected({s: data[s] for s in sorted(val)}, tmp_path / "VOCdevkit/VOC2012/JPEGImages", ".jpg")
    assert report["confusion_matrix"] == cm.matrix.tolist() and report["ignore_index"] == 255
    assert sum(map(sum, report["confusion_matrix"])) == 2 * 72 * (96 - 3)  # the void band is left out
    r = run("eval", "demo", tmp_path, "--names", ",".join(DEMO), "--split", "train", "--out", tmp_path / "t")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "t" / "report.json").read_text())["images"] == 3
    r = run("eval", "demo", tmp_path, "--split", "test", "--out", tmp_path / "x")
    assert r.returncode == 1 and "no such split (--split); the splits there: train, val" in r.stderr


def test_jobs_2_gives_what_one_process_gives(tmp_path):
    data = scenes(range(2_500_100, 2_500_106))
    voc_tree(tmp_path / "voc", data, set(data))
    runs = {}
    for jobs in ("1", "2"):
        r = run("eval", "demo", tmp_path / "voc", "--names", ",".join(DEMO), "--jobs", jobs, "--worst", "4",
                "--out", tmp_path / jobs)
        assert r.returncode == 0, r.stderr
        runs[jobs] = outputs(tmp_path / jobs)
    assert runs["1"] == runs["2"]
    assert len([f for f in runs["1"] if f.startswith("worst/") and f.endswith(".png")]) == 4


def test_voc_classes_and_a_model_that_shares_none_is_an_error_with_an_example_map(tmp_path):
    data = scenes(range(2_500_200, 2_500_202))
    voc_tree(tmp_path / "voc", data, set(data))
    r = run("eval", "demo", tmp_path / "voc", "--out", tmp_path / "e")
    assert r.returncode == 1 and not (tmp_path / "e").exists()
    message = r.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "none of the model's classes (sky, sun, hill, water, grass, tree, road, building)" in message
    assert "is a class of the dataset (background, aeroplane, bicycle" in message and "tvmonitor)" in message
    example = message.split("--map '")[1].split("'")[0]
    assert example == "sky=aeroplane,bicycle"
    # The example is a --map the command takes.
    r = run("eval", "demo", tmp_path / "voc", "--map", example, "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr


def cityscapes_tree(root, data, split):
    train_ids = {"sky": 10, "road": 0, "building": 2, "grass": 9, "tree": 8}
    to_city = np.full(256, 255, np.int64)
    for i, name in enumerate(DEMO):
        to_city[i] = train_ids.get(name, 255)
    for stem, (photo, labels) in data.items():
        city = "aachen" if stem.endswith(("0", "2", "4")) else "bremen"
        for sub in ("leftImg8bit", "gtFine"):
            (root / sub / split / city).mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo).save(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png")
        ids = to_city[labels].astype(np.uint8)
        Image.fromarray(ids).save(root / "gtFine" / split / city / f"{stem}_gtFine_labelTrainIds.png")
        # The other ground truth files Cityscapes ships, which are not read.
        Image.fromarray(np.zeros_like(ids)).save(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png")
        Image.fromarray(np.zeros(ids.shape + (3,), np.uint8)).save(
            root / "gtFine" / split / city / f"{stem}_gtFine_color.png")
    return to_city


def test_a_cityscapes_tree_is_scored_by_train_ids_with_255_ignored(tmp_path):
    from coreseg.modelfiles.presets import preset

    data = scenes(range(2_500_300, 2_500_305), size=(128, 64), void=False)
    to_city = cityscapes_tree(tmp_path / "cs", data, "val")
    cityscapes_tree(tmp_path / "cs", scenes([2_500_399], size=(128, 64)), "train")
    r = run("eval", "demo", tmp_path / "cs", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["layout"] == "cityscapes" and report["images"] == 5
    assert [row["image"] for row in report["per_image"]] == sorted(data)  # by name, whatever the city
    names = preset("cityscapes")[0]
    photos = {}
    for stem in data:
        city = "aachen" if stem.endswith(("0", "2", "4")) else "bremen"
        photos[stem] = tmp_path / "cs/leftImg8bit/val" / city
    cm = None
    for stem in data:
        part = expected({stem: data[stem]}, photos[stem], "_leftImg8bit.png", dataset_names=names, to_dataset=to_city)
        cm = part if cm is None else cm.merge(part)
    assert report["names"] == cm.names and report["confusion_matrix"] == cm.matrix.tolist()
    assert "model: sun" in report["names"] and report["ignore_index"] == 255


def test_cityscapes_without_train_ids_says_how_to_make_them(tmp_path):
    data = scenes([2_500_400], size=(64, 32), void=False)
    cityscapes_tree(tmp_path / "cs", data, "val")
    for path in (tmp_path / "cs/gtFine/val").rglob("*_labelTrainIds.png"):
        path.unlink()
    r = run("eval", "demo", tmp_path / "cs", "--out", tmp_path / "e")
    assert r.returncode == 1 and "createTrainIdLabelImgs" in r.stderr


def write_three_ways(tmp_path, data):
    """The same ground truth as palette PNGs, 16-bit id PNGs and colour PNGs
    with a class_dict.csv; the photos in one folder."""
    photos = tmp_path / "photos"
    photos.mkdir()
    folders = {k: tmp_path / k for k in ("palette", "ids16", "colors")}
    for folder in folders.values():
        folder.mkdir()
    colors = np.vstack([COLORS_RGB, [[255, 255, 255]]]).astype(np.uint8)  # void: white
    rows = ["name,r,g,b"] + [f"{n},{r},{g},{b}" for n, (r, g, b) in zip(DEMO, COLORS_RGB.tolist())]
    (folders["colors"] / "class_dict.csv").write_text("\n".join(rows + ["void,255,255,255"]) + "\n")
    for stem, (photo, labels) in data.items():
        Image.fromarray(photo).save(photos / f"{stem}.png")
        palette_png(folders["palette"] / f"{stem}.png", labels)
        Image.fromarray(labels.astype(np.uint16)).save(folders["ids16"] / f"{stem}.png")
        Image.fromarray(colors[np.where(labels == 255, len(DEMO), labels)]).save(folders["colors"] / f"{stem}.png")
    return photos, folders


def test_palette_id_and_colour_pngs_score_the_same(tmp_path):
    data = scenes(range(2_500_500, 2_500_503))
    photos, folders = write_three_ways(tmp_path, data)
    names = ",".join(DEMO)
    runs = {
        "palette": ["--gt", folders["palette"], "--names", names, "--ignore-index", "255"],
        "ids16": ["--gt", folders["ids16"], "--names", names, "--ignore-index", "255"],
        # Its class_dict.csv names the classes; "void" is one of them, left out by --ignore-index.
        "colors": ["--gt", folders["colors"], "--ignore-index", str(len(DEMO))],
    }
    reports = {}
    for name, extra in runs.items():
        r = run("eval", "demo", "--images", photos, *extra, "--out", tmp_path / f"out-{name}", "--jobs", "1")
        assert r.returncode == 0, (name, r.stderr)
        reports[name] = json.loads((tmp_path / f"out-{name}" / "report.json").read_text())
    cm = expected(data, photos, ".png")
    for name in ("palette", "ids16"):
        assert reports[name]["confusion_matrix"] == cm.matrix.tolist(), name
    colored = np.array(reports["colors"]["confusion_matrix"])
    assert reports["colors"]["names"][:len(DEMO)] == DEMO
    assert colored[:len(DEMO), :len(DEMO)].tolist() == cm.matrix.tolist() and colored.sum() == cm.matrix.sum()
    assert reports["colors"]["colour_table"] == str(folders["colors"] / "class_dict.csv")


def test_ids_beyond_the_classes_name_the_file_and_the_flag(tmp_path):
    data = scenes([2_500_600])
    photos, folders = write_three_ways(tmp_path, data)
    r = run("eval", "demo", "--images", photos, "--gt", folders["palette"], "--out", tmp_path / "e")
    assert r.returncode == 1
    assert f"{folders['palette'] / 's2500600.png'} has id 255 ({72 * 3} pixels)" in r.stderr
    assert "no --names: the ground truth's ids are read as the model's" in r.stderr
    assert "--ignore-index 255" in r.stderr
    # Without the colour table, a colour PNG is refused naming what it needs.
    (folders["colors"] / "class_dict.csv").unlink()
    r = run("eval", "demo", "--images", photos, "--gt", folders["colors"], "--out", tmp_path / "e")
    assert r.returncode == 1 and "colour-coded ground truth needs its colour table (--gt-colors" in r.stderr


def test_unmatched_files_are_listed_from_both_sides(tmp_path):
    photos, gt = tmp_path / "photos", tmp_path / "gt"
    photos.mkdir()
    gt.mkdir()
    pixel = np.zeros((4, 4, 3), np.uint8)
    for i in range(3):
        Image.fromarray(pixel).save(photos / f"both{i}.jpg")
        Image.fromarray(pixel[..., 0]).save(gt / f"both{i}.png")
    for i in range(7):
        Image.fromarray(pixel).save(photos / f"photo_only{i}.jpg")
    Image.fromarray(pixel[..., 0]).save(gt / "gt_only.png")
    r = run("eval", "demo", "--images", photos, "--gt", gt, "--out", tmp_path / "e")
    assert r.returncode == 1 and not (tmp_path / "e").exists()
    assert (f"7 image(s) in {photos} have no ground truth in {gt}: photo_only0, photo_only1, photo_only2, "
            f"photo_only3, photo_only4 (and 2 more); 1 ground truth file(s) in {gt} have no image in {photos}: "
            "gt_only") in r.stderr
    Image.fromarray(pixel).save(photos / "both0.png")
    r = run("eval", "demo", "--images", photos, "--gt", gt, "--out", tmp_path / "e")
    assert r.returncode == 1 and f"{photos / 'both0.jpg'} and {photos / 'both0.png'} have the same name" in r.stderr


def test_a_list_file_scores_as_the_folders_do(tmp_path):
    data = scenes(range(2_500_700, 2_500_703))
    photos, folders = write_three_ways(tmp_path, data)
    listing = tmp_path / "lists" / "pairs.txt"
    listing.parent.mkdir()
    lines = ["# image, then its ground truth"] + [f"../photos/{s}.png ../palette/{s}.png" for s in sorted(data)]
    listing.write_text("\n".join(lines) + "\n\n")
    common = ["--names", ",".join(DEMO), "--ignore-index", "255", "--jobs", "1"]
    r = run("eval", "demo", "--list", listing, *common, "--out", tmp_path / "l")
    assert r.returncode == 0, r.stderr
    r = run("eval", "demo", "--images", photos, "--gt", folders["palette"], *common, "--out", tmp_path / "f")
    assert r.returncode == 0, r.stderr
    # A line may name two folders instead: their files, matched by name.
    folders_listing = tmp_path / "lists" / "folders.txt"
    folders_listing.write_text("../photos\t../palette\n")
    r = run("eval", "demo", "--list", folders_listing, *common, "--out", tmp_path / "d")
    assert r.returncode == 0, r.stderr
    by_list, by_folders, by_dirs = (json.loads((tmp_path / d / "report.json").read_text()) for d in "lfd")
    for key in ("confusion_matrix", "per_image", "classes", "miou"):
        assert by_list[key] == by_folders[key] == by_dirs[key], key
    listing.write_text(f"../photos/{sorted(data)[0]}.png\n")
    r = run("eval", "demo", "--list", listing, "--out", tmp_path / "x")
    assert r.returncode == 1 and f"{listing}:1: expected 'IMAGE GT'" in r.stderr
    listing.write_text("../photos/nothere.png ../palette/nothere.png\n")
    r = run("eval", "demo", "--list", listing, "--out", tmp_path / "x")
    assert r.returncode == 1 and f"{listing}: 2 listed file(s) are not there" in r.stderr


def test_a_photo_and_ground_truth_of_two_sizes_fail_by_name(tmp_path):
    data = scenes(range(2_500_800, 2_500_802))
    photos, folders = write_three_ways(tmp_path, data)
    stem = sorted(data)[0]
    Image.fromarray(data[stem][0][:, :50]).save(photos / f"{stem}.png")
    r = run("eval", "demo", "--images", photos, "--gt", folders["palette"], "--names", ",".join(DEMO),
            "--ignore-index", "255", "--out", tmp_path / "e")
    assert r.returncode == 1
    assert f"{photos / (stem + '.png')} is 50x72, but its ground truth {folders['palette'] / (stem + '.png')} is 96x72" \
        in r.stderr
    assert json.loads((tmp_path / "e" / "report.json").read_text())["images"] == 1


def test_the_selfie_model_on_faces_is_refused_with_a_map_that_works(tmp_path):
    from shared_fixtures import DATAGEN, MEDIAPIPE

    model = MEDIAPIPE / "selfie_segmentation.onnx"
    if not DATAGEN.is_dir() or not model.is_file():
        pytest.skip(f"the shared fixtures are not at {DATAGEN.parent} (set CORESEG_SHARED)")
    r = run("eval", model, DATAGEN, "--normalization", "unit", "--out", tmp_path / "e")
    assert r.returncode == 1 and not (tmp_path / "e").exists()
    assert "none of the model's classes (background, foreground)" in r.stderr and "background aside" in r.stderr
    example = r.stderr.split("--map '")[1].split("'")[0]
    assert example == "foreground=human.*"
    r = run("eval", model, DATAGEN, "--normalization", "unit", "--map", example, "--worst", "0", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert "foreground" in report["names"] and report["miou"] > 0.5


def test_ray_scores_pairs_as_one_process_does(tmp_path):
    pytest.importorskip("ray", reason="--ray needs Ray: pip install '.[ray]'")
    data = scenes(range(2_500_900, 2_500_904))
    voc_tree(tmp_path / "voc", data, set(data))
    runs = {}
    # --ray local starts an instance of its own, whatever cluster the
    # environment names (here one that does not exist).
    env = {**os.environ, "RAY_ADDRESS": "192.0.2.1:6379"}
    for name, extra in (("jobs", ["--jobs", "1"]), ("ray", ["--ray", "local"])):
        r = run("eval", "demo", tmp_path / "voc", "--names", ",".join(DEMO), "--worst", "2", "--out",
                tmp_path / name, *extra, env=env)
        assert r.returncode == 0, r.stderr
        runs[name] = outputs(tmp_path / name)
    assert runs["jobs"] == runs["ray"]


def test_a_centre_crop_scores_only_what_the_model_saw(tmp_path):
    import coreseg

    data = scenes(range(2_501_000, 2_501_003), size=(160, 72))  # wider than the model's 4:3 input
    photos, folders = write_three_ways(tmp_path, data)
    r = run("eval", "demo", "--images", photos, "--gt", folders["palette"], "--names", ",".join(DEMO),
            "--ignore-index", "255", "--crop", "center", "--worst", "1", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    model = coreseg.load("demo", crop="center")
    cm, seen_pixels = ConfusionMatrix(len(DEMO), DEMO, ignore_index=255), 0
    for stem, (_, labels) in data.items():
        full = model.predict(photos / f"{stem}.png").full_labels()
        seen = full >= 0
        assert seen.any() and not seen.all()  # the sides were never shown to the model
        cm.update(labels[seen][None], full[seen][None])
        seen_pixels += int((seen & (labels != 255)).sum())
    assert report["confusion_matrix"] == cm.matrix.tolist()
    assert sum(map(sum, report["confusion_matrix"])) == seen_pixels


def test_a_colour_table_found_beside_id_pngs_says_so_and_none_turns_it_off(tmp_path):
    data = scenes([2_500_700])
    photos, folders = write_three_ways(tmp_path, data)
    stray = folders["ids16"] / "class_dict.csv"  # found by itself beside the id PNGs
    stray.write_text((folders["colors"] / "class_dict.csv").read_text())
    args = ["eval", "demo", "--images", photos, "--gt", folders["ids16"], "--names", ",".join(DEMO),
            "--ignore-index", "255", "--jobs", "1"]
    r = run(*args, "--out", tmp_path / "e")
    assert r.returncode == 1 and f"({stray}, found beside the ground truth; --gt-colors none reads ids)" in r.stderr
    r = run("eval", "demo", "--images", photos, "--gt", folders["ids16"], "--ignore-index", "255", "--jobs", "1",
            "--out", tmp_path / "e")  # no --names: the table names the classes, and it cannot read ids
    assert r.returncode == 1
    assert "a class_dict.csv found beside the ground truth): give --gt-colors none for id PNGs" in r.stderr
    r = run(*args, "--gt-colors", "none", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "e" / "report.json").read_text())
    assert report["confusion_matrix"] == expected(data, photos, ".png").matrix.tolist()
