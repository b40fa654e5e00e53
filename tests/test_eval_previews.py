"""worst/ drawn from the previews kept while scoring: a preview draws the
picture of the whole image bit for bit, worst/ is the same bytes as when
its images are predicted again (with a photo and without, larger and
smaller than a panel, --jobs 1 and 2), the model is not run again for it,
and `collect` holds no more than K previews at any moment."""

import gc
import pickle
import subprocess
import sys
import weakref
from types import SimpleNamespace

import numpy as np
import pytest

from coreseg import demo
from coreseg.cli.eval_run import EvalRun, collect, write_worst
from coreseg.evaluation import image_scoring, scoring
from coreseg.evaluation.worst import PANEL_SIDE, Preview, error_picture, panel_size, preview_of, scored_palette
from coreseg.files.images import write_png
from coreseg.metrics import ConfusionMatrix
from coreseg.scaleout.workers import Outcome

Image = pytest.importorskip("PIL.Image", reason="worst/ draws with Pillow: pip install '.[images]'")

NAMES = ["background", "cat", "dog", "sky"]


def run(*args):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def worst_files(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted((folder / "worst").iterdir())}


def maps_of(shape, seed, channels=3, dtype=np.int32, void=255):
    """(photo or None, gt, pred) of `shape`: ids 0..3, a void band in the
    truth, unseen (-1) columns in the prediction."""
    rng = np.random.default_rng(seed)
    h, w = shape
    gt = (np.arange(w)[None] * 4 // max(w, 1) + np.arange(h)[:, None] * 2 // max(h, 1)) % 4
    gt = gt.astype(dtype)
    gt[:, :max(1, w // 20)] = void
    pred = np.where(rng.random(shape) < 0.2, rng.integers(0, 4, shape), gt % 4).astype(np.int32)
    pred[:, -max(1, w // 30):] = -1
    photo = None if channels is None else rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    return photo, gt, pred


@pytest.mark.parametrize("shape", [(960, 1280), (300, 400), (361, 100), (100, 361), (1000, 2), (360, 360),
                                   (181, 181), (120, 160), (7, 5)])
@pytest.mark.parametrize("channels", [None, 3, 4])
def test_a_preview_draws_the_picture_of_the_whole_image(shape, channels):
    photo, gt, pred = maps_of(shape, sum(shape), channels)
    preview = preview_of(photo, gt, pred)
    kept = (shape[0], shape[1]) if max(shape) <= PANEL_SIDE else panel_size(shape)[::-1]
    assert preview.gt.shape == preview.pred.shape == kept  # a small image as it is: error_picture enlarges it
    assert preview.gt.dtype == preview.pred.dtype == np.int16
    assert (preview.photo is None) == (photo is None)
    if photo is not None:
        assert preview.photo.shape == kept + (3,) and preview.photo.dtype == np.uint8
    palette = scored_palette(NAMES)
    for ignore in (None, 255):
        whole = error_picture(photo, gt, pred, NAMES, palette, title="1. x: mIoU 0.5", ignore_index=ignore)
        drawn = error_picture(preview.photo, preview.gt, preview.pred, NAMES, palette, title="1. x: mIoU 0.5",
                              ignore_index=ignore)
        assert drawn.shape == whole.shape and (drawn == whole).all()


def test_a_preview_is_compact_its_own_and_travels_through_a_pipe():
    photo, gt, pred = maps_of((960, 1280), 1)
    preview = preview_of(photo, gt, pred)
    assert preview.photo.shape == (270, 360, 3)
    back = pickle.loads(pickle.dumps(preview))  # as it comes back from a worker process
    assert isinstance(back, Preview) and all((getattr(back, f) == getattr(preview, f)).all()
                                             for f in ("photo", "gt", "pred"))
    # A small image's preview holds copies, never a view of the image's arrays.
    photo, gt, pred = maps_of((40, 50), 2, channels=4)
    small = preview_of(photo, gt, pred)
    assert not any(np.shares_memory(a, b) for a in (small.photo, small.gt, small.pred) for b in (photo, gt, pred))
    # Ids int16 cannot hold stay int32 (a 16-bit ground truth's void 65535); 8-bit maps stay 8-bit.
    _, gt16, pred = maps_of((500, 400), 3, channels=None, void=65535)
    assert preview_of(None, gt16, pred).gt.dtype == np.int32
    _, gt8, _ = maps_of((500, 400), 4, channels=None, dtype=np.uint8)
    assert preview_of(None, gt8, gt8).gt.dtype == np.uint8


def fake_score(name, miou, previews):
    """An ImageScore with a fresh preview, noted in `previews` (a WeakSet)."""
    preview = Preview(None, np.zeros((2, 2), np.int16), np.zeros((2, 2), np.int16))
    previews.add(preview)
    return scoring.ImageScore(name, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), 1, miou,
                              preview=preview)


@pytest.mark.parametrize("k", [0, 1, 3, 5, 50])
def test_collect_holds_no_more_than_k_previews_and_keeps_the_k_worst(k):
    rng = np.random.default_rng(k)
    n = 40
    # Ties (mIoUs of a few values), images with no mIoU, failures and skipped datapoints, in completion order.
    mious = [None if i % 7 == 3 else float(rng.choice([0.1, 0.2, 0.25, 0.5, 0.9])) for i in range(n)]
    items = [f"img{i:02d}" for i in range(n)]
    order = rng.permutation(n).tolist()
    live = weakref.WeakSet()
    most = []

    def outcomes():
        for i in order:
            gc.collect()  # what collect still holds, only
            most.append(len(live))
            if i % 11 == 5:
                yield Outcome(i, error=ValueError("unreadable"))
            elif i % 13 == 6:
                yield Outcome(i, None)  # a datapoint without a photo
            else:
                yield Outcome(i, fake_score(items[i], mious[i], live))

    scores, failed, skipped, kept = collect(outcomes(), items, SimpleNamespace(), k)
    assert max(most) <= k
    scored = [i for i in range(n) if i % 11 != 5 and i % 13 != 6]
    assert [s.image for s in scores] == [items[i] for i in scored] and all(s.preview is None for s in scores)
    assert len(failed) == len([i for i in range(n) if i % 11 == 5]) and len(skipped) == n // 13 + (n % 13 > 6)
    lowest = sorted((mious[i], i) for i in scored if mious[i] is not None)[:k]  # worst_rows' order
    assert sorted(kept) == sorted(items[i] for _, i in lowest)
    gc.collect()
    assert len(live) == len(kept)


class Refusing:
    """A scorer whose maps are asked of it only for images without a preview."""

    def __init__(self, maps):
        self.asked, self._maps = [], maps

    def maps(self, item):
        self.asked.append(item)
        return self._maps[item]


def test_write_worst_predicts_again_only_the_images_without_a_preview(tmp_path):
    images = {f"i{i}": maps_of((90, 120), i) for i in range(4)}
    cm = ConfusionMatrix(4, NAMES)
    rows = [{"image": name, "miou": m, "boundary_miou": None} for name, m in zip(images, (0.4, 0.1, 0.3, 0.2))]
    scorer = Refusing(images)
    previews = {name: preview_of(*images[name]) for name in ("i1", "i2")}
    ev = EvalRun(cm, rows, [], {"images": 4}, scorer, {name: name for name in images}, previews=previews)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    written = write_worst(tmp_path / "a" / "worst", ev, 3)
    assert written == ["01-i1.png", "02-i3.png", "03-i2.png"] and scorer.asked == ["i3"]
    again = EvalRun(cm, rows, [], {"images": 4}, scorer, {name: name for name in images})  # Ray's: no previews
    write_worst(tmp_path / "b" / "worst", again, 3)
    assert scorer.asked == ["i3", "i1", "i3", "i2"]
    assert worst_files(tmp_path / "a") == worst_files(tmp_path / "b")


def datapoints(root, size):
    demo.write_datapoints(root, range(2_700_000, 2_700_005), size=size)
    return [str(root)]


def label_maps(root, size):
    """--pred/--gt folders of 16-bit ground truth (void 65535) and 8-bit predictions: no photo."""
    (root / "gt").mkdir(parents=True)
    (root / "pred").mkdir()
    for seed in range(2_700_100, 2_700_105):
        _, labels = demo.scene(seed, size)
        gt = labels.astype(np.uint16)
        gt[:, :4] = 65535
        write_png(root / "gt" / f"s{seed}.png", gt)
        pred = np.roll(labels, seed % 7 * 3, axis=1).astype(np.uint8)
        write_png(root / "pred" / f"s{seed}.labels.png", pred)
    return ["--pred", root / "pred", "--gt", root / "gt", "--ignore-index", "65535"]


def photo_folders(root, size):
    """--images/--gt: RGBA photos (the preview keeps RGB) with id ground truth, 255 void."""
    (root / "photos").mkdir(parents=True)
    (root / "gt").mkdir()
    for seed in range(2_700_200, 2_700_205):
        photo, labels = demo.scene(seed, size)
        alpha = np.full(photo.shape[:2] + (1,), 255, np.uint8)
        Image.fromarray(np.concatenate([photo[..., :3], alpha], -1)).save(root / "photos" / f"s{seed}.png")
        gt = labels.astype(np.uint8)
        gt[:, :3] = 255
        Image.fromarray(gt).save(root / "gt" / f"s{seed}.png")
    return ["--images", root / "photos", "--gt", root / "gt", "--names", ",".join(demo.CLASSES),
            "--ignore-index", "255"]


KINDS = {"datapoints": (datapoints, scoring.DatapointScorer), "label maps": (label_maps, scoring.PairScorer),
         "photo folders": (photo_folders, image_scoring.ImageScorer)}


@pytest.mark.parametrize("size", [(400, 300), (160, 120)], ids=["larger than a panel", "smaller"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_worst_from_previews_is_what_predicting_again_draws_and_runs_no_model(tmp_path, monkeypatch, kind, size):
    pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here")
    from coreseg.cli import main

    make, scorer = KINDS[kind]
    data = make(tmp_path / "data", size)
    model = [] if kind == "label maps" else ["demo"]
    asked = []
    real = scorer.maps
    monkeypatch.setattr(scorer, "maps", lambda self, item: asked.append(item) or real(self, item))
    # In this process (--jobs 1), where the maps asked for are counted: each image's once, to score it.
    assert main(["eval", *model, *map(str, data), "--worst", "3", "--jobs", "1", "--out", str(tmp_path / "a")]) == 0
    assert len(asked) == 5 and len(set(map(str, asked))) == 5
    # The path a run without previews takes (Ray's): worst/ predicts its 3 images again.
    for module in (scoring, image_scoring):
        monkeypatch.setattr(module, "preview_of", lambda *maps: None)
    assert main(["eval", *model, *map(str, data), "--worst", "3", "--jobs", "1", "--out", str(tmp_path / "b")]) == 0
    assert len(asked) == 5 + 5 + 3
    a, b = worst_files(tmp_path / "a"), worst_files(tmp_path / "b")
    assert len(a) == 4 and a == b  # 3 pictures and index.html, byte for byte


@pytest.mark.parametrize("kind", ["datapoints", "label maps"])
def test_worst_is_the_same_with_jobs_1_and_2(tmp_path, kind):
    pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here")
    data = KINDS[kind][0](tmp_path / "data", (400, 300))
    model = [] if kind == "label maps" else ["demo"]
    found = {}
    for jobs in ("1", "2"):
        r = run("eval", *model, *data, "--worst", "3", "--jobs", jobs, "--out", tmp_path / jobs)
        assert r.returncode == 0, r.stderr
        found[jobs] = worst_files(tmp_path / jobs)
    assert len(found["1"]) == 4 and found["1"] == found["2"]
