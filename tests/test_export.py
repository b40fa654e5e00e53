"""coreseg.export and `segment --export`: masks, polygons and COCO files
round-trip to the class map bit for bit."""

import json
import subprocess
import sys

import numpy as np
import pytest

from coreseg import export

cv2 = pytest.importorskip("cv2", reason="polygons need OpenCV: pip install '.[groundtruth]'")
mask_api = pytest.importorskip("pycocotools.mask", reason="COCO export needs pycocotools: pip install '.[coco]'")
# pycocotools' own numpy 2 warning, inside its decoder.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")


def blocky_labels(seed, shape=(24, 32), classes=5):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, classes, (shape[0] // 4, shape[1] // 4))
    return np.kron(small, np.ones((4, 4), np.int64)).astype(np.int32)


@pytest.mark.parametrize("seed", range(20))
def test_masks_rle_and_polygons_round_trip(seed):
    labels = blocky_labels(seed)
    labels[0, :3] = -1  # never seen: in no mask
    masks = export.class_masks(labels, ["--", "a", "b", "c", "d"])
    assert 0 not in masks  # "--" is left out
    rebuilt = np.full(labels.shape, -1)
    for class_id, mask in masks.items():
        rle = export.coco_rle(mask)
        decoded = mask_api.decode({"size": rle["size"], "counts": rle["counts"].encode()})
        np.testing.assert_array_equal(decoded.astype(bool), mask)
        np.testing.assert_array_equal(export.rasterize(export.polygons(mask), mask.shape), mask)
        rebuilt[mask] = class_id
    keep = (labels > 0)
    np.testing.assert_array_equal(rebuilt[keep], labels[keep])


def test_polygons_keep_holes():
    mask = np.zeros((20, 30), bool)
    mask[2:15, 3:20] = True
    mask[5:9, 6:12] = False
    (poly,) = export.polygons(mask)
    assert len(poly["holes"]) == 1 and len(poly["outer"]) == 4
    np.testing.assert_array_equal(export.rasterize([poly], mask.shape), mask)


def test_segment_exports_a_dataset(tmp_path):
    pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here")
    from PIL import Image

    from coreseg import demo

    names = [f"p{i}.png" for i in range(5)]
    for i, name in enumerate(names):
        Image.fromarray(demo.scene(5_000_000 + i, (96, 64))[0]).save(tmp_path / name)
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "coreseg", "segment", "demo", *[tmp_path / n for n in names],
                        "--out", out, "--export", "masks", "--export", "polygons", "--export", "coco"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    from pycocotools.coco import COCO

    # Images are segmented two at a time; the file is numbered in input order all the same.
    doc = json.loads((out / "annotations.json").read_text())
    assert [(im["id"], im["file_name"]) for im in doc["images"]] == list(enumerate(names, 1))
    assert [a["id"] for a in doc["annotations"]] == list(range(1, len(doc["annotations"]) + 1))
    assert [a["image_id"] for a in doc["annotations"]] == sorted(a["image_id"] for a in doc["annotations"])
    coco = COCO(str(out / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == list(demo.CLASSES)
    for image_id in coco.getImgIds():
        info = coco.loadImgs(image_id)[0]
        stem = info["file_name"].removesuffix(".png")
        labels = np.asarray(Image.open(out / f"{stem}.labels.png")).astype(np.int64)
        polys = json.loads((out / f"{stem}.polygons.json").read_text())
        for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
            class_id = ann["category_id"] - 1
            mask = coco.annToMask(ann).astype(bool)
            np.testing.assert_array_equal(mask, labels == class_id)  # the COCO file is the class map
            png = out / f"{stem}.masks" / f"{class_id:03d}-{demo.CLASSES[class_id]}.png"
            np.testing.assert_array_equal(np.asarray(Image.open(png)) > 0, mask)
            entry = next(c for c in polys["classes"] if c["id"] == class_id)
            np.testing.assert_array_equal(export.rasterize(entry["polygons"], mask.shape), mask)
