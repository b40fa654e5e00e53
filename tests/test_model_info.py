"""coreseg.inspect and coreseg.annotate on real model files built with
coremltools, and on Apple's DETR spec from ../shared."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("coremltools", reason="coremltools has no wheel for this platform")

import coreml_models as cm  # noqa: E402
from shared_fixtures import DETR  # noqa: E402

import coreseg  # noqa: E402
from coreseg import ModelError  # noqa: E402



@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    paths = {}

    def save(name, model):
        paths[name] = d / name
        model.save(str(paths[name]))

    save("plain.mlpackage", cm.segmenter())
    cm.save_spec(cm.neural_network_segmenter(), d / "plain.mlmodel")
    paths["plain.mlmodel"] = d / "plain.mlmodel"
    save("bgr.mlpackage", cm.segmenter(color_layout=cm.BGR))
    save("flex_range.mlpackage", cm.segmenter(shape=cm.FLEX_RANGE))
    save("flex_enum.mlpackage", cm.segmenter(shape=cm.FLEX_ENUM))
    params = {"labels": ["--", "sky", "tree"], "colors": ["#87CEEB", "#228B2280", "#000000"]}
    save("colors.mlpackage", cm.segmenter(user_defined={cm.TYPE: "imageSegmenter", cm.PARAMS: json.dumps(params)}))
    save("nocolors.mlpackage", cm.segmenter(user_defined={cm.PARAMS: json.dumps({"labels": ["a", "b", "c"]})}))
    save("not_json.mlpackage", cm.segmenter(user_defined={cm.PARAMS: "{labels: [sky]"}))
    save("labels_not_strings.mlpackage", cm.segmenter(user_defined={cm.PARAMS: json.dumps({"labels": ["a", 2]})}))
    save("params_not_object.mlpackage", cm.segmenter(user_defined={cm.PARAMS: json.dumps(["a"])}))
    save("colors_not_hex.mlpackage",
         cm.segmenter(user_defined={cm.PARAMS: json.dumps({"labels": ["a", "b"], "colors": ["#000000", "blue"]})}))
    save("colors_count.mlpackage",
         cm.segmenter(user_defined={cm.PARAMS: json.dumps({"labels": ["a", "b"], "colors": ["#000000"]})}))
    save("classifier.mlpackage", cm.classifier())
    save("logits.mlpackage", cm.logits_model())
    save("tensor_input.mlpackage", cm.tensor_input_model())
    return paths


def test_reads_an_ml_program_package(models):
    info = coreseg.inspect(models["plain.mlpackage"])
    assert info.format == "mlpackage" and info.model_type == "mlProgram"
    assert (info.input_name, info.input_size, info.input_color_layout) == ("image", (cm.W, cm.H), "RGB")
    assert (info.output_name, info.output_dtype, info.output_shape) == ("semanticPredictions", "int32", (cm.H, cm.W))
    assert info.labels is None and info.colors is None and info.preview_type is None
    assert (info.author, info.license, info.version, info.description) == \
        ("coreseg tests", "MIT", "2.1", "argmax over RGB")
    assert info.input_size_range is None and info.input_sizes is None
    # Without labels, ids are the names and a default palette colours them.
    assert info.label_name(7) == "7"
    np.testing.assert_array_equal(info.palette(), coreseg.default_palette(256))


def test_reads_a_neural_network_mlmodel(models):
    info = coreseg.inspect(models["plain.mlmodel"])
    assert info.format == "mlmodel" and info.model_type == "neuralNetwork"
    assert (info.input_size, info.output_dtype, info.output_shape) == ((cm.W, cm.H), "int32", (cm.H, cm.W))


def test_bgr_input(models):
    assert coreseg.inspect(models["bgr.mlpackage"]).input_color_layout == "BGR"


def test_flexible_input_sizes(models):
    ranged = coreseg.inspect(models["flex_range.mlpackage"])
    assert ranged.input_size == (cm.W, cm.H)
    assert ranged.input_size_range == ((8, 128), (8, 64))  # ((width), (height))
    enum = coreseg.inspect(models["flex_enum.mlpackage"])
    assert enum.input_sizes == ((cm.W, cm.H), (48, 32))
    assert "flexible size: width 8..128, height 8..64" in ranged.summary()


def test_labels_and_colors_from_metadata(models):
    info = coreseg.inspect(models["colors.mlpackage"])
    assert info.preview_type == "imageSegmenter"
    assert info.labels == ["--", "sky", "tree"]
    assert info.colors.tolist() == [[135, 206, 235, 255], [34, 139, 34, 128], [0, 0, 0, 255]]
    np.testing.assert_array_equal(info.palette(), info.colors)
    # "--" keeps its id but stays out of legends.
    assert info.legend() == [(1, "sky"), (2, "tree")]
    assert info.label_index("tree") == 2
    with pytest.raises(KeyError, match="no label 'road'.*valid labels: sky, tree"):
        info.label_index("road")
    with pytest.raises(KeyError):
        info.label_index("--")


def test_default_palette_when_the_model_has_no_colors(models):
    info = coreseg.inspect(models["nocolors.mlpackage"])
    assert info.colors is None
    np.testing.assert_array_equal(info.palette(), coreseg.default_palette(3))


@pytest.mark.skipif(not DETR.exists(), reason=f"the shared DETR fixture is not at {DETR}")
def test_reads_apples_detr_spec():
    info = coreseg.inspect(DETR)
    assert len(info.labels) == 201 and info.labels[:3] == ["--", "person", "bicycle"]
    assert (info.input_name, info.input_size, info.input_color_layout) == ("image", (448, 448), "RGB")
    assert (info.output_name, info.output_dtype, info.output_shape) == ("semanticPredictions", "int32", (448, 448))
    assert info.preview_type == "imageSegmenter" and info.colors is None
    assert info.palette().shape == (201, 4)
    assert "--" not in info.legend_names() and info.label_index("sky (other)") == 187
    assert info.model_type == "mlProgram" and info.spec_version == 8


@pytest.mark.parametrize("name, message", [
    ("not_json.mlpackage", r"not_json.mlpackage: com.apple.coreml.model.preview.params is not JSON"),
    ("labels_not_strings.mlpackage", "labels must be a list of strings"),
    ("params_not_object.mlpackage", "must be a JSON object, got list"),
    ("colors_not_hex.mlpackage", r"colors\[1\]: not a hex colour .*'blue'"),
    ("colors_count.mlpackage", "1 colors for 2 labels; they must match one to one"),
    ("classifier.mlpackage", r"no output is an integer class map or float scores .*; the outputs are: "
                             r"classLabel \(string\), classLabel_probs \(dictionary\)"),
    ("tensor_input.mlpackage", r"no image input \(inputs: image float32 \[1, 3, 16, 24\]\)"),
])
def test_bad_models_are_clear_errors(models, name, message):
    with pytest.raises(ModelError, match=message) as e:
        coreseg.inspect(models[name])
    assert str(models[name]) in str(e.value)
    assert isinstance(e.value, ValueError)


def test_bad_paths_are_clear_errors(tmp_path, models):
    with pytest.raises(ModelError, match="no such file or folder"):
        coreseg.inspect(tmp_path / "missing.mlpackage")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelError, match=r"notes.txt: not a model coreseg reads \(expected an .onnx file, a .mlpackage"):
        coreseg.inspect(tmp_path / "notes.txt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ModelError, match="folder: not a model coreseg reads"):
        coreseg.inspect(tmp_path / "folder")
    (tmp_path / "corrupt.mlmodel").write_bytes(b"\x00\xff" * 100)
    with pytest.raises(ModelError, match="corrupt.mlmodel: corrupt model spec"):
        coreseg.inspect(tmp_path / "corrupt.mlmodel")
    (tmp_path / "empty.mlmodel").write_bytes(b"")
    with pytest.raises(ModelError, match="corrupt model spec"):
        coreseg.inspect(tmp_path / "empty.mlmodel")
    (tmp_path / "x.mlmodelc").mkdir()
    with pytest.raises(ModelError, match="compiled .mlmodelc can only be read by Core ML on macOS"):
        coreseg.inspect(tmp_path / "x.mlmodelc")
    nomanifest = tmp_path / "nomanifest.mlpackage"
    nomanifest.mkdir()
    with pytest.raises(ModelError, match="it has no Manifest.json"):
        coreseg.inspect(nomanifest)
    badmanifest = tmp_path / "bad.mlpackage"
    badmanifest.mkdir()
    (badmanifest / "Manifest.json").write_text("{")
    with pytest.raises(ModelError, match="Manifest.json is not a valid Core ML package manifest"):
        coreseg.inspect(badmanifest)
    import shutil

    gone = tmp_path / "gone.mlpackage"
    shutil.copytree(models["plain.mlpackage"], gone)
    (gone / "Data/com.apple.CoreML/model.mlmodel").unlink()
    with pytest.raises(ModelError, match="names 'com.apple.CoreML/model.mlmodel' as the model spec, but it is missing"):
        coreseg.inspect(gone)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for p in files:
        h.update(str(p.relative_to(path) if path.is_dir() else p.name).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", ["plain.mlpackage", "plain.mlmodel"])
def test_annotate_round_trips_and_never_touches_the_input(models, tmp_path, name):
    src = models[name]
    before = _digest(src)
    out = tmp_path / f"annotated{src.suffix}"
    info = coreseg.annotate(src, ["--", "sky", "tree"], out, colors=["#87CEEB", "#228B22", "#000000FF"])
    assert _digest(src) == before
    assert info.path == out and info.preview_type == "imageSegmenter"
    again = coreseg.inspect(out)
    assert again.labels == ["--", "sky", "tree"]
    assert again.colors.tolist() == [[135, 206, 235, 255], [34, 139, 34, 255], [0, 0, 0, 255]]
    assert (again.input_size, again.output_shape) == (info.input_size, info.output_shape)
    params = json.loads(again.user_defined["com.apple.coreml.model.preview.params"])
    assert params == {"labels": ["--", "sky", "tree"], "colors": ["#87CEEB", "#228B22", "#000000"]}
    if src.suffix == ".mlpackage":  # the weights and manifest come along
        assert (out / "Manifest.json").read_bytes() == (src / "Manifest.json").read_bytes()
        assert (out / "Data/com.apple.CoreML/weights").is_dir()


def test_annotate_refuses_to_overwrite(models, tmp_path):
    out = tmp_path / "out.mlpackage"
    coreseg.annotate(models["plain.mlpackage"], ["a", "b", "c"], out)
    with pytest.raises(ModelError, match="out.mlpackage exists; pass force=True"):
        coreseg.annotate(models["plain.mlpackage"], ["x", "y", "z"], out)
    assert coreseg.inspect(out).labels == ["a", "b", "c"]
    coreseg.annotate(models["plain.mlpackage"], ["x", "y", "z"], out, force=True)
    assert coreseg.inspect(out).labels == ["x", "y", "z"]
    with pytest.raises(ModelError, match="refusing to write over the input model"):
        coreseg.annotate(out, ["a"], out, force=True)
    with pytest.raises(ModelError, match="must have the same format"):
        coreseg.annotate(models["plain.mlpackage"], ["a"], tmp_path / "out.mlmodel")
    assert not list(tmp_path.glob(".coreseg-*"))  # no staging left behind


def test_annotate_checks_its_input(models, tmp_path):
    with pytest.raises(ModelError, match="no output is an integer class map"):
        coreseg.annotate(models["classifier.mlpackage"], ["cat"], tmp_path / "c.mlpackage")
    with pytest.raises(ModelError, match="2 colors for 3 labels"):
        coreseg.annotate(models["plain.mlpackage"], ["a", "b", "c"], tmp_path / "d.mlpackage", colors=["#000000"] * 2)
    with pytest.raises(ModelError, match="labels must be a list of strings"):
        coreseg.annotate(models["plain.mlpackage"], "a,b", tmp_path / "e.mlpackage")
    with pytest.raises(ModelError, match="non-empty list of non-empty strings"):
        coreseg.annotate(models["plain.mlpackage"], [], tmp_path / "e.mlpackage")
    with pytest.raises(ModelError, match=r"colors\[0\]: not a hex colour"):
        coreseg.annotate(models["plain.mlpackage"], ["a"], tmp_path / "e.mlpackage", colors=["red"])
    assert not (tmp_path / "e.mlpackage").exists()


def test_annotate_keeps_other_params_and_takes_array_colors(models, tmp_path):
    out = tmp_path / "kept.mlpackage"
    coreseg.annotate(models["colors.mlpackage"], ["a", "b"], out, colors=np.array([[1, 2, 3], [4, 5, 6]]))
    info = coreseg.inspect(out)
    assert info.labels == ["a", "b"] and info.colors[:, :3].tolist() == [[1, 2, 3], [4, 5, 6]]


@pytest.mark.skipif(not DETR.exists(), reason=f"the shared DETR fixture is not at {DETR}")
def test_annotate_detr_without_weights(tmp_path):
    # The fixture's weights were removed; annotate copies what is there.
    labels = coreseg.inspect(DETR).labels
    out = tmp_path / "detr.mlpackage"
    coreseg.annotate(DETR, labels, out, colors=coreseg.default_palette(len(labels))[:, :3])
    info = coreseg.inspect(out)
    assert info.labels == labels and info.colors.shape == (201, 4)


def test_reading_a_core_ml_file_does_not_import_coremltools(models):
    # coremltools' own package import takes seconds (its converters); its
    # generated protobuf modules are all a spec needs. After a real import
    # of coremltools, both read the same specs.
    import subprocess
    import sys

    code = ("import sys, coreseg; info = coreseg.inspect(sys.argv[1]); "
            "assert 'coremltools' not in sys.modules, 'coremltools was imported'; "
            "import coremltools as ct; spec = ct.utils.load_spec(sys.argv[1]); "
            "assert coreseg.inspect(sys.argv[1]).input_name == spec.description.input[0].name == info.input_name; "
            "print(info.input_name)")
    r = subprocess.run([sys.executable, "-c", code, str(models["plain.mlpackage"])], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "image", r.stderr


def test_loading_an_onnx_model_does_not_import_onnx():
    # `import onnx` costs about a second (ml_dtypes), paid by every process
    # that loads a model, eval's and segment's workers among them; the
    # generated ModelProto is all a reader needs. After a real import of
    # onnx, both read the same file alike.
    pytest.importorskip("onnxruntime", reason="the demo model runs through onnxruntime: pip install '.[onnx]'")
    import subprocess
    import sys

    code = ("import sys, coreseg; m = coreseg.load('demo', backend='onnx'); "
            "assert 'onnx' not in sys.modules and 'ml_dtypes' not in sys.modules, 'onnx was imported'; "
            "from coreseg.modelfiles import onnx_file; first = onnx_file.read(m.info.path); "
            "import onnx; assert onnx_file.read(m.info.path) == first; "
            "assert onnx.load(str(m.info.path)).graph.output[0].name == first.outputs[0].name; "
            "print(first.outputs[0].dtype)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "float32", r.stderr


def test_onnx_dtype_names_are_onnx_helpers():
    onnx = pytest.importorskip("onnx", reason="pip install '.[onnx]'")
    from coreseg.modelfiles._onnx_proto import DTYPE_NAMES

    for name, value in onnx.TensorProto.DataType.items():
        try:
            expected = onnx.helper.tensor_dtype_to_np_dtype(value).name
        except (KeyError, ValueError, TypeError):
            assert value not in DTYPE_NAMES, name
            continue
        assert DTYPE_NAMES.get(value) == expected, name
