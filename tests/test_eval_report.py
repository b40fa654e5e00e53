"""What `coreseg eval` shows: worst/ (the images with the lowest mIoU drawn
as photo | ground truth | prediction | errors) and its index.html, opened
in headless Chromium; table.txt's columns; mid-run messages above the
progress bar."""

import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from coreseg.evaluation.worst import (ERROR_COLORS, error_panel, error_picture, panel_size, scored_palette,
                                     worst_rows)
from coreseg.metrics import ConfusionMatrix

Image = pytest.importorskip("PIL.Image", reason="worst/ draws with Pillow: pip install '.[images]'")

FP, FN, WRONG, VOID = (np.array(c, np.uint8) for _, c in ERROR_COLORS)


def run(*args):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


def count(image, color) -> int:
    return int((image[..., :3] == color).all(-1).sum())


def test_the_errors_panel_colours_each_kind_of_error():
    # Classes: 0 background, 1 cat, 2 dog; 255 void in the truth; -1 unseen in the prediction.
    gt = np.array([[0, 0, 1, 1, 1, 2, 255, 0]], np.int32)
    pred = np.array([[0, 1, 1, 0, 2, 2, 1, -1]], np.int32)
    panel = error_panel(None, gt, pred, np.array([True, False, False]), ignore_index=255)
    assert panel[0, 2].tolist() == [255, 255, 255] and panel[0, 0].tolist() == [255, 255, 255]  # right: white
    assert panel[0, 1].tolist() == FP.tolist()  # a cat where the truth is background
    assert panel[0, 3].tolist() == FN.tolist()  # the cat missed
    assert panel[0, 4].tolist() == WRONG.tolist()  # a dog where the truth is a cat
    assert panel[0, 6].tolist() == VOID.tolist() and panel[0, 7].tolist() == VOID.tolist()
    photo = np.full((1, 8, 3), 200, np.uint8)
    faded = error_panel(photo, gt, pred, np.array([True, False, False]), ignore_index=255)
    assert faded[0, 0].tolist() == [235, 235, 235]  # the photo faded towards white where right: 35 % of 200
    assert (faded[0, [1, 3, 4, 6, 7]] == panel[0, [1, 3, 4, 6, 7]]).all()  # errors drawn the same


def locate(picture, panel) -> list:
    """Where `panel` appears whole in `picture`: (y, x) of each place."""
    py, px = np.argwhere((panel == FP).all(-1))[0]  # a pixel of a colour few others have
    h, w = panel.shape[:2]
    found = []
    for y, x in np.argwhere((picture == FP).all(-1)) - (py, px):
        if 0 <= y <= picture.shape[0] - h and 0 <= x <= picture.shape[1] - w and \
                (picture[y:y + h, x:x + w] == panel).all():
            found.append((int(y), int(x)))
    return found


def enlarge(a, k):
    return np.repeat(np.repeat(a, k, 0), k, 1)


def test_a_picture_holds_its_panels_and_a_legend():
    gt = np.zeros((30, 40), np.int32)
    gt[10:20, 10:30] = 1
    pred = np.roll(gt, 5, axis=1)
    photo = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    names = ["background", "cat"]
    palette = scored_palette(names)
    picture = error_picture(photo, gt, pred, names, palette, title="1. x: mIoU 0.5")
    # A small image is enlarged by a whole factor (9: 360 px, PANEL_SIDE, across), each pixel a square block.
    assert panel_size(gt.shape) == (360, 270)
    panel = error_panel(enlarge(photo, 9), enlarge(gt, 9), enlarge(pred, 9), np.array([True, False]))
    assert len(locate(picture, panel)) == 1
    assert count(picture, FP) == count(panel, FP) + 13 * 13  # and the legend's swatch (13 px inside its outline)
    assert count(panel, FP) == 5 * 10 * 81 and count(panel, FN) == 5 * 10 * 81
    assert (picture == photo[0, 0]).all(-1).sum() >= 81  # the photo is there
    # A large one is shrunk to PANEL_SIDE on its longest side.
    assert panel_size((1080, 1920)) == (360, 202) and panel_size((360, 100)) == (100, 360)


def test_worst_rows_are_the_lowest_first_ties_in_input_order():
    rows = [{"image": "a", "miou": 0.5}, {"image": "b", "miou": None}, {"image": "c", "miou": 0.2},
            {"image": "d", "miou": 0.5}, {"image": "e", "miou": 0.9}]
    assert [r["image"] for r in worst_rows(rows, 3)] == ["c", "a", "d"]
    assert worst_rows(rows, 0) == []


def test_table_summaries_line_up_and_recall_has_one_name():
    cm = ConfusionMatrix(2, ["a", "b"]).update(np.array([[0, 1, 1]], np.int32), np.array([[0, 1, 0]], np.int32))
    table = cm.table().splitlines()
    assert table[0].split() == ["class", "IoU", "F1", "prec.", "recall", "pixels"]
    iou_end = table[0].index("IoU") + len("IoU")
    for line in table[1:]:
        value = re.search(r"\d\.\d{3}", line)
        assert value is not None and value.end() == iou_end, line  # every first number under "IoU"
    assert "frequency-weighted IoU" in table[-1]
    assert cm.to_csv().splitlines()[0].split(",")[4] == "recall"
    assert "recall" in cm.to_dict()["classes"][0] and "accuracy" not in cm.to_dict()["classes"][0]


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    if shutil.which("apt-get") is None:
        pytest.skip("no Chromium here, and no apt-get to install Debian's chromium package on this machine")
    pytest.fail("Chromium is not installed: .ci/run installs Debian's package (apt-get install chromium); "
                "install it the same way to run this test")


#: Appended to a copy of index.html: once the page has loaded (every image
#: loaded or failed), the page's own images are checked and the result is
#: written into the DOM that --dump-dom prints.
CHECK = """<script>
window.addEventListener("load", () => {
  const images = Array.from(document.images);
  const broken = images.filter(im => !(im.complete && im.naturalWidth > 0)).map(im => im.getAttribute("src"));
  const marker = document.createElement("pre");
  marker.id = "coreseg-check";
  marker.textContent = JSON.stringify({images: images.length, broken: broken});
  document.body.appendChild(marker);
});
</script>"""


def images_in_chromium(page):
    """{"images": n, "broken": [src, ...]} of `page`, loaded in headless
    Chromium from its file (no server)."""
    check = page.with_name("check-" + page.name)
    check.write_text(page.read_text().replace("</body>", CHECK + "</body>"))
    try:
        # --virtual-time-budget lets the page run until it is idle (every load
        # done) before the DOM is dumped: no waiting by the clock.
        # A profile of its own (CI's HOME may be read-only or shared); root needs --no-sandbox.
        # A container's /dev/shm is often 64 MB, where Chromium's renderer crashes: use /tmp.
        r = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-dev-shm-usage",
                            f"--user-data-dir={page.parent.parent / '.chromium-profile'}",
                            "--virtual-time-budget=30000", "--dump-dom", check.resolve().as_uri()],
                           capture_output=True, text=True, timeout=300,
                           # Not coreseg's process: .ci/sanitize's preloaded ASan would abort Chromium.
                           env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"})
    finally:
        check.unlink()
        shutil.rmtree(page.parent.parent / ".chromium-profile", ignore_errors=True)
    found = re.search(r'<pre id="coreseg-check">(.*?)</pre>', r.stdout, re.S)
    assert found, f"Chromium printed no check (exit {r.returncode}): {r.stderr[-2000:]}"
    return json.loads(found.group(1).replace("&quot;", '"'))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here")
    from coreseg import demo

    root = tmp_path_factory.mktemp("report")
    demo.write_datapoints(root / "data", range(2_600_000, 2_600_006), size=(160, 120))
    r = run("eval", "demo", root / "data", "--map", "sky=sky,sun", "--worst", "4", "--jobs", "1",
            "--out", root / "e")
    assert r.returncode == 0, r.stderr
    return root / "e"


def test_worst_holds_the_k_lowest_and_an_index_that_loads_in_chromium(evaluated):
    worst = evaluated / "worst"
    report = json.loads((evaluated / "report.json").read_text())
    lowest = sorted(report["per_image"], key=lambda r: r["miou"])[:4]
    pngs = sorted(p.name for p in worst.glob("*.png"))
    assert pngs == [f"{i + 1:02d}-{r['image']}.png" for i, r in enumerate(lowest)]
    page = (worst / "index.html").read_text()
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources == pngs + ["../confusion.png"]  # the pictures worst first, then the confusion matrix
    for row in lowest:
        assert f"{row['image']}: mIoU {row['miou']:.3f}" in page
    for c in report["classes"]:
        if c["gt_pixels"] or c["predicted_pixels"]:
            assert f"<td>{c['name']}</td>" in page
    with Image.open(worst / pngs[0]) as im:
        picture = np.asarray(im.convert("RGB"))
    assert count(picture, FP) + count(picture, FN) + count(picture, WRONG) > 3 * 13 * 13  # errors beyond the legend
    assert images_in_chromium(worst / "index.html") == {"images": 5, "broken": []}
    # The check sees a picture that is not there.
    (worst / pngs[1]).rename(worst / "away.png")
    try:
        assert images_in_chromium(worst / "index.html") == {"images": 5, "broken": [pngs[1]]}
    finally:
        (worst / "away.png").rename(worst / pngs[1])


def test_worst_is_replaced_whole_with_force_and_left_out_with_0(evaluated, tmp_path):
    from coreseg import demo

    out = tmp_path / "e"
    shutil.copytree(evaluated, out)
    (out / "worst" / "99-stale.png").write_bytes(b"from an older run")
    data = evaluated.parent / "data"
    r = run("eval", "demo", data, "--map", "sky=sky,sun", "--worst", "2", "--jobs", "1", "--out", out)
    assert r.returncode == 1 and "pass --force" in r.stderr
    r = run("eval", "demo", data, "--map", "sky=sky,sun", "--worst", "2", "--jobs", "1", "--out", out, "--force")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (out / "worst").iterdir()) == sorted(
        p.name for p in (evaluated / "worst").glob("0[12]-*.png")) + ["index.html"]
    r = run("eval", "demo", data, "--map", "sky=sky,sun", "--worst", "0", "--jobs", "1", "--out", tmp_path / "n")
    assert r.returncode == 0 and not (tmp_path / "n" / "worst").exists()
    # --worst 0 into the earlier run's folder: its worst/ would describe another run.
    r = run("eval", "demo", data, "--map", "sky=sky,sun", "--worst", "0", "--jobs", "1", "--out", out)
    assert r.returncode == 1 and "(and 4 more); pass --force" in r.stderr  # worst/ is one of them
    r = run("eval", "demo", data, "--map", "sky=sky,sun", "--worst", "0", "--jobs", "1", "--out", out, "--force")
    assert r.returncode == 0 and not (out / "worst").exists() and (out / "report.json").is_file()
    assert demo.CLASSES[0] == "sky"


def test_label_maps_get_worst_pictures_without_a_photo(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    truth = np.zeros((20, 30), np.uint8)
    truth[5:15, 5:25] = 1
    Image.fromarray(truth).save(gt / "a.png")
    Image.fromarray(np.roll(truth, 3, axis=1)).save(pred / "a.labels.png")
    (tmp_path / "names.txt").write_text("background\ncat\n")
    r = run("eval", "--pred", pred, "--gt", gt, "--names", tmp_path / "names.txt", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "e" / "worst" / "01-a.png") as im:
        picture = np.asarray(im.convert("RGB"))
    panel = error_panel(None, enlarge(truth, 12).astype(np.int32), enlarge(np.roll(truth, 3, axis=1), 12).astype(
        np.int32), np.array([True, False]))
    assert count(panel, FP) == 30 * 144 and count(panel, FN) == 30 * 144
    assert len(locate(picture, panel)) == 1 and picture.shape[1] < 4 * 360  # three panels: no photo


def test_mid_run_messages_go_above_the_progress_bar(monkeypatch):
    pytest.importorskip("tqdm", reason="the progress bar is tqdm's")
    from types import SimpleNamespace

    from coreseg.cli._common import progress_bar, worker_died

    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    bar = progress_bar(range(3), SimpleNamespace(), total=3)
    for i in bar:
        if i == 1:
            worker_died(SimpleNamespace(command="eval"), ("photo7", "a.png", "b.png"), "killed by SIGKILL")
    text = stream.getvalue()
    line = next(ln for ln in text.split("\n") if "a worker process died" in ln)
    # On a line of its own: what follows the bar's last carriage return is the message alone.
    assert line.split("\r")[-1] == ("coreseg eval: a worker process died (killed by SIGKILL) holding photo7; "
                                    "trying it again on a new one")


def test_workers_do_not_repeat_the_models_warning_onto_the_bar(tmp_path):
    from shared_fixtures import MEDIAPIPE

    model = MEDIAPIPE / "selfie_segmentation.onnx"
    if not model.is_file():
        pytest.skip(f"the shared fixtures are not at {MEDIAPIPE} (set CORESEG_SHARED)")
    pytest.importorskip("onnxruntime", reason="the selfie model runs through onnxruntime here")
    photos, gt = tmp_path / "photos", tmp_path / "gt"
    photos.mkdir()
    gt.mkdir()
    rng = np.random.default_rng(1)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(photos / f"p{i}.png")
        Image.fromarray((rng.random((48, 64)) < 0.5).astype(np.uint8)).save(gt / f"p{i}.png")
    # Nothing says how the model's float input is normalised: the parent says so once, before the bar.
    r = run("eval", model, "--images", photos, "--gt", gt, "--jobs", "2", "--worst", "0", "--out", tmp_path / "e")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("nothing says how its float input is normalised") == 1, r.stderr
    first = r.stderr.split("\n")[0]
    assert first.startswith("coreseg eval: warning: selfie_segmentation.onnx: nothing says"), first
