"""Watching a deployed model: class proportions and input statistics
against a baseline, scored by Jensen-Shannon divergence.

The score is the Jensen-Shannon divergence in bits (base 2), so it lies in
[0, 1]: 0 for identical distributions, 1 for ones with no overlap. It is
symmetric and defined when a class is absent from one side (unlike KL or
PSI, which need smoothing there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..kernels import _args, _arrays
from ..kernels import class_histogram

__all__ = ["class_histogram", "js_divergence", "DriftMonitor", "DriftReport"]

BRIGHTNESS_BINS = 32


def js_divergence(p, q) -> float:
    """Jensen-Shannon divergence (bits) between two histograms (any scale)."""
    p = np.asarray(p, np.float64)
    q = np.asarray(q, np.float64)
    if p.shape != q.shape:
        raise ValueError(f"histograms differ in length: {p.shape} and {q.shape}")
    if p.sum() <= 0 or q.sum() <= 0:
        raise ValueError("histograms must not be empty")
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a):
        nz = a > 0
        return float((a[nz] * np.log2(a[nz] / m[nz])).sum())

    return max(0.0, min(1.0, (kl(p) + kl(q)) / 2))


def _image_stats(image) -> np.ndarray:
    """Histogram of luma (BT.601) in BRIGHTNESS_BINS bins, and the mean of
    each colour channel, from an RGB(A) uint8 image."""
    img = _arrays.image_array(image)
    rgb = img[..., :3].astype(np.float32)
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    hist = np.bincount(np.minimum((luma * (BRIGHTNESS_BINS / 256)).astype(np.int64), BRIGHTNESS_BINS - 1).ravel(),
                       minlength=BRIGHTNESS_BINS)
    return np.concatenate([hist.astype(np.float64), rgb.reshape(-1, 3).mean(0)])


@dataclass
class DriftReport:
    """One frame's (or batch's) drift against the baseline.

    Attributes
    ----------
    class_score : float
        JS divergence (bits, 0..1) of class proportions from the baseline.
    image_score : float or None
        JS divergence of the brightness histogram (None without images).
    drifted : bool
        Either score is above the monitor's threshold.
    moved : list of (class id, name, baseline share, current share)
        Classes whose share changed by more than `min_shift`, largest first.
    color_shift : (3,) float ndarray or None
        Current minus baseline mean of R, G, B (0-255 units).
    """

    class_score: float
    image_score: float | None
    drifted: bool
    moved: list = field(default_factory=list)
    color_shift: np.ndarray | None = None


class DriftMonitor:
    """Class-proportion and input-statistics drift against a baseline.

    Parameters
    ----------
    num_classes : int
    names : list of str, optional
    threshold : float
        JS divergence (bits) above which a report says ``drifted``.
    min_shift : float
        A class "moved" when its share changed by more than this (0..1).

    Examples
    --------
    >>> import numpy as np
    >>> monitor = DriftMonitor(2, ["background", "person"])
    >>> image = np.zeros((4, 4, 3), np.uint8)
    >>> half = np.array([[0, 0, 1, 1]] * 4, np.int32)
    >>> monitor.add_baseline(half, image)
    >>> report = monitor.check(np.ones((4, 4), np.int32), image)  # everything is "person" now
    >>> report.drifted
    True
    """

    def __init__(self, num_classes: int, names=None, threshold: float = 0.1, min_shift: float = 0.05):
        self.num_classes = _args.num_classes_arg(num_classes, 1 << 24)
        self.names = list(names) if names is not None else [str(i) for i in range(self.num_classes)]
        if not 0 < threshold <= 1:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold, self.min_shift = float(threshold), float(min_shift)
        self.baseline_classes = np.zeros(self.num_classes, np.int64)
        self._baseline_image = None
        self._baseline_images = 0

    def add_baseline(self, labels, image=None) -> None:
        """Add a frame (its class map, and optionally its input image) to
        the baseline."""
        self.baseline_classes += class_histogram(labels, self.num_classes)
        if image is not None:
            stats = _image_stats(image)
            self._baseline_image = stats if self._baseline_image is None else self._baseline_image + stats
            self._baseline_images += 1

    def check(self, labels, image=None) -> DriftReport:
        """Score a frame (or several: pass a list of class maps and images)."""
        if self.baseline_classes.sum() == 0:
            raise ValueError("the baseline is empty: call add_baseline first")
        frames = labels if isinstance(labels, (list, tuple)) else [labels]
        images = image if isinstance(image, (list, tuple)) else ([image] if image is not None else [])
        counts = sum(class_histogram(f, self.num_classes) for f in frames)
        class_score = js_divergence(self.baseline_classes, counts)
        base = self.baseline_classes / self.baseline_classes.sum()
        now = counts / max(counts.sum(), 1)
        moved = [(int(i), self.names[i], float(base[i]), float(now[i]))
                 for i in np.argsort(-np.abs(now - base)) if abs(now[i] - base[i]) > self.min_shift]
        image_score = color_shift = None
        if images and self._baseline_image is not None:
            stats = sum(_image_stats(im) for im in images)
            image_score = js_divergence(self._baseline_image[:BRIGHTNESS_BINS], stats[:BRIGHTNESS_BINS])
            color_shift = stats[BRIGHTNESS_BINS:] / len(images) - self._baseline_image[BRIGHTNESS_BINS:] / self._baseline_images
        drifted = class_score > self.threshold or (image_score is not None and image_score > self.threshold)
        return DriftReport(class_score, image_score, drifted, moved, color_shift)
