import numpy as np
import pytest

from coreseg.modelfiles.presets import PRESETS, is_preset, preset


def test_preset_names():
    assert PRESETS == ("voc", "cityscapes", "cityscapes-bg", "ade20k")


@pytest.mark.parametrize("name, n", [("voc", 21), ("cityscapes", 19), ("cityscapes-bg", 20), ("ade20k", 150)])
def test_counts_and_palette_shape(name, n):
    labels, colors = preset(name)
    assert isinstance(labels, list) and len(labels) == n
    assert all(isinstance(label, str) and label == label.strip() and label for label in labels)
    assert len(set(labels)) == n  # names unique within a preset
    assert colors.shape == (n, 4) and colors.dtype == np.uint8
    # Opaque but for the background, which overlays leave alone.
    background = [i for i, label in enumerate(labels) if label == "background"]
    assert (colors[background, 3] == 0).all() and (np.delete(colors[:, 3], background) == 255).all()


def test_voc():
    labels, colors = preset("voc")
    assert labels[0] == "background" and labels[15] == "person" and labels[20] == "tvmonitor"
    assert colors[0].tolist() == [0, 0, 0, 0]  # background: transparent
    assert colors[1].tolist() == [128, 0, 0, 255]  # aeroplane
    assert colors[2].tolist() == [0, 128, 0, 255]  # bicycle
    assert colors[15].tolist() == [192, 128, 128, 255]


def test_cityscapes():
    labels, colors = preset("cityscapes")
    assert labels[0] == "road" and colors[0].tolist() == [128, 64, 128, 255]
    assert labels[13] == "car" and colors[13].tolist() == [0, 0, 142, 255]
    assert labels[18] == "bicycle" and colors[18].tolist() == [119, 11, 32, 255]


def test_cityscapes_bg_is_cityscapes_shifted_by_one():
    labels, colors = preset("cityscapes-bg")
    assert labels[0] == "background" and colors[0].tolist() == [0, 0, 0, 0]
    assert labels[14] == "car" and colors[14].tolist() == [0, 0, 142, 255]
    plain_labels, plain_colors = preset("cityscapes")
    assert labels[1:] == plain_labels
    np.testing.assert_array_equal(colors[1:], plain_colors)


def test_ade20k():
    labels, colors = preset("ade20k")
    assert "background" not in labels
    assert labels[0] == "wall" and labels[2] == "sky" and labels[149] == "flag"
    assert labels[7] == "bed"  # mmseg writes 'bed ' with a trailing space
    assert labels[12] == "person" and labels[20] == "car"
    # First and last entries of mmseg's ADE20KDataset palette.
    assert colors[:5, :3].tolist() == [[120, 120, 120], [180, 120, 120], [6, 230, 230], [80, 50, 50], [4, 200, 3]]
    assert colors[12, :3].tolist() == [150, 5, 61]  # person
    assert colors[148:, :3].tolist() == [[102, 255, 0], [92, 0, 255]]


@pytest.mark.parametrize("name, canonical", [("VOC", "voc"), ("Cityscapes", "cityscapes"),
                                             ("CityScapes-BG", "cityscapes-bg"), ("ADE20K", "ade20k")])
def test_case_insensitive(name, canonical):
    assert is_preset(name)
    labels, colors = preset(name)
    want_labels, want_colors = preset(canonical)
    assert labels == want_labels
    np.testing.assert_array_equal(colors, want_colors)


def test_is_preset():
    for name in PRESETS:
        assert is_preset(name)
    for value in ["coco", "", "voc2012", None, 3, ["voc"], b"voc"]:
        assert not is_preset(value)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError) as e:
        preset("coco")
    for name in PRESETS:
        assert repr(name) in str(e.value)
    assert "'coco'" in str(e.value)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(ValueError, match="did you mean 'cityscapes'"):
        preset("citiscapes")
    with pytest.raises(ValueError, match="did you mean 'ade20k'"):
        preset("ade20")


@pytest.mark.parametrize("value", [None, 3])
def test_non_string_name(value):
    with pytest.raises(ValueError, match="valid presets"):
        preset(value)


@pytest.mark.parametrize("name", PRESETS)
def test_returns_copies(name):
    labels, colors = preset(name)
    labels[0] = "changed"
    labels.append("extra")
    colors[:] = 7
    again_labels, again_colors = preset(name)
    assert again_labels[0] != "changed" and "extra" not in again_labels
    assert (again_colors[1:, 3] == 255).all() and again_colors[:, :3].any()
