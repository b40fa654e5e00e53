"""A confusion matrix drawn as a heat map with class names (Pillow)."""

from __future__ import annotations

import numpy as np

from ._images import pillow
from .legend import _font


def confusion_heatmap(matrix: np.ndarray, names, max_size: int = 1000) -> np.ndarray:
    """RGB image of the row-normalised confusion matrix (each ground-truth
    row sums to 1: the colour is the share of that class's pixels predicted
    as each column), with class names on both axes.

    Parameters
    ----------
    matrix : (C, C) integer ndarray
        Rows ground truth, columns prediction.
    names : list of str
    max_size : int
        Largest side of the matrix part, in pixels.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    Image, _ = pillow()
    from PIL import ImageDraw

    m = np.asarray(matrix, np.float64)
    c = len(m)
    rows = m.sum(1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    cell = max(4, min(40, max_size // max(c, 1)))
    size = max(10, min(16, cell - 2))
    font = _font(size)
    label_w = int(size * 0.62 * max([len(n) for n in names] + [4])) + 10
    top = label_w + size * 2
    left = label_w
    width, height = left + c * cell + 10, top + c * cell + size * 3
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    # White (0) to dark blue (1).
    low, high = np.array([255, 255, 255]), np.array([8, 48, 107])
    for i in range(c):
        for j in range(c):
            color = tuple(int(v) for v in low + (high - low) * share[i, j])
            x0, y0 = left + j * cell, top + i * cell
            draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=color, outline=(230, 230, 230))
            if i == j and m[i].sum() == 0 and m[:, j].sum() == 0:
                draw.line([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=(200, 200, 200))
    for i, name in enumerate(names):
        draw.text((4, top + i * cell + (cell - size) // 2), name, fill=(0, 0, 0), font=font)
    # Column names, written sideways.
    column = Image.new("RGB", (label_w, cell), (255, 255, 255))
    for j, name in enumerate(names):
        column.paste((255, 255, 255), (0, 0, label_w, cell))
        ImageDraw.Draw(column).text((4, (cell - size) // 2), name, fill=(0, 0, 0), font=font)
        canvas.paste(column.rotate(90, expand=True), (left + j * cell, size * 2))
    draw.text((left, 2), "prediction", fill=(0, 0, 0), font=font)
    draw.text((4, top + c * cell + size), "rows: ground truth; colour: share of the row", fill=(0, 0, 0), font=font)
    return np.asarray(canvas)
