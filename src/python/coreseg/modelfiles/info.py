"""Model facts on any OS: what a segmentation model takes, returns and
calls its classes (`ModelInfo`), and the error for a model coreseg cannot
use (`ModelError`). The readers (coreml_file.py, onnx_file.py) fill them
in; reading.py's `inspect` picks the reader. Nothing here runs a model.

Labels and colours come from the creator-defined metadata Apple's sample
code uses (or Hugging Face's ``classes``, see coreseg.contract)::

    com.apple.coreml.model.preview.type   = "imageSegmenter"
    com.apple.coreml.model.preview.params = {"labels": [...], "colors": ["#RRGGBB", ...]}
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..kernels.palette import clear_background, default_palette, parse_colors

__all__ = ["ModelError", "AssumptionWarning", "ModelInfo", "PREVIEW_TYPE_KEY", "PREVIEW_PARAMS_KEY", "UNUSED_LABEL"]

PREVIEW_TYPE_KEY = "com.apple.coreml.model.preview.type"
PREVIEW_PARAMS_KEY = "com.apple.coreml.model.preview.params"
SEGMENTER = "imageSegmenter"
#: The label Apple's models give to class ids that are not used.
UNUSED_LABEL = "--"


class ModelError(ValueError):
    """A model file that coreseg cannot use, with the file and the reason."""


class AssumptionWarning(UserWarning):
    """coreseg assumed a setting that the model file does not state and the
    user did not give, and a wrong guess would silently spoil the results
    (a float input's normalisation). Filter it, or turn it into an error
    with ``warnings.simplefilter("error", coreseg.AssumptionWarning)``."""


@dataclass(frozen=True)
class ModelInfo:
    """What a Core ML segmentation model takes and returns.

    Attributes
    ----------
    path : pathlib.Path
        The model file or package.
    format : {"mlpackage", "mlmodel", "mlmodelc", "onnx"}
    model_type : str
        The spec's model kind: "mlProgram", "neuralNetwork", "pipeline", ...
    spec_version : int
        Core ML specification version.
    preview_type : str or None
        ``com.apple.coreml.model.preview.type``; "imageSegmenter" for models
        annotated like Apple's.
    labels : list of str or None
        Class names, index = class id; "--" marks unused ids. None when the
        model carries no labels (then class ids are used as names).
    colors : (n, 4) uint8 ndarray or None
        The model's own RGBA class colours, if it has them.
    input_name : str
    input_size : (int, int)
        Default input (width, height) in pixels.
    input_color_layout : {"RGB", "BGR", "GRAY", "unknown"}
        "unknown" for a compiled model that does not say (Core ML feeds
        colour models from any 32BGRA/32ARGB buffer either way).
    input_size_range : ((int, int), (int, int)) or None
        ((min_width, max_width), (min_height, max_height)) for models with a
        flexible input size; a max of -1 means unbounded.
    input_sizes : tuple of (int, int) or None
        The (width, height) sizes a model with enumerated sizes accepts.
    output_name : str
    output_dtype : str
        "int32" (or "int8", "int64") for class maps; "float32"/"float16"
        for scores.
    output_shape : tuple of int or None
        The output's declared shape, e.g. (448, 448); None when the model
        declares none (Core ML models with flexible input sizes); -1 for an
        axis that varies.
    author, license, version, description : str
    user_defined : dict of str to str
        All creator-defined metadata.
    input_dtype : str
        "image" for Core ML image inputs, else the tensor's dtype.
    input_layout : str
        "NHWC" or "NCHW" for tensor inputs, "" for Core ML images.
    normalization : str
        How float inputs are scaled: a preset of coreseg.contract.NORMALIZATIONS
        or "custom"; "" when pixels are fed as they are.
    output_kind : {"labels", "scores", "binary", "multilabel"}
        An integer class map, one-of-N scores, one foreground channel, or
        independent sigmoid channels (coreseg.modelfiles.contract_outputs).
    output_layout : str or None
        "NCHW" or "NHWC" for score outputs (None until a result shows it,
        for an output of unknown shape).
    output_activation : str
        What score outputs hold: "logits", "softmax", "sigmoid" or "none".
    output_threshold : float or None
        Binary and multi-label outputs: where a class is present (above it).
    input_preprocessing : str
        What the model itself does to its input pixels before the network,
        when its file says (Core ML NeuralNetwork image preprocessing:
        scale, per-channel bias, BGR), e.g. "x * 0.00392 + (-0.5, -0.5,
        -0.5)"; "" when it says nothing.
    input_rule : str
        For inputs of any size, how an image's size becomes the input's:
        e.g. "the image's size, long side at most 1024, sides multiples of
        32"; "" for fixed sizes.
    sources : dict of str to str
        Where each setting came from: "model" (the file says so), "load"
        (the user said so) or "assumed" (coreseg's default). Keys:
        normalization, color_layout, layout, size_rule, output_layout,
        output_activation, threshold (those that apply to this model).
    """

    path: Path
    format: str
    model_type: str
    spec_version: int
    preview_type: str | None
    labels: list[str] | None
    colors: np.ndarray | None
    input_name: str
    input_size: tuple[int, int]
    input_color_layout: str
    input_size_range: tuple[tuple[int, int], tuple[int, int]] | None
    input_sizes: tuple[tuple[int, int], ...] | None
    output_name: str
    output_dtype: str
    output_shape: tuple[int, ...] | None
    author: str = ""
    license: str = ""
    version: str = ""
    description: str = ""
    user_defined: dict = field(default_factory=dict)
    input_dtype: str = "image"
    input_layout: str = ""
    normalization: str = ""
    output_kind: str = "labels"
    output_layout: str | None = None
    output_activation: str = "none"
    output_threshold: float | None = None
    input_preprocessing: str = ""
    input_rule: str = ""
    sources: dict = field(default_factory=dict)

    @property
    def assumed(self) -> list[str]:
        """The settings coreseg assumed (neither the model nor the user
        stated them)."""
        return [k for k, v in self.sources.items() if v == "assumed"]

    @property
    def num_classes(self) -> int | None:
        """Number of class ids the labels name (unused ones included)."""
        return None if self.labels is None else len(self.labels)

    def palette(self) -> np.ndarray:
        """(n, 4) uint8 RGBA colours for the class ids: the model's own when it
        has them, else ``default_palette(len(labels))`` (256 entries for a
        model without labels) with background classes transparent."""
        if self.colors is not None:
            return self.colors.copy()
        return clear_background(default_palette(256 if self.labels is None else len(self.labels)), self.labels)

    def label_name(self, class_id: int) -> str:
        """The name of a class id (the id itself as text without labels)."""
        if self.labels is not None and 0 <= class_id < len(self.labels):
            return self.labels[class_id]
        return str(class_id)

    def label_index(self, name: str) -> int:
        """The class id of a label name.

        Parameters
        ----------
        name : str
            A label as the model names it ("--", unused ids, is none).

        Returns
        -------
        int
            The class id (index in `labels`).

        Raises
        ------
        KeyError
            When `name` is not a label: it suggests the closest one (case
            and spelling) and lists the valid names.
        """
        if self.labels is None:
            raise KeyError(f"{self.path.name} has no labels; use class ids")
        if name != UNUSED_LABEL and name in self.labels:
            return self.labels.index(name)
        valid = self.legend_names()
        folded = [n for n in valid if n.casefold() == str(name).casefold()]
        close = folded or difflib.get_close_matches(str(name), valid, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"no label {name!r} in {self.path.name}{hint}; valid labels: {', '.join(valid)}")

    def legend(self) -> list[tuple[int, str]]:
        """(class id, name) of every used class, for legends and reports
        ("--" ids are left out)."""
        if self.labels is None:
            return []
        return [(i, name) for i, name in enumerate(self.labels) if name != UNUSED_LABEL]

    def legend_names(self) -> list[str]:
        return [name for _, name in self.legend()]

    def to_dict(self) -> dict:
        """A JSON-ready dict of everything above (colours as "#RRGGBBAA")."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["path"] = str(self.path)
        d["colors"] = None if self.colors is None else ["#" + bytes(c).hex().upper() for c in self.colors]
        d["input_size"] = None if self.input_size is None else list(self.input_size)
        return json.loads(json.dumps(d))

    def summary(self) -> str:
        """A human-readable description, as ``coreseg info`` prints it."""
        # Sizes are width x height everywhere; array shapes are (axis, ...).
        def said(key: str, text: str) -> str:
            return f"{text} (assumed)" if self.sources.get(key) == "assumed" else text

        size = "any size" if self.input_size is None else "x".join(map(str, self.input_size)) + " (width x height)"
        kind = "image" if self.input_dtype == "image" else f"{self.input_dtype} {said('layout', self.input_layout)} tensor"
        what = self.model_type if self.spec_version <= 0 else f"{self.model_type}, spec v{self.spec_version}"
        lines = [
            f"{self.path.name}: {self.format}" + (f" ({what})" if what != self.format else ""),
            f"  input   {self.input_name}: {size} {said('color_layout', self.input_color_layout)} {kind}"
            + (f", normalization {said('normalization', self.normalization)}" if self.normalization else ""),
        ]
        if self.input_rule:
            lines.append(f"          {said('size_rule', self.input_rule)}")
        if self.input_preprocessing:
            lines.append(f"          preprocessing in the model: {self.input_preprocessing}")
        if self.input_size_range:
            (w0, w1), (h0, h1) = self.input_size_range
            lines.append(f"          flexible size: width {w0}..{'inf' if w1 < 0 else w1}, "
                         f"height {h0}..{'inf' if h1 < 0 else h1}")
        if self.input_sizes:
            lines.append("          sizes: " + ", ".join(f"{a}x{b}" for a, b in self.input_sizes))
        shape = ("shape known from results (flexible)" if self.output_shape is None
                 else "shape (" + ", ".join("?" if d < 0 else str(d) for d in self.output_shape) + ")")
        holds = said("output_activation", {"logits": "logits", "softmax": "probabilities (softmax)",
                                           "sigmoid": "probabilities (sigmoid)",
                                           "none": "scores"}.get(self.output_activation, "scores"))
        layout = said("output_layout", self.output_layout or "layout known from results")
        threshold = ("" if self.output_threshold is None else
                     ", " + said("threshold", f"threshold {self.output_threshold:g}"))
        what = {"labels": "class map", "scores": f"{layout} {holds}",
                "binary": f"binary {layout} {holds}{threshold}",
                "multilabel": f"multi-label {layout} {holds}{threshold} (independent classes; "
                              "id 0 = none above the threshold)"}[self.output_kind]
        lines.append(f"  output  {self.output_name}: {self.output_dtype} {what}, {shape}")
        lines.append(f"  preview type: {self.preview_type or '(none)'}")
        if self.labels is None:
            lines.append("  labels: none (class ids are used)")
        else:
            used = self.legend()
            given = " (given at load)" if self.sources.get("labels") == "load" else ""
            lines.append(f"  labels{given}: {len(used)} class{'' if len(used) == 1 else 'es'} over ids "
                         f"0..{len(self.labels) - 1}{', own colours' if self.colors is not None else ', default colours'}")
            lines.append("    " + ", ".join(f"{i}:{name}" for i, name in used))
        for key, value in (("author", self.author), ("license", self.license),
                           ("version", self.version), ("description", self.description)):
            if value:
                lines.append(f"  {key}: {value}")
        if self.assumed:
            lines.append(f"  assumed (not stated by the model or the user): {', '.join(self.assumed)}")
        return "\n".join(lines)


def given_labels(labels, colors, given):
    """(labels, colors) after `load(labels=given)`: the given names replace
    the model's; its colours are kept only when they still match one to one.
    A preset name ("voc", "cityscapes", "cityscapes-bg", "ade20k") gives
    the preset's names and colours."""
    from .presets import PRESETS, is_preset, preset

    if given is None:
        return labels, colors
    if isinstance(given, str):
        if is_preset(given):
            return preset(given)
        raise TypeError(f"labels must be a list of class names or a preset ({', '.join(PRESETS)}), got {given!r}")
    given = list(given)
    if not all(isinstance(n, str) for n in given):
        raise TypeError(f"labels must be a list of class names, got {given!r}")
    return given, colors if colors is not None and len(colors) == len(given) else None


def parse_preview_params(text: str | None, path: Path):
    """(labels, colors) from the preview params JSON, checked."""
    if text is None:
        return None, None
    where = f"{path}: {PREVIEW_PARAMS_KEY}"
    try:
        params = json.loads(text)
    except ValueError as e:
        raise ModelError(f"{where} is not JSON ({e})") from None
    except RecursionError:
        raise ModelError(f"{where} is JSON nested too deeply to read") from None
    if not isinstance(params, dict):
        raise ModelError(f"{where} must be a JSON object, got {type(params).__name__}")
    labels = params.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
            raise ModelError(f"{where}: labels must be a list of strings")
    colors = params.get("colors")
    if colors is not None:
        if not isinstance(colors, list):
            raise ModelError(f"{where}: colors must be a list of hex strings like '#RRGGBB'")
        try:
            colors = parse_colors(colors)
        except ValueError as e:
            raise ModelError(f"{where}: {e}") from None
        if labels is None or len(colors) != len(labels):
            n = "no" if labels is None else len(labels)
            raise ModelError(f"{where}: {len(colors)} colors for {n} labels; they must match one to one")
    return labels, colors
