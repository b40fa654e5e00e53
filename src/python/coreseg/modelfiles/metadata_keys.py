"""The metadata keys coreseg reads and `annotate --set` writes (ONNX
``metadata_props``, Core ML user-defined metadata), their allowed values,
and the class names a model's metadata gives."""

from __future__ import annotations

from .info import ModelError

__all__ = ["COLOR_LAYOUT_KEY", "NORMALIZATION_KEY", "MEAN_KEY", "STD_KEY", "ACTIVATION_KEY", "CLASSES_KEY",
           "NORMALIZATIONS", "ACTIVATIONS", "BINARY_NAMES", "labels_from_metadata"]

COLOR_LAYOUT_KEY = "coreseg.input.color_layout"
NORMALIZATION_KEY = "coreseg.input.normalization"
MEAN_KEY = "coreseg.input.mean"
STD_KEY = "coreseg.input.std"
ACTIVATION_KEY = "coreseg.output.activation"
CLASSES_KEY = "classes"

#: Named (mean, std) presets, on the 0..1 scale: "unit" feeds 0..1,
#: "symmetric" -1..1, "imagenet" torchvision's ImageNet statistics.
NORMALIZATIONS = {
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "symmetric": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

#: What a float output holds: "logits" (raw scores: coreseg applies softmax,
#: or sigmoid to a single channel), "softmax" (probabilities over classes),
#: "sigmoid" (per-class probabilities), "none" (scores of no known kind:
#: classes by argmax or threshold, no probabilities).
ACTIVATIONS = ("logits", "softmax", "sigmoid", "none")

BINARY_NAMES = ["background", "foreground"]


def labels_from_metadata(metadata: dict, where: str) -> list[str] | None:
    """Labels from the Hugging Face ``classes`` string ("a,b,c"), or None."""
    text = metadata.get(CLASSES_KEY)
    if text is None:
        return None
    names = [n.strip() for n in str(text).split(",")]
    if not all(names):
        raise ModelError(f"{where}: metadata {CLASSES_KEY!r} must be comma-separated class names, got {text!r}")
    return names
