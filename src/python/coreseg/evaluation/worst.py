"""`worst/`: the images a model does worst on, each drawn as photo |
ground truth | prediction | errors with a legend, and an ``index.html``
that lays them out beside the per-class table and the confusion matrix
(`coreseg.evaluation.report_html`).

Errors are drawn in three colours: a false positive (the model found an
object where the truth is background), a false negative (it missed an
object: the truth is an object, it said background) and a wrong class
(both are objects, not the same one). Pixels no score counts (the
dataset's "void", or what a centre crop never showed the model) are
grey; correct pixels show the photo, faded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from ..drawing.legend import label_font
from ..files.images import pillow, png_bytes
from ..kernels import resize_image, resize_labels
from ..kernels.palette import default_palette, is_background

__all__ = ["worst_rows", "scored_palette", "error_picture", "error_panel", "ERROR_COLORS", "PANEL_SIDE", "file_name",
           "panel_size", "panel_maps", "Preview", "preview_of"]

#: Longest side of each panel, in pixels.
PANEL_SIDE = 360
#: (name, RGB) of the error colours, in legend order.
ERROR_COLORS = (("false positive (object where the truth is background)", (230, 25, 75)),
                ("false negative (object missed)", (0, 130, 200)),
                ("wrong class", (255, 190, 0)),
                ("not scored (void, or unseen by the model)", (170, 170, 170)))
_FP, _FN, _WRONG, _VOID = (np.array(c, np.uint8) for _, c in ERROR_COLORS)


def worst_rows(per_image: list[dict], k: int) -> list[dict]:
    """The `k` per-image rows ({"image", "miou"}) with the lowest mIoU, lowest
    first (ties in input order); images with no class present left out."""
    scored = [(r["miou"], i, r) for i, r in enumerate(per_image) if r.get("miou") is not None]
    return [r for _, _, r in sorted(scored, key=lambda t: (t[0], t[1]))[:max(k, 0)]]


def file_name(rank: int, image: str) -> str:
    """worst/'s file of the image ranked `rank` (1 = worst): NN-NAME.png, the
    name's characters other than letters, digits, '.', '-' and '_' as '_'."""
    return f"{rank:02d}-{re.sub(r'[^A-Za-z0-9._-]', '_', image)[:80]}.png"


def scored_palette(names, dataset_names=(), dataset_palette=None) -> np.ndarray:
    """(len(names), 3) uint8: each scored class's colour, the dataset's own
    where it has one for that name (VOC's, Cityscapes', its colour
    table's), else coreseg's default; background classes black."""
    palette = default_palette(max(len(names), 1))[:len(names), :3].copy()
    own = {}
    if dataset_palette is not None:
        own = {n: np.asarray(c[:3]) for n, c in zip(dataset_names, dataset_palette)}
    for i, name in enumerate(names):
        if name in own:
            palette[i] = own[name]
        if is_background(name):
            palette[i] = 0
    return palette


def panel_size(shape) -> tuple[int, int]:
    """(width, height) of each panel for an image of (H, W): a large image
    shrunk to a longest side of PANEL_SIDE, a small one enlarged by the
    whole factor that keeps it within (pixels stay square blocks), the
    aspect kept."""
    h, w = shape[:2]
    side = max(h, w, 1)
    if side > PANEL_SIDE:
        scale = PANEL_SIDE / side
        return max(1, round(w * scale)), max(1, round(h * scale))
    k = PANEL_SIDE // side
    return w * k, h * k


def panel_maps(photo, gt, pred):
    """An image's maps as `error_picture` starts drawing its panels from:
    shrunk to `panel_size` when the image is larger than PANEL_SIDE (the
    maps by `resize_labels`, the photo smoothly by `resize_image`), else
    as they are (`error_picture` enlarges a small image itself). The one
    place that shrinks for worst/, so a `Preview` draws what the whole
    image would.

    Parameters
    ----------
    photo : (H, W, 3|4) uint8 ndarray or None
    gt, pred : (H, W) integer ndarray
        Scored ids; the prediction -1 where unseen.

    Returns
    -------
    photo : (h, w, 3) uint8 ndarray or None
    gt, pred : (h, w) integer ndarray
        int32 when shrunk from another dtype than int32, uint8 or uint16,
        else the dtype given.
    """
    if max(gt.shape[:2]) <= PANEL_SIDE:
        return (photo[..., :3] if photo is not None else None), gt, pred
    width, height = panel_size(gt.shape)
    gt, pred = (resize_labels(m if m.dtype in (np.int32, np.uint8, np.uint16) else m.astype(np.int32),
                              (width, height)) for m in (np.asarray(gt), np.asarray(pred)))
    if photo is not None:
        # coreseg's own resampling: Pillow's BILINEAR within 1 per channel,
        # 10x as fast (a preview is made for every image scored).
        photo = resize_image(photo[..., :3], (width, height), layout="RGB")
    return photo, gt, pred


@dataclass(eq=False)  # compared by identity: == on its arrays would be ambiguous
class Preview:
    """What worst/ draws of one image, kept while it is scored (a scorer's
    ``previews=True``) so worst/ need not predict it again: `panel_maps` of
    its maps. ``error_picture(p.photo, p.gt, p.pred, ...)`` is the picture
    of the whole image, bit for bit.

    Attributes
    ----------
    photo : (h, w, 3) uint8 ndarray or None
        None: the image has no photo (label maps scored against ground truth).
    gt, pred : (h, w) int16 ndarray (int32 when an id does not fit, uint8 as read)
        Scored ids; the prediction -1 where the model never saw the photo.
    """

    photo: np.ndarray | None
    gt: np.ndarray
    pred: np.ndarray


def _compact(ids: np.ndarray) -> np.ndarray:
    """`ids` in the smallest of uint8 (as it came), int16 and int32 that
    holds them, as an array of its own (never a view of a larger one)."""
    if ids.dtype == np.uint8 or not ids.size:
        return np.array(ids)
    fits = -(1 << 15) <= int(ids.min()) and int(ids.max()) < 1 << 15
    return ids.astype(np.int16 if fits else np.int32)


def preview_of(photo, gt, pred) -> Preview:
    """The `Preview` of an image's photo (or None) and maps (see `panel_maps`)."""
    photo, gt, pred = panel_maps(photo, gt, pred)
    return Preview(np.array(photo) if photo is not None else None, _compact(gt), _compact(pred))


def _colored(ids: np.ndarray, palette: np.ndarray) -> np.ndarray:
    valid = (ids >= 0) & (ids < len(palette))
    out = np.empty(ids.shape + (3,), np.uint8)
    out[:] = _VOID
    out[valid] = palette[ids[valid]]
    return out


def error_panel(photo, gt, pred, background, ignore_index=None) -> np.ndarray:
    """The errors panel: the photo faded (white without one) where the
    prediction is right, `ERROR_COLORS` where it is wrong or not scored.

    Parameters
    ----------
    photo : (H, W, 3|4) uint8 ndarray or None
    gt, pred : (H, W) integer ndarray
        Scored ids; the prediction -1 where unseen.
    background : (C,) bool ndarray
        Which scored classes are background.
    ignore_index : int, optional
        The ground truth's void value.

    Returns
    -------
    (H, W, 3) uint8 ndarray
    """
    photo_small = photo
    background = np.asarray(background, bool)
    n = len(background)
    scored = (pred >= 0) & (gt >= 0) & (gt < n) & (pred < n)
    if ignore_index is not None:
        scored &= gt != ignore_index
    if photo_small is not None:
        grey = photo_small[..., :3].astype(np.uint16).mean(-1, keepdims=True)
        out = np.repeat((grey * 0.35 + 255 * 0.65).astype(np.uint8), 3, -1)
    else:
        out = np.full(gt.shape + (3,), 255, np.uint8)
    g, p = np.clip(gt, 0, n - 1), np.clip(pred, 0, n - 1)
    wrong = scored & (gt != pred)
    gt_bg, pred_bg = background[g], background[p]
    out[wrong & gt_bg & ~pred_bg] = _FP
    out[wrong & ~gt_bg & pred_bg] = _FN
    out[wrong & ~gt_bg & ~pred_bg] = _WRONG
    out[wrong & gt_bg & pred_bg] = _WRONG  # two background classes (rare)
    out[~scored] = _VOID
    return out


def error_picture(photo, gt: np.ndarray, pred: np.ndarray, names, palette: np.ndarray, *, title: str = "",
                  ignore_index: int | None = None) -> np.ndarray:
    """One image's errors as one picture: photo | ground truth | prediction |
    errors (no photo panel when `photo` is None), titled, with a legend of
    the classes shown and the error colours.

    Parameters
    ----------
    photo : (H, W, 3|4) uint8 ndarray or None
    gt, pred : (H, W) integer ndarray
        Scored class ids; the prediction -1 where the model never saw the
        photo, the ground truth `ignore_index` where it is void. A
        `Preview`'s photo and maps give the picture of the whole image.
    names : list of str
        Scored class names, index = id.
    palette : (len(names), 3) uint8 ndarray
    title : str
    ignore_index : int, optional

    Returns
    -------
    (h, w, 3) uint8 ndarray
        Each panel of `panel_size`.
    """
    Image, _ = pillow()
    from PIL import ImageDraw

    small_photo, small_gt, small_pred = panel_maps(photo, np.asarray(gt), np.asarray(pred))  # a large image shrunk
    small_gt, small_pred = np.asarray(small_gt, np.int32), np.asarray(small_pred, np.int32)
    width, height = panel_size(small_gt.shape)
    if (height, width) != small_gt.shape:  # a small image, enlarged by nearest neighbour (square pixel blocks)
        small_gt, small_pred = resize_labels(small_gt, (width, height)), resize_labels(small_pred, (width, height))
        if small_photo is not None:
            im = Image.fromarray(np.ascontiguousarray(small_photo))
            small_photo = np.asarray(im.resize((width, height), Image.NEAREST))
    shown_gt = np.where(small_gt == ignore_index, -1, small_gt) if ignore_index is not None else small_gt
    background = np.array([is_background(n) for n in names] or [False])
    panels = ([("photo", small_photo)] if small_photo is not None else []) + [
        ("ground truth", _colored(shown_gt, palette)), ("prediction", _colored(small_pred, palette)),
        ("errors", error_panel(small_photo, small_gt, small_pred, background, ignore_index))]
    size = 14
    font = label_font(size)
    gap, line = 8, size + 6
    present = sorted(set(np.unique(shown_gt).tolist()) | set(np.unique(small_pred).tolist()))
    present = [i for i in present if 0 <= i < len(names)]
    entries = [(names[i], tuple(int(v) for v in palette[i])) for i in present] + \
              [(label, color) for label, color in ERROR_COLORS]
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    total_w = len(panels) * width + (len(panels) + 1) * gap
    # The legend flows in rows under the panels.
    rows, x = [[]], gap
    for text, color in entries:
        w = size + 6 + int(probe.textlength(text, font=font)) + 14
        if x + w > total_w and rows[-1]:
            rows.append([])
            x = gap
        rows[-1].append((x, text, color))
        x += w
    top = gap + line + line  # the title, then the panel names
    total_h = top + height + gap + len(rows) * line + gap
    canvas = Image.new("RGB", (total_w, total_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((gap, gap), title, fill=(0, 0, 0), font=font)
    for k, (label, pixels) in enumerate(panels):
        x0 = gap + k * (width + gap)
        draw.text((x0, gap + line), label, fill=(60, 60, 60), font=font)
        canvas.paste(Image.fromarray(np.ascontiguousarray(pixels)), (x0, top))
    y = top + height + gap
    for row in rows:
        for x0, text, color in row:
            draw.rectangle([x0, y, x0 + size, y + size], fill=color, outline=(0, 0, 0))
            draw.text((x0 + size + 6, y), text, fill=(0, 0, 0), font=font)
        y += line
    return np.asarray(canvas)


def miou_text(value) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.3f}"


def picture_worker(names, palette: np.ndarray, ignore_index: int | None):
    """What a worker process builds to draw worst/ (coreseg.scaleout.workers):
    items are (title, Preview), each drawn by `error_picture` and returned
    as PNG bytes (what the parent writes, as it would have encoded them)."""
    def draw(item) -> bytes:
        title, preview = item
        return png_bytes(error_picture(preview.photo, preview.gt, preview.pred, names, palette, title=title,
                                       ignore_index=ignore_index))

    return draw
