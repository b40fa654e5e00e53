"""`coreseg eval` on 200 generated scenes (Datagen format, 320x240), each
run as a user runs it (the command in its own process, start-up and the
report included): one process (--jobs 1; the model on both cores), the
same on one core (taskset), two worker processes (--jobs 2), and Ray Data
on a running local cluster (`ray start --head --num-cpus 2`, then
--ray auto), as a cluster is used. The same on 2 scenes gives what every
run pays once (imports, workers or actors starting, loading the model),
so the 200-scene times minus it are the per-image rates."""

import os
import shutil
import subprocess
import sys

import pytest

from coreseg import demo

pytest.importorskip("cv2", reason="Datagen ground truth needs OpenCV: pip install '.[images]'")
pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime here: pip install '.[onnx]'")

#: Scenes per run: 200 for the rate, 2 for the start-up that every run pays once.
SIZES = {"200 generated scenes": 200, "2 generated scenes (the start-up)": 2}


@pytest.fixture(scope="module", params=list(SIZES))
def scenes(request, tmp_path_factory):
    root = tmp_path_factory.mktemp("scenes")
    demo.write_datapoints(root, range(3_000_000, 3_000_000 + SIZES[request.param]))
    return request.param, root


def eval_command(benchmark, scenes, out, *args, prefix=()):
    size, root = scenes
    command = [*prefix, sys.executable, "-m", "coreseg", "eval", "demo", str(root), "--out", str(out), "--force",
               *args]
    env = dict(os.environ, TQDM_DISABLE="1")

    def once():
        subprocess.run(command, check=True, capture_output=True, env=env, timeout=600)

    benchmark.group = f"eval: {size}, 320x240"
    benchmark.pedantic(once, rounds=3, iterations=1, warmup_rounds=1)
    if benchmark.stats is not None:  # None with --benchmark-disable (CI runs each benchmark once, as a test)
        benchmark.extra_info["images_per_s"] = round(SIZES[size] / benchmark.stats.stats.median, 1)


def test_eval_jobs1(benchmark, scenes, tmp_path):
    eval_command(benchmark, scenes, tmp_path, "--jobs", "1")


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux) to pin to one core")
def test_eval_jobs1_one_core(benchmark, scenes, tmp_path):
    eval_command(benchmark, scenes, tmp_path, "--jobs", "1", prefix=("taskset", "-c", "0"))


def test_eval_jobs2(benchmark, scenes, tmp_path):
    eval_command(benchmark, scenes, tmp_path, "--jobs", "2")


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray", reason="the Ray row needs the ray extra: pip install '.[ray]'")
    ray = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")
    subprocess.run([ray, "start", "--head", "--num-cpus", "2", "--include-dashboard", "false"], check=True,
                   capture_output=True, timeout=120)
    yield
    subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)


def test_eval_ray(benchmark, scenes, tmp_path, ray_cluster):
    eval_command(benchmark, scenes, tmp_path, "--ray", "auto")
