"""The numpy reference: the specification of every native kernel.

Each function here has a native twin of the same name and signature in
`coreseg` (coreseg.kernels); the tests hold the two equal bit for bit. This
module favours clarity over speed and uses numpy only. The conventions are
those of DESIGN.md: nearest-neighbour label mapping as Pillow's NEAREST,
exact-rounding alpha blending, labels outside the palette draw nothing.
"""

from __future__ import annotations

import math

import numpy as np

from . import _args, _arrays
from ._grid import LERP_BITS, SCORE_ONE, lerp_axis, quantise_scores  # noqa: F401  (upsample_argmax's grid)
from .reference_effects import blend, blur, blur_plan, upsample_matte  # noqa: F401  (the background effects)
from .reference_refine import refine_matte, refine_plan  # noqa: F401  (edge refinement of mattes)
from .reference_boundary import boundary_band, boundary_counts  # noqa: F401  (the boundary metrics)
from .temporal import hysteresis_state  # noqa: F401  (pure numpy: the same function in both APIs)
from .palette import default_palette  # noqa: F401  (same name in both APIs)

__all__ = [
    "nearest_index",
    "render_mask",
    "colorize",
    "resize_labels",
    "composite",
    "resize_image",
    "resample_axis",
    "argmax",
    "upsample_argmax",
    "lerp_axis",
    "quantise_scores",
    "decode_colors",
    "confusion_matrix",
    "class_histogram",
    "default_palette",
    "blend",
    "blur",
    "blur_plan",
    "upsample_matte",
    "refine_matte",
    "refine_plan",
    "boundary_counts",
    "boundary_band",
]

COEFF_BITS = 14  # fractional bits of the resample coefficients
INTER_BITS = 7  # fractional bits kept between the vertical and horizontal pass


def nearest_index(src: int, dst: int) -> np.ndarray:
    """Source index of each of `dst` outputs (Pillow NEAREST, OpenCV
    INTER_NEAREST_EXACT): scale = src/dst, f = 0.5*scale, then
    i -> min(floor(f), src-1), f += scale, accumulated in double."""
    scale = src / dst if dst else 0.0
    f = 0.5 * scale
    out = np.empty(dst, np.intp)
    for i in range(dst):
        out[i] = min(math.floor(f), src - 1)
        f += scale
    return out


def _blend(src, color, alpha):
    """round((src*(255-alpha) + color*alpha) / 255), exactly, on int64."""
    t = src * (255 - alpha) + color * alpha + 128
    return (t + (t >> 8)) >> 8


def render_mask(labels, selected, color=(255, 255, 0, 255), out=None):
    labels = _arrays.labels_array(labels)
    ids = _args.selected_ids(selected)
    color = _args.rgba(color, "color")
    out = _arrays.out_array(out, labels.shape + (4,), np.uint8, inputs=(labels,))
    hit = np.isin(labels.astype(np.int64), np.array(ids, dtype=np.int64))
    out[...] = 0
    out[hit] = color
    return out


def colorize(labels, palette, out=None):
    labels = _arrays.labels_array(labels)
    palette = _arrays.palette_array(palette)
    out = _arrays.out_array(out, labels.shape + (4,), np.uint8, inputs=(labels,))
    lab = labels.astype(np.int64)
    inside = (lab >= 0) & (lab < len(palette))
    out[...] = 0
    out[inside] = palette[lab[inside]]
    return out


def resize_labels(labels, size, out=None):
    labels = _arrays.labels_array(labels)
    w, h = _args.size_arg(size, minimum=0)
    out = _arrays.out_array(out, (h, w), labels.dtype, inputs=(labels,))
    if w == 0 or h == 0:
        return out
    if labels.size == 0:
        raise ValueError("labels is empty: there is nothing to resize from")
    ys = nearest_index(labels.shape[0], h)
    xs = nearest_index(labels.shape[1], w)
    out[...] = labels[ys][:, xs]
    return out


def composite(image, labels, palette, opacity=1.0, outline=None, out=None):
    image = _arrays.image_array(image)
    labels = _arrays.labels_array(labels)
    palette = _arrays.palette_array(palette)
    opacity = _args.opacity_arg(opacity)
    outline = None if outline is None else _args.rgba(outline, "outline")
    out = _arrays.out_array(out, image.shape, np.uint8, inputs=(image, labels), allow_same=image)
    h, w, c = image.shape
    if h == 0 or w == 0:
        return out
    if labels.size == 0:
        raise ValueError("labels is empty but image is not")
    lab = labels[nearest_index(labels.shape[0], h)][:, nearest_index(labels.shape[1], w)]
    lab = lab.astype(np.int64)
    inside = (lab >= 0) & (lab < len(palette))
    idx = np.where(inside, lab, 0)
    alpha = np.floor(palette[:, 3].astype(np.float64) * opacity + 0.5).astype(np.int64)
    a = np.where(inside, alpha[idx] if len(palette) else 0, 0)[..., None]
    color = palette[idx, :3].astype(np.int64) if len(palette) else np.zeros((h, w, 3), np.int64)

    result = image.astype(np.int64)
    result[..., :3] = _blend(result[..., :3], color, a)
    if outline is not None:
        edge = np.zeros((h, w), bool)
        edge[:, :-1] |= lab[:, :-1] != lab[:, 1:]
        edge[:-1, :] |= lab[:-1, :] != lab[1:, :]
        result[edge, :3] = _blend(result[edge, :3], np.array(outline[:3]), outline[3])
    out[...] = result
    return out


def resample_axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The filter of one axis of resize_image: Pillow's bilinear
    (triangle) filter, widened by the scale when shrinking.

    Returns ``start`` (out_size,) int32, the first source index of each
    output, and ``coeffs`` (out_size, taps) int16, fixed-point weights with
    COEFF_BITS fractional bits that sum to exactly ``1 << COEFF_BITS`` per
    row; ``taps`` is even (padding taps are zero)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 1.0 * filterscale
    ksize = int(math.ceil(support)) * 2 + 1
    taps = (ksize + 1) & ~1
    start = np.zeros(out_size, np.int32)
    coeffs = np.zeros((out_size, taps), np.int16)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size)
        w = []
        ww = 0.0
        for x in range(xmax - xmin):
            t = abs(((x + xmin) - center + 0.5) * ss)
            w.append(1.0 - t if t < 1.0 else 0.0)
            ww += w[-1]
        q = [math.floor((v / ww if ww != 0.0 else 0.0) * (1 << COEFF_BITS) + 0.5) for v in w]
        largest = max(range(len(q)), key=lambda k: (q[k], -k))  # first maximum
        q[largest] += (1 << COEFF_BITS) - sum(q)
        coeffs[xx, : len(q)] = q
        start[xx] = xmin
    return start, coeffs


def resize_image(image, size, layout="RGBA", out=None):
    image = _arrays.image_array(image)
    w, h = _args.size_arg(size)
    _args.resize_factor((image.shape[1], image.shape[0]), (w, h))
    order = _args.layout_arg(layout)
    out = _arrays.out_array(out, (h, w, len(order)), np.uint8, inputs=(image,))
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError("image is empty")
    src_h, src_w, c = image.shape
    ys, yc = resample_axis(src_h, h)
    xs, xc = resample_axis(src_w, w)
    src = image.astype(np.int64)

    # Vertical pass: int rows with INTER_BITS fractional bits.
    shift_v = COEFF_BITS - INTER_BITS
    inter = np.full((h, src_w, c), 1 << (shift_v - 1), np.int64)
    for k in range(yc.shape[1]):
        rows = np.minimum(ys + k, src_h - 1)
        inter += src[rows] * yc[:, k, None, None].astype(np.int64)
    inter >>= shift_v

    # Horizontal pass (taps past the row have weight 0).
    shift_h = COEFF_BITS + INTER_BITS
    acc = np.full((h, w, c), 1 << (shift_h - 1), np.int64)
    for k in range(xc.shape[1]):
        cols = np.minimum(xs + k, src_w - 1)
        acc += inter[:, cols] * xc[None, :, k, None].astype(np.int64)
    rgba = np.full((h, w, 4), 255, np.int64)
    rgba[..., :c] = np.clip(acc >> shift_h, 0, 255)
    out[...] = rgba[..., list(order)]
    return out


def argmax(logits, out=None):
    logits = _arrays.logits_array(logits)
    out = _arrays.out_array(out, logits.shape[1:], np.int32, inputs=(logits,))
    scores = logits.astype(np.float32)
    out[...] = np.argmax(np.where(np.isnan(scores), -np.inf, scores), axis=0)
    return out


def upsample_argmax(scores, size, out=None):
    scores = _arrays.scores_array(scores)
    w, h = _args.size_arg(size, minimum=0)
    out = _arrays.out_array(out, (h, w), np.int32, inputs=(scores,))
    if w == 0 or h == 0:
        return out
    if scores.shape[1] == 0 or scores.shape[2] == 0:
        raise ValueError("scores is empty: there is nothing to upsample from")
    q = quantise_scores(scores)
    one = 1 << LERP_BITS
    y0, y1, wy = lerp_axis(scores.shape[1], h)
    x0, x1, wx = lerp_axis(scores.shape[2], w)
    rows = q[:, y0, :] * (one - wy)[None, :, None] + q[:, y1, :] * wy[None, :, None]  # (C, h, sw)
    values = rows[:, :, x0] * (one - wx) + rows[:, :, x1] * wx  # (C, h, w), exact
    out[...] = np.argmax(values, axis=0)  # the first maximum
    return out


def decode_colors(rgb, colors, unknown=None, out=None):
    rgb = _arrays.color_map(rgb)
    colors = _arrays.color_table(colors, rgb.dtype)
    unknown = _args.unknown_arg(unknown)
    out = _arrays.out_array(out, rgb.shape[:2], np.int32, inputs=(rgb,))

    def pack(a):
        a = a.astype(np.uint64)
        return a[..., 0] | (a[..., 1] << np.uint64(16)) | (a[..., 2] << np.uint64(32))

    keys = pack(colors)
    order = np.argsort(keys)
    sorted_keys = keys[order]
    pixels = pack(rgb)
    pos = np.searchsorted(sorted_keys, pixels).clip(0, max(len(keys) - 1, 0))
    found = sorted_keys[pos] == pixels if len(keys) else np.zeros(pixels.shape, bool)
    if not found.all() and unknown is None:
        raise _arrays.unknown_colors_error(rgb, ~found)
    out[...] = np.where(found, order[pos] if len(keys) else 0, -1 if unknown is None else unknown)
    return out


def _first_bad(values, num_classes):
    bad = (values < 0) | (values >= num_classes)
    return int(np.argmax(bad)) if bad.any() else None


def confusion_matrix(gt, pred, num_classes, ignore_index=None, out=None):
    gt = _arrays.labels_array(gt, "gt")
    pred = _arrays.labels_array(pred, "pred")
    _arrays.same_shape(gt, pred)
    num_classes = _args.num_classes_arg(num_classes, _args.MAX_CONFUSION_CLASSES)
    ignore_index = _args.ignore_index_arg(ignore_index)
    out = _arrays.out_array(out, (num_classes, num_classes), np.int64, inputs=(gt, pred))
    g = gt.astype(np.int64).ravel()
    p = pred.astype(np.int64).ravel()
    if ignore_index is not None:
        keep = g != int(ignore_index)
        g, p = g[keep], p[keep]
    # The first bad pixel in raster order; ground truth before prediction.
    bad = ((g < 0) | (g >= num_classes)) | ((p < 0) | (p >= num_classes))
    if bad.any():
        i = int(np.argmax(bad))
        name, value = ("gt", g[i]) if not 0 <= g[i] < num_classes else ("pred", p[i])
        raise ValueError(f"{name} has value {int(value)} outside [0, {num_classes})")
    out[...] = np.bincount(g * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    return out


def class_histogram(labels, num_classes, out=None):
    labels = _arrays.labels_array(labels)
    num_classes = _args.num_classes_arg(num_classes, 1 << 24)
    out = _arrays.out_array(out, (num_classes,), np.int64, inputs=(labels,))
    values = labels.astype(np.int64).ravel()
    i = _first_bad(values, num_classes)
    if i is not None:
        raise ValueError(f"labels has value {int(values[i])} outside [0, {num_classes})")
    out[...] = np.bincount(values, minlength=num_classes)
    return out


def ema_update(state, scores, alpha):
    scores = _arrays.logits_array(scores, "scores")
    alpha = _args.unit_float(alpha, "alpha")
    _arrays.state_array(state, scores.shape, np.float32, inputs=(scores,))
    x = scores.astype(np.float32)
    alpha = np.float32(alpha)
    keep = np.float32(1) - alpha
    with np.errstate(invalid="ignore", over="ignore"):  # 0 * inf, as IEEE says
        state[...] = keep * state + alpha * x  # float32 throughout, no fused multiply-add
    return state


def hysteresis_update(state, labels, frames, scores=None, margin=None):
    labels, frames, scores, margin = _args.hysteresis_args(state, labels, frames, scores, margin)
    shown, candidate, count = state
    n1 = np.where(labels == candidate, np.minimum(count, frames - 1) + 1, 1)
    same = labels == shown
    switch = ~same & (n1 >= frames)
    if scores is not None:
        c = scores.shape[0]
        for a in (labels, shown):
            bad = (a < 0) | (a >= c)
            if bad.any():
                raise ValueError(f"class {int(a[bad][0])} (in labels or the state) has no score: scores has {c} "
                                 "classes")
        s = scores.astype(np.float32)
        gap = np.take_along_axis(s, labels[None], 0)[0] - np.take_along_axis(s, shown[None].copy(), 0)[0]
        switch |= ~same & (gap >= np.float32(margin))
    shown[...] = np.where(switch, labels, shown)
    count[...] = np.where(same | switch, 0, n1)
    candidate[...] = labels
    return shown
