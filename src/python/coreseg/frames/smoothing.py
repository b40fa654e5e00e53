"""Temporal smoothing of per-frame segmentations, so masks do not flicker
at object edges: an exponential moving average of per-class scores, or
hysteresis of class labels, both reset at a scene cut.

Both run at the model's resolution (the kernels `ema_update` and
`hysteresis_update`), before the class map is brought to the frame's size,
so they cost a small fraction of a frame. They are stateful: feed frames in
order (`Segmenter.stream` does).

EMA (``smoothing="ema"``), for models that give scores::

    state_t = (1 - alpha) * state_{t-1} + alpha * scores_t,   labels_t = argmax(state_t)

A frame's weight decays by ``1 - alpha`` per frame: the default 0.25
halves it in about 2.4 frames, enough to cut edge flicker several times
over while a real change shows within a few frames; larger values follow
faster and smooth less.

Hysteresis (``smoothing="hysteresis"``), for any model: a pixel changes
class only when the new class has won `frames` consecutive frames, or (when
the model gives scores and `margin` is set) at once when the new class's
probability beats the shown class's by `margin`.

A scene cut (the mean absolute difference of consecutive frames'
thumbnails above `scene_cut`, on the 0..255 scale) restarts the state from
the new frame, so a cut does not drag the last scene's classes along.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import kernels
from ..results.segmentation import Segmentation

#: Side of the thumbnails compared for scene cuts, in pixels.
THUMBNAIL_SIDE = 32
#: Default scene-cut threshold: mean absolute difference of thumbnails,
#: 0..255. Motion within a shot stays well under it; a cut goes over.
SCENE_CUT = 40.0


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A (32, 32, 3) uint8 thumbnail of an (H, W, 3|4) uint8 frame, for
    `SceneCut` (area-averaged by `resize_image`: reads the frame once)."""
    return kernels.resize_image(image, (THUMBNAIL_SIDE, THUMBNAIL_SIDE), "RGB")


class SceneCut:
    """Tells a scene cut from the frame before.

    Parameters
    ----------
    threshold : float
        Mean absolute difference of thumbnails (0..255) that is a cut;
        None never cuts.
    """

    def __init__(self, threshold: float | None = SCENE_CUT):
        if threshold is not None and not 0 <= float(threshold) <= 255:
            raise ValueError(f"scene_cut must be in 0..255 or None, got {threshold!r}")
        self.threshold = None if threshold is None else float(threshold)
        self._last = None

    def __call__(self, thumb: np.ndarray) -> bool:
        """Whether `thumb` (from `thumbnail`) starts a new scene; the first
        frame does."""
        last, self._last = self._last, thumb
        if last is None:
            return True
        if self.threshold is None:
            return False
        return float(np.abs(thumb.astype(np.int16) - last).mean()) > self.threshold

    def reset(self) -> None:
        self._last = None


class _Smoother:
    """What both smoothers share: a state, restarted at a scene cut, at the
    first frame and when the frame size changes."""

    def __init__(self, scene_cut: float | None):
        self.cut = SceneCut(scene_cut)
        self._state = None

    def reset(self) -> None:
        """Forget the past: the next frame starts afresh."""
        self._state = None
        self.cut.reset()

    def _restarts(self, thumb, shape, state_shape) -> bool:
        cut = self.cut(thumb) if thumb is not None else self._state is None
        return cut or self._state is None or state_shape != shape


class EMA(_Smoother):
    """Exponential moving average of per-class scores (module docstring).

    Parameters
    ----------
    alpha : float in (0, 1]
        Weight of the new frame.
    scene_cut : float or None
        See `SceneCut`.
    """

    def __init__(self, alpha: float = 0.25, scene_cut: float | None = SCENE_CUT):
        alpha = float(alpha)
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        super().__init__(scene_cut)
        self.alpha = alpha

    def __call__(self, seg: Segmentation, thumb: np.ndarray | None = None) -> Segmentation:
        """The smoothed segmentation of the next frame (`thumb`: its
        `thumbnail`, for scene cuts)."""
        scores = seg.scores
        if scores is None:
            raise ValueError("smoothing='ema' averages per-class scores, and this model returns a class map "
                             "only: use smoothing='hysteresis'")
        if self._restarts(thumb, scores.shape, None if self._state is None else self._state.shape):
            self._state = np.array(scores, np.float32, order="C")
        else:
            kernels.ema_update(self._state, scores, self.alpha)
        smoothed = self._state.copy()  # the state moves on; each result keeps its own
        out = dataclasses.replace(seg, labels=kernels.argmax(seg.output.decision_scores(smoothed)))
        out._scores = smoothed
        return out


class Hysteresis(_Smoother):
    """Label hysteresis (module docstring).

    Parameters
    ----------
    frames : int
        Consecutive frames a new class must win (1: no smoothing).
    margin : float, optional
        Probability lead that switches a pixel at once (models with scores).
    scene_cut : float or None
        See `SceneCut`.
    """

    def __init__(self, frames: int = 3, margin: float | None = None, scene_cut: float | None = SCENE_CUT):
        if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or not 1 <= frames <= 1 << 20:
            raise ValueError(f"frames must be an integer in 1..{1 << 20}, got {frames!r}")
        if margin is not None and not np.isfinite(float(margin)):
            raise ValueError(f"margin must be finite, got {margin!r}")
        super().__init__(scene_cut)
        self.frames = int(frames)
        self.margin = None if margin is None else float(margin)

    def __call__(self, seg: Segmentation, thumb: np.ndarray | None = None) -> Segmentation:
        """The smoothed segmentation of the next frame, a class map only
        (its scores are those of one frame, and would disagree with it)."""
        labels = seg.labels
        if self._restarts(thumb, labels.shape, None if self._state is None else self._state.shape[1:]):
            self._state = kernels.hysteresis_state(labels)
            shown = self._state[0]
        else:
            scores = seg.scores if self.margin is not None else None
            margin = self.margin if scores is not None else None
            shown = kernels.hysteresis_update(self._state, labels, self.frames, scores=scores, margin=margin)
        return dataclasses.replace(seg, labels=shown.copy(), raw=None, output=None)


def smoother(spec):
    """A smoother from `Segmenter.stream`'s `smoothing`: None, "ema",
    "hysteresis", or an EMA / Hysteresis (or any callable(seg, thumb))."""
    if spec is None:
        return None
    if spec == "ema":
        return EMA()
    if spec == "hysteresis":
        return Hysteresis()
    if isinstance(spec, str):
        raise ValueError(f"smoothing must be 'ema', 'hysteresis', None or a smoother object, got {spec!r}")
    if not callable(spec):
        raise TypeError(f"smoothing must be 'ema', 'hysteresis', None or a smoother object, got {spec!r}")
    return spec
