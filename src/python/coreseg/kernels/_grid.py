"""The fixed-point bilinear grid that upsample_argmax and upsample_matte
share (upsample.cc, matte.cc), in numpy for their reference twins: scores
quantised to 0..SCORE_ONE, per-axis source indices and 8-bit weights."""

from __future__ import annotations

import numpy as np

SCORE_ONE = 32767  # a score of 1.0
LERP_BITS = 8  # fractional bits of the bilinear weights


def quantise_scores(scores) -> np.ndarray:
    """round(p * SCORE_ONE) as int64, with NaN and p < 0 as 0, p > 1 as 1."""
    p = scores.astype(np.float64)
    p = np.where(p > 0, np.minimum(p, 1.0), 0.0)  # NaN > 0 is False
    return np.floor(p * SCORE_ONE + 0.5).astype(np.int64)


def lerp_axis(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i0, i1, w1) of each output index: it interpolates source i0 and i1
    with weight w1 / 2**LERP_BITS on i1. The source coordinate is
    (x + 0.5) * in / out - 0.5 clamped at 0 (align_corners=False), taken
    exactly as a fraction; w1 is its fractional part rounded to 1/256."""
    x = np.arange(out_size, dtype=np.int64)
    num = np.maximum(0, (2 * x + 1) * in_size - out_size)
    den = 2 * out_size
    i0 = num // den
    w1 = ((num - i0 * den) * (1 << LERP_BITS) + out_size) // den
    i1 = i0 + 1
    edge = i0 >= in_size - 1
    i0[edge] = i1[edge] = in_size - 1
    w1[edge] = 0
    return i0, i1, w1
