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

The commands' Python modules are compiled once into a folder of the
module's own (PYTHONPYCACHEPREFIX; PYTHONDONTWRITEBYTECODE, if set, is
dropped for them), as an installed package has them compiled: else each
process, workers included, would compile coreseg's sources every run
(about 0.15 s of a run here), which no user pays; the older revision's
commands get the same.

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
def command_env(tmp_path_factory):
    """The commands' environment: no progress bar, modules compiled once (see above)."""
    env = dict(os.environ, TQDM_DISABLE="1", PYTHONPYCACHEPREFIX=str(tmp_path_factory.mktemp("pycache")))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@pytest.fixture(scope="module")
def datapoint_folders(request, tmp_path_factory):
    """{size key: folder}: the 40 datapoints (4 with --benchmark-disable),
    written on every core, and a folder of the first 2."""
    n = 4 if request.config.getoption("benchmark_disable", False) else 40
    root = tmp_path_factory.mktemp("datapoints")
    seeds = list(range(FIRST_SEED, FIRST_SEED + n))
    with ProcessPoolExecutor(CORES) as pool:
        list(pool.map(_write, [root] * CORES, [seeds[i::CORES] for i in range(CORES)]))
    two = tmp_path_factory.mktemp("datapoints2")
    for seed in seeds[:2]:
        shutil.copytree(root / f"scene_{seed}", two / f"scene_{seed}")
    return {"40": root, "2": two}


@pytest.fixture(scope="module")
def photo_folders(datapoint_folders, tmp_path_factory):
    """{size key: folder}: the same scenes' photos as JPEGs (quality 90), named by scene."""
    folders = {}
    for size, root in datapoint_folders.items():
        folders[size] = tmp_path_factory.mktemp(f"photos{size}")
        for scene in sorted(root.iterdir()):
            with Image.open(scene / "camera" / "visible_spectrum_01.png") as photo:
                photo.convert("RGB").save(folders[size] / f"{scene.name}.jpg", quality=90)
    return folders


# Function-scoped: a command's 40- and 2-image runs come one after the
# other, so the machine's load drifts little between the two that
# report.py subtracts.
@pytest.fixture(params=list(SIZES))
def datapoints(request, datapoint_folders):
    """(size key, folder of datapoints)."""
    return request.param, datapoint_folders[request.param]


@pytest.fixture(params=list(SIZES))
def photos(request, photo_folders):
    """(size key, folder of JPEGs)."""
    return request.param, photo_folders[request.param]


def run_command(benchmark, kind, inputs, env, command, prefix=(), pythonpath=None):
    """Time `command` (after `python -m coreseg`) in its own process, 3
    rounds after a warm-up, and record its process tree's CPU time."""
    size, folder = inputs
    images = len(list(folder.iterdir()))
    env = dict(env)
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


def eval_command(benchmark, datapoints, env, out, *args, **kwargs):
    run_command(benchmark, "eval", datapoints, env,
                ["eval", "demo", str(datapoints[1]), "--out", str(out), "--force", *args], **kwargs)


def segment_command(benchmark, photos, env, out, *args, **kwargs):
    run_command(benchmark, "segment", photos, env,
                ["segment", "demo", str(photos[1]), "--out", str(out), "--force", *args], **kwargs)


def test_eval_default(benchmark, datapoints, command_env, tmp_path):
    eval_command(benchmark, datapoints, command_env, tmp_path)


def test_eval_default_worst0(benchmark, datapoints, command_env, tmp_path):
    eval_command(benchmark, datapoints, command_env, tmp_path, "--worst", "0")


def test_eval_jobs1(benchmark, datapoints, command_env, tmp_path):
    eval_command(benchmark, datapoints, command_env, tmp_path, "--jobs", "1")


def test_eval_jobs2(benchmark, datapoints, command_env, tmp_path):
    eval_command(benchmark, datapoints, command_env, tmp_path, "--jobs", "2")


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux) to pin to one core")
def test_eval_jobs1_one_core(benchmark, datapoints, command_env, tmp_path):
    eval_command(benchmark, datapoints, command_env, tmp_path, "--jobs", "1", prefix=("taskset", "-c", "0"))


def test_segment_default(benchmark, photos, command_env, tmp_path):
    segment_command(benchmark, photos, command_env, tmp_path)


def test_segment_jobs1(benchmark, photos, command_env, tmp_path):
    segment_command(benchmark, photos, command_env, tmp_path, "--jobs", "1")


def test_segment_jobs2(benchmark, photos, command_env, tmp_path):
    segment_command(benchmark, photos, command_env, tmp_path, "--jobs", "2")


if BASELINE:  # collected only when an older revision is installed (benchmarks/baseline.sh)
    # Each row one test of its own, so that its 40- and 2-image runs come
    # one after the other; report.py reads the row's name from its params.
    JOBS1 = f"coreseg at {BASELINE_REV}, --jobs 1"
    DEFAULT = f"coreseg at {BASELINE_REV}, default (every core)"

    @pytest.mark.parametrize("baseline_row", [JOBS1], ids=[BASELINE_REV])
    def test_eval_baseline_jobs1(benchmark, datapoints, command_env, tmp_path, baseline_row):
        eval_command(benchmark, datapoints, command_env, tmp_path, "--jobs", "1", pythonpath=BASELINE)

    @pytest.mark.parametrize("baseline_row", [DEFAULT], ids=[BASELINE_REV])
    def test_eval_baseline_default(benchmark, datapoints, command_env, tmp_path, baseline_row):
        eval_command(benchmark, datapoints, command_env, tmp_path, pythonpath=BASELINE)

    @pytest.mark.parametrize("baseline_row", [JOBS1], ids=[BASELINE_REV])
    def test_segment_baseline_jobs1(benchmark, photos, command_env, tmp_path, baseline_row):
        segment_command(benchmark, photos, command_env, tmp_path, "--jobs", "1", pythonpath=BASELINE)

    @pytest.mark.parametrize("baseline_row", [DEFAULT], ids=[BASELINE_REV])
    def test_segment_baseline_default(benchmark, photos, command_env, tmp_path, baseline_row):
        segment_command(benchmark, photos, command_env, tmp_path, pythonpath=BASELINE)
