"""Class colours: the default palette, hex colour parsing, and which
classes are background.

Core ML models may carry their own colours in their preview metadata as hex
strings ("#RRGGBB"); models without them get `default_palette`. Classes
named as background ("background", "None", "void", "unlabeled", "--", ...)
get a transparent colour in the palettes coreseg makes, so overlays leave
them alone and legends leave them out; a transparent colour in a model's
own palette declares a class background the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np

__all__ = ["default_palette", "parse_color", "parse_colors", "BACKGROUND_NAMES", "is_background", "background_ids",
           "clear_background"]

#: Class names that mean "no object", compared case-insensitively.
BACKGROUND_NAMES = frozenset({"background", "bg", "none", "void", "unlabeled", "unlabelled", "ignore", "--", "_background_"})


def is_background(name) -> bool:
    """Whether a class name means background (no object)."""
    return isinstance(name, str) and name.strip().casefold() in BACKGROUND_NAMES


def background_ids(names) -> list[int]:
    """Ids of the classes in `names` that are background."""
    return [] if names is None else [i for i, n in enumerate(names) if is_background(n)]


def clear_background(palette: np.ndarray, names) -> np.ndarray:
    """`palette` with background classes made transparent (in place)."""
    ids = [i for i in background_ids(names) if i < len(palette)]
    palette[ids, 3] = 0
    return palette

_HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


def default_palette(n: int, alpha: int = 255) -> np.ndarray:
    """The PASCAL VOC colour map for `n` classes.

    Parameters
    ----------
    n : int
        Number of classes, >= 0.
    alpha : int, optional
        Alpha of every entry, 0..255.

    Returns
    -------
    palette : (n, 4) uint8 ndarray
        RGBA colours; class 0 is black, neighbouring ids get distinct colours
        (bits of the id spread over the high bits of R, G and B), as in
        PASCAL VOC, torchvision and most segmentation tools.

    Examples
    --------
    >>> default_palette(3)[:, :3].tolist()
    [[0, 0, 0], [128, 0, 0], [0, 128, 0]]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be an integer >= 0, got {n!r}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, np.integer)) or not 0 <= alpha <= 255:
        raise ValueError(f"alpha must be an integer in 0..255, got {alpha!r}")
    ids = np.arange(n, dtype=np.int64)
    rgb = np.zeros((n, 3), np.int64)
    for shift in range(7, -1, -1):
        for channel in range(3):
            rgb[:, channel] |= ((ids >> channel) & 1) << shift
        ids = ids >> 3
    palette = np.empty((n, 4), np.uint8)
    palette[:, :3] = rgb
    palette[:, 3] = alpha
    return palette


def parse_color(text: str) -> tuple[int, int, int, int]:
    """Parse "#RRGGBB" or "#RRGGBBAA" (the "#" is optional) into (r, g, b, a).

    Raises
    ------
    ValueError
        If `text` is not such a string.

    Examples
    --------
    >>> parse_color("#FF8000")
    (255, 128, 0, 255)
    """
    if not isinstance(text, str):
        raise ValueError(f"colour must be a string like '#RRGGBB', got {text!r}")
    m = _HEX.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a hex colour '#RRGGBB' or '#RRGGBBAA': {text!r}")
    digits = m.group(1)
    values = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
    if len(values) == 3:
        values.append(255)
    return tuple(values)


def parse_colors(colors: Iterable[str]) -> np.ndarray:
    """Parse a list of hex colours into an (n, 4) uint8 RGBA palette.

    Raises
    ------
    ValueError
        Naming the index and text of the first colour that is not hex.
    """
    if isinstance(colors, str):
        raise ValueError("colors must be a list of hex strings, not one string")
    rows = []
    for i, text in enumerate(colors):
        try:
            rows.append(parse_color(text))
        except ValueError as e:
            raise ValueError(f"colors[{i}]: {e}") from None
    return np.array(rows, dtype=np.uint8).reshape(len(rows), 4)
