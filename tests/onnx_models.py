"""Tiny ONNX segmentation models built with onnx.helper, whose correct output
a test can compute in numpy."""

import json


import onnx
from onnx import TensorProto, helper

H, W = 12, 20
PARAMS = "com.apple.coreml.model.preview.params"


def _model(nodes, inputs, outputs, metadata=None, opset=17, initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    for k, v in (metadata or {}).items():
        e = model.metadata_props.add()
        e.key, e.value = k, v
    onnx.checker.check_model(model)
    return model


def argmax_nhwc_uint8(metadata=None):
    """uint8 [1, H, W, 3] -> int32 [1, H, W]: the brightest channel."""
    nodes = [helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("ArgMax", ["f"], ["i"], axis=3, keepdims=0),
             helper.make_node("Cast", ["i"], ["labels"], to=TensorProto.INT32)]
    return _model(nodes, [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, H, W, 3])],
                  [helper.make_tensor_value_info("labels", TensorProto.INT32, [1, H, W])], metadata)


def argmax_nchw_uint8_int64():
    """uint8 [1, 3, H, W] -> int64 [1, 1, H, W]."""
    nodes = [helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("ArgMax", ["f"], ["labels"], axis=1, keepdims=1)]
    return _model(nodes, [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 3, H, W])],
                  [helper.make_tensor_value_info("labels", TensorProto.INT64, [1, 1, H, W])])


def logits_identity(dtype=TensorProto.FLOAT, out_dtype=None, dynamic=False, metadata=None):
    """float NCHW in, the same values out as logits [1, 3, h, w]."""
    shape = ["N", 3, "h", "w"] if dynamic else [1, 3, H, W]
    out_dtype = out_dtype or dtype
    node = (helper.make_node("Identity", ["image"], ["logits"]) if out_dtype == dtype
            else helper.make_node("Cast", ["image"], ["logits"], to=out_dtype))
    return _model([node], [helper.make_tensor_value_info("image", dtype, shape)],
                  [helper.make_tensor_value_info("logits", out_dtype, shape)], metadata)


def two_inputs():
    nodes = [helper.make_node("Add", ["a", "b"], ["c"])]
    t = [1, 3, H, W]
    return _model(nodes, [helper.make_tensor_value_info("a", TensorProto.FLOAT, t),
                          helper.make_tensor_value_info("b", TensorProto.FLOAT, t)],
                  [helper.make_tensor_value_info("c", TensorProto.FLOAT, t)])


def five_channel_input():
    nodes = [helper.make_node("Identity", ["x"], ["y"])]
    t = [1, 5, H, W]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, t)],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, t)])


def vector_output():
    nodes = [helper.make_node("ReduceMean", ["image"], ["scores"], axes=[2, 3], keepdims=0)]
    return _model(nodes, [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, H, W])],
                  [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])], opset=13)


def labels_meta(labels, colors=None):
    params = {"labels": labels}
    if colors:
        params["colors"] = colors
    return {"com.apple.coreml.model.preview.type": "imageSegmenter", PARAMS: json.dumps(params)}


def save(model, path):
    onnx.save(model, str(path))
    return path




def _float_image(shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info("image", dtype, shape)


def identity_nhwc(metadata=None, dtype=TensorProto.FLOAT, shape=(1, H, W, 3)):
    """float NHWC in, the same values out as NHWC scores [1, h, w, 3]."""
    return _model([helper.make_node("Identity", ["image"], ["scores"])], [_float_image(list(shape), dtype)],
                  [helper.make_tensor_value_info("scores", dtype, list(shape))], metadata)


def labels_with_unit_axes():
    """uint8 NHWC in -> int64 [1, H, W, 1] class map (ArgMax keepdims)."""
    nodes = [helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
             helper.make_node("ArgMax", ["f"], ["labels"], axis=3, keepdims=1)]
    return _model(nodes, [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, H, W, 3])],
                  [helper.make_tensor_value_info("labels", TensorProto.INT64, [1, H, W, 1])])


def scores_and_labels():
    """float NCHW in -> two outputs: scores [1, 3, H, W] and an int32 map."""
    nodes = [helper.make_node("Identity", ["image"], ["scores"]),
             helper.make_node("ArgMax", ["image"], ["i"], axis=1, keepdims=0),
             helper.make_node("Cast", ["i"], ["labels"], to=TensorProto.INT32)]
    return _model(nodes, [_float_image([1, 3, H, W])],
                  [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3, H, W]),
                   helper.make_tensor_value_info("labels", TensorProto.INT32, [1, H, W])])


def quarter_resolution_logits(metadata=None):
    """float NCHW [1, 3, 16, 32] -> logits at a quarter of the size (4x4
    average pooling) [1, 3, 4, 8]."""
    node = helper.make_node("AveragePool", ["image"], ["logits"], kernel_shape=[4, 4], strides=[4, 4])
    return _model([node], [_float_image([1, 3, 16, 32])],
                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 3, 4, 8])], metadata)


def binary_channel(activation_node=None, metadata=None):
    """float NCHW in -> one channel [1, 1, H, W]: the red channel minus 0.5,
    through a Sigmoid node when activation_node is "Sigmoid"."""
    half = helper.make_tensor("half", TensorProto.FLOAT, [], [0.5])
    nodes = [helper.make_node("Slice", ["image", "s0", "s1", "ax"], ["red"]),
             helper.make_node("Sub", ["red", "half"], ["centred"])]
    inits = [helper.make_tensor("s0", TensorProto.INT64, [1], [0]), helper.make_tensor("s1", TensorProto.INT64, [1], [1]),
             helper.make_tensor("ax", TensorProto.INT64, [1], [1]), half]
    last = "centred"
    if activation_node:
        nodes.append(helper.make_node(activation_node, ["centred"], ["activated"]))
        last = "activated"
    nodes.append(helper.make_node("Identity", [last], ["mask"]))
    return _model(nodes, [_float_image([1, 3, H, W])],
                  [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, H, W])], metadata,
                  initializers=inits)


def declared(input_shape, output_shape, out_dtype=TensorProto.FLOAT):
    """A model whose only interest is its declared shapes (for load errors)."""
    return _model([helper.make_node("Identity", ["image"], ["out"])], [_float_image(list(input_shape))],
                  [helper.make_tensor_value_info("out", out_dtype, list(output_shape))])


def multilabel_sigmoid(metadata=None):
    """float NCHW [1, 3, H, W] -> three independent sigmoid channels
    sigmoid(8 * (x - 0.5)), one per colour: a pixel may be in several
    classes (white: all three) or in none (black)."""
    inits = [helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
             helper.make_tensor("gain", TensorProto.FLOAT, [], [8.0])]
    nodes = [helper.make_node("Sub", ["image", "half"], ["c"]), helper.make_node("Mul", ["c", "gain"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["probs"])]
    return _model(nodes, [_float_image([1, 3, H, W])],
                  [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 3, H, W])], metadata,
                  initializers=inits)


def stride32_unknown_output():
    """A text detector's shape: float [N, 3, H, W] in with H and W that must
    be multiples of 32 (a 32x pooled copy is upsampled and multiplied back
    in: other sizes fail to broadcast in ONNX Runtime), one sigmoid channel
    out whose shape the file leaves fully unknown [?, ?, ?, ?]. The
    foreground is where red > 0.5."""
    inits = [helper.make_tensor("s0", TensorProto.INT64, [1], [0]), helper.make_tensor("s1", TensorProto.INT64, [1], [1]),
             helper.make_tensor("ax", TensorProto.INT64, [1], [1]),
             helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
             helper.make_tensor("gain", TensorProto.FLOAT, [], [20.0]),
             helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
             helper.make_tensor("scales", TensorProto.FLOAT, [4], [1, 1, 32, 32])]
    nodes = [helper.make_node("Slice", ["image", "s0", "s1", "ax"], ["red"]),
             helper.make_node("AveragePool", ["red"], ["pooled"], kernel_shape=[32, 32], strides=[32, 32]),
             helper.make_node("Resize", ["pooled", "", "scales"], ["up"], mode="nearest"),
             helper.make_node("Mul", ["up", "zero"], ["nothing"]),  # 0, but only when the shapes match
             helper.make_node("Add", ["red", "nothing"], ["same"]),
             helper.make_node("Sub", ["same", "half"], ["c"]), helper.make_node("Mul", ["c", "gain"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["mask"])]
    return _model(nodes, [_float_image(["N", 3, "H", "W"])],
                  [helper.make_tensor_value_info("mask", TensorProto.FLOAT, [None, None, None, None])], None,
                  initializers=inits)
