"""The `coreseg` command, end to end in a temporary folder."""

import json
import subprocess
import sys

import pytest

pytest.importorskip("coremltools", reason="coremltools has no wheel for this platform")

import coreml_models as cm  # noqa: E402


def run(*args):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "seg.mlpackage"
    cm.segmenter().save(str(path))
    return path


def test_info_text_and_json(model):
    r = run("info", model)
    assert r.returncode == 0, r.stderr
    assert "input   image: 24x16 RGB image" in r.stdout
    assert "output  semanticPredictions: int32 class map, 16x24" in r.stdout
    r = run("info", model, "--json")
    data = json.loads(r.stdout)
    assert data["input_size"] == [24, 16] and data["labels"] is None


def test_annotate_then_info(model, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("background\nsky\n\ntree\n")
    out = tmp_path / "annotated.mlpackage"
    r = run("annotate", model, "--labels", labels, "--colors", "#000000,#87CEEB,#228B22", "-o", out)
    assert r.returncode == 0, r.stderr
    assert "3 labels with colours" in r.stdout
    data = json.loads(run("info", out, "--json").stdout)
    assert data["labels"] == ["background", "sky", "tree"]
    assert data["colors"] == ["#000000FF", "#87CEEBFF", "#228B22FF"]
    # Refuses to overwrite without --force; with it, replaces.
    r = run("annotate", model, "--labels", "a,b", "-o", out)
    assert r.returncode == 1 and "exists; pass force=True (--force)" in r.stderr
    r = run("annotate", model, "--labels", '["x", "y"]', "-o", out, "--force")
    assert r.returncode == 0, r.stderr
    assert json.loads(run("info", out, "--json").stdout)["labels"] == ["x", "y"]
    json_labels = tmp_path / "labels.json"
    json_labels.write_text(json.dumps(["p", "q"]))
    assert run("annotate", model, "--labels", json_labels, "-o", out, "--force").returncode == 0
    assert json.loads(run("info", out, "--json").stdout)["labels"] == ["p", "q"]


def test_errors_are_one_line_without_traceback(tmp_path):
    r = run("info", tmp_path / "missing.mlpackage")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("coreseg info: error: ") and "no such file or folder" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("--debug", "info", tmp_path / "missing.mlpackage")
    assert r.returncode != 0 and "Traceback" in r.stderr and "ModelError" in r.stderr
    r = run("frobnicate")
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_selfcheck():
    r = run("selfcheck")
    assert r.returncode == 0, r.stderr
    assert "all kernels match the reference" in r.stdout
