"""coreseg.export round trips on random masks: `rasterize(polygons(m)) == m`
and pycocotools' decoding of `coco_rle(m)` == m, bit for bit.

A fixed seed and CORESEG_FUZZ_CASES masks (default 1000) in CI; a longer
run on demand, e.g. CORESEG_FUZZ_CASES=20000 CORESEG_FUZZ_SEED=7 (the
variables tests/test_fuzz.py reads).
"""

import os

import numpy as np
import pytest

from coreseg import export

cv2 = pytest.importorskip("cv2", reason="polygons need OpenCV: pip install '.[groundtruth]'")
mask_api = pytest.importorskip("pycocotools.mask", reason="COCO export needs pycocotools: pip install '.[coco]'")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:pycocotools")

CASES = int(os.environ.get("CORESEG_FUZZ_CASES", "1000"))
SEED = int(os.environ.get("CORESEG_FUZZ_SEED", "20261123"))


def random_mask(rng) -> np.ndarray:
    """Noise, blocks, or rectangles toggled over each other (rings, holes,
    and regions inside the holes of others: islands in lakes)."""
    h, w = int(rng.integers(1, 48)), int(rng.integers(1, 48))
    kind = rng.integers(0, 4)
    if kind == 0:
        return rng.random((h, w)) < rng.random()
    if kind == 1:
        k = int(rng.integers(1, 5))
        small = rng.integers(0, 2, (-(-h // k), -(-w // k)))
        return np.kron(small, np.ones((k, k), np.int64))[:h, :w].astype(bool)
    mask = np.zeros((h, w), bool)
    for _ in range(int(rng.integers(1, 8))):
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        y1, x1 = int(rng.integers(y0, h + 1)), int(rng.integers(x0, w + 1))
        mask[y0:y1, x0:x1] ^= True
    if kind == 3:  # speckled edges
        mask ^= rng.random((h, w)) < 0.05
    return mask


def test_island_in_a_hole_survives():
    """A square in the hole of a ring of the same class: both come back."""
    mask = np.zeros((16, 16), bool)
    mask[1:15, 1:15] = True
    mask[4:12, 4:12] = False
    mask[6:10, 6:10] = True  # the island: 16 px
    polys = export.polygons(mask)
    assert len(polys) == 2 and sum(len(p["holes"]) for p in polys) == 1
    np.testing.assert_array_equal(export.rasterize(polys, mask.shape), mask)
    # Nested twice more: a ring in the island's own hole.
    mask[7:9, 7:9] = False
    deeper = np.zeros((20, 20), bool)
    deeper[2:18, 2:18] = mask[0:16, 0:16]
    np.testing.assert_array_equal(export.rasterize(export.polygons(deeper), deeper.shape), deeper)


def test_polygons_and_rle_round_trip_on_random_masks():
    rng = np.random.default_rng(SEED)
    wrong = []
    for case in range(CASES):
        mask = random_mask(rng)
        back = export.rasterize(export.polygons(mask), mask.shape)
        if not np.array_equal(back, mask):
            wrong.append((case, mask.shape, int((back != mask).sum())))
        rle = export.coco_rle(mask)
        decoded = mask_api.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")})
        np.testing.assert_array_equal(decoded.astype(bool), mask, err_msg=f"RLE, case {case}")
    assert not wrong, f"{len(wrong)} of {CASES} masks (seed {SEED}) differ after rasterize(polygons()): " \
                      f"(case, shape, pixels) {wrong[:5]}"


def test_class_maps_round_trip_through_every_export():
    """Every class of a random class map, islands of one class in holes of
    another included, back to the class map."""
    rng = np.random.default_rng(SEED + 1)
    for case in range(max(1, CASES // 10)):
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        labels = np.zeros((h, w), np.int32)
        for class_id in range(1, 5):
            y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
            labels[y0 : int(rng.integers(y0, h + 1)), x0 : int(rng.integers(x0, w + 1))] = class_id
        labels[rng.random((h, w)) < 0.03] = -1  # never seen: in no mask
        rebuilt = np.full((h, w), -1, np.int32)
        for class_id, mask in export.class_masks(labels).items():
            assert not (rebuilt[export.rasterize(export.polygons(mask), mask.shape)] != -1).any(), case
            rebuilt[export.rasterize(export.polygons(mask), mask.shape)] = class_id
        np.testing.assert_array_equal(rebuilt, labels, err_msg=f"case {case}")


def test_rasterize_clips_to_the_shape():
    """Polygons of a larger mask drawn into a smaller shape: clipped, not an error."""
    mask = np.zeros((10, 10), bool)
    mask[2:9, 2:9] = True
    polys = export.polygons(mask)
    np.testing.assert_array_equal(export.rasterize(polys, (5, 5)), mask[:5, :5])
    assert not export.rasterize([{"outer": [], "holes": []}], (3, 3)).any()
