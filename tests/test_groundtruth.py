"""Ground truth: the Datagen fixtures, colour tables, and their errors."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("cv2", reason="16-bit ground truth needs OpenCV: pip install '.[groundtruth]'")

import coreseg  # noqa: E402
from coreseg import groundtruth as gt_mod  # noqa: E402
from coreseg.groundtruth import DatagenClasses, GroundTruthError, load_datapoint  # noqa: E402
from shared_fixtures import DATAGEN  # noqa: E402

needs_fixtures = pytest.mark.skipif(not DATAGEN.is_dir(), reason=f"the shared Datagen fixtures are not at {DATAGEN}")


@needs_fixtures
def test_every_fixture_decodes_with_no_unknown_pixels():
    folders = gt_mod.datapoint_folders(DATAGEN)
    assert len(folders) == 81
    classes = DatagenClasses.from_dataset(folders)
    assert classes.names == sorted(classes.names) and len(classes) == 33
    assert "human.head.eye.left.eyeball" in classes.names and "glasses.lens.left" in classes.names
    for folder in folders:
        point = load_datapoint(folder, classes)  # raises on any unknown colour
        assert point.labels.dtype == np.int32 and point.version == "1.0.0"
        assert point.labels.min() >= 0 and point.labels.max() < len(classes)
        # Mapping back through the class colours gives the PNG exactly.
        import cv2

        png = cv2.imread(str(folder / "camera/semantic_segmentation.png"), cv2.IMREAD_UNCHANGED)[..., ::-1]
        np.testing.assert_array_equal(classes.colors[point.labels], png)


@needs_fixtures
def test_infrared_datapoint_has_its_own_table():
    ir = DATAGEN / "ir_datapoint_00014"
    local = load_datapoint(ir)
    assert local.labels.shape == (1024, 1024) and local.image is None
    assert any(n.startswith("glasses.") for n in local.names)
    classes = DatagenClasses.from_dataset(gt_mod.datapoint_folders(DATAGEN))
    mapped = load_datapoint(ir, classes)
    # Same pixels, same names, whichever id list is used.
    names_local = np.array(local.names)[local.labels]
    names_mapped = np.array(classes.names)[mapped.labels]
    np.testing.assert_array_equal(names_local, names_mapped)


@needs_fixtures
def test_photo_is_converted_to_8_bit():
    point = load_datapoint(DATAGEN / "datapoint_00016")
    import cv2

    raw = cv2.imread(str(DATAGEN / "datapoint_00016/camera/visible_spectrum_01.png"), cv2.IMREAD_UNCHANGED)
    assert point.image.dtype == np.uint8 and point.image.shape == (128, 128, 4)
    expected = np.round(raw[..., [2, 1, 0, 3]].astype(np.float64) / 257).astype(np.uint8)
    np.testing.assert_array_equal(point.image, expected)


def _datapoint(tmp_path, metadata, seg):
    import cv2

    folder = tmp_path / "dp"
    (folder / "camera").mkdir(parents=True)
    (folder / "semantic_segmentation_metadata.json").write_text(json.dumps(metadata))
    cv2.imwrite(str(folder / "camera/semantic_segmentation.png"), np.ascontiguousarray(seg[..., ::-1]))
    return folder


def test_versions_and_table_errors(tmp_path):
    seg = np.zeros((4, 5, 3), np.uint16)
    good = {"version": "1.0.0", "background": {"R": 0, "G": 0, "B": 0}, "a": {"b": {"R": 9, "G": 9, "B": 9}}}
    folder = _datapoint(tmp_path, good, seg)
    point = load_datapoint(folder)
    assert point.names == ["background", "a.b"] and (point.labels == 0).all()
    for meta, message in [
        ({k: v for k, v in good.items() if k != "version"}, r'no "version"; coreseg reads versions 1.0.0'),
        ({**good, "version": "2.0.0"}, r"version '2.0.0' is not one coreseg understands \(1.0.0\); pass versions="),
        ({**good, "x": {"R": 70000, "G": 0, "B": 0}}, r"x has a colour outside 0..65535"),
        ({**good, "x": 5}, r"x is neither a class group nor an R/G/B colour"),
        ({**good, "dup": {"R": 9, "G": 9, "B": 9}}, r"a.b and dup have the same colour \(9, 9, 9\)"),
    ]:
        (folder / "semantic_segmentation_metadata.json").write_text(json.dumps(meta))
        with pytest.raises(GroundTruthError, match=message):
            load_datapoint(folder)
    (folder / "semantic_segmentation_metadata.json").write_text(json.dumps({**good, "version": "2.0.0"}))
    assert load_datapoint(folder, versions=["1.0.0", "2.0.0"]).version == "2.0.0"
    (folder / "semantic_segmentation_metadata.json").write_text("{nope")
    with pytest.raises(GroundTruthError, match="not JSON"):
        load_datapoint(folder)


def test_unknown_colours_say_how_many_and_which(tmp_path):
    seg = np.zeros((4, 5, 3), np.uint16)
    seg[0, :3] = [1, 2, 3]
    seg[3, 4] = [65535, 0, 7]
    folder = _datapoint(tmp_path, {"version": "1.0.0", "bg": {"R": 0, "G": 0, "B": 0}}, seg)
    with pytest.raises(GroundTruthError, match=r"rgb has 4 pixels whose colour is not in colors: \(1, 2, 3\), \(65535, 0, 7\)"):
        load_datapoint(folder)
    shutil.rmtree(folder / "camera")
    with pytest.raises(GroundTruthError, match="semantic_segmentation.png: no such file"):
        load_datapoint(folder)


def test_class_dict_csv(tmp_path):
    path = tmp_path / "class_dict.csv"
    path.write_text("name,r,g,b\nSky,128,128,128\nRoad,128,64,128\nVoid,0,0,0\n")
    names, colors = gt_mod.read_class_dict_csv(path)
    assert names == ["Sky", "Road", "Void"] and colors.dtype == np.uint8
    rgb = colors[np.array([[0, 1], [2, 2]])]
    np.testing.assert_array_equal(coreseg.decode_colors(rgb, colors), [[0, 1], [2, 2]])
    path.write_text("name,r,g,b\nSky,128,128\n")
    with pytest.raises(GroundTruthError, match=r"class_dict.csv:2: expected name,r,g,b"):
        gt_mod.read_class_dict_csv(path)
    path.write_text("name,r,g,b\nSky,300,0,0\n")
    with pytest.raises(GroundTruthError, match="must be in 0..255"):
        gt_mod.read_class_dict_csv(path)


def test_decode_colors_errors():
    rgb = np.zeros((2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match=r"colors lists the colour \(0, 0, 0\) more than once"):
        coreseg.decode_colors(rgb, [[0, 0, 0], [0, 0, 0]])
    with pytest.raises(TypeError, match="rgb must have dtype uint8 or uint16, got float32"):
        coreseg.decode_colors(rgb.astype(np.float32), [[0, 0, 0]])
    with pytest.raises(ValueError, match=r"rgb must have shape \(h, w, 3\)"):
        coreseg.decode_colors(np.zeros((2, 2, 4), np.uint8), [[0, 0, 0]])
    with pytest.raises(ValueError, match="colors values must fit uint8"):
        coreseg.decode_colors(rgb, [[0, 0, 300]])
    assert (coreseg.decode_colors(rgb, [[1, 1, 1]], unknown=9) == 9).all()


def test_written_datapoint_reads_back_as_its_scene(tmp_path):
    """8-bit RGB photo and 16-bit colour-coded labels, written as OpenCV
    writes them (BGR), read back exactly: the channel swap is the right way
    round for both bit depths."""
    from coreseg.evaluation.scenes import CLASSES, scene, write_datapoints

    (folder,) = write_datapoints(tmp_path, [7], size=(96, 64))
    point = load_datapoint(folder)
    image, labels = scene(7, (96, 64))
    np.testing.assert_array_equal(point.image, image)
    np.testing.assert_array_equal(np.array(point.names)[point.labels], np.array(CLASSES)[labels])
    assert point.image.flags.c_contiguous and point.image.dtype == np.uint8
