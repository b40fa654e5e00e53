"""Small real Core ML models built with coremltools, as real exports are,
for the model-file and backend tests. Nothing here runs a model."""

import logging
import os

logging.getLogger("coremltools").setLevel(logging.ERROR)
os.environ.setdefault("TQDM_DISABLE", "1")  # coremltools' conversion progress bars

import coremltools as ct  # noqa: E402
from coremltools.converters.mil import Builder as mb  # noqa: E402

W, H = 24, 16
PARAMS = "com.apple.coreml.model.preview.params"
TYPE = "com.apple.coreml.model.preview.type"


def _argmax_program(shape):
    @mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=ct.target.macOS13)
    def prog(image):
        am = mb.reduce_argmax(x=image, axis=1, keep_dims=False)
        return mb.squeeze(x=am, axes=[0], name="semanticPredictions")

    return prog


def segmenter(color_layout=ct.colorlayout.RGB, shape=None, user_defined=None, convert_to="mlprogram"):
    """Image in (RGB or BGR), int32 argmax over the channels out."""
    shape = shape or (1, 3, H, W)
    if isinstance(shape, tuple):
        prog = _argmax_program(shape)
    else:  # flexible: the program takes any height and width
        from coremltools.converters.mil.mil import get_new_symbol

        prog = _argmax_program((1, 3, get_new_symbol(), get_new_symbol()))
    kwargs = {"minimum_deployment_target": ct.target.macOS13} if convert_to == "mlprogram" else {}
    model = ct.convert(prog, inputs=[ct.ImageType(name="image", shape=shape, color_layout=color_layout)],
                       convert_to=convert_to, **kwargs)
    model.author = "coreseg tests"
    model.license = "MIT"
    model.version = "2.1"
    model.short_description = "argmax over RGB"
    for k, v in (user_defined or {}).items():
        model.user_defined_metadata[k] = v
    return model


def neural_network_segmenter():
    """The same as a neural network .mlmodel. The converter declares the
    argmax output as float32; declare it int32 [H, W] as Apple's DeepLabV3
    does."""
    model = segmenter(convert_to="neuralnetwork")
    spec = model.get_spec()
    out = spec.description.output[0].type.multiArrayType
    out.dataType = ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT32
    del out.shape[:]
    out.shape.extend([H, W])
    return spec


def logits_model(shape=None, precision="float32", user_defined=None):
    """Image in, float logits [1, 3, h, w] = 2 * pixels out: no class map
    (what SegFormer / DeepLabV3 conversions without an argmax return)."""
    shape = shape or (1, 3, H, W)
    spec_shape = shape if isinstance(shape, tuple) else (1, 3, _sym(), _sym())

    @mb.program(input_specs=[mb.TensorSpec(shape=spec_shape)], opset_version=ct.target.macOS13)
    def prog(image):
        if precision == "float16":  # a float16 output, as fp16 conversions declare
            return mb.cast(x=mb.mul(x=image, y=2.0), dtype="fp16", name="logits")
        return mb.mul(x=image, y=2.0, name="logits")

    model = ct.convert(prog, inputs=[ct.ImageType(name="image", shape=shape)], convert_to="mlprogram",
                       minimum_deployment_target=ct.target.macOS13, compute_precision=ct.precision.FLOAT32)
    for k, v in (user_defined or {}).items():
        model.user_defined_metadata[k] = v
    return model


def _sym():
    from coremltools.converters.mil.mil import get_new_symbol

    return get_new_symbol()


def unit_axes_model(layout):
    """Image in, an int32 class map with unit axes out: layout "1hw", "hw1"
    or "1hw1" (what some exporters and neural networks return)."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, H, W))], opset_version=ct.target.macOS13)
    def prog(image):
        am = mb.reduce_argmax(x=image, axis=1, keep_dims=layout != "hw1")  # (1, 1, h, w) or (1, h, w)
        if layout == "1hw":
            return mb.squeeze(x=am, axes=[0], name="labels")
        if layout == "hw1":
            return mb.expand_dims(x=mb.squeeze(x=am, axes=[0]), axes=[2], name="labels")
        return mb.transpose(x=am, perm=[0, 2, 3, 1], name="labels")

    return ct.convert(prog, inputs=[ct.ImageType(name="image", shape=(1, 3, H, W))],
                      convert_to="mlprogram", minimum_deployment_target=ct.target.macOS13)


def two_output_model():
    """Image in; float logits [1, 3, H, W] first, then the int32 class map:
    the class map is preferred, output="logits" picks the scores."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, H, W))], opset_version=ct.target.macOS13)
    def prog(image):
        logits = mb.mul(x=image, y=2.0, name="logits")
        labels = mb.squeeze(x=mb.reduce_argmax(x=image, axis=1, keep_dims=False), axes=[0], name="labels")
        return logits, labels

    return ct.convert(prog, inputs=[ct.ImageType(name="image", shape=(1, 3, H, W))],
                      convert_to="mlprogram", minimum_deployment_target=ct.target.macOS13)


def gray_model():
    """A grayscale image in, int32 (pixel > 127) out."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 1, H, W))], opset_version=ct.target.macOS13)
    def prog(image):
        fg = mb.cast(x=mb.greater(x=image, y=127.0), dtype="int32")
        return mb.squeeze(x=fg, axes=[0, 1], name="labels")

    return ct.convert(prog, inputs=[ct.ImageType(name="image", shape=(1, 1, H, W),
                                                 color_layout=ct.colorlayout.GRAYSCALE)],
                      convert_to="mlprogram", minimum_deployment_target=ct.target.macOS13)


def tensor_input_model():
    """A float tensor in, int32 map out: no image input."""
    return ct.convert(_argmax_program((1, 3, H, W)), inputs=[ct.TensorType(name="x", shape=(1, 3, H, W))],
                      convert_to="mlprogram", minimum_deployment_target=ct.target.macOS13)


def classifier():
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, H, W))], opset_version=ct.target.macOS13)
    def prog(image):
        return mb.reduce_mean(x=image, axes=[2, 3], keep_dims=False, name="scores")

    return ct.convert(prog, inputs=[ct.ImageType(name="image", shape=(1, 3, H, W))],
                      classifier_config=ct.ClassifierConfig(["cat", "dog", "bird"]),
                      convert_to="mlprogram", minimum_deployment_target=ct.target.macOS13)


def save_spec(spec, path):
    ct.utils.save_spec(spec, str(path))


FLEX_RANGE = ct.Shape(shape=(1, 3, ct.RangeDim(8, 64, default=H), ct.RangeDim(8, 128, default=W)))
FLEX_ENUM = ct.EnumeratedShapes(shapes=[(1, 3, H, W), (1, 3, 32, 48)], default=(1, 3, H, W))
BGR = ct.colorlayout.BGR


# ---- what made the scores: softmax / sigmoid at the end of the network -----------

SCALE, BIAS = 1 / 255, -0.5  # the Fritz models' own preprocessing (x / 255 - 0.5)
SHARPNESS = 4.0  # logits = SHARPNESS * (x / 255 - 0.5): soft, tie-free probabilities


def _neural_network(prog, scale=SCALE, bias=BIAS, color_layout=ct.colorlayout.RGB):
    model = ct.convert(prog, inputs=[ct.ImageType(name="image", shape=(1, 3, H, W), scale=scale, bias=[bias] * 3,
                                                  color_layout=color_layout)],
                       convert_to="neuralnetwork")
    return model.get_spec()


def _declare(spec, shape, data_type="FLOAT32"):
    """The output's declared shape and type (the converter leaves a
    neural network's output shape undeclared)."""
    out = spec.description.output[0].type.multiArrayType
    out.dataType = getattr(ct.proto.FeatureTypes_pb2.ArrayFeatureType, data_type)
    del out.shape[:]
    out.shape.extend(shape)
    return spec


def nn_softmax_model():
    """A neural network .mlmodel as the Fritz models are: image in, scaled
    by its own preprocessing (x / 255 - 0.5), a softmax over 3 classes as
    its last layer, probabilities DOUBLE [1, 3, H, W] out."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, H, W))])
    def prog(image):
        return mb.softmax(x=mb.mul(x=image, y=SHARPNESS), axis=1, name="probs")

    return _declare(_neural_network(prog), [1, 3, H, W], "DOUBLE")


def nn_sigmoid_model():
    """A neural network ending in a sigmoid over one channel, reshaped to
    [1, H, W] after it (a pass-through layer): a binary model."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, H, W))])
    def prog(image):
        p = mb.sigmoid(x=mb.mul(x=mb.reduce_mean(x=image, axes=[1], keep_dims=True), y=SHARPNESS))
        return mb.reshape(x=p, shape=[1, H, W], name="foreground")

    return _declare(_neural_network(prog), [1, H, W])


def nn_logits_model():
    """A neural network whose last layer is no activation: logits."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, H, W))])
    def prog(image):
        return mb.mul(x=image, y=SHARPNESS, name="logits")

    return _declare(_neural_network(prog), [1, 3, H, W])


def nn_sigmoid_channels_model():
    """A neural network ending in a sigmoid over 3 channels: multi-label."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, H, W))])
    def prog(image):
        return mb.sigmoid(x=mb.mul(x=image, y=SHARPNESS), name="parts")

    return _declare(_neural_network(prog), [1, 3, H, W])


def mlprogram_softmax_model(nhwc=False):
    """An ML program ending in a softmax over 3 classes (computed in float16,
    then cast to float32 by the converter); `nhwc` transposes it to
    [1, H, W, 3] after the softmax."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, H, W))], opset_version=ct.target.macOS13)
    def prog(image):
        p = mb.softmax(x=mb.mul(x=mb.sub(x=image, y=0.5), y=SHARPNESS), axis=1,
                       name="probs" if not nhwc else "softmax_nchw")
        return mb.transpose(x=p, perm=[0, 2, 3, 1], name="probs") if nhwc else p

    return ct.convert(prog, inputs=[ct.ImageType(name="image", shape=(1, 3, H, W), scale=SCALE)],
                      convert_to="mlprogram", minimum_deployment_target=ct.target.macOS13)


def pipeline_of(spec):
    """A pipeline holding one model: its output is produced by that model."""
    pipeline = ct.proto.Model_pb2.Model()
    pipeline.specificationVersion = spec.specificationVersion
    pipeline.description.CopyFrom(spec.description)
    pipeline.pipeline.models.add().CopyFrom(spec)
    return pipeline


# ---- a class map as a grayscale image (exports made for Vision) ------------------


def class_image_model(float16=False, shape=None):
    """Image in, the argmax over its channels out as a grayscale image
    (ct.ImageType GRAYSCALE: OneComponent8 pixels; GRAYSCALE_FLOAT16:
    OneComponent16Half) whose pixel values are the class ids."""
    shape = shape or (1, 3, H, W)
    program_shape = shape if isinstance(shape, tuple) else (1, 3, _sym(), _sym())

    @mb.program(input_specs=[mb.TensorSpec(shape=program_shape)], opset_version=ct.target.macOS13)
    def prog(image):
        ids = mb.reduce_argmax(x=image, axis=1, keep_dims=True)  # (1, 1, h, w)
        return mb.cast(x=ids, dtype="fp16" if float16 else "fp32", name="classes")

    layout = ct.colorlayout.GRAYSCALE_FLOAT16 if float16 else ct.colorlayout.GRAYSCALE
    # ct.convert takes output types for programs it converts from PyTorch or
    # TensorFlow; a MIL program states them on its main function.
    prog.functions["main"].set_output_types([ct.ImageType(name="classes", color_layout=layout)])
    return ct.convert(prog, inputs=[ct.ImageType(name="image", shape=shape)], convert_to="mlprogram",
                      minimum_deployment_target=ct.target.macOS13)
