"""The model contract: one set of rules, for every backend, for what a
segmentation model takes and returns and how coreseg reads it.

A backend describes its model's tensors (`Tensor`); `input_contract` and
`output_contract` turn them, with the model's metadata and what the user
said at `load`, into an `InputContract` and an `OutputContract`, or refuse
with a `ModelError` that says what the model has and what would make it
work. Nothing here guesses silently: a layout is taken from the shapes only
when the shapes allow one reading.

Inputs
    uint8, float16 or float32; NHWC or NCHW; RGB or BGR; fixed or dynamic
    height and width. Float inputs are fed ``(pixel / 255 - mean) / std``.
Outputs
    an integer class map with any unit axes (``(h, w)``, ``(1, h, w)``,
    ``(1, h, w, 1)``, ...); float scores NCHW ``[1, C, h, w]`` or NHWC
    ``[1, h, w, C]``; or a single channel, a binary (background,
    foreground) model.

Metadata keys (ONNX ``metadata_props``, Core ML user-defined metadata)::

    coreseg.input.color_layout    "RGB" | "BGR"
    coreseg.input.normalization   "unit" | "symmetric" | "imagenet"
    coreseg.input.mean / .std     JSON lists of 3 numbers on the 0..1 scale
    coreseg.output.activation     "logits" | "softmax" | "sigmoid" | "none"
    classes                       "a,b,c" (Hugging Face exporters' labels)
"""

from __future__ import annotations

from .contract_inputs import InputContract, SizeRule, input_contract, normalization, parse_size, size_rule
from .contract_outputs import KINDS, OutputContract, class_map, labels_for_output, output_contract, segmentation_kind
from .metadata_keys import (
    ACTIVATION_KEY,
    ACTIVATIONS,
    BINARY_NAMES,
    CLASSES_KEY,
    COLOR_LAYOUT_KEY,
    MEAN_KEY,
    NORMALIZATION_KEY,
    NORMALIZATIONS,
    STD_KEY,
    labels_from_metadata,
)
from .tensor import Tensor

__all__ = [
    "NORMALIZATIONS",
    "ACTIVATIONS",
    "BINARY_NAMES",
    "COLOR_LAYOUT_KEY",
    "NORMALIZATION_KEY",
    "MEAN_KEY",
    "STD_KEY",
    "ACTIVATION_KEY",
    "CLASSES_KEY",
    "Tensor",
    "InputContract",
    "SizeRule",
    "size_rule",
    "parse_size",
    "OutputContract",
    "input_contract",
    "output_contract",
    "normalization",
    "class_map",
    "segmentation_kind",
    "labels_for_output",
    "labels_from_metadata",
    "KINDS",
]
