"""Every core busy: `coreseg eval` on 40 generated datapoints and `coreseg
segment` on a folder of their 40 photos (1280x960), each command run as a
user runs it (its own process, start-up and outputs included): the default
(every core), --jobs 1, --jobs 2, and eval's --jobs 1 pinned to one core.

Beside the wall time, each run's CPU time: that of its whole process tree
(`RUSAGE_CHILDREN` before and after; the command waits for its workers, so
theirs is counted). extra_info holds images/s, CPU seconds per image and
the cores busy (CPU over wall). The same commands on 2 of the datapoints
give what every run pays once (imports, workers starting, loading the
model); `benchmarks/report.py` subtracts it: per image once started, wall
= (wall40 - wall2) / 38 and CPU = (cpu40 - cpu2) / 38, and the cores busy
then.

An older revision side by side: with CORESEG_BASELINE set to a folder
holding it (`sh benchmarks/baseline.sh 083b6ed` makes one and says how to
run this) and CORESEG_BASELINE_REV naming it, rows run that revision's
commands too (its default and --jobs 1); it has no --worst, so today's
default also runs with --worst 0, like for like.

With --benchmark-disable (CI runs the benchmarks once, as tests) the
"40" set holds 4 datapoints: the commands are checked to run, and
no number is recorded."""

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import pytest

from coreseg.evaluation.scenes import write_datapoints

pytest.importorskip("cv2", reason="Datagen ground truth needs OpenCV: pip install '.[images]'")
pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here: pip install '.[onnx]'")
Image = pytest.importorskip("PIL.Image", reason="the JPEG photos need Pillow: pip install '.[bench]'")

SIZE = (1280, 960)
FIRST_SEED = 3_000_000
#: Datapoints per run: 40 for the rate, 2 for the start-up every run pays once.
SIZES = {"40": 40, "2": 2}
GROUPS = {"eval": {"40": "cores: coreseg eval demo, 40 datapoints 1280x960",
                   "2": "cores: coreseg eval demo, 2 datapoints 1280x960 (the start-up)"},
          "segment": {"40": "cores: coreseg segment demo, 40 JPEGs 1280x960",
                      "2": "cores: coreseg segment demo, 2 JPEGs 1280x960 (the start-up)"}}
BASELINE = os.environ.get("CORESEG_BASELINE")
BASELINE_REV = os.environ.get("CORESEG_BASELINE_REV") or (os.path.basename(BASELINE.rstrip("/")) if BASELINE else "")
CORES = len(os.sched_getaffinity(0))


def _write(root, seeds):
    write_datapoints(root, seeds, size=SIZE)


@pytest.fixture(scope="module")
def all_datapoints(request, tmp_path_factory):
    """The 40 datapoints (4 with --benchmark-disable), written on every core."""
    n = 4 if request.config.getoption("benchmark_disable", False) else 40
    root = tmp_path_factory.mktemp("datapoints")
    seeds = list(range(FIRST_SEED, FIRST_SEED + n))
    with ProcessPoolExecutor(CORES) as pool:
        list(pool.map(_write, [root] * CORES, [seeds[i::CORES] for i in range(CORES)]))
    return root


@pytest.fixture(scope="module", params=list(SIZES))
def datapoints(request, all_datapoints, tmp_path_factory):
    """(size key, folder): all of them, or a folder of the first 2."""
    if SIZES[request.param] == 2:
        root = tmp_path_factory.mktemp("datapoints2")
        for seed in range(FIRST_SEED, FIRST_SEED + 2):
            shutil.copytree(all_datapoints / f"scene_{seed}", root / f"scene_{seed}")
        return request.param, root
    return request.param, all_datapoints


@pytest.fixture(scope="module")
def photos(datapoints, tmp_path_factory):
    """(size key, folder): the same scenes' photos as JPEGs (quality 90), named by scene."""
    size, root = datapoints
    folder = tmp_path_factory.mktemp(f"photos{size}")
    for scene in sorted(root.iterdir()):
        with Image.open(scene / "camera" / "visible_spectrum_01.png") as photo:
            photo.convert("RGB").save(folder / f"{scene.name}.jpg", quality=90)
    return size, folder


def run_command(benchmark, kind, inputs, command, prefix=(), pythonpath=None):
    """Time `command` (after `python -m coreseg`) in its own process, 3
    rounds after a warm-up, and record its process tree's CPU time."""
    size, folder = inputs
    images = len(list(folder.iterdir()))
    env = dict(os.environ, TQDM_DISABLE="1")
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    argv = [*prefix, sys.executable, "-m", "coreseg", *command]
    runs = []  # (wall s, CPU s) of each call, the warm-up's first

    def once():
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode:
            pytest.fail(f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr[-3000:]}")
        runs.append((wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime))

    benchmark.group = GROUPS[kind][size]
    benchmark.pedantic(once, rounds=3, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None with --benchmark-disable (CI runs each benchmark once, as a test)
        timed = runs[-3:]
        cores = 1 if prefix[:1] == ("taskset",) else CORES
        benchmark.extra_info.update(
            images_per_s=round(images / benchmark.stats.stats.median, 1),
            cpu_s_per_image=round(statistics.median(cpu / images for _, cpu in timed), 4),
            cores_busy=round(statistics.median(cpu / wall for wall, cpu in timed), 2),
            # For report.py's "once started" table: the 40- and 2-image runs of one row.
            once_started=kind, images=images, cores=cores,
            cpu_s=round(statistics.median(cpu for _, cpu in timed), 4))


def eval_command(benchmark, datapoints, out, *args, **kwargs):
    run_command(benchmark, "eval", datapoints, ["eval", "demo", str(datapoints[1]), "--out", str(out), "--force",
                                                *args], **kwargs)


def segment_command(benchmark, photos, out, *args, **kwargs):
    run_command(benchmark, "segment", photos, ["segment", "demo", str(photos[1]), "--out", str(out), "--force",
                                               *args], **kwargs)


def test_eval_default(benchmark, datapoints, tmp_path):
    eval_command(benchmark, datapoints, tmp_path)


def test_eval_default_worst0(benchmark, datapoints, tmp_path):
    eval_command(benchmark, datapoints, tmp_path, "--worst", "0")


def test_eval_jobs1(benchmark, datapoints, tmp_path):
    eval_command(benchmark, datapoints, tmp_path, "--jobs", "1")


def test_eval_jobs2(benchmark, datapoints, tmp_path):
    eval_command(benchmark, datapoints, tmp_path, "--jobs", "2")


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux) to pin to one core")
def test_eval_jobs1_one_core(benchmark, datapoints, tmp_path):
    eval_command(benchmark, datapoints, tmp_path, "--jobs", "1", prefix=("taskset", "-c", "0"))


def test_segment_default(benchmark, photos, tmp_path):
    segment_command(benchmark, photos, tmp_path)


def test_segment_jobs1(benchmark, photos, tmp_path):
    segment_command(benchmark, photos, tmp_path, "--jobs", "1")


def test_segment_jobs2(benchmark, photos, tmp_path):
    segment_command(benchmark, photos, tmp_path, "--jobs", "2")


if BASELINE:  # collected only when an older revision is installed (benchmarks/baseline.sh)
    #: row label (report.py reads it from the test's params) -> the arguments.
    BASELINE_ROWS = {f"coreseg at {BASELINE_REV}, --jobs 1": ("--jobs", "1"),
                     f"coreseg at {BASELINE_REV}, default (every core)": ()}
    BASELINE_IDS = [f"{BASELINE_REV}-jobs1", f"{BASELINE_REV}-default"]

    @pytest.mark.parametrize("baseline_row", list(BASELINE_ROWS), ids=BASELINE_IDS)
    def test_eval_baseline(benchmark, datapoints, tmp_path, baseline_row):
        eval_command(benchmark, datapoints, tmp_path, *BASELINE_ROWS[baseline_row], pythonpath=BASELINE)

    @pytest.mark.parametrize("baseline_row", list(BASELINE_ROWS), ids=BASELINE_IDS)
    def test_segment_baseline(benchmark, photos, tmp_path, baseline_row):
        segment_command(benchmark, photos, tmp_path, *BASELINE_ROWS[baseline_row], pythonpath=BASELINE)
