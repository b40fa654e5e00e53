"""A confusion matrix drawn as a heat map with class names (Pillow)."""

from __future__ import annotations

import numpy as np

from ..files.images import pillow
from ..drawing.legend import label_font


def _count(n: float) -> str:
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(int(n))


def confusion_heatmap(matrix: np.ndarray, names, max_size: int = 1000, counts: bool = False) -> np.ndarray:
    """RGB image of the row-normalised confusion matrix (each ground-truth
    row sums to 1: the colour is the share of that class's pixels predicted
    as each column), with class names on both axes, each cell's value
    written in it when the cells are large enough, and a colour scale.

    Parameters
    ----------
    matrix : (C, C) integer ndarray
        Rows ground truth, columns prediction.
    names : list of str
    max_size : int
        Largest side of the matrix part, in pixels.
    counts : bool
        Write pixel counts in the cells instead of the row shares.

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
    font = label_font(size)
    label_w = int(size * 0.62 * max([len(n) for n in names] + [4])) + 10
    top = label_w + size * 2
    left = label_w
    scale_w = size * 6  # the colour scale, right of the matrix
    note = "rows: ground truth; colour: share of the row" + ("; numbers: pixels" if counts else "")
    note_w = int(ImageDraw.Draw(Image.new("L", (1, 1))).textlength(note, font=font)) + 8
    bottom = max(top + c * cell, top + 10 * size) + size  # below the matrix and the scale
    width, height = max(left + c * cell + 10 + scale_w, note_w), bottom + size * 2
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
            elif cell >= 28 and (m[i, j] or counts):
                text = _count(m[i, j]) if counts else f"{share[i, j]:.2f}".lstrip("0") or "0"
                ink = (255, 255, 255) if share[i, j] > 0.5 else (0, 0, 0)
                value_font = label_font(max(8, cell // 3))
                draw.text((x0 + 2, y0 + cell // 3), text, fill=ink, font=value_font)
    for i, name in enumerate(names):
        draw.text((4, top + i * cell + (cell - size) // 2), name, fill=(0, 0, 0), font=font)
    # Column names, written sideways.
    column = Image.new("RGB", (label_w, cell), (255, 255, 255))
    for j, name in enumerate(names):
        column.paste((255, 255, 255), (0, 0, label_w, cell))
        ImageDraw.Draw(column).text((4, (cell - size) // 2), name, fill=(0, 0, 0), font=font)
        canvas.paste(column.rotate(90, expand=True), (left + j * cell, size * 2))
    draw.text((left, 2), "prediction", fill=(0, 0, 0), font=font)
    # Colour scale: 0 at the bottom, 1 at the top.
    sx, sy, sh = left + c * cell + 10 + size, top, 10 * size
    for k in range(sh):
        v = 1 - k / max(sh - 1, 1)
        draw.line([sx, sy + k, sx + size, sy + k], fill=tuple(int(x) for x in low + (high - low) * v))
    draw.rectangle([sx, sy, sx + size, sy + sh], outline=(0, 0, 0))
    draw.text((sx + size + 3, sy - size // 2), "1", fill=(0, 0, 0), font=font)
    draw.text((sx + size + 3, sy + sh - size // 2), "0", fill=(0, 0, 0), font=font)
    draw.text((4, bottom), note, fill=(0, 0, 0), font=font)
    return np.asarray(canvas)
