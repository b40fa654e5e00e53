"""ONNX Runtime backend: the same Segmenter API on any OS.

What the model file says, and how it is read, is coreseg.modelfiles.onnx_file and the
model contract (coreseg.contract); this module only runs it.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import warnings
from pathlib import Path

import numpy as np

from ...modelfiles import onnx_file
from ...kernels.threads import threads_per_worker, usable_cores
from ...files.images import as_image
from ...results.geometry import Placement
from ...modelfiles.contract import SizeRule, parse_size
from ...modelfiles.metadata_keys import CROP_KEY, SIZE_KEY
from ...modelfiles.info import AssumptionWarning, ModelError
from ...modelfiles.settings import arg
from ..segmenter import Segmenter, normalization_warning


def onnxruntime():
    try:
        import onnxruntime as ort
    except ImportError:
        raise ImportError("running ONNX models needs onnxruntime: pip install 'coreseg[onnx]'") from None
    return ort


def session_options(ort, threads=None):
    """coreseg's ONNX Runtime session options, set deliberately:

    - intra-op threads: `threads`, else every usable core, always given
      explicitly (left at 0, ONNX Runtime pins its workers to cores, and a
      caller's thread that lands on a pinned core halves inference speed);
    - no spinning: ONNX Runtime's workers otherwise spin after each run,
      taking the cores coreseg's kernels need right after it (a composite
      after a run took 1.7x as long);
    - one inter-op thread (these graphs are sequential); no log but fatal
      errors (the others reach the caller as exceptions, once).

    `load(..., session_options=...)` replaces all of this.
    """
    options = ort.SessionOptions()
    options.log_severity_level = 4  # fatal only: errors reach the caller as exceptions, once
    options.intra_op_num_threads = threads if threads is not None else usable_cores()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


class OnnxSegmenter(Segmenter):
    """A segmentation model run by ONNX Runtime. Use ``coreseg.load``.

    Attributes
    ----------
    input : coreseg.contract.InputContract
        How images are fed.
    output : coreseg.contract.OutputContract
        Which output is read, and how.
    """

    backend = "onnx"

    def __init__(self, path, providers=None, crop=None, labels=None, size=None, threads=None,
                 session_options=None, **contract):
        path = Path(path)
        self._file = onnx_file.read(path)
        self._given = dict(labels=labels, **contract)
        self._resolving = threading.Lock()
        info, self.input, self.output = onnx_file.describe(self._file, **self._given)
        if size is None and SIZE_KEY in info.user_defined:  # stated by the model (annotate --set)
            size = parse_size(info.user_defined[SIZE_KEY])
        if size == "image":  # each image's own size
            if info.input_size is not None:
                raise ValueError(f"{arg('size', 'image')}, but {path.name} takes "
                                 f"{info.input_size[0]}x{info.input_size[1]} images only")
            self.input = dataclasses.replace(self.input, rule=SizeRule(1, None))
            info = dataclasses.replace(info, input_rule=self.input.rule.describe(),
                                       sources={**info.sources, "size_rule": "load"})
            size = None
        if size is not None and info.input_size is not None and tuple(size) != info.input_size:
            raise ValueError(f"{arg('size', tuple(size))}, but {path.name} takes "
                             f"{info.input_size[0]}x{info.input_size[1]} images only")
        if size is not None and info.input_size is None:
            info = dataclasses.replace(info, input_rule=f"input size: {size[0]}x{size[1]}",
                                       sources={**info.sources, "size_rule": "load"})
        self._size = tuple(size) if size is not None else None
        self._path, self._providers, self._threads = path, providers, threads
        self._user_options = session_options
        self.session = self._open_session(threads)
        super().__init__(info, crop or info.user_defined.get(CROP_KEY) or "fill")
        # Input pixels per output pixel, from the declared shapes, once.
        self._output_stride = self.output.stride(info.output_shape, info.input_size)
        if info.sources.get("normalization") == "assumed":
            warnings.warn(normalization_warning(info), AssumptionWarning, stacklevel=3)

    def _open_session(self, threads):
        ort = onnxruntime()
        options = self._user_options if self._user_options is not None else session_options(ort, threads)
        try:
            return ort.InferenceSession(str(self._path), options,
                                        providers=self._providers or ["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"{self._path}: ONNX Runtime cannot load it ({type(e).__name__}: {e})") from None

    def _stream_view(self, workers: int):
        """This model for `workers` frames in flight: unless the caller
        chose `threads`, a session sharing the cores among the frames
        (each frame's inference on fewer threads, the frames side by side,
        is faster than one frame at a time on every core). Made once per
        thread count."""
        if self._threads is not None or self._user_options is not None or workers < 2:
            return self
        per = threads_per_worker(workers)
        views = self.__dict__.setdefault("_stream_views", {})
        if per not in views:
            view = copy.copy(self)
            view.session, view._threads = self._open_session(per), per
            views[per] = view
        return views[per]

    def _canvas_size(self, img: np.ndarray) -> tuple[int, int]:
        return self.info.input_size or self._size or self.input.rule.size_for((img.shape[1], img.shape[0]))

    def _stride(self) -> tuple[int, int]:
        return self._output_stride

    def _preprocess(self, image: np.ndarray, placement: Placement) -> np.ndarray:
        return self.input.feed(placement.input_image(image, self.input.color_layout))

    def _infer(self, feed: np.ndarray) -> np.ndarray:
        try:
            return self.session.run([self.output.name], {self.input.name: feed})[0]
        except Exception as e:  # onnxruntime raises its own exception types
            h, w = (feed.shape[1], feed.shape[2]) if self.input.layout == "NHWC" else (feed.shape[2], feed.shape[3])
            hint = ""
            if self.info.input_size is None:
                near = SizeRule(32, None).size_for((w, h))
                hint = (f"; its file says it takes any size, but it does not take this one: give it a size it "
                        f"takes ({arg('size', near)}, say) or a rule ({arg('multiple', 32)}, {arg('max_side')})")
            raise ModelError(f"{self._path}: ONNX Runtime refused an input of {w}x{h} (width x height){hint} "
                             f"({type(e).__name__}: {e})") from None

    def _postprocess(self, raw: np.ndarray) -> np.ndarray:
        if not self.output.resolved:
            self._resolve_output(raw.shape)
        return self.output.labels(raw)

    def _resolve_output(self, shape) -> None:
        """The output contract from the first result's shape, for an output
        whose shape the file leaves open (then labels may change too:
        a binary model's default names, a multi-label model's background)."""
        with self._resolving:
            if self.output.resolved:
                return
            info, _, output = onnx_file.describe(self._file, **{**self._given, "output": self.output.name},
                                                 output_shape=shape)
            self.info = dataclasses.replace(info, input_rule=self.info.input_rule, sources={
                **info.sources, **{k: v for k, v in self.info.sources.items() if k == "size_rule"}})
            self._palette = info.palette()
            self._palette.setflags(write=False)
            self.output = output

    def predict_batch(self, images):
        """Segment several images in one ONNX Runtime call when the model's
        batch axis is dynamic and the model has a fixed input size."""
        images = list(images)
        if not self.input.batch_dynamic or self.input_size is None or len(images) < 2:
            return super().predict_batch(images)
        arrays = [as_image(im) for im in images]
        t0 = time.perf_counter()
        placements = [self._place(a) for a in arrays]
        feed = np.concatenate([self._preprocess(a, p) for a, p in zip(arrays, placements)])
        t1 = time.perf_counter()
        raw = self._infer(feed)
        t2 = time.perf_counter()
        labels = [self._postprocess(raw[i : i + 1]) for i in range(len(arrays))]
        t3 = time.perf_counter()
        n = len(arrays)
        timings = {"preprocess": (t1 - t0) / n, "inference": (t2 - t1) / n, "postprocess": (t3 - t2) / n}
        return [self._segmentation(lab, a, p, raw[i : i + 1], dict(timings))
                for i, (lab, a, p) in enumerate(zip(labels, arrays, placements))]
