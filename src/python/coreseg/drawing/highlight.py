"""Drawing only some classes: the highlight colour and the class map that
draws them alone, outlined alone (`Segmentation.overlay(classes=...)` and
the command line's `--label`)."""

from __future__ import annotations

import numpy as np

__all__ = ["OUTLINE", "HIGHLIGHT", "highlight_color", "highlight_palette", "highlight_map"]

#: The outline drawn along class boundaries.
OUTLINE = (255, 255, 255, 255)
#: The highlight colour of a single highlighted class without a colour given:
#: magenta, rare in photos, unlike the palette's realistic sky blue or grass green.
HIGHLIGHT = (255, 0, 255, 255)


def highlight_color(classes, color):
    """The colour highlighted `classes` are drawn in: `color`, else magenta
    for a single class, else None (each class its own)."""
    return color if color is not None or classes is None or len(classes) != 1 else HIGHLIGHT


def highlight_palette(ids, palette: np.ndarray, color) -> np.ndarray:
    """(len(ids) + 1, 4) uint8: id 0 transparent (everything else), id k
    the colour of class ids[k - 1] (`color`, else its own)."""
    out = np.zeros((len(ids) + 1, 4), np.uint8)
    for k, class_id in enumerate(ids, 1):
        out[k] = color if color is not None else palette[class_id]
    return out


def highlight_map(labels: np.ndarray, ids) -> np.ndarray:
    """A class map of `labels` with only `ids`: k where labels == ids[k - 1],
    0 elsewhere, so composite draws them alone and outlines only their
    boundaries."""
    only = np.zeros(labels.shape, np.uint8 if len(ids) < 255 else np.uint16)
    for k, class_id in enumerate(ids, 1):
        only[labels == class_id] = k
    return only
