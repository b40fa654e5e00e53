"""`check`: run a model once and say what was read, what was assumed, and
what in its output looks wrong (`coreseg check MODEL [IMAGE]`).

A published model usually runs whatever it is fed and draws a convincing
overlay of a wrong answer; the symptoms are in its raw output: one class
everywhere, "probabilities" that do not sum to 1, logits where
probabilities were claimed, a sigmoid stuck near 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..modelfiles.settings import arg
from .segmenter import Segmenter

__all__ = ["CheckReport", "check"]

#: A class on more than this share of the image is "one class everywhere".
ONE_CLASS_SHARE = 0.995
#: Probabilities whose sum over classes is off by more than this do not sum to 1.
SUM_TOLERANCE = 1e-2
#: A sigmoid output with this share of its values in 0.5 +- STUCK_BAND is stuck.
STUCK_SHARE = 0.95
STUCK_BAND = 0.1


@dataclass
class CheckReport:
    """What `check` found.

    Attributes
    ----------
    summary : str
        `ModelInfo.summary()`: what was read, with assumed settings marked.
    assumed : list of str
        The settings coreseg assumed (`ModelInfo.assumed`).
    output_range : (float, float)
        The raw output's minimum and maximum.
    shares : list of (str, float)
        Each class present and its share of the image, largest first.
    warnings : list of str
        What looks wrong, each with what would fix it.
    """

    summary: str
    assumed: list
    output_range: tuple
    shares: list
    warnings: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"summary": self.summary, "assumed": self.assumed, "output_range": list(self.output_range),
                "shares": [{"class": n, "share": s} for n, s in self.shares], "warnings": self.warnings}

    def text(self) -> str:
        lines = [self.summary, f"  output range: {self.output_range[0]:.4g} .. {self.output_range[1]:.4g}",
                 "  classes seen: " + (", ".join(f"{n} {s:.1%}" for n, s in self.shares[:12]) or "none")]
        lines += [f"warning: {w}" for w in self.warnings]
        lines.append("nothing looks wrong" if not self.warnings else
                     f"{len(self.warnings)} warning{'s' if len(self.warnings) > 1 else ''}")
        return "\n".join(lines)


def check(model: Segmenter, image) -> CheckReport:
    """Run `model` on `image` once and report (see CheckReport).

    Parameters
    ----------
    model : Segmenter
    image : (H, W, 3|4) uint8 ndarray, PIL image or path
    """
    seg = model.predict(image)
    raw = np.asarray(seg.raw, np.float64) if seg.raw is not None else seg.labels.astype(np.float64)
    info = model.info  # an output of unknown shape is resolved by the first result
    shares = [(seg.name(i), share) for i, share in sorted(seg.areas().items(), key=lambda e: -e[1])]
    warnings = []
    if info.sources.get("normalization") == "assumed":
        warnings.append(f"the input's normalisation is assumed ({info.normalization!r}): if the model was trained "
                        f"otherwise its output is wrong; state it with {arg('normalization', 'PRESET')} or "
                        f"{arg('mean')}/{arg('std')}")
    if shares and shares[0][1] > ONE_CLASS_SHARE:
        warnings.append(f"one class everywhere ({shares[0][0]} {shares[0][1]:.1%}): a wrong normalisation, colour "
                        f"order or output reading often looks like this")
    out = seg.output
    if out is not None and out.kind != "labels" and raw.size:
        planes = out.class_axis_first(raw)
        low, high = float(raw.min()), float(raw.max())
        if out.activation in ("softmax", "sigmoid") and (low < -1e-3 or high > 1 + 1e-3):
            warnings.append(f"the output is said to hold probabilities ({out.activation}) but ranges "
                            f"{low:.3g}..{high:.3g}: it holds logits; pass {arg('output_activation', 'logits')}")
        elif out.activation == "softmax" and out.kind == "scores":
            off = float(np.abs(planes.sum(axis=0) - 1).max())
            if off > SUM_TOLERANCE:
                warnings.append(f"the output is said to be a softmax but its classes sum to 1 +- {off:.3g}, not 1: "
                                f"pass {arg('output_activation', 'logits')} or 'sigmoid' (independent classes)")
        if out.activation == "sigmoid" or (out.activation == "logits" and out.kind in ("binary", "multilabel")):
            p = seg.scores if out.kind == "multilabel" else seg.scores[1:]
            if np.mean(np.abs(p - 0.5) < STUCK_BAND) > STUCK_SHARE:
                warnings.append("the sigmoid output is stuck near 0.5 almost everywhere: the model is not sure of "
                                "anything, as when its input is scaled wrongly")
        if out.activation == "logits" and out.kind == "scores" and out.sources.get("activation") == "assumed":
            sums = planes.sum(axis=0)
            if low >= 0 and high <= 1 and float(np.abs(sums - 1).max()) < SUM_TOLERANCE:
                warnings.append(f"the output is read as logits (assumed), but it looks like probabilities (0..1, "
                                f"summing to 1): pass {arg('output_activation', 'softmax')} so they are not "
                                "normalised twice")
    else:
        low, high = (float(raw.min()), float(raw.max())) if raw.size else (0.0, 0.0)
    return CheckReport(info.summary(), info.assumed, (low, high), shares, warnings)
