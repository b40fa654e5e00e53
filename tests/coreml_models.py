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
