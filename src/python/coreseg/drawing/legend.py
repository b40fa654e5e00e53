"""A legend drawn onto an overlay, in place: colour swatch, class name and
share of pixels for every class present, largest first (Pillow).
`draw_legend` is the one the command line (photos, and videos with
--legend), Jupyter previews and notebooks share.

The panel sits in the top-left corner and is scaled to the image (its text
is about 1/40 of the image's shorter side, never under 12 px), so it reads
the same on a 640 px preview and a 12 MP photo. Only the panel's pixels
are touched; the rest of the overlay is not copied."""

from __future__ import annotations

import numpy as np

from ..files.images import pillow
from ..kernels import _args, _arrays
from .highlight import highlight_color, highlight_palette

__all__ = ["draw_legend", "legend_entries", "MAX_ENTRIES"]

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


def legend_entries(segmentation, palette=None, classes=None, color=None):
    """(entries, palette) a legend of `segmentation` lists, as
    `draw_legend` takes them.

    Without `classes`, ``segmentation.legend()`` (classes present, largest
    first, background left out) in `palette` (default the segmentation's).
    With `classes`, those classes in the order given, present or not, in
    the colours `Segmentation.overlay(classes=..., color=...)` draws them:
    `color`, else magenta for one class, else each its own."""
    pal = segmentation.palette if palette is None else np.asarray(palette, np.uint8)
    if pal.ndim != 2 or pal.shape[1] != 4:
        raise ValueError(f"palette must be (n, 4) uint8 RGBA colours, got shape {pal.shape}")
    if classes is None:
        return segmentation.legend(), pal
    ids = segmentation.class_ids(classes)
    color = None if color is None else _args.rgba(color, "color")
    shares = segmentation.areas()
    # Entry k is the k-th class, coloured as highlight_palette's id k.
    entries = [(k, segmentation.name(i), shares.get(i, 0.0)) for k, i in enumerate(ids, 1)]
    return entries, highlight_palette(ids, pal, highlight_color(ids, color))


def draw_legend(image: np.ndarray, legend, palette=None, *, classes=None, color=None, out=None) -> np.ndarray:
    """Draw a legend onto an image: a swatch, the class name and its share
    of pixels per class, in a translucent panel in the top-left corner
    (text about 1/40 of the shorter side, at least 12 px).

    Parameters
    ----------
    image : (H, W, 3|4) uint8 ndarray
        Usually an overlay (`Segmentation.overlay`). An RGBA image's panel
        is made opaque.
    legend : Segmentation, or list of (class_id, name, share)
        The segmentation whose classes to list (``legend()``: classes
        present, largest share first, background left out), or the
        entries themselves (share in 0..1, listed in the order given).
    palette : (n, 4) uint8 array_like, optional
        The colours of the class ids: those the overlay was drawn with.
        Default: the segmentation's; required with entries.
    classes : names or ids, optional
        With a segmentation: only these classes, in the colours
        ``overlay(classes=..., color=...)`` draws them (`color`, else
        magenta for one class, else their own), each listed even when
        absent.
    color : colour, optional
        The highlight colour of `classes` (RGBA, or hex).
    out : (H, W, 3|4) uint8 ndarray, optional
        Where to draw: `image` itself by default (drawing in place, as
        Pillow's ImageDraw and ``skimage.draw.set_color`` do: the overlay
        is a fresh array of its own); another array of `image`'s shape
        gets a copy with the legend, `image` left alone.

    Returns
    -------
    out : (H, W, 3|4) uint8 ndarray
        Only the panel's pixels differ from `image`.

    Examples
    --------
    >>> import coreseg
    >>> from coreseg import demo
    >>> from coreseg.drawing.legend import draw_legend
    >>> photo = demo.scene(1, (320, 240))[0]
    >>> seg = coreseg.load("demo").predict(photo)
    >>> overlay = seg.overlay(photo)
    >>> draw_legend(overlay, seg) is overlay
    True
    """
    if isinstance(legend, (list, tuple)):
        if palette is None:
            raise TypeError("draw_legend(image, entries) needs the palette the entries' ids index: "
                            "draw_legend(image, entries, palette), or pass the segmentation itself")
        if classes is not None or color is not None:
            raise TypeError("classes= and color= choose a segmentation's entries; entries are drawn as given")
        entries, pal = list(legend), np.asarray(palette)
        if pal.dtype != np.uint8 or pal.ndim != 2 or pal.shape[1] != 4:
            raise ValueError(f"palette must be (n, 4) uint8 RGBA colours, got {pal.dtype} {pal.shape}")
        for entry in entries:
            if len(entry) != 3 or not 0 <= int(entry[0]) < len(pal):
                raise ValueError(f"entries are (class_id, name, share) with ids in the palette's 0..{len(pal) - 1}, "
                                 f"got {entry!r}")
    elif hasattr(legend, "legend") and hasattr(legend, "palette"):
        entries, pal = legend_entries(legend, palette, classes, color)
    else:
        raise TypeError(f"legend must be a Segmentation or a list of (class_id, name, share), "
                        f"got {type(legend).__name__}")
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"image must be (H, W, 3|4) uint8, got {image.dtype} {image.shape}")
    if out is None or out is image:
        if not image.flags.writeable:
            raise ValueError("image is read-only: pass out=np.empty_like(image) to draw on a copy")
        out = image
    else:
        out = _arrays.out_array(out, image.shape, np.uint8, inputs=(image,))
        out[...] = image
    return _draw(out, entries, pal)


def _draw(overlay: np.ndarray, entries, palette: np.ndarray) -> np.ndarray:
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
