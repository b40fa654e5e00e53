"""ONNX model files on any OS: their tensors, metadata and labels, read with
the ``onnx`` package's protobuf classes (``coreseg[onnx]``; _onnx_proto),
without running anything.

`read` gives what the file declares; `describe` applies the model contract
(coreseg.contract) to it. The ONNX Runtime backend runs what these say.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .contract import (
    InputContract,
    OutputContract,
    Tensor,
    input_contract,
    labels_for_output,
    labels_from_metadata,
    output_contract,
)
from ._onnx_proto import DTYPE_NAMES, onnx_ml_pb2
from .info import PREVIEW_PARAMS_KEY, PREVIEW_TYPE_KEY, ModelError, ModelInfo, given_labels, parse_preview_params

__all__ = ["OnnxFile", "read", "describe"]

# Ops that pass values through unchanged, as far as which activation made
# them: the graph is followed back through them to find a Sigmoid/Softmax.
_PASS_THROUGH = {"Transpose", "Reshape", "Identity", "Squeeze", "Unsqueeze", "Flatten", "Cast", "Resize",
                 "Upsample", "Slice", "Concat"}
_ACTIVATION_OPS = {"Sigmoid": "sigmoid", "Softmax": "softmax", "LogSoftmax": "logits"}


@dataclass(frozen=True)
class OnnxFile:
    """What an ONNX file declares: inputs and outputs (initialisers left
    out), metadata_props, and the producer's name and version."""

    path: Path
    inputs: list
    outputs: list
    metadata: dict
    producer: str
    version: str
    description: str


def _tensor(value_info, activation=None) -> Tensor:
    t = value_info.type.tensor_type
    dtype = DTYPE_NAMES.get(t.elem_type, f"onnx type {t.elem_type}")
    shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.shape.dim)
    return Tensor(value_info.name, dtype, shape, activation)


def _activation(graph, name: str) -> str | None:
    producers = {o: n for n in graph.node for o in n.output}
    for _ in range(16):
        node = producers.get(name)
        if node is None:
            return None
        if node.op_type in _ACTIVATION_OPS:
            return _ACTIVATION_OPS[node.op_type]
        if node.op_type not in _PASS_THROUGH or not node.input:
            return None
        name = node.input[0]
    return None


def read(path) -> OnnxFile:
    """Parse an ONNX file's graph description (weights are not loaded from
    external data files). Reads with onnx's generated protobuf classes,
    without importing onnx itself (_onnx_proto says why)."""
    model_proto = onnx_ml_pb2().ModelProto
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such file")
    try:
        model = model_proto.FromString(path.read_bytes())
    except OSError as e:
        raise ModelError(f"{path}: cannot be read ({e.strerror or e})") from None
    except Exception as e:  # protobuf's DecodeError and friends
        raise ModelError(f"{path}: not a readable ONNX model ({type(e).__name__}: {e})") from None
    graph = model.graph
    weights = {i.name for i in graph.initializer}
    inputs = [_tensor(v) for v in graph.input if v.name not in weights]
    outputs = [_tensor(v, _activation(graph, v.name)) for v in graph.output]
    # Some exporters write model_version = 2^63 - 1 for "unset".
    version = "" if model.model_version in (0, 2**63 - 1) else str(model.model_version)
    return OnnxFile(path, inputs, outputs, {p.key: p.value for p in model.metadata_props},
                    model.producer_name, version, model.doc_string or graph.doc_string or "")


def describe(file: OnnxFile, *, labels=None, layout=None, mean=None, std=None, color_layout=None, output=None,
             output_layout=None, output_activation=None, threshold=None, multiple=None, max_side=None,
             output_shape=None) -> tuple[ModelInfo, InputContract, OutputContract]:
    """The ModelInfo and the input/output contracts of an ONNX model, with
    what the user said at `load` (see coreseg.load). `output_shape` is the
    shape of a result, for an output whose shape the file leaves open."""
    path, meta = file.path, file.metadata
    if len(file.inputs) != 1:
        has = ", ".join(t.describe() for t in file.inputs) or "none"
        raise ModelError(f"{path}: not a segmentation model: it needs exactly one image input, and has: {has}")
    inp = input_contract(file.inputs[0], meta, str(path), layout=layout, mean=mean, std=std,
                         color_layout=color_layout, multiple=multiple, max_side=max_side)
    model_labels, colors = parse_preview_params(meta.get(PREVIEW_PARAMS_KEY), path)
    if model_labels is None:
        model_labels = labels_from_metadata(meta, str(path))
    given = labels
    labels, colors = given_labels(model_labels, colors, labels)
    outputs = file.outputs
    if output_shape is not None:  # the named output, as a result showed it
        outputs = [Tensor(t.name, t.dtype, tuple(output_shape), t.activation) if t.name == output else t
                   for t in outputs]
    out = output_contract(outputs, meta, str(path), input_size=inp.size,
                          num_labels=None if labels is None else len(labels), output=output,
                          output_layout=output_layout, output_activation=output_activation, threshold=threshold,
                          input_layout=inp.layout if output_shape is not None else None)
    labels, colors = labels_for_output(labels, colors, out)
    tensor = next(t for t in file.outputs if t.name == out.name)
    sources = dict(inp.sources)
    if given is not None:
        sources["labels"] = "load"
    sources.update(out.info_sources())
    info = ModelInfo(
        path=path, format="onnx", model_type="onnx", spec_version=0,
        preview_type=meta.get(PREVIEW_TYPE_KEY), labels=labels, colors=colors,
        input_name=inp.name, input_size=inp.size, input_color_layout=inp.color_layout,
        input_size_range=None if inp.size else ((1, -1), (1, -1)), input_sizes=None,
        output_name=out.name, output_dtype=tensor.dtype,
        output_shape=None if tensor.shape is None else tuple(-1 if d is None else d for d in tensor.shape),
        author=file.producer, license="", version=file.version, description=file.description,
        user_defined=dict(meta), input_dtype=inp.dtype.name, input_layout=inp.layout,
        normalization=inp.normalization, output_kind=out.kind, output_layout=out.layout,
        output_activation=out.activation,
        output_threshold=out.threshold if out.kind in ("binary", "multilabel") else None,
        input_rule="" if inp.rule is None else inp.rule.describe(), sources=sources,
    )
    return info, inp, out
