"""What a Core ML model spec's layers say, beyond its feature descriptions
(coreml_file reads those): which activation made an output, and what a
NeuralNetwork does to its image input before the network. Both are read
from the protobuf spec (coremltools' Model_pb2 messages, passed in), so a
compiled .mlmodelc, which has none, cannot tell them.

Activation
    The NeuralNetwork layer or ML program operation that produces the
    output: a softmax ("softmax") or a sigmoid ("sigmoid"), followed back
    through layers that pass values through (reshapes, transposes,
    squeezes, resizes, casts); in a pipeline, the model that produces the
    output. None when the layers do not say: then the model contract
    assumes logits, and says so. Probabilities are never normalised twice.
Preprocessing
    NeuralNetworkPreprocessing, which Core ML applies itself
    (NeuralNetwork.proto: Y = channelScale * X + the bias of each channel,
    in the network's channel order), as a short text for ``coreseg info``.
"""

from __future__ import annotations

__all__ = ["output_activation", "image_preprocessing"]

# Which activation made an output, read from the spec: the layer (or ML
# program operation) that produces it, followed back through those that
# pass values through unchanged as far as that is concerned (reshapes,
# transposes, resizes, casts), at most _MAX_HOPS of them.
_NN_ACTIVATIONS = {"softmax": "softmax", "softmaxND": "softmax"}  # + ActivationParams.sigmoid
_NN_PASS_THROUGH = {"reshape", "reshapeStatic", "reshapeDynamic", "reshapeLike", "rankPreservingReshape", "flatten",
                    "flattenTo2D", "permute", "transpose", "squeeze", "expandDims", "upsample", "resizeBilinear",
                    "crop", "copy"}  # + ActivationParams.linear with alpha 1, beta 0
_MIL_ACTIVATIONS = {"softmax": "softmax", "sigmoid": "sigmoid"}
_MIL_PASS_THROUGH = {"reshape", "transpose", "squeeze", "expand_dims", "identity", "cast", "upsample_bilinear",
                     "upsample_nearest_neighbor", "resize_bilinear", "resize_nearest_neighbor", "resize", "crop"}
_NN_TYPES = ("neuralNetwork", "neuralNetworkClassifier", "neuralNetworkRegressor")
_PIPELINE_TYPES = ("pipeline", "pipelineClassifier", "pipelineRegressor")
_MAX_HOPS = 16


def _nn_activation(layers, name: str) -> str | None:
    """The activation a NeuralNetwork's layers end output `name` in."""
    before = len(layers)
    for _ in range(_MAX_HOPS):
        # The last layer before `before` that writes `name` (layers may
        # write a blob in place).
        i = next((i for i in range(before - 1, -1, -1) if name in layers[i].output), None)
        if i is None:
            return None
        layer = layers[i]
        kind = layer.WhichOneof("layer")
        if kind in _NN_ACTIVATIONS:
            return _NN_ACTIVATIONS[kind]
        if kind == "activation":
            which = layer.activation.WhichOneof("NonlinearityType")
            if which == "sigmoid":
                return "sigmoid"
            linear = layer.activation.linear
            if which != "linear" or linear.alpha != 1 or linear.beta != 0:
                return None
        elif kind not in _NN_PASS_THROUGH:
            return None
        if not layer.input:
            return None
        name, before = layer.input[0], i
    return None


def _mil_activation(program, name: str) -> str | None:
    """The activation an ML program's main function ends output `name` in."""
    functions = program.functions
    function = functions["main"] if "main" in functions else next(iter(functions.values()), None)
    if function is None:
        return None
    block = function.block_specializations.get(function.opset)
    if block is None:
        return None
    producers = {o.name: op for op in block.operations for o in op.outputs}
    for _ in range(_MAX_HOPS):
        op = producers.get(name)
        if op is None:
            return None
        if op.type in _MIL_ACTIVATIONS:
            return _MIL_ACTIVATIONS[op.type]
        if op.type not in _MIL_PASS_THROUGH or "x" not in op.inputs:
            return None
        arguments = op.inputs["x"].arguments
        if len(arguments) != 1 or arguments[0].WhichOneof("binding") != "name":
            return None
        name = arguments[0].name
    return None


def _pipeline_models(spec, kind: str):
    """The models of a pipeline (a Pipeline, or the one a classifier or
    regressor pipeline holds)."""
    container = getattr(spec, kind)
    return container.models if kind == "pipeline" else container.pipeline.models


def output_activation(spec, name: str, depth: int = 0) -> str | None:
    """What activation made output `name` of a model spec, or None when its
    layers do not say (or the model has none to read)."""
    kind = spec.WhichOneof("Type")
    if kind in _NN_TYPES:
        return _nn_activation(list(getattr(spec, kind).layers), name)
    if kind == "mlProgram":
        return _mil_activation(spec.mlProgram, name)
    if kind in _PIPELINE_TYPES and depth < _MAX_HOPS:
        models = _pipeline_models(spec, kind)
        producer = next((m for m in reversed(models) if any(o.name == name for o in m.description.output)), None)
        return None if producer is None else output_activation(producer, name, depth + 1)
    return None


def _number(v: float) -> str:
    text = f"{v:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("0", "-0") or v == 0 else f"{v:.4g}"


def _scaler_text(scaler, color_layout: str) -> str:
    """NeuralNetworkImageScaler as Core ML applies it (NeuralNetwork.proto:
    Y = channelScale * X + the bias of each channel, in the network's
    channel order)."""
    text = "x" if scaler.channelScale == 1 else f"x * {_number(scaler.channelScale)}"
    if color_layout in ("GRAY", "GRAY16F"):
        biases = [scaler.grayBias]
    elif color_layout == "BGR":
        biases = [scaler.blueBias, scaler.greenBias, scaler.redBias]
    else:
        biases = [scaler.redBias, scaler.greenBias, scaler.blueBias]
    if any(b != 0 for b in biases):
        text += f" + {_number(biases[0])}" if len(biases) == 1 else f" + ({', '.join(map(_number, biases))})"
    return text


def image_preprocessing(spec, input_name: str, color_layout: str, depth: int = 0) -> str:
    """What a NeuralNetwork does to image input `input_name` (colour layout
    "RGB", "BGR", "GRAY", ...) before its first layer
    (NeuralNetworkPreprocessing: a scaler or a mean image), with the
    channel order Core ML hands it: e.g. "x * 0.003922 + (-0.5, -0.5,
    -0.5)", "BGR: x * 0.017 + (-1.8, -2, -2.1)" (biases in the order
    named); "" when it does nothing to the pixels of an RGB or gray input,
    and for ML programs (which scale inside the program). In a pipeline,
    the first model that takes the image input."""
    kind = spec.WhichOneof("Type")
    if kind in _PIPELINE_TYPES and depth < _MAX_HOPS:
        models = _pipeline_models(spec, kind)
        first = next((m for m in models if any(i.name == input_name for i in m.description.input)), None)
        return "" if first is None else image_preprocessing(first, input_name, color_layout, depth + 1)
    if kind not in _NN_TYPES:
        return ""  # an ML program scales its input with operations of its own
    steps = []
    for p in getattr(spec, kind).preprocessing:
        # An empty feature name means the network's one input.
        if p.featureName not in ("", input_name):
            continue
        which = p.WhichOneof("preprocessor")
        if which == "scaler":
            steps.append(_scaler_text(p.scaler, color_layout))
        elif which == "meanImage":
            steps.append("x - the model's mean image")
    steps = [s for s in steps if s != "x"]
    bgr = color_layout == "BGR"
    if not steps:
        return "BGR: x" if bgr else ""
    return ("BGR: " if bgr else "") + ", then ".join(steps)
