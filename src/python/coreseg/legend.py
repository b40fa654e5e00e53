"""A legend beside an overlay: colour swatch, class name and share of pixels
for every class present, largest first (Pillow)."""

from __future__ import annotations

import numpy as np

from ._images import pillow


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: scalable
    except TypeError:
        return ImageFont.load_default()


def with_legend(overlay: np.ndarray, entries, palette: np.ndarray) -> np.ndarray:
    """The overlay with a legend panel on its right.

    Parameters
    ----------
    overlay : (H, W, 3|4) uint8 ndarray
    entries : list of (class_id, name, share)
        share in 0..1.
    palette : (n, 4) uint8 ndarray

    Returns
    -------
    (H', W + panel, 3) uint8 ndarray, RGB; taller than the overlay if the
    legend needs it.
    """
    Image, _ = pillow()
    from PIL import ImageDraw

    h, w = overlay.shape[:2]
    size = max(12, min(28, h // 30))
    font = _font(size)
    line = int(size * 1.6)
    pad = size
    panel_w = pad * 3 + size + int(size * 0.62 * max([len(f"{n}  100.0%") for _, n, _ in entries] + [8]))
    height = max(h, pad * 2 + line * (len(entries) + 1))
    canvas = Image.new("RGB", (w + panel_w, height), (250, 250, 250))
    canvas.paste(Image.fromarray(np.ascontiguousarray(overlay[..., :3])), (0, 0))
    draw = ImageDraw.Draw(canvas)
    x0, y = w + pad, pad
    draw.text((x0, y), "classes", fill=(0, 0, 0), font=font)
    y += line
    for class_id, name, share in entries:
        color = tuple(int(c) for c in palette[class_id][:3]) if 0 <= class_id < len(palette) else (0, 0, 0)
        draw.rectangle([x0, y, x0 + size, y + size], fill=color, outline=(0, 0, 0))
        draw.text((x0 + size + pad // 2, y), f"{name}  {share * 100:.1f}%", fill=(0, 0, 0), font=font)
        y += line
    return np.asarray(canvas)
