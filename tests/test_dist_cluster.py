"""The README's cluster run, as written, on a local cluster of this
machine: `ray start --head`, `coreseg eval MODEL DATASET --ray auto`,
`ray stop`. (A module of its own: test_dist runs a Ray instance inside
the test process, and the two must not overlap.)"""

import json
import os
import shutil
import subprocess
import sys

import pytest

from coreseg import demo

pytest.importorskip("ray", reason="coreseg.dist needs Ray: pip install '.[ray]'")
pytest.importorskip("cv2", reason="Datagen ground truth needs OpenCV: pip install '.[images]'")
RAY = shutil.which("ray") or os.path.join(os.path.dirname(sys.executable), "ray")


def sh(*args, timeout=300):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def test_eval_on_a_cluster_started_with_ray_start(tmp_path):
    demo.write_datapoints(tmp_path / "scenes", range(2_000_000, 2_000_008))
    started = sh(RAY, "start", "--head", "--num-cpus", "2", "--include-dashboard", "false")
    assert started.returncode == 0, started.stderr
    try:
        on_ray = sh(sys.executable, "-m", "coreseg", "eval", "demo", tmp_path / "scenes", "--out", tmp_path / "ray",
                    "--ray", "auto")
    finally:
        sh(RAY, "stop", "--force")
    assert on_ray.returncode == 0, on_ray.stderr
    here = sh(sys.executable, "-m", "coreseg", "eval", "demo", tmp_path / "scenes", "--out", tmp_path / "here",
              "--jobs", "1")
    assert here.returncode == 0, here.stderr
    for name in ("report.json", "classes.csv", "table.txt", "confusion.png"):
        assert (tmp_path / "ray" / name).read_bytes() == (tmp_path / "here" / name).read_bytes(), name
    assert json.loads((tmp_path / "ray/report.json").read_text())["images"] == 8
