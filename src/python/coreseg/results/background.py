"""Mattes and background effects of one `Segmentation`: the alpha of the
foreground at the photo's resolution (`matte`), and the photo with its
background blurred, replaced by a colour or a picture, or made transparent
(`replace_background`), either refined along the photo's own edges
(refine=). The pixel work is the kernels' (upsample_matte, refine_matte,
blur, blend, resize_image); this module chooses the planes and places them
in the photo."""

from __future__ import annotations

import numbers

import numpy as np

from .. import kernels
from ..files.images import as_image
from ..kernels import _args, _arrays
from ..kernels.palette import is_background, parse_color
from .geometry import upsample_scores

__all__ = ["foreground_classes", "matte", "replace_background", "cover_picture", "model_pixel", "refine_radius",
           "DEFAULT_BLUR_FRACTION",
           "REFINE_MODEL_PIXELS"]

#: The default blur radius of replace_background, as a share of the image's
#: long side (1920 px: 19 px, about what cv2.GaussianBlur(frame, (55, 55), 0)
#: gives, MediaPipe's example).
DEFAULT_BLUR_FRACTION = 0.01

#: refine=True's radius, in the model's output pixels as they fall on the
#: photo: an enlarged mask's edge is blurred over about two of them, and
#: the photo's edge it should follow lies within that.
REFINE_MODEL_PIXELS = 2.0


def foreground_classes(seg) -> list[int]:
    """Every class id that is not background: not named so ("background",
    "None", "void", ...) and not transparent in the palette."""
    n = seg.output.num_classes if seg.output is not None and seg.output.num_classes else None
    n = n or (len(seg.names) if seg.names is not None else int(seg.labels.max(initial=0)) + 1)
    pal = seg.palette
    multilabel = seg.output is not None and seg.output.kind == "multilabel"
    return [i for i in range(n) if not is_background(seg.name(i)) and not (i < len(pal) and pal[i, 3] == 0)
            and not (multilabel and i == 0)]  # a multi-label model's id 0 is "no class above the threshold"


def _planes(seg, ids) -> tuple[np.ndarray, str]:
    """(float32 planes at the model's resolution, reduce) whose combination
    is the probability that a pixel is one of `ids`."""
    out = seg.output
    scores = seg.scores
    if scores is None:  # a class map: 0/1, feathered by the bilinear upsampling
        return np.isin(seg.labels, ids).astype(np.float32)[None], "sum"
    if out.kind == "multilabel":
        planes = [scores[i - 1] for i in ids if i > 0]
        if 0 in ids:  # background: no channel present
            planes.append(1 - scores.max(axis=0))
        return np.stack(planes), "max"
    return scores[[i for i in ids if 0 <= i < len(scores)]], "sum"


def model_pixel(seg) -> float:
    """The side of one of the model's output pixels, in photo pixels (the
    larger of the two axes' scales)."""
    (_, _, sw, sh), _, where = seg._source_and_target()
    oh, ow = seg.labels.shape
    if where is None:
        rw, rh = ow, oh
    else:
        (_, _, rw, rh), through_input = where
        if through_input:  # the rect is in input pixels
            cw, ch = seg.placement.canvas_size
            rw, rh = rw * ow / cw, rh * oh / ch
    return max(sw / rw if rw else 1.0, sh / rh if rh else 1.0, 1.0)


def refine_radius(seg, refine) -> float | None:
    """refine= as refine_matte's radius (photo pixels), or None for no
    refinement. True: REFINE_MODEL_PIXELS of the model's pixels."""
    if refine is None or refine is False:
        return None
    if refine is True:
        return min(max(1.0, REFINE_MODEL_PIXELS * model_pixel(seg)), _args.MAX_REFINE_RADIUS)
    if isinstance(refine, bool) or not isinstance(refine, numbers.Real):
        raise TypeError(f"refine must be True, False or a radius in pixels, got {refine!r}")
    return _args.refine_radius(refine)


def _photo(seg, image, name: str = "image") -> np.ndarray:
    img = as_image(image, name)
    if (img.shape[1], img.shape[0]) != tuple(seg.image_size):
        raise ValueError(f"{name} is {img.shape[1]}x{img.shape[0]}, but the segmentation is of a "
                         f"{seg.image_size[0]}x{seg.image_size[1]} image")
    return img


def matte(seg, classes=None, *, smooth: bool = True, refine=False, image=None, out=None) -> np.ndarray:
    """See `Segmentation.matte`."""
    radius = refine_radius(seg, refine)
    if radius is not None and image is None:
        raise ValueError("refine= follows the photo's edges: pass the photo as image=")
    img = _photo(seg, image) if image is not None else None
    w, h = seg.image_size
    out = _arrays.out_array(out, (h, w), np.uint8, inputs=() if img is None else (img,))
    ids = foreground_classes(seg) if classes is None else seg.class_ids(classes)
    (sx, sy, sw, sh), _, where = seg._source_and_target()
    if (sx, sy, sw, sh) != (0, 0, w, h):
        out[...] = 0  # what the model never saw is background
    region = out[sy : sy + sh, sx : sx + sw]
    _fill(seg, ids, smooth, where, region)
    if ids and radius is not None and region.size:
        # Only what the model saw: the matte never leaks into the rest.
        kernels.refine_matte(region, img[sy : sy + sh, sx : sx + sw], radius, out=region)
    return out


def _fill(seg, ids, smooth, where, region) -> None:
    """The matte of `ids` over the part of the photo the model saw."""
    sh, sw = region.shape
    if not ids:
        region[...] = 0
        return
    if not smooth:  # the model's own decision, its pixels enlarged by nearest neighbour
        hit = _decided(seg, ids)
        if where is not None:
            (x, y, rw, rh), through_input = where
            hit = kernels.resize_labels(hit, seg.placement.canvas_size) if through_input else hit
            hit = hit[y : y + rh, x : x + rw]
        kernels.resize_labels(hit * np.uint8(255), (sw, sh), out=region)
        return
    planes, reduce = _planes(seg, ids)
    if where is not None:
        (x, y, rw, rh), through_input = where
        if through_input:
            planes = upsample_scores(planes, seg.placement.canvas_size)
        planes = planes[:, y : y + rh, x : x + rw]
    kernels.upsample_matte(np.ascontiguousarray(planes, np.float32), (sw, sh), reduce, out=region)


def _decided(seg, ids) -> np.ndarray:
    """(h, w) uint8 1 where the model decided one of `ids`: its class map,
    or for a multi-label model each kept channel above the threshold."""
    out = seg.output
    if out is not None and out.kind == "multilabel":
        channels = out.class_axis_first(seg.raw)
        hit = np.zeros(seg.labels.shape, bool)
        for i in ids:
            hit |= (channels[i - 1] > out.threshold) if i > 0 else (seg.labels == 0)
        return hit.astype(np.uint8)
    return np.isin(seg.labels, ids).astype(np.uint8)


def cover_picture(picture: np.ndarray, size) -> np.ndarray:
    """`picture` scaled (aspect kept) to cover `size` (width, height), the
    overflow cropped evenly: a background picture never stretched."""
    w, h = size
    ph, pw = picture.shape[:2]
    scale = max(w / pw, h / ph)
    cw, ch = min(pw, max(1, round(w / scale))), min(ph, max(1, round(h / scale)))
    x, y = (pw - cw) // 2, (ph - ch) // 2
    layout = "RGBA" if picture.shape[2] == 4 else "RGB"
    return kernels.resize_image(picture[y : y + ch, x : x + cw], (w, h), layout)


def replace_background(seg, image, background="blur", *, classes=None, blur=None, smooth: bool = True,
                       refine=False, out=None) -> np.ndarray:
    """See `Segmentation.replace_background`."""
    img = _photo(seg, image)
    alpha = matte(seg, classes, smooth=smooth, refine=refine, image=img)
    h, w = img.shape[:2]
    if isinstance(background, str) and background == "transparent":
        out = _arrays.out_array(out, (h, w, 4), np.uint8, inputs=(img,))
        out[..., :3] = img[..., :3]
        out[..., 3] = alpha
        return out
    if isinstance(background, str) and background == "blur":
        radius = blur if blur is not None else max(1.0, DEFAULT_BLUR_FRACTION * max(w, h))
        back = kernels.blur(img, radius)
    elif blur is not None:
        raise ValueError("blur= is the radius of background='blur'")
    elif isinstance(background, str) and background.startswith("#"):
        back = _args.rgba(parse_color(background), "background")
    elif isinstance(background, (tuple, list)) and len(background) in (3, 4) and all(
            isinstance(v, (int, np.integer)) for v in background):
        back = _args.rgba(tuple(background) + (255,) * (4 - len(background)), "background")
    else:
        picture = as_image(background, "background")
        if picture.shape[2] != img.shape[2]:
            picture = picture[..., :3] if picture.shape[2] == 4 else np.dstack(
                [picture, np.full(picture.shape[:2], 255, np.uint8)])
        back = cover_picture(picture, (w, h))
    if isinstance(back, tuple):
        back = back[: img.shape[2]]
    return kernels.blend(img, back, alpha, out=out)
