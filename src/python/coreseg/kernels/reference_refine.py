"""The numpy reference of refine_matte (refine.cc): a guided filter (He et
al., "Guided Image Filtering", 2010/2013) with the photo's luma as the
guide, computed small and enlarged (the "fast guided filter"), in integer
arithmetic throughout, so its native twin in coreseg.kernels.refine gives
the same bytes. Re-exported by coreseg.reference. Clarity over speed."""

from __future__ import annotations

import math

import numpy as np

from . import _args, _arrays
from ._grid import LERP_BITS, lerp_axis

__all__ = ["refine_matte", "refine_plan", "DEFAULT_REFINE_RADIUS", "DEFAULT_REFINE_EPS"]

#: refine_matte's defaults: a window of 8 photo pixels either side, and
#: eps = 1e-3, a standard deviation of ~3% (8 levels): edges of more
#: contrast than that are followed, a JPEG's noise (~2 levels) is not.
DEFAULT_REFINE_RADIUS = 8.0
DEFAULT_REFINE_EPS = 1e-3

#: The small window's radius the reduction aims at (factor s = floor(radius
#: / REFINE_STEP)), and the largest reduction (block sums stay under 2^24).
#: A and b vary slowly (they are box means), so windows of 5..7 blocks
#: follow edges as well as 9..17 do (measured on the Selfie matte of
#: astronaut.png and on step edges), at a quarter of the small work.
REFINE_STEP = 2
MAX_REFINE_FACTOR = 256
#: Fractional bits of the small means (and of b), and of the slope A.
MEAN_BITS = 4
A_BITS = 12
#: |A| <= 128 (levels of matte per level of luma): a near-flat window's
#: slope for eps >= ~4e-6 never reaches it; it keeps A * Y in 27 bits.
MAX_A = 1 << 19


def refine_plan(radius) -> tuple[int, int]:
    """(factor, small_radius) of refine_matte for `radius` (photo pixels):
    the photo is reduced by `factor` = floor(radius / 2) (1..256) and the
    statistics taken over (2 * small_radius + 1)^2 small pixels, where
    small_radius = round(radius / factor), 1..4 (2 or 3 from radius 4 to
    512)."""
    radius = _args.refine_radius(radius)
    s = int(min(MAX_REFINE_FACTOR, max(1.0, math.floor(radius / REFINE_STEP))))
    return s, max(1, int(math.floor(radius / s + 0.5)))


def _round_div(n, d):
    """n / d rounded half up (d > 0), exactly on int64."""
    return (2 * n + d) // (2 * d)


def _box(x, r):
    """Sums over the (2r + 1)^2 windows of x (int64), clipped at the edges."""
    h, w = x.shape
    c = np.zeros((h + 1, w + 1), np.int64)
    c[1:, 1:] = x.cumsum(0).cumsum(1)
    y0, y1 = np.maximum(np.arange(h) - r, 0), np.minimum(np.arange(h) + r + 1, h)
    x0, x1 = np.maximum(np.arange(w) - r, 0), np.minimum(np.arange(w) + r + 1, w)
    return c[y1][:, x1] - c[y0][:, x1] - c[y1][:, x0] + c[y0][:, x0]


def _lerp(a, b, w):
    """a + round((b - a) * w / 256) with w in 1/256 (floor of the half up)."""
    return a + (((b - a) * w + (1 << (LERP_BITS - 1))) >> LERP_BITS)


def luma(guide) -> np.ndarray:
    """(77 R + 150 G + 29 B + 128) >> 8 of every pixel, int64 (BT.601)."""
    g = guide.astype(np.int64)
    return (77 * g[..., 0] + 150 * g[..., 1] + 29 * g[..., 2] + 128) >> 8


def refine_matte(matte, guide, radius=DEFAULT_REFINE_RADIUS, eps=DEFAULT_REFINE_EPS, out=None):
    guide = _arrays.image_array(guide, "guide")
    matte = _arrays.alpha_array(matte, guide.shape[:2], "matte", of="guide")
    radius = _args.refine_radius(radius)
    eps = _args.refine_eps(eps)
    height, width = matte.shape
    out = _arrays.out_array(out, (height, width), np.uint8, inputs=(matte, guide), allow_same=matte)
    if height == 0 or width == 0:
        return out
    s, r = refine_plan(radius)
    y = luma(guide)
    p = matte.astype(np.int64)

    # Block means of luma and matte with MEAN_BITS fractional bits, rounded
    # half up (the last row and column of blocks may be partial).
    h, w = -(-height // s), -(-width // s)
    n = np.minimum(s, height - np.arange(h) * s)[:, None] * np.minimum(s, width - np.arange(w) * s)[None, :]

    def block_means(x):
        sums = np.add.reduceat(np.add.reduceat(x, np.arange(0, height, s), 0), np.arange(0, width, s), 1)
        return _round_div(sums << MEAN_BITS, n)

    small_i, small_p = block_means(y), block_means(p)

    # The guided filter's statistics over clipped windows, kept as sums
    # times the count N (no division until A): N^2 cov and N^2 var.
    count = _box(np.ones((h, w), np.int64), r)
    si, sp = _box(small_i, r), _box(small_p, r)
    cov = count * _box(small_i * small_p, r) - si * sp
    var = count * _box(small_i * small_i, r) - si * si
    e = math.floor(eps * (255 << MEAN_BITS) ** 2 + 0.5)  # eps in the means' units
    a = np.clip(_round_div(cov << A_BITS, var + e * count * count), -MAX_A, MAX_A)
    # b = mean_p - A mean_i, with MEAN_BITS fractional bits.
    b = _round_div((sp << A_BITS) - a * si, count << A_BITS)
    mean_a, mean_b = _round_div(_box(a, r), count), _round_div(_box(b, r), count)

    # Enlarged on upsample_argmax's half-pixel grid of the blocks (along x,
    # then y), and applied to the full-resolution luma.
    x0, x1, wx = (v[:width] for v in lerp_axis(w, w * s))
    y0, y1, wy = (v[:height] for v in lerp_axis(h, h * s))
    rows_a, rows_b = _lerp(mean_a[:, x0], mean_a[:, x1], wx), _lerp(mean_b[:, x0], mean_b[:, x1], wx)
    full_a = _lerp(rows_a[y0], rows_a[y1], wy[:, None])
    full_b = _lerp(rows_b[y0], rows_b[y1], wy[:, None])
    v = (full_a * y + (full_b << (A_BITS - MEAN_BITS)) + (1 << (A_BITS - 1))) >> A_BITS
    out[...] = np.clip(v, 0, 255)
    return out
