"""The numpy reference of the background effects (effects.cc, matte.cc):
blend, blur and upsample_matte, the specification their native twins in
coreseg.kernels.effects are held to bit for bit. Re-exported by
coreseg.reference. Clarity over speed; numpy only."""

from __future__ import annotations

import math

import numpy as np

from . import _args, _arrays
from ._grid import LERP_BITS, SCORE_ONE, lerp_axis, quantise_scores

__all__ = ["blend", "blur", "blur_plan", "upsample_matte"]

#: blur: the standard deviation (small pixels) the image keeps per
#: reduction step, and the largest reduction (its column sums fit uint16,
#: and its enlargement's weights stay under 256: 255 * 128 fits int16).
BLUR_SMALL_SIGMA = 2.5
MAX_BLUR_FACTOR = 255
#: blur's intermediate values carry 7 fractional bits (255 -> 32640).
BLUR_BITS = 7


def blend(foreground, background, alpha, out=None):
    fg = _arrays.image_array(foreground, "foreground")
    bg = _args.background_arg(background, fg)
    a = _arrays.alpha_array(alpha, fg.shape[:2])
    image_bg = isinstance(bg, np.ndarray)
    out = _arrays.out_array(out, fg.shape, np.uint8, inputs=(fg, a) + ((bg,) if image_bg else ()),
                            allow_same=(fg, bg) if image_bg else fg)
    f = fg.astype(np.int64)
    b = bg.astype(np.int64) if image_bg else np.array(bg[:3], np.int64)
    w = a.astype(np.int64)[..., None]
    # DESIGN.md's exact rounding, the foreground as the colour over the
    # background: t = bg * (255 - a) + fg * a + 128, (t + (t >> 8)) >> 8.
    t = b[..., :3] * (255 - w) + f[..., :3] * w + 128
    result = f.copy()  # an RGBA foreground's alpha passes through
    result[..., :3] = (t + (t >> 8)) >> 8
    out[...] = result
    return out


def blur_plan(radius) -> tuple[int, list[int], list[int]]:
    """blur's parameters for `radius`: (factor, offsets, coeffs).

    The image is reduced by `factor` = floor(radius / 2.5) (1..255) into
    block means, blurred small by one pass of the taps (offset, coeff)
    along each axis, and enlarged back. The stages' variances add up to
    radius**2: reduction and enlargement give (f**2 - (f odd)) / 4
    pixels**2 (averaged over the phases of the blocks), the small pass the
    rest, s**2 = (radius**2 - that) / f**2: a Gaussian sampled at -k..k
    (k = ceil(3 width)), its width corrected once (from s = 1 up) so the
    sampled, truncated kernel's variance is s**2, its weights in 1/65536
    rounded and the centre taking the remainder so they sum to exactly
    65536. A centre over 32767 is split over two taps at
    offset 0 (its neighbours at least 1 each); otherwise a zero tap makes
    the count even.
    """
    radius = _args.blur_radius(radius)
    f = int(min(MAX_BLUR_FACTOR, max(1.0, math.floor(radius / BLUR_SMALL_SIGMA))))
    reduce_enlarge = (f * f - (f & 1)) / 4.0
    target = math.sqrt(max(radius * radius - reduce_enlarge, 0.0) / (f * f))

    def sample(s):
        k = max(1, math.ceil(3.0 * s))
        g = []
        total = 0.0
        for i in range(-k, k + 1):  # summed in order, as the native plan does
            t = i / s
            g.append(math.exp(-0.5 * (t * t)))
            total += g[-1]
        return k, g, total

    k, g, total = sample(target)
    if target >= 1.0:
        variance = 0.0
        for i in range(-k, k + 1):
            variance += g[i + k] * (i * i)
        k, g, total = sample(target * target / math.sqrt(variance / total))
    q = [math.floor(v / total * 65536 + 0.5) for v in g]
    q[k] += 65536 - sum(q)
    offsets = list(range(-k, k + 1))
    if q[k] > 32767:
        for i in (k - 1, k + 1):
            if q[i] == 0:
                q[i] = 1
                q[k] -= 1
        centre = q[k]
        q[k] = centre // 2
        return f, offsets + [0], q + [centre - centre // 2]
    return f, offsets + [0], q + [0]


def _filter_pass(x, offsets, coeffs, axis):
    """sum_k coeffs[k] * x[clamp(i + offsets[k])] along `axis`, rounded back
    from the 16 fractional bits of the coefficients."""
    n = x.shape[axis]
    acc = np.full(x.shape, 1 << 15, np.int64)
    for o, c in zip(offsets, coeffs):
        acc += np.take(x, np.clip(np.arange(n) + o, 0, n - 1), axis=axis) * c
    return acc >> 16


def _lerp_q15(a, b, wq):
    """a + round((b - a) * wq / 2**15), as pmulhrsw rounds."""
    return a + (((b - a) * wq + (1 << 14)) >> 15)


def blur(image, radius, out=None):
    image = _arrays.image_array(image)
    radius = _args.blur_radius(radius)
    out = _arrays.out_array(out, image.shape, np.uint8, inputs=(image,), allow_same=image)
    height, width, _ = image.shape
    if height == 0 or width == 0:
        return out
    f, offsets, coeffs = blur_plan(radius)
    h, w = -(-height // f), -(-width // f)

    # Block means with BLUR_BITS fractional bits: sum * (128 / pixels) in
    # float32 (the sum < 2**24 is exact), + 0.5, truncated.
    sums = np.add.reduceat(np.add.reduceat(image.astype(np.int64), np.arange(0, height, f), axis=0),
                           np.arange(0, width, f), axis=1)
    pixels = np.minimum(f, height - np.arange(h) * f)[:, None] * np.minimum(f, width - np.arange(w) * f)[None, :]
    scale = np.array([np.float32(128.0 / int(p)) for p in pixels.ravel()], np.float32).reshape(h, w, 1)
    small = (sums.astype(np.float32) * scale + np.float32(0.5)).astype(np.int64)

    # The small Gaussian along x, then along y, edges clamped.
    small = _filter_pass(_filter_pass(small, offsets, coeffs, 1), offsets, coeffs, 0)

    # Enlarged by f on upsample_argmax's half-pixel grid: along x into bytes,
    # (v + 64) >> 7, then along y in 1/64 steps.
    x0, x1, wx = (v[:width] for v in lerp_axis(w, w * f))
    y0, y1, wy = (v[:height] for v in lerp_axis(h, h * f))
    rows = (_lerp_q15(small[:, x0], small[:, x1], (wx * 128)[None, :, None]) + 64) >> 7
    w6 = ((wy + 2) >> 2)[:, None, None]
    out[...] = (rows[y0] * (64 - w6) + rows[y1] * w6 + 32) >> 6
    return out


def upsample_matte(planes, size, reduce="sum", out=None):
    planes = _arrays.scores_array(planes, "planes")
    w, h = _args.size_arg(size, minimum=0)
    reduce = _args.matte_reduce(reduce)
    out = _arrays.out_array(out, (h, w), np.uint8, inputs=(planes,))
    if w == 0 or h == 0:
        return out
    if planes.shape[1] == 0 or planes.shape[2] == 0:
        raise ValueError("planes is empty: there is nothing to upsample from")
    q = quantise_scores(planes)
    q = np.minimum(q.sum(axis=0), SCORE_ONE) if reduce == "sum" else q.max(axis=0)
    one = 1 << LERP_BITS
    y0, y1, wy = lerp_axis(planes.shape[1], h)
    x0, x1, wx = lerp_axis(planes.shape[2], w)
    rows = q[y0] * (one - wy)[:, None] + q[y1] * wy[:, None]
    v = rows[:, x0] * (one - wx) + rows[:, x1] * wx  # exact, 0..SCORE_ONE << 16
    d = SCORE_ONE << (2 * LERP_BITS)
    out[...] = (255 * v + d // 2) // d  # round half up of 255 * v / d
    return out
