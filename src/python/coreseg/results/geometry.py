"""Where a photo goes in a model's input, and exactly back: the crop and
scale modes of Vision's ``VNImageCropAndScaleOption``.

- ``"fill"`` (scaleFill): the whole photo is stretched to the input.
- ``"fit"`` (scaleFit): the whole photo is scaled to fit, keeping its aspect
  ratio, and centred on a black canvas (letterbox). The padding is never a
  class: results cover the photo only.
- ``"center"`` (centerCrop): the centre of the photo with the input's aspect
  ratio is scaled to fill the input. The rest of the photo is never seen:
  it has no class (-1) in full-resolution results.

Rectangles are whole pixels, so the way back is exact: the part of the
photo the model saw (`source`) maps onto the part of the input it filled
(`target`) and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels

__all__ = ["CROP_MODES", "Placement", "place", "upsample_scores"]

from ..modelfiles.metadata_keys import CROP_MODES  # noqa: E402  (a setting of the model contract)


@dataclass(frozen=True)
class Placement:
    """A photo placed in a model's input.

    Attributes
    ----------
    mode : {"fill", "fit", "center"}
    image_size : (width, height)
        The photo's size in pixels.
    canvas_size : (width, height)
        The model input's size in pixels.
    source : (x, y, width, height)
        The part of the photo the model saw, in photo pixels.
    target : (x, y, width, height)
        Where that part lies in the model input, in input pixels.
    """

    mode: str
    image_size: tuple[int, int]
    canvas_size: tuple[int, int]
    source: tuple[int, int, int, int]
    target: tuple[int, int, int, int]

    def input_image(self, image: np.ndarray, layout: str = "RGB") -> np.ndarray:
        """The model's input image (canvas_size, `layout` byte order) made
        from the photo with one resize_image pass (padding: 0)."""
        x, y, w, h = self.source
        crop = image[y : y + h, x : x + w]
        if self.mode != "fit":
            return kernels.resize_image(crop, self.canvas_size, layout)
        cw, ch = self.canvas_size
        canvas = np.zeros((ch, cw, len(layout)), np.uint8)
        tx, ty, tw, th = self.target
        kernels.resize_image(crop, (tw, th), layout, out=canvas[ty : ty + th, tx : tx + tw])
        return canvas

    def output_rect(self, output_size) -> tuple[int, int, int, int] | None:
        """`target` in the pixels of a model output of `output_size`
        (width, height) covering the input, or None when it does not fall
        on whole output pixels."""
        (ow, oh), (cw, ch) = output_size, self.canvas_size
        x, y, w, h = self.target
        xs, ws = divmod(x * ow, cw), divmod(w * ow, cw)
        ys, hs = divmod(y * oh, ch), divmod(h * oh, ch)
        if xs[1] or ws[1] or ys[1] or hs[1] or ws[0] < 1 or hs[0] < 1:
            return None
        return xs[0], ys[0], ws[0], hs[0]


def _aligned(length: int, limit: int, step: int) -> int:
    """`length` rounded to a multiple of `step` within [step, limit] (`step`
    divides `limit`)."""
    return min(max(step, round(length / step) * step), limit)


def place(image_size, canvas_size, mode: str = "fill", stride=(1, 1)) -> Placement:
    """Place a photo of `image_size` in a model input of `canvas_size`.

    Parameters
    ----------
    image_size, canvas_size : (width, height)
    mode : {"fill", "fit", "center"}
    stride : (int, int)
        Input pixels per output pixel along x and y, when the model's output
        is smaller than its input: "fit" puts the photo on whole output
        pixels, so results map back exactly.
    """
    if mode not in CROP_MODES:
        raise ValueError(f"crop must be one of {', '.join(CROP_MODES)}, got {mode!r}")
    (W, H), (cw, ch) = image_size, canvas_size
    whole = (0, 0, W, H)
    if mode == "fill" or (W * ch == H * cw):
        return Placement(mode, (W, H), (cw, ch), whole, (0, 0, cw, ch))
    if mode == "fit":
        sx, sy = (s if c % s == 0 else 1 for s, c in zip(stride, (cw, ch)))
        scale = min(cw / W, ch / H)
        tw, th = _aligned(round(W * scale), cw, sx), _aligned(round(H * scale), ch, sy)
        tx, ty = (cw - tw) // 2 // sx * sx, (ch - th) // 2 // sy * sy
        return Placement(mode, (W, H), (cw, ch), whole, (tx, ty, tw, th))
    scale = max(cw / W, ch / H)
    sw, sh = min(W, max(1, round(cw / scale))), min(H, max(1, round(ch / scale)))
    return Placement(mode, (W, H), (cw, ch), ((W - sw) // 2, (H - sh) // 2, sw, sh), (0, 0, cw, ch))


def upsample_scores(scores: np.ndarray, size) -> np.ndarray:
    """Scores resampled to `size` (bilinear, half-pixel centres) in float32:
    used only when an output grid does not fall on whole input pixels."""
    w, h = size
    c, sh, sw = scores.shape

    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(np.intp), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)

    y0, y1, ly = axis(sh, h)
    x0, x1, lx = axis(sw, w)
    rows = scores[:, y0] * (1 - ly)[:, None] + scores[:, y1] * ly[:, None]
    return np.ascontiguousarray(rows[:, :, x0] * (1 - lx) + rows[:, :, x1] * lx, dtype=np.float32)
