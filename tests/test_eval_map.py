"""`eval --map` and `align_classes`: a map that could only be read by
guessing is refused, naming the group (and the file); every scored class
is one row."""

import json
import subprocess
import sys

import pytest

from coreseg.cli.evaluate import parse_class_map
from coreseg.metrics import align_classes

MODEL = ["sky", "sun", "hill", "water"]
DATASET = ["grass", "hill", "sky", "sun"]


def test_a_group_given_twice_is_refused():
    with pytest.raises(ValueError, match=r"--map 'sky=sky,sun;sky=hill': group 'sky' is given twice"):
        parse_class_map("sky=sky,sun;sky=hill", MODEL, DATASET)
    assert parse_class_map("sky=sky,sun;hill=hill", MODEL, DATASET) == {"sky": ["sky", "sun"], "hill": ["hill"]}


def test_a_group_named_like_a_class_it_leaves_out_is_refused():
    # Before: the dataset's own "sky" was scored in the group, beside an empty second "sky" row.
    with pytest.raises(ValueError, match=r"group 'sky' is also a dataset class that no group includes"):
        parse_class_map("sky=sun", MODEL, DATASET)
    # Another group may take it, and then the names do not clash.
    groups = parse_class_map("sky=sun;water=sky", MODEL, DATASET)
    names, gt_ids, model_ids = align_classes(MODEL, DATASET, groups)
    assert len(names) == len(set(names))
    with pytest.raises(ValueError, match=r"group 'sky' is also a dataset class that no group includes"):
        align_classes(MODEL, DATASET, {"sky": ["sun"]})  # the API path (coreseg.dist, DatapointScorer)


def test_json_maps_name_the_file_and_the_key(tmp_path):
    bad = tmp_path / "map.json"
    bad.write_text(json.dumps({"sky": ["sky", 3]}))
    with pytest.raises(ValueError, match=rf"{bad}: --map group 'sky': expected a dataset class pattern"):
        parse_class_map(str(bad), MODEL, DATASET)
    bad.write_text(json.dumps({"sky": {"a": 1}}))
    with pytest.raises(ValueError, match=rf"{bad}: --map group 'sky'"):
        parse_class_map(str(bad), MODEL, DATASET)
    bad.write_text('{"sky": ["sky"], "sky": ["sun"]}')  # Python's json would keep the last
    with pytest.raises(ValueError, match=rf"{bad}: key 'sky' is given twice"):
        parse_class_map(str(bad), MODEL, DATASET)
    bad.write_text(json.dumps({"sky": "s*"}))
    assert parse_class_map(str(bad), MODEL, DATASET) == {"sky": ["sky", "sun"]}
    bad.write_text(json.dumps({"moon": ["sky"]}))
    with pytest.raises(ValueError, match=rf"{bad}: the model has no class 'moon'"):
        parse_class_map(str(bad), MODEL, DATASET)
    with pytest.raises(FileNotFoundError, match="--map nothere.json: no such file"):
        parse_class_map("nothere.json", MODEL, DATASET)


def test_align_classes_refuses_what_it_would_guess():
    with pytest.raises(ValueError, match=r"dataset class 'sun' is in two groups, 'sky' and 'hill'"):
        align_classes(MODEL, DATASET, {"sky": ["sky", "sun"], "hill": ["hill", "sun"]})
    with pytest.raises(ValueError, match=r"group 'sky': 'clouds' is not a class of the dataset"):
        align_classes(MODEL, DATASET, {"sky": ["sky", "clouds"]})
    with pytest.raises(ValueError, match=r"group 'moon': not a class of the model"):
        align_classes(MODEL, DATASET, {"moon": ["sky"]})
    with pytest.raises(ValueError, match=r"group 'sky': no dataset class"):
        align_classes(MODEL, DATASET, {"sky": []})
    with pytest.raises(ValueError, match=r"group 'sky': expected a list of dataset class names"):
        align_classes(MODEL, DATASET, {"sky": "sky"})
    names, gt_ids, model_ids = align_classes(MODEL, DATASET, {"sky": ["sky", "sun"]})
    assert names == ["grass", "hill", "sky", "model: sun", "model: water"]
    assert gt_ids.tolist() == [0, 1, 2, 2] and model_ids.tolist() == [2, 3, 1, 4]


def test_cli_eval_map_errors_are_one_line(tmp_path):
    pytest.importorskip("cv2", reason="Datagen ground truth needs OpenCV: pip install '.[images]'")
    from coreseg import demo

    demo.write_datapoints(tmp_path / "data", [2_000_000])
    for text, message in (("sky=sky,sun;sky=hill", "group 'sky' is given twice"),
                          ("sky=sun", "group 'sky' is also a dataset class that no group includes")):
        r = subprocess.run([sys.executable, "-m", "coreseg", "eval", "demo", str(tmp_path / "data"), "--map", text,
                            "--out", str(tmp_path / "e")], capture_output=True, text=True, timeout=300)
        assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "e").exists()
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"sky": ["sky", None]}))
    r = subprocess.run([sys.executable, "-m", "coreseg", "eval", "demo", str(tmp_path / "data"), "--map",
                        str(mapping), "--out", str(tmp_path / "e")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and f"{mapping}: --map group 'sky'" in r.stderr and "TypeError" not in r.stderr
    assert not (tmp_path / "e").exists()
