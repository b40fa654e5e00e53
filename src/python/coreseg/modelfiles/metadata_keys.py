"""The metadata keys coreseg reads and `annotate --set` writes (ONNX
``metadata_props``, Core ML user-defined metadata), their allowed values,
and the class names a model's metadata gives."""

from __future__ import annotations

from .info import ModelError

__all__ = ["COLOR_LAYOUT_KEY", "NORMALIZATION_KEY", "MEAN_KEY", "STD_KEY", "LAYOUT_KEY", "SIZE_KEY", "MULTIPLE_KEY",
           "MAX_SIDE_KEY", "CROP_KEY", "OUTPUT_KEY", "OUTPUT_LAYOUT_KEY", "ACTIVATION_KEY", "THRESHOLD_KEY",
           "CLASSES_KEY", "SETTING_KEYS", "CROP_MODES", "NORMALIZATIONS", "ACTIVATIONS", "BINARY_NAMES", "labels_from_metadata",
           "setting_keys_error"]

COLOR_LAYOUT_KEY = "coreseg.input.color_layout"
NORMALIZATION_KEY = "coreseg.input.normalization"
MEAN_KEY = "coreseg.input.mean"
STD_KEY = "coreseg.input.std"
LAYOUT_KEY = "coreseg.input.layout"
SIZE_KEY = "coreseg.input.size"
MULTIPLE_KEY = "coreseg.input.multiple"
MAX_SIDE_KEY = "coreseg.input.max_side"
CROP_KEY = "coreseg.input.crop"
OUTPUT_KEY = "coreseg.output.name"
OUTPUT_LAYOUT_KEY = "coreseg.output.layout"
ACTIVATION_KEY = "coreseg.output.activation"
THRESHOLD_KEY = "coreseg.output.threshold"
CLASSES_KEY = "classes"

#: Named (mean, std) presets, on the 0..1 scale: "unit" feeds 0..1,
#: "symmetric" -1..1, "imagenet" torchvision's ImageNet statistics, "raw"
#: the pixel values 0..255 as they are (fed exactly, not through mean/std).
NORMALIZATIONS = {
    "unit": ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
    "raw": ((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255)),
    "symmetric": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}

#: What a float output holds: "logits" (raw scores: coreseg applies softmax,
#: or sigmoid to a single channel), "softmax" (probabilities over classes),
#: "sigmoid" (per-class probabilities), "none" (scores of no known kind:
#: classes by argmax or threshold, no probabilities).
ACTIVATIONS = ("logits", "softmax", "sigmoid", "none")

BINARY_NAMES = ["background", "foreground"]

#: How an image is placed in the model's input (Vision's crop and scale
#: options): stretched, letterboxed, centre-cropped (coreseg.results.geometry).
CROP_MODES = ("fill", "fit", "center")

#: Every coreseg.* key a model's metadata may hold (annotate --set refuses others).
SETTING_KEYS = (COLOR_LAYOUT_KEY, NORMALIZATION_KEY, MEAN_KEY, STD_KEY, LAYOUT_KEY, SIZE_KEY, MULTIPLE_KEY,
                MAX_SIDE_KEY, CROP_KEY, OUTPUT_KEY, OUTPUT_LAYOUT_KEY, ACTIVATION_KEY, THRESHOLD_KEY)


def setting_keys_error(metadata: dict, where: str) -> ModelError | None:
    """A ModelError naming the first unknown ``coreseg.*`` key in `metadata`
    (with the closest known one), or None: a misspelt key would otherwise
    be stored and silently ignored."""
    import difflib

    for key in metadata:
        if str(key).startswith("coreseg.") and key not in SETTING_KEYS:
            close = difflib.get_close_matches(str(key), SETTING_KEYS, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return ModelError(f"{where}: unknown metadata key {key!r}{hint}; coreseg reads: {', '.join(SETTING_KEYS)}")
    return None


def labels_from_metadata(metadata: dict, where: str) -> list[str] | None:
    """Labels from the Hugging Face ``classes`` string ("a,b,c"), or None."""
    text = metadata.get(CLASSES_KEY)
    if text is None:
        return None
    names = [n.strip() for n in str(text).split(",")]
    if not all(names):
        raise ModelError(f"{where}: metadata {CLASSES_KEY!r} must be comma-separated class names, got {text!r}")
    return names
