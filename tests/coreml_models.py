"""Small real Core ML models built with coremltools, for the model-file
tests. Nothing here runs a model: they are specs to read and annotate."""

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


def logits_model():
    """Image in, float logits [1, 3, H, W] out: no class map."""
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, H, W))], opset_version=ct.target.macOS13)
    def prog(image):
        return mb.mul(x=image, y=2.0, name="logits")

    return ct.convert(prog, inputs=[ct.ImageType(name="image", shape=(1, 3, H, W))],
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
