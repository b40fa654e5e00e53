import numpy as np
import pytest

import coreseg


def test_default_palette_is_the_voc_colour_map():
    pal = coreseg.default_palette(256)
    assert pal.shape == (256, 4) and pal.dtype == np.uint8
    # The published PASCAL VOC colours of the first classes.
    assert pal[:6, :3].tolist() == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128]]
    assert pal[15, :3].tolist() == [192, 128, 128]  # "person"
    assert (pal[:, 3] == 255).all()
    assert len({tuple(c) for c in pal[:, :3].tolist()}) == 256  # all distinct
    assert coreseg.default_palette(0).shape == (0, 4)
    assert (coreseg.default_palette(5, alpha=90)[:, 3] == 90).all()
    np.testing.assert_array_equal(coreseg.default_palette(300)[:256], pal)


@pytest.mark.parametrize("n", [-1, 2.5, "3", True])
def test_default_palette_bad_n(n):
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        coreseg.default_palette(n)


def test_parse_color():
    assert coreseg.parse_color("#FF8000") == (255, 128, 0, 255)
    assert coreseg.parse_color("ff800080") == (255, 128, 0, 128)
    assert coreseg.parse_color(" #00aAfF ") == (0, 170, 255, 255)
    for bad in ["#FF80", "#GG8000", "", "#FF8000FF00", "red"]:
        with pytest.raises(ValueError, match="not a hex colour"):
            coreseg.parse_color(bad)
    with pytest.raises(ValueError, match="must be a string"):
        coreseg.parse_color(0xFF8000)


def test_parse_colors():
    pal = coreseg.parse_colors(["#000000", "#ffffff80"])
    assert pal.dtype == np.uint8 and pal.tolist() == [[0, 0, 0, 255], [255, 255, 255, 128]]
    assert coreseg.parse_colors([]).shape == (0, 4)
    with pytest.raises(ValueError, match=r"colors\[1\]: not a hex colour .*'blue'"):
        coreseg.parse_colors(["#000000", "blue"])
    with pytest.raises(ValueError, match="not one string"):
        coreseg.parse_colors("#000000")
    # Parsed colours drive the kernels directly.
    out = coreseg.colorize(np.array([[1]], np.uint8), pal)
    assert out.tolist() == [[[255, 255, 255, 128]]]
