"""The README's "Bring your own model" worked example, as it is written there:
a raw ONNX export (MediaPipe Selfie Segmentation) given its labels, colours
and activation with `coreseg annotate`, then segmented."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ONNX backend needs onnxruntime: pip install '.[onnx]'")
from shared_fixtures import MEDIAPIPE  # noqa: E402

import coreseg  # noqa: E402
from coreseg.cli import main  # noqa: E402

pytestmark = pytest.mark.skipif(not MEDIAPIPE.is_dir(), reason=f"the shared MediaPipe fixtures are not at {MEDIAPIPE}")


def test_worked_example(tmp_path, monkeypatch, capsys):
    shutil.copy(MEDIAPIPE / "selfie_segmentation.onnx", tmp_path)
    shutil.copy(MEDIAPIPE / "astronaut.png", tmp_path)
    monkeypatch.chdir(tmp_path)

    # From the README, step by step.
    model = coreseg.load("selfie_segmentation.onnx")
    assert model.info.output_kind == "binary" and model.labels == ["background", "foreground"]

    assert main(["annotate", "selfie_segmentation.onnx", "--labels", "background,person",
                 "--colors", "#00000000,#FF00FFFF", "--set", "coreseg.output.activation=sigmoid",
                 "-o", "selfie.onnx"]) == 0
    model = coreseg.load("selfie.onnx", crop="fit")
    seg = model.predict("astronaut.png")
    person = seg.full_labels(smooth=True) == model.label_index("person")
    overlay = seg.overlay("astronaut.png", opacity=0.6, smooth=True)

    # What the README says happened.
    assert model.labels == ["background", "person"]
    assert model.output.activation == "sigmoid"
    assert json.loads(coreseg.inspect("selfie.onnx").user_defined["com.apple.coreml.model.preview.params"])["labels"] \
        == ["background", "person"]
    assert person.shape == (512, 512) and 0.5 < person.mean() < 0.6
    photo = np.asarray(__import__("PIL.Image").Image.open("astronaut.png").convert("RGB"))
    assert (overlay[~person] == photo[~person]).all()  # background is transparent in the given colours
    assert (overlay[person] != photo[person]).any()
    # The original file was not touched; annotating again needs --force.
    assert coreseg.inspect("selfie_segmentation.onnx").labels == ["background", "foreground"]
    assert main(["annotate", "selfie_segmentation.onnx", "--labels", "a,b", "-o", "selfie.onnx"]) == 1
    assert "exists" in capsys.readouterr().err


def test_annotate_refuses_a_copy_that_would_not_load(tmp_path):
    import onnx_models as om

    raw = om.save(om.binary_channel(), tmp_path / "raw.onnx")  # one channel, activation unknown
    with pytest.raises(coreseg.ModelError, match="pass output_activation='sigmoid'"):
        coreseg.annotate(raw, ["bg", "fg"], tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
    info = coreseg.annotate(raw, ["bg", "fg"], tmp_path / "out.onnx", metadata={"coreseg.output.activation": "logits"})
    assert info.output_activation == "logits" and info.labels == ["bg", "fg"]
    with pytest.raises(coreseg.ModelError, match="metadata must map strings to strings"):
        coreseg.annotate(raw, ["bg", "fg"], tmp_path / "o2.onnx", metadata={"coreseg.output.activation": 1})
