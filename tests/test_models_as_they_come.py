"""Published models as they come (../shared/fixtures/real-models) and small
models built here: nothing assumed silently, multi-label outputs, outputs
whose shape only a result shows, the sizes a model can take, and the
command line saying what `load` says.

Each real model is checked against a raw onnxruntime + numpy run of the
same model written here, fed coreseg's own resample of the photo, so only
the model contract is tested."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pytest
from PIL import Image

import coreseg
import onnx_models as om
from coreseg import reference
from shared_fixtures import MEDIAPIPE, SHARED

ort = pytest.importorskip("onnxruntime", reason="ONNX Runtime is the 'onnx' extra")

REAL = SHARED / "fixtures/real-models"
TFHUB = REAL / "tfhub-deeplab/deeplab_v3_1_default_1.onnx"
PAN = REAL / "pan-skin-clothes-hair/skin_clothes_hair_PAN_mnv3s_simplifier.onnx"
ASTRONAUT = MEDIAPIPE / "astronaut.png"


def fixture(*paths):
    missing = [p for p in paths if not p.exists()]
    return pytest.mark.skipif(bool(missing), reason=f"the shared fixtures are absent: {missing}")


def cli(*args):
    return subprocess.run([sys.executable, "-m", "coreseg", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


def raw_run(path, x):
    """The model's first output on `x`, by ONNX Runtime with its defaults."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def softmax(z, axis):
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.fixture(scope="module")
def astronaut():
    return np.asarray(Image.open(ASTRONAUT).convert("RGB"))


# ---- TF-Hub DeepLabV3: float NHWC, expects -1..1, says nothing ---------------------------------


@fixture(TFHUB, ASTRONAUT)
def test_tfhub_deeplab_warns_without_normalisation_and_matches_a_raw_run_with_it(astronaut):
    with pytest.warns(coreseg.AssumptionWarning, match="normalised.*assumes 'unit'"):
        guessed = coreseg.load(TFHUB, labels="voc")
    assert guessed.info.sources["normalization"] == "assumed" and "normalization" in guessed.info.assumed
    with warnings.catch_warnings():
        warnings.simplefilter("error", coreseg.AssumptionWarning)
        model = coreseg.load(TFHUB, labels="voc", mean="symmetric")
    assert model.info.sources["normalization"] == "load" and model.labels[15] == "person"
    seg = model.predict(astronaut)
    # The raw pipeline: the same resample, x / 127.5 - 1 as the publisher's code, NHWC.
    x = coreseg.resize_image(astronaut, (257, 257), "RGB").astype(np.float32)
    x /= np.float32(255)
    x -= np.float32(0.5)
    x /= np.float32(0.5)
    logits = raw_run(TFHUB, x[None])[0]
    want = np.argmax(logits, axis=2)
    assert np.mean(seg.labels == want) >= 0.999
    np.testing.assert_allclose(seg.scores, softmax(logits, 2).transpose(2, 0, 1), atol=1e-5)
    assert model.label_index("person") in seg.areas()


@fixture(TFHUB)
def test_tfhub_deeplab_on_the_command_line(tmp_path, astronaut):
    info = cli("info", TFHUB)
    assert info.returncode == 0 and "normalization unit (assumed)" in info.stdout
    stated = cli("info", TFHUB, "--normalization", "symmetric", "--labels", "voc")
    assert "normalization symmetric\n" in stated.stdout and "normalization symmetric (assumed)" not in stated.stdout
    assert "0:background, 1:aeroplane" in stated.stdout
    Image.fromarray(astronaut).save(tmp_path / "a.png")
    guessed = cli("segment", TFHUB, tmp_path / "a.png", "--out", tmp_path / "g", "--labels", "voc")
    assert guessed.returncode == 0, guessed.stderr
    assert "coreseg segment: warning:" in guessed.stderr and "--normalization PRESET" in guessed.stderr
    assert "mean=" not in guessed.stderr  # CLI users are told flags, not load()'s keywords
    said = cli("segment", TFHUB, tmp_path / "a.png", "--out", tmp_path / "s", "--labels", "voc",
               "--normalization", "symmetric")
    assert said.returncode == 0 and "warning" not in said.stderr, said.stderr
    areas = json.loads((tmp_path / "s/a.areas.json").read_text())
    assert "person" in areas


# ---- PAN skin/clothes/hair: three independent sigmoid channels ---------------------------------


def pan_pairs():
    folder = REAL / "pan-skin-clothes-hair"
    return [(folder / "image" / p.name, p) for p in sorted((folder / "annotation").glob("*.png"))]


def miou(gt_maps, pred_maps, n=4):
    cm = sum(coreseg.confusion_matrix(g, p, n) for g, p in zip(gt_maps, pred_maps))
    tp = np.diag(cm).astype(float)
    union = cm.sum(0) + cm.sum(1) - tp
    return float(np.nanmean(np.where(union > 0, tp / np.maximum(union, 1), np.nan)))


@fixture(PAN)
def test_pan_is_multi_label_and_scores_as_the_raw_thresholded_pipeline():
    model = coreseg.load(PAN, labels=["skin", "clothes", "hair"], mean="imagenet")
    assert model.output.kind == "multilabel" and model.output.threshold == 0.5
    assert model.labels == ["background", "skin", "clothes", "hair"]
    ours, raws, truth = [], [], []
    mean, std = np.float32([0.485, 0.456, 0.406]), np.float32([0.229, 0.224, 0.225])
    for image_path, gt_path in pan_pairs():
        photo = np.asarray(Image.open(image_path).convert("RGB"))
        seg = model.predict(photo)
        x = coreseg.resize_image(photo, (512, 512), "RGB").astype(np.float32)
        x /= np.float32(255)
        x -= mean
        x /= std
        probs = raw_run(PAN, x.transpose(2, 0, 1)[None])[0]
        # The publisher's demo: each channel thresholded at 0.5 on its own.
        raw = np.where(probs.max(axis=0) > 0.5, 1 + probs.argmax(axis=0), 0)
        np.testing.assert_allclose(seg.scores, probs, atol=1e-5)  # the probabilities as the model gave them
        assert np.mean(seg.labels == raw) >= 0.999
        for k in (1, 2, 3):  # each class's own mask, overlaps kept
            np.testing.assert_array_equal(seg.mask(k, smooth=False), probs[k - 1] > 0.5)
        ours.append(seg.full_labels())
        raws.append(raw.astype(np.int32))
        truth.append(np.asarray(Image.open(gt_path)).astype(np.int32))
    assert len(truth) == 7
    ours_miou, raw_miou = miou(truth, ours), miou(truth, raws)
    assert abs(ours_miou - raw_miou) < 1e-3 and ours_miou > 0.8, (ours_miou, raw_miou)


# ---- small models built here --------------------------------------------------------------------


@pytest.fixture
def photo():
    rng = np.random.default_rng(5)
    img = rng.integers(0, 256, (om.H, om.W, 3), np.uint8)
    img[:3] = 255  # white: every channel
    img[3:6] = 0  # black: none
    return img


def test_multi_label_classes_overlap_and_the_background_is_where_none_is(tmp_path, photo):
    path = om.save(om.multilabel_sigmoid(), tmp_path / "m.onnx")
    model = coreseg.load(path, labels=["r", "g", "b"], mean="unit")
    assert model.info.output_kind == "multilabel" and model.info.sources["output_activation"] == "model"
    seg = model.predict(photo)
    p = 1 / (1 + np.exp(-8 * (photo.astype(np.float32) / 255 - 0.5)))  # (h, w, 3)
    want = np.where(p.max(axis=2) > 0.5, 1 + p.argmax(axis=2), 0)
    np.testing.assert_array_equal(seg.labels, want)
    np.testing.assert_allclose(seg.scores, p.transpose(2, 0, 1), atol=1e-6)
    assert (seg.labels[3:6] == 0).all()  # black: no class
    masks = {name: seg.mask(name, smooth=False) for name in ("r", "g", "b")}
    assert all(m[:3].all() for m in masks.values())  # white: all three classes at once
    np.testing.assert_array_equal(seg.mask("background", smooth=False), seg.labels == 0)
    # Smooth masks at a photo's resolution: the channel upsampled as upsample_argmax does.
    big = coreseg.resize_image(photo, (om.W * 3, om.H * 3), "RGB")
    seg = model.predict(big)
    t = np.full_like(seg.scores[1], 0.5)
    np.testing.assert_array_equal(seg.mask("g"), reference.upsample_argmax(np.stack([t, seg.scores[1]]),
                                                                          (om.W * 3, om.H * 3)) == 1)
    # threshold= applies, and an image where nothing passes it is all background.
    strict = coreseg.load(path, labels=["r", "g", "b"], mean="unit", threshold=0.999)
    assert (strict.predict(photo).labels[6:] == 0).mean() > (seg.labels == 0).mean()
    with pytest.raises(coreseg.ModelError, match="3 independent .sigmoid. channels.*takes 3 class names"):
        coreseg.load(path, labels=["a", "b"], mean="unit")


def test_an_output_of_unknown_shape_is_read_from_its_first_result(tmp_path):
    path = om.save(om.stride32_unknown_output(), tmp_path / "text.onnx")
    info = coreseg.inspect(path)
    assert info.output_shape == (-1, -1, -1, -1) and "layout known from results" in info.summary()
    model = coreseg.load(path, mean="unit")  # no output_layout needed
    img = np.zeros((100, 150, 3), np.uint8)
    img[:, :70, 0] = 255
    seg = model.predict(img)
    # Fed at 160x96 (the size rule), a single sigmoid channel: binary.
    assert seg.labels.shape == (96, 160) and model.output.kind == "binary"
    assert model.labels == ["background", "foreground"]
    full = seg.full_labels(smooth=True)
    assert full.shape == (100, 150) and (full[:, :60] == 1).all() and (full[:, 80:] == 0).all()


def test_a_size_the_runtime_refuses_is_a_model_error_with_a_size_to_try(tmp_path):
    path = om.save(om.stride32_unknown_output(), tmp_path / "text.onnx")
    model = coreseg.load(path, mean="unit", size="image")
    with pytest.raises(coreseg.ModelError, match=r"refused an input of 150x100 .*size=\(160, 96\)"):
        model.predict(np.zeros((100, 150, 3), np.uint8))
    Image.fromarray(np.zeros((100, 150, 3), np.uint8)).save(tmp_path / "p.png")
    r = cli("segment", path, tmp_path / "p.png", "--out", tmp_path / "o", "--normalization", "unit",
            "--size", "image")
    assert r.returncode == 1 and "--size 160,96" in r.stderr and "size=(" not in r.stderr, r.stderr
    r = cli("segment", path, tmp_path / "p.png", "--out", tmp_path / "o", "--normalization", "unit",
            "--multiple", "32", "--max-side", "64")
    assert r.returncode == 0, r.stderr


def test_raw_pixels_are_fed_exactly(tmp_path, photo):
    model = coreseg.load(om.save(om.identity_nhwc(), tmp_path / "m.onnx"), mean="raw")
    seg = model.predict(photo)
    np.testing.assert_array_equal(seg.raw[0], photo.astype(np.float32))


def test_annotate_stores_every_setting_and_refuses_unknown_keys(tmp_path):
    src = om.save(om.declared(["n", 3, "h", "w"], ["n", "c", "h2", "w2"]), tmp_path / "m.onnx")
    settings = {"coreseg.input.normalization": "imagenet", "coreseg.input.color_layout": "BGR",
                "coreseg.input.layout": "NCHW", "coreseg.input.multiple": "16", "coreseg.input.max_side": "512",
                "coreseg.input.crop": "fit", "coreseg.output.layout": "NCHW",
                "coreseg.output.activation": "sigmoid", "coreseg.output.threshold": "0.4"}
    out = tmp_path / "stated.onnx"
    r = cli("annotate", src, "--labels", "a,b", *[f"--set={k}={v}" for k, v in settings.items()], "-o", out)
    assert r.returncode == 0, r.stderr
    info = coreseg.inspect(out)
    assert info.assumed == [] and "(assumed)" not in info.summary()
    assert info.input_rule == "input size: the image's, long side at most 512, sides multiples of 16"
    model = coreseg.load(out)
    assert (model.crop, model.input.color_layout, model.input.normalization) == ("fit", "BGR", "imagenet")
    r = cli("annotate", src, "--set", "coreseg.output.activaton=softmax", "-o", tmp_path / "typo.onnx")
    assert r.returncode == 1 and "did you mean 'coreseg.output.activation'" in r.stderr
    r = cli("annotate", src, "--set", "coreseg.output.activation =softmax", "-o", tmp_path / "space.onnx")
    assert r.returncode == 1 and "no spaces around the key" in r.stderr
    assert not (tmp_path / "typo.onnx").exists() and not (tmp_path / "space.onnx").exists()


def test_check_says_what_looks_wrong(tmp_path):
    # Probabilities claimed, values that are not: the identity of 0..1 pixels
    # under "softmax" does not sum to 1 over its classes.
    claimed = om.save(om.logits_identity(metadata={"coreseg.output.activation": "softmax",
                                                    "coreseg.input.normalization": "unit"}), tmp_path / "p.onnx")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 40, 3), np.uint8)).save(tmp_path / "x.png")
    r = cli("check", claimed, tmp_path / "x.png")
    assert r.returncode == 1 and "said to be a softmax but its classes sum to 1 +-" in r.stdout, r.stdout
    assert "--activation logits" in r.stdout
    # One class everywhere: a grey photo through a brightest-channel model.
    Image.fromarray(np.full((24, 40, 3), (90, 200, 10), np.uint8)).save(tmp_path / "g.png")
    argmax = om.save(om.argmax_nhwc_uint8(om.labels_meta(["r", "g", "b"])), tmp_path / "a.onnx")
    r = cli("check", argmax, tmp_path / "g.png", "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 1 and any("one class everywhere (g 100.0%)" in w for w in report["warnings"])
    # A model that states everything, on a varied photo: nothing to say.
    r = cli("check", argmax, tmp_path / "x.png")
    assert r.returncode == 0 and "nothing looks wrong" in r.stdout, r.stdout


def test_label_presets_name_and_colour_a_model(tmp_path):
    model = coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), mean="unit", labels=["a", "b", "c"])
    assert model.labels == ["a", "b", "c"]
    with pytest.raises(coreseg.ModelError, match="21 labels for 3 score channels"):
        coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), mean="unit", labels="voc")
    with pytest.raises(TypeError, match="or a preset"):
        coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), mean="unit", labels="vocc")


def test_review_fixes_of_the_contract(tmp_path, photo):
    # BGR models take their mean and std in R, G, B order like everyone else.
    model = coreseg.load(om.save(om.logits_identity(), tmp_path / "m.onnx"), color_layout="BGR", mean="imagenet")
    np.testing.assert_allclose(model.input.mean, np.float32([0.406, 0.456, 0.485]))
    # A uint8 input has nothing to normalise: saying so is refused, not ignored.
    with pytest.raises(ValueError, match="takes uint8 pixels as they are"):
        coreseg.load(om.save(om.argmax_nhwc_uint8(), tmp_path / "u.onnx"), mean="imagenet")
    # A bad layout in the file names the file's key.
    bad = om.save(om.logits_identity(metadata={"coreseg.output.layout": "CHW"}), tmp_path / "bad.onnx")
    with pytest.raises(coreseg.ModelError, match="metadata coreseg.output.layout must be"):
        coreseg.inspect(bad)
    # annotate refuses a size the model cannot take: the copy would never load.
    r = cli("annotate", tmp_path / "m.onnx", "--set", "coreseg.input.size=100,100", "-o", tmp_path / "s.onnx")
    assert r.returncode == 1 and "takes 20x12 images only" in r.stderr and not (tmp_path / "s.onnx").exists()
    # info takes the model flags but not a per-run input size.
    assert cli("info", tmp_path / "m.onnx", "--normalization", "unit").returncode == 0


def test_a_multi_label_matte_without_names_and_a_hard_matte(tmp_path, photo):
    model = coreseg.load(om.save(om.multilabel_sigmoid(), tmp_path / "m.onnx"), mean="unit", threshold=0.3)
    seg = model.predict(photo)
    # Without names, id 0 is still "no class": not part of the default foreground.
    p = seg.scores.max(axis=0)
    alpha = seg.matte(smooth=False)
    np.testing.assert_array_equal(alpha == 255, p > 0.3)
    np.testing.assert_array_equal(alpha == 255, seg.labels > 0)
