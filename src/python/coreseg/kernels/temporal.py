"""Temporal smoothing state over frames: ema_update (scores) and
hysteresis_update / hysteresis_state (labels) (smoothing.cc)."""

from __future__ import annotations

import numpy as np

from .. import _native
from . import _args, _arrays

__all__ = ["ema_update", "hysteresis_update", "hysteresis_state"]


def ema_update(state, scores, alpha):
    """Exponential moving average of per-class scores, in place:
    ``state = (1 - alpha) * state + alpha * scores``.

    Computed in float32 (``1 - alpha`` rounded to float32, each product
    rounded before the sum, never fused), on every SIMD path as in numpy.
    ``alpha = 1`` gives the new scores exactly, ``alpha = 0`` keeps the
    state; in between, a frame's weight decays by ``1 - alpha`` per frame
    (a time constant of about ``1 / alpha`` frames).

    Parameters
    ----------
    state : (classes, h, w) float32 ndarray
        C-contiguous and writable: the smoothing state, updated in place
        (start it from the first frame's scores).
    scores : (classes, h, w) or (1, classes, h, w) ndarray of float32 or float16
        This frame's scores. Rows must be packed; planes and rows may be
        strided.
    alpha : float in [0, 1]

    Returns
    -------
    state : the same array
    """
    scores = _arrays.logits_array(scores, "scores")
    alpha = _args.unit_float(alpha, "alpha")
    _arrays.state_array(state, scores.shape, np.float32, inputs=(scores,))
    _native.ema_update(state, scores, alpha)
    return state


def hysteresis_update(state, labels, frames, scores=None, margin=None):
    """Label hysteresis, in place: a pixel changes class only when the new
    class has won `frames` consecutive frames, or (with scores and a
    margin) at once when its score beats the shown class's by `margin`.

    Per pixel, with ``x`` the new label and ``shown, candidate, count =
    state``::

        n1 = min(count, frames - 1) + 1 if x == candidate else 1
        switch = x != shown and (n1 >= frames or score[x] - score[shown] >= margin)
        shown = x if switch else shown
        count = 0 if x == shown (before) or switch else n1
        candidate = x

    Parameters
    ----------
    state : (3, h, w) int32 ndarray
        C-contiguous and writable: planes shown, candidate and count,
        updated in place (start it with `hysteresis_state`).
    labels : (h, w) int32 ndarray
        This frame's class map. Rows must be packed.
    frames : int in 1..2**20
        Consecutive frames a new class must win (1: no smoothing).
    scores : (classes, h, w) ndarray of float32 or float16, optional
        This frame's scores, for `margin`. Every label and shown class must
        then be a class of `scores`.
    margin : float, optional
        Score difference that switches a pixel at once (in the scores'
        units, e.g. 0.3 of probability); needs `scores`.

    Returns
    -------
    shown : (h, w) int32 ndarray
        The smoothed class map: a view of ``state[0]``.
    """
    labels, frames, scores, margin = _args.hysteresis_args(state, labels, frames, scores, margin)
    _native.hysteresis_update(state, labels, frames, scores, 0.0 if margin is None else margin)
    return state[0]


def hysteresis_state(labels) -> np.ndarray:
    """A (3, h, w) int32 `hysteresis_update` state that shows `labels`."""
    labels = _arrays.labels_array(labels)
    state = np.zeros((3, *labels.shape), np.int32)
    state[0] = labels
    state[1] = labels
    return state
