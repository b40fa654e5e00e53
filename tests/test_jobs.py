"""`eval` and `segment` on every core (--jobs) and on Ray (coreseg.dist):
the same results, bit for bit, as one process; failing and killed workers
reported without losing or double-counting the others' images."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_process import coreseg_argv
from shared_fixtures import DATAGEN

import coreseg
from coreseg import demo
from coreseg.evaluation.scoring import PairScorer, merge_scores

pytest.importorskip("cv2", reason="Datagen ground truth needs OpenCV: pip install '.[images]'")

OUTPUTS = ["report.json", "classes.csv", "table.txt", "confusion.png"]


def run(*args, **kw):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kw)


def eval_files(out: Path) -> dict:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def tree(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Twelve generated scenes as Datagen datapoints (demo classes)."""
    root = tmp_path_factory.mktemp("scenes")
    demo.write_datapoints(root, range(2_000_000, 2_000_012))
    return root


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("photos")
    for i in range(5):
        image, _ = demo.scene(2_100_000 + i, (200 + 16 * i, 150))
        Image.fromarray(image).save(root / f"photo{i}.png")
    return root


def test_eval_jobs_equal_one_process_on_generated_scenes(scenes, tmp_path):
    r1 = run("eval", "demo", scenes, "--out", tmp_path / "j1", "--jobs", "1")
    r2 = run("eval", "demo", scenes, "--out", tmp_path / "j2", "--jobs", "2")
    r3 = run("eval", "demo", scenes, "--out", tmp_path / "j3", "--jobs", "3")  # more workers than cores
    assert r1.returncode == r2.returncode == r3.returncode == 0, r1.stderr + r2.stderr + r3.stderr
    assert eval_files(tmp_path / "j1") == eval_files(tmp_path / "j2") == eval_files(tmp_path / "j3")
    report = json.loads((tmp_path / "j2/report.json").read_text())
    assert report["images"] == 12 and [r["image"] for r in report["per_image"]] == sorted(
        f"scene_{s}" for s in range(2_000_000, 2_000_012))
    assert report["miou"] > 0.8  # the demo model on its own kind of scene
    # The same counts as scoring each image here, by hand.
    model = coreseg.load("demo")
    from coreseg.groundtruth import DatagenClasses, datapoint_folders, load_datapoint
    from coreseg.evaluation.scoring import DatapointScorer

    folders = datapoint_folders(scenes)
    scorer = DatapointScorer(model, DatagenClasses.from_dataset(folders))
    expected = merge_scores([scorer(f) for f in folders], len(scorer.names), scorer.names)
    assert report["confusion_matrix"] == expected.matrix.tolist()
    assert load_datapoint(folders[0]).labels.shape == (240, 320)


@pytest.mark.skipif(not DATAGEN.is_dir(), reason=f"the shared Datagen fixtures are not at {DATAGEN}")
def test_eval_jobs_equal_one_process_on_datagen(tmp_path):
    for jobs in ("1", "2"):
        r = run("eval", "demo", DATAGEN, "--map", "sky=human.*", "--out", tmp_path / jobs, "--jobs", jobs)
        assert r.returncode == 0, r.stderr
    assert eval_files(tmp_path / "1") == eval_files(tmp_path / "2")
    assert json.loads((tmp_path / "2/report.json").read_text())["images"] == 80


def test_eval_label_pngs_with_jobs(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(5)
    for folder in ("gt", "pred"):
        (tmp_path / folder).mkdir()
    pairs = []
    for i in range(7):
        gt = rng.integers(0, 3 + i, (20 + i, 30)).astype(np.uint8)
        pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 4, gt.shape)).astype(np.uint8)
        Image.fromarray(gt).save(tmp_path / "gt" / f"im{i}.png")
        Image.fromarray(pred).save(tmp_path / "pred" / f"im{i}.labels.png")
        pairs.append((f"im{i}", tmp_path / "gt" / f"im{i}.png", tmp_path / "pred" / f"im{i}.labels.png"))
    for jobs in ("1", "2"):
        r = run("eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "--out", tmp_path / jobs, "--jobs", jobs)
        assert r.returncode == 0, r.stderr
    assert eval_files(tmp_path / "1") == eval_files(tmp_path / "2")
    # The class count grows to the largest id seen (8) + 1, as one pass would.
    expected = merge_scores([PairScorer()(p) for p in pairs])
    report = json.loads((tmp_path / "2/report.json").read_text())
    assert report["num_classes"] == 9 and report["confusion_matrix"] == expected.matrix.tolist()


def test_eval_reports_a_failing_image_and_keeps_the_others(scenes, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(scenes, data)
    bad = data / "scene_2000003" / "camera" / "semantic_segmentation.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for jobs in ("1", "2"):
        r = run("eval", "demo", data, "--out", tmp_path / jobs, "--jobs", jobs)
        assert r.returncode == 1
        assert f"coreseg eval: failed {data / 'scene_2000003'}: GroundTruthError: " in r.stderr
        assert "1 of 12 images failed (left out of the scores, listed in report.json)" in r.stderr
    assert eval_files(tmp_path / "1") == eval_files(tmp_path / "2")
    report = json.loads((tmp_path / "2/report.json").read_text())
    assert report["images"] == 11 and [f["image"] for f in report["failed"]] == [str(data / "scene_2000003")]
    # The others' counts are all there: the same as a dataset without it.
    shutil.rmtree(data / "scene_2000003")
    assert run("eval", "demo", data, "--out", tmp_path / "without", "--jobs", "2").returncode == 0
    without = json.loads((tmp_path / "without/report.json").read_text())
    assert report["confusion_matrix"] == without["confusion_matrix"]


def _worker_pids(parent: int) -> list[int]:
    """The worker processes of `parent`, forked or spawned (not a resource
    tracker)."""
    pids = []
    for task in Path(f"/proc/{parent}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                if "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(pid))
            except OSError:
                pass
    return pids


#: `python DRIVER eval ...` runs the CLI; in its workers (forked: they copy
#: the patch below; spawned: they run this file as __mp_main__ before their
#: first item), the worker that takes
#: datapoint $CORESEG_TEST_HOLD says so in $CORESEG_TEST_MARKS and waits to be
#: killed; once the test has written "killed" there, the retry scores it.
HOLDING_DRIVER = """
import os, signal, sys
from pathlib import Path

from coreseg.evaluation import scoring

MARKS = Path(os.environ["CORESEG_TEST_MARKS"])
score = scoring.DatapointScorer.__call__


def holding(self, folder):
    if Path(folder).name == os.environ["CORESEG_TEST_HOLD"] and not (MARKS / "killed").exists():
        (MARKS / "holding.tmp").write_text(str(os.getpid()))
        os.replace(MARKS / "holding.tmp", MARKS / "holding")
        while True:
            signal.pause()
    return score(self, folder)


scoring.DatapointScorer.__call__ = holding

if __name__ == "__main__":
    from coreseg.cli import main

    sys.exit(main())
"""


def _wait_for_file(path: Path, proc: subprocess.Popen) -> str:
    """The text of `path` once it exists; fails if `proc` ends first. (A
    poll for an event: no assumption on how long anything takes.)"""
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {path.name} appeared: {err}")
        time.sleep(0.02)
    return path.read_text()


def test_a_worker_killed_holding_an_image_is_reported_and_its_image_retried(tmp_path):
    data = tmp_path / "data"
    demo.write_datapoints(data, range(2_200_000, 2_200_010), size=(320, 240))
    assert run("eval", "demo", data, "--out", tmp_path / "one", "--jobs", "1").returncode == 0
    marks = tmp_path / "marks"
    marks.mkdir()
    driver = tmp_path / "driver.py"
    driver.write_text(HOLDING_DRIVER)
    env = {**os.environ, "CORESEG_TEST_MARKS": str(marks), "CORESEG_TEST_HOLD": "scene_2200004"}
    proc = subprocess.Popen([sys.executable, str(driver), "eval", "demo", str(data), "--out", str(tmp_path / "two"),
                             "--jobs", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        holder = int(_wait_for_file(marks / "holding", proc))
        (marks / "killed").write_text("")  # before the kill: the retry must not wait too
        os.kill(holder, signal.SIGKILL)
        out, err = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "coreseg eval: a worker process died (killed by SIGKILL) holding" in err
    assert "scene_2200004" in err and "trying it again on a new one" in err
    # Every image counted once: the same files as one process.
    assert eval_files(tmp_path / "one") == eval_files(tmp_path / "two")


def test_segment_jobs_write_the_same_files(photos, tmp_path):
    args = ["--export", "coco", "--export", "masks", "--label", "sky", "--label", "tree"]
    for jobs in ("1", "2"):
        r = run("segment", "demo", photos, "--out", tmp_path / jobs, "--jobs", jobs, *args)
        assert r.returncode == 0, r.stderr
        assert "segmented 5 images" in r.stdout
    one, two = tree(tmp_path / "1"), tree(tmp_path / "2")
    assert one == two and len(one) > 15
    coco = json.loads(one["annotations.json"])
    assert [im["file_name"] for im in coco["images"]] == [f"photo{i}.png" for i in range(5)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds the workers through /proc (Linux)")
def test_ctrl_c_ends_the_workers_and_leaves_no_partial_file(tmp_path):
    from PIL import Image

    photos, out = tmp_path / "in", tmp_path / "out"
    photos.mkdir()
    image = demo.scene(2_500_000, (1600, 1200))[0]
    for i in range(40):
        Image.fromarray(image).save(photos / f"p{i:02d}.png", compress_level=0)
    proc = subprocess.Popen(coreseg_argv("segment", "demo", photos, "--out", out, "--jobs", "2"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.labels.png"))) < 2 and time.monotonic() < deadline:  # the workers are writing
        time.sleep(0.02)
    workers = _worker_pids(proc.pid)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=120)
    assert proc.returncode == 130 and len(workers) == 2
    for pid in workers:  # ended with the run
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    files = sorted(out.iterdir())
    assert 2 <= len(files) < 120 and not [f for f in files if f.name.startswith(".")], files
    for f in files:  # every file there is whole
        if f.suffix == ".png":
            with Image.open(f) as im:
                im.load()
        else:
            json.loads(f.read_text())


def test_segment_jobs_keep_going_past_a_bad_image(photos, tmp_path):
    import shutil

    data = tmp_path / "in"
    shutil.copytree(photos, data)
    (data / "photo2.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    r = run("segment", "demo", data, "--out", tmp_path / "o", "--jobs", "2", "--keep-going")
    assert r.returncode == 1 and f"skipped {data / 'photo2.png'}" in r.stderr
    assert sorted(p.name for p in (tmp_path / "o").glob("*.labels.png")) == [
        f"photo{i}.labels.png" for i in (0, 1, 3, 4)]


def test_jobs_must_be_positive(photos, tmp_path):
    r = run("segment", "demo", photos, "--out", tmp_path / "o", "--jobs", "0")
    assert r.returncode == 1 and "--jobs must be 1 to 256, got 0" in r.stderr
    r = run("eval", "--pred", tmp_path, "--gt", tmp_path, "--ray", "local")
    assert r.returncode == 1 and "--ray runs a model on a dataset" in r.stderr


#: Runs the CLI in this process and prints its own peak resident memory (kB
#: on Linux, bytes on macOS: only compared with itself).
PEAK_DRIVER = """
import resource, sys

if __name__ == "__main__":  # not in the spawned workers, which import this file too
    from coreseg.cli import main

    code = main(sys.argv[1:])
    print("PEAK", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    sys.exit(code)
"""


def test_many_tiny_files_with_jobs_keep_the_parent_in_constant_memory(tmp_path):
    # What held in the hardening pass (10,000 files there), kept tested at a
    # tenth of the count: ten times the files must not grow the parent that
    # hands them out and merges their results.
    from PIL import Image

    driver = tmp_path / "peak.py"
    driver.write_text(PEAK_DRIVER)
    tile = demo.scene(2_600_000, (64, 48))[0]
    peaks = {}
    for n in (100, 1000):
        folder = tmp_path / f"in{n}"
        folder.mkdir()
        for i in range(n):
            Image.fromarray(tile).save(folder / f"t{i:05d}.png", compress_level=0)
        r = subprocess.run([sys.executable, str(driver), "segment", "demo", str(folder), "--areas-only", "--jobs", "2",
                            "--out", str(tmp_path / f"out{n}")], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr
        assert len(list((tmp_path / f"out{n}").glob("*.areas.json"))) == n
        peaks[n] = int(r.stdout.split("PEAK")[-1])
    assert peaks[1000] < 1.15 * peaks[100], peaks


def test_segment_workers_do_not_repeat_the_models_warning(tmp_path):
    from shared_fixtures import MEDIAPIPE
    from PIL import Image

    model = MEDIAPIPE / "selfie_segmentation.onnx"
    if not model.is_file():
        pytest.fail(f"the shared fixtures are not at {MEDIAPIPE} (set CORESEG_SHARED)")
    pytest.importorskip("onnxruntime", reason="the selfie model runs through onnxruntime here")
    rng = np.random.default_rng(2)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(tmp_path / f"p{i}.png")
    # Nothing says how its float input is normalised: said once by the parent, not again by each worker.
    r = run("segment", model, *(tmp_path / f"p{i}.png" for i in range(4)), "--jobs", "2", "--out", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    assert r.stderr.count("nothing says how its float input is normalised") == 1, r.stderr
