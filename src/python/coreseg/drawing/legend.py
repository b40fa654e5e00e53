"""A legend drawn onto an overlay, in place: colour swatch, class name and
share of pixels for every class present, largest first (Pillow).

The panel sits in the top-left corner and is scaled to the image (its text
is about 1/40 of the image's shorter side, never under 12 px), so it reads
the same on a 640 px preview and a 12 MP photo. Only the panel's pixels
are touched; the rest of the overlay is not copied."""

from __future__ import annotations

import numpy as np

from ..files.images import pillow

#: Most classes listed; the rest are summed in one "(N more)" line.
MAX_ENTRIES = 12


def label_font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: scalable
    except TypeError:
        return ImageFont.load_default()


def legend_size(image_shape) -> int:
    """Text height in pixels for an image of (H, W, ...)."""
    return max(12, round(min(image_shape[0], image_shape[1]) / 40))


def draw_legend(overlay: np.ndarray, entries, palette: np.ndarray) -> np.ndarray:
    """Draw a legend onto `overlay` and return it.

    Parameters
    ----------
    overlay : (H, W, 3|4) uint8 ndarray, writable
        Changed in place, in the panel's rectangle only.
    entries : list of (class_id, name, share)
        share in 0..1, in the order to list them.
    palette : (n, 4) uint8 ndarray

    Returns
    -------
    overlay
    """
    Image, _ = pillow()
    from PIL import ImageDraw

    if not entries:
        return overlay
    h, w = overlay.shape[:2]
    size = legend_size(overlay.shape)
    shown = list(entries[:MAX_ENTRIES])
    lines = [f"{name}  {share * 100:.1f}%" for _, name, share in shown]
    if len(entries) > MAX_ENTRIES:
        rest = sum(share for *_, share in entries[MAX_ENTRIES:])
        lines.append(f"({len(entries) - MAX_ENTRIES} more)  {rest * 100:.1f}%")
    font = label_font(size)
    line, pad = int(size * 1.5), max(2, size // 2)
    text_w = max(int(ImageDraw.Draw(Image.new("L", (1, 1))).textlength(t, font=font)) for t in lines)
    pw, ph = min(w, pad * 3 + size + text_w), min(h, pad * 2 + line * len(lines))
    region = overlay[:ph, :pw]
    # A translucent white panel over the overlay, so the photo shows through.
    panel = Image.fromarray(np.ascontiguousarray(region[..., :3]))
    white = Image.new("RGB", panel.size, (255, 255, 255))
    panel = Image.blend(panel, white, 0.8)
    draw = ImageDraw.Draw(panel)
    y = pad
    for i, text in enumerate(lines):
        if i < len(shown):
            class_id = shown[i][0]
            color = tuple(int(c) for c in palette[class_id][:3]) if 0 <= class_id < len(palette) else (0, 0, 0)
            draw.rectangle([pad, y, pad + size, y + size], fill=color, outline=(0, 0, 0))
        draw.text((pad * 2 + size, y), text, fill=(0, 0, 0), font=font)
        y += line
    region[..., :3] = np.asarray(panel)
    if overlay.shape[2] == 4:
        region[..., 3] = 255
    return overlay
