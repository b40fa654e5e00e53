"""ONNX Runtime backend: the same Segmenter API on any OS.

What coreseg reads from an ONNX model (document for model authors):

input
    One image tensor: uint8 NHWC ``[1, H, W, 3]`` (fed straight from
    `resize_image`, no conversion), uint8 NCHW ``[1, 3, H, W]``, or float32 /
    float16 NCHW fed ``(pixel / 255 - mean) / std``. H and W may be dynamic:
    the image is then fed at its own size.
output
    The first output: an integer class map (``[h, w]``, ``[1, h, w]`` or
    ``[1, 1, h, w]``; int32, or int64 converted once), or float32/float16
    logits ``[1, C, h, w]`` reduced in place by the native `argmax` kernel.
metadata_props
    ``com.apple.coreml.model.preview.type`` / ``.params``: labels and colours,
    as in Core ML models (``coreseg annotate`` writes them).
    ``coreseg.input.color_layout``: "RGB" (default) or "BGR".
    ``coreseg.input.mean``, ``coreseg.input.std``: JSON lists of 3 numbers on
    the 0..1 scale for float inputs (defaults 0 and 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import kernels
from ..model_info import PREVIEW_PARAMS_KEY, PREVIEW_TYPE_KEY, ModelError, ModelInfo, parse_preview_params
from ..segmenter import Segmenter

COLOR_LAYOUT_KEY = "coreseg.input.color_layout"
MEAN_KEY = "coreseg.input.mean"
STD_KEY = "coreseg.input.std"

_INPUT_TYPES = {"tensor(uint8)": np.uint8, "tensor(float)": np.float32, "tensor(float16)": np.float16}
_LABEL_TYPES = {"tensor(int32)": "int32", "tensor(int64)": "int64"}
_LOGIT_TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16"}


def onnxruntime():
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("running ONNX models needs onnxruntime: pip install 'coreseg[onnx]'") from None
    return ort


def _dim(d):
    return d if isinstance(d, int) and d > 0 else None


def _triple(custom: dict, key: str, default: float, path: Path) -> np.ndarray:
    if key not in custom:
        return np.full(3, default, np.float32)
    try:
        values = json.loads(custom[key])
        arr = np.asarray(values, np.float32)
        assert arr.shape == (3,) and np.isfinite(arr).all()
    except (ValueError, TypeError, AssertionError):
        raise ModelError(f"{path}: metadata {key} must be a JSON list of 3 numbers, got {custom[key]!r}") from None
    if key == STD_KEY and (arr == 0).any():
        raise ModelError(f"{path}: metadata {key} must not contain 0")
    return arr


class OnnxSegmenter(Segmenter):
    """A segmentation model run by ONNX Runtime. Use ``coreseg.load``."""

    backend = "onnx"

    def __init__(self, path, providers=None):
        path = Path(path)
        if not path.is_file():
            raise ModelError(f"{path}: no such file")
        ort = onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"{path}: ONNX Runtime cannot load it ({type(e).__name__}: {e})") from None
        super().__init__(self._read_info(path))

    def _read_info(self, path: Path) -> ModelInfo:
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        desc = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs) or "none"
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].type not in _INPUT_TYPES:
            raise ModelError(f"{path}: not a segmentation model: it needs one image input "
                             f"(uint8 or float, rank 4), and has: {desc}")
        inp = inputs[0]
        shape = inp.shape
        if shape[3] == 3:
            self._layout, h, w = "NHWC", _dim(shape[1]), _dim(shape[2])
        elif shape[1] == 3:
            self._layout, h, w = "NCHW", _dim(shape[2]), _dim(shape[3])
        else:
            raise ModelError(f"{path}: not a segmentation model: its input {inp.name} {shape} has no "
                             "axis of 3 colour channels (NHWC or NCHW)")
        if self._layout == "NHWC" and inp.type != "tensor(uint8)":
            raise ModelError(f"{path}: float inputs must be NCHW, got {inp.name} {inp.type} {shape}")
        self._input_name, self._input_dtype = inp.name, _INPUT_TYPES[inp.type]
        self._batch_dynamic = _dim(shape[0]) is None

        out = outputs[0]
        nontrivial = [d for d in out.shape if d != 1]
        if out.type in _LABEL_TYPES and 2 <= len(out.shape) <= 4 and len(nontrivial) <= 2:
            self._output_kind, out_dtype = "labels", _LABEL_TYPES[out.type]
        elif out.type in _LOGIT_TYPES and len(out.shape) == 4:
            self._output_kind, out_dtype = "logits", _LOGIT_TYPES[out.type]
        else:
            has = ", ".join(f"{o.name} {o.type} {o.shape}" for o in outputs)
            raise ModelError(f"{path}: not a segmentation model: its first output must be an integer class "
                             f"map or float logits [1, C, h, w], and the outputs are: {has}")
        self._output_name = out.name

        meta = self.session.get_modelmeta()
        custom = dict(meta.custom_metadata_map)
        labels, colors = parse_preview_params(custom.get(PREVIEW_PARAMS_KEY), path)
        layout = custom.get(COLOR_LAYOUT_KEY, "RGB").upper()
        if layout not in ("RGB", "BGR"):
            raise ModelError(f"{path}: metadata {COLOR_LAYOUT_KEY} must be RGB or BGR, got {layout!r}")
        self._mean = _triple(custom, MEAN_KEY, 0.0, path)
        self._std = _triple(custom, STD_KEY, 1.0, path)
        if self._output_kind == "logits" and labels is not None and _dim(out.shape[1]) not in (None, len(labels)):
            raise ModelError(f"{path}: {len(labels)} labels for {out.shape[1]} logit channels")
        return ModelInfo(
            path=path, format="onnx", model_type="onnx", spec_version=0,
            preview_type=custom.get(PREVIEW_TYPE_KEY), labels=labels, colors=colors,
            input_name=inp.name, input_size=(w, h) if w and h else None,
            input_color_layout=layout, input_size_range=None if (w and h) else ((1, -1), (1, -1)),
            input_sizes=None, output_name=out.name, output_dtype=out_dtype,
            output_shape=tuple(_dim(d) or -1 for d in out.shape),
            author=meta.producer_name, license="", version=str(meta.version or ""),
            description=meta.description or meta.graph_description or "", user_defined=custom,
        )

    def _preprocess(self, image: np.ndarray) -> np.ndarray:
        size = self.input_size or (image.shape[1], image.shape[0])
        rgb = kernels.resize_image(image, size, self.info.input_color_layout)  # (h, w, 3) uint8
        if self._layout == "NHWC":
            return rgb[None]  # a view: fed as it is
        if self._input_dtype == np.uint8:
            return np.ascontiguousarray(rgb.transpose(2, 0, 1))[None]
        x = (rgb.astype(np.float32) * np.float32(1 / 255) - self._mean) / self._std
        return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=self._input_dtype)[None]

    def _infer(self, feed: np.ndarray) -> np.ndarray:
        return self.session.run([self._output_name], {self._input_name: feed})[0]

    def _postprocess(self, raw: np.ndarray) -> np.ndarray:
        if self._output_kind == "logits":
            return kernels.argmax(raw)  # [1, C, h, w] read in place
        labels = raw.reshape(raw.shape[-2:])
        return labels if labels.dtype == np.int32 else labels.astype(np.int32)

    def predict_batch(self, images):
        """Segment several images in one ONNX Runtime call when the model's
        batch axis is dynamic and the model has a fixed input size."""
        images = list(images)
        if not self._batch_dynamic or self.input_size is None or len(images) < 2:
            return super().predict_batch(images)
        import time

        from .._images import as_image
        from ..segmenter import Segmentation

        arrays = [as_image(im) for im in images]
        t0 = time.perf_counter()
        feed = np.concatenate([self._preprocess(a) for a in arrays])
        t1 = time.perf_counter()
        raw = self._infer(feed)
        t2 = time.perf_counter()
        labels = [self._postprocess(raw[i : i + 1]) for i in range(len(arrays))]
        t3 = time.perf_counter()
        n = len(arrays)
        timings = {"preprocess": (t1 - t0) / n, "inference": (t2 - t1) / n, "postprocess": (t3 - t2) / n}
        return [Segmentation(lab, (a.shape[1], a.shape[0]), self.info.labels, self._palette, dict(timings))
                for lab, a in zip(labels, arrays)]
