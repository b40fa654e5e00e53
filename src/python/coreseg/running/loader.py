"""`load`: a model file to a `Segmenter` of the backend that runs it.

Above the `Segmenter` base and both backends, so that neither knows the
other: ONNX files go to backends/onnx.py, Core ML files (on macOS 13+) to
backends/coreml.py, and "demo" to the bundled model."""

from __future__ import annotations

import os
import platform
import sys
import warnings
from pathlib import Path

from ..kernels import _args, set_num_threads
from ..modelfiles import bundled
from ..modelfiles.info import AssumptionWarning, ModelError
from ..modelfiles.settings import arg
from ..results.geometry import CROP_MODES
from .segmenter import BackendUnavailableError, Segmenter

__all__ = ["load", "load_model", "COMPUTE_UNITS"]

COMPUTE_UNITS = ("all", "cpu", "cpu_gpu", "cpu_ne")
_COREML_SUFFIXES = (".mlpackage", ".mlmodel", ".mlmodelc")


#: The oldest macOS the Core ML backend runs on (the Core ML APIs it calls).
MIN_MACOS = (13, 0)

#: CORESEG_FAKE_COREML=1 runs Core ML models through the Python stand-in for
#: the native module (tests/fake_coreml.py, importable as `fake_coreml`), on
#: any OS: the test suite runs as a Mac would run it.
FAKE_COREML = "CORESEG_FAKE_COREML"


def macos_version() -> tuple[int, ...] | None:
    """This Mac's macOS version, e.g. (14, 5); None elsewhere."""
    if sys.platform != "darwin":
        return None
    try:
        return tuple(int(part) for part in platform.mac_ver()[0].split("."))
    except ValueError:
        return None


def _fake_coreml() -> bool:
    return os.environ.get(FAKE_COREML) == "1"


def _coreml_unavailable() -> str | None:
    """Why Core ML models cannot run here, or None when they can."""
    if _fake_coreml():
        return None
    if sys.platform != "darwin":
        return ("Core ML runs on macOS 13 or later only, so this model cannot be run here. coreseg.inspect() "
                "reads it on any OS; to run it elsewhere, convert it to ONNX and load the .onnx file "
                "(pip install 'coreseg[onnx]')")
    version = macos_version()
    if version is not None and version < MIN_MACOS:
        return (f"coreseg runs Core ML models on macOS {MIN_MACOS[0]} or later, and this Mac runs macOS "
                f"{'.'.join(map(str, version))}: convert the model to ONNX and load it with backend='onnx' "
                "(pip install 'coreseg[onnx]'), which works here")
    try:
        from .. import _coreml  # noqa: F401  (built on Apple platforms only)
    except ImportError:
        return "this build of coreseg has no Core ML backend (install a macOS wheel, or build on macOS 13+)"
    return None


def _coreml_available() -> bool:
    return _coreml_unavailable() is None


def _coreml_module():
    """The native Core ML module, or the Python stand-in under CORESEG_FAKE_COREML=1."""
    if _fake_coreml():
        import fake_coreml  # tests/: on sys.path where the variable is set

        return fake_coreml.environment_module()
    from .. import _coreml

    return _coreml


def load(model, backend: str = "auto", compute_units: str = "all", providers=None, *, crop: str | None = None,
         labels=None, size=None, layout=None, mean=None, std=None, color_layout=None, output=None,
         output_layout=None, output_activation=None, threshold=None, multiple=None, max_side=None, threads=None,
         session_options=None) -> Segmenter:
    """Load a segmentation model for prediction.

    What the model's own metadata says is used; the keyword arguments say
    the rest, or override it. A model that cannot be read one way only is
    refused with a `ModelError` saying which argument settles it (see the
    model contract in coreseg.contract and the README).

    Parameters
    ----------
    model : str or os.PathLike
        A ``.onnx`` file (ONNX Runtime, any OS), a Core ML ``.mlpackage``,
        ``.mlmodel`` or ``.mlmodelc`` (macOS 13+), or "demo" for the bundled
        demo model (Core ML where it can run, else ONNX).
    backend : {"auto", "onnx", "coreml"}
    compute_units : {"all", "cpu", "cpu_gpu", "cpu_ne"}
        Core ML compute units. ONNX Runtime runs on `providers`.
    providers : list of str, optional
        ONNX Runtime execution providers; default CPU.
    crop : {"fill", "fit", "center"}, optional
        How an image is placed in the model's input, as Vision's
        VNImageCropAndScaleOption: stretched, letterboxed, or centre-cropped
        (default: the model's metadata ``coreseg.input.crop``, else "fill").
        Results always describe the image (coreseg.results.geometry).
    labels : list of str or str, optional
        Class names, index = class id, when the model has none (or to
        replace its own); or a preset with its standard colours: "voc"
        (21), "cityscapes" (19 train ids), "cityscapes-bg" (20, background
        first), "ade20k" (150). A multi-label model takes one name per
        channel (id 0 is then "background": no channel above the threshold).
    size : (width, height) or "image", optional
        The input size, for models that take more than one. (width, height)
        must be one the model takes; "image" means each image's own size:
        ONNX models with dynamic axes take it as it is, Core ML models with
        a size range the nearest size within the range (aspect kept where
        the range allows), Core ML models with enumerated sizes the nearest
        of those. Default: an ONNX model with dynamic axes takes each
        image's size under the `multiple` / `max_side` rule; a Core ML
        model its default size.
    multiple, max_side : int, optional
        ONNX models that take any input size: each image is fed at its own
        size scaled down (aspect kept) until its long side is at most
        `max_side` (default 1024; 0 for no cap), its sides rounded to the
        nearest multiple of `multiple` (default 32, what strided networks
        need). The results are mapped back to the image exactly.
    layout : {"NHWC", "NCHW"}, optional
        Where the input's colour channels are, when the shape cannot tell.
    mean, std : 3 numbers on the 0..1 scale, optional
        Normalisation of float inputs: ``(pixel / 255 - mean) / std``. `mean`
        may name a preset instead: "unit" (0..1), "symmetric" (-1..1),
        "imagenet" or "raw" (0..255 as they are). When neither this nor the
        model's metadata says, "unit" is assumed with an AssumptionWarning.
    color_layout : {"RGB", "BGR"}, optional
    output : str, optional
        The name of the output to read (default: the first class map, else
        the first float scores).
    output_layout : {"NCHW", "NHWC"}, optional
        Where a float output's class axis is, when the shapes cannot tell.
    output_activation : {"logits", "softmax", "sigmoid", "none"}, optional
        What a float output holds (default: what the graph or metadata
        says, else "logits"; a single channel must be told).
    threshold : float, optional
        Binary (single-channel) and multi-label (sigmoid) models: a class is
        present above it, in the output's units (default 0.5 for
        probabilities, 0.0 for logits).
    threads : int, optional
        ONNX Runtime: the threads one inference uses (intra-op). Default:
        every core this process may use. With several frames in flight
        (`Segmenter.stream`), fewer threads per frame are faster; `stream`
        sees to it unless `threads` is given. Core ML schedules its own
        work, and refuses this.
    session_options : onnxruntime.SessionOptions, optional
        Used as they are instead of coreseg's (explicit intra-op threads,
        no spinning, no pinning: see `coreseg.running.backends.onnx.session_options`).

    Raises
    ------
    ModelError
        The file is missing or not a usable segmentation model.
    BackendUnavailableError
        The model needs a backend that cannot run here.
    """
    if backend not in ("auto", "onnx", "coreml"):
        raise ValueError(f"backend must be 'auto', 'onnx' or 'coreml', got {backend!r}")
    if compute_units not in COMPUTE_UNITS:
        raise ValueError(f"compute_units must be one of {', '.join(COMPUTE_UNITS)}, got {compute_units!r}")
    if crop is not None and crop not in CROP_MODES:
        raise ValueError(f"crop must be one of {', '.join(CROP_MODES)}, got {crop!r}")
    if size is not None and not (isinstance(size, str) and size == "image"):
        size = _args.size_arg(size)
    contract = dict(layout=layout, mean=mean, std=std, color_layout=color_layout, output=output,
                    output_layout=output_layout, output_activation=output_activation, threshold=threshold,
                    multiple=multiple, max_side=max_side)
    if isinstance(model, str) and model == "demo":
        use_coreml = backend == "coreml" or (backend == "auto" and _coreml_available())
        model = bundled.model_path("mlpackage" if use_coreml else "onnx")
    path = Path(os.fspath(model))
    suffix = path.suffix.lower()
    if suffix in _COREML_SUFFIXES and backend in ("auto", "coreml"):
        why = _coreml_unavailable()
        if why is not None:
            raise BackendUnavailableError(f"{path}: {why}")
        if threads is not None or session_options is not None:
            raise ValueError("threads, session_options: Core ML schedules its own work; these are for ONNX Runtime")
        given = [arg(k) for k in ("layout", "mean", "std", "color_layout") if contract[k] is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: not used by Core ML models, whose image input says how its "
                             "pixels are laid out and scaled (Core ML converts them itself)")
        if multiple is not None or max_side is not None:
            raise ValueError(f"{arg('multiple')}, {arg('max_side')}: for ONNX models of any input size; a Core ML "
                             f"model's sizes are in its file (pass {arg('size')} to choose one)")
        from .backends.coreml import CoreMLSegmenter

        return CoreMLSegmenter(path, compute_units, crop=crop, labels=labels, size=size, output=output,
                               output_layout=output_layout, output_activation=output_activation,
                               threshold=threshold, native=_coreml_module())
    if suffix == ".onnx" and backend in ("auto", "onnx"):
        from .backends.onnx import OnnxSegmenter

        if threads is not None:
            threads = _args.int_arg(threads, "threads", 1, 256)
            if session_options is not None:
                raise ValueError("threads and session_options: give the threads in the session options")
        return OnnxSegmenter(path, providers=providers, crop=crop, labels=labels, size=size, threads=threads,
                             session_options=session_options, **contract)
    if not path.exists():
        raise ModelError(f"{path}: no such file or folder")
    raise ModelError(f"{path}: cannot load a '{suffix or path.name}' file with backend={backend!r} "
                     "(expected .onnx for 'onnx'; .mlpackage, .mlmodel or .mlmodelc for 'coreml')")


def load_model(model_path, threads: int | None = None, *, assumptions: bool = True, **load_kwargs) -> Segmenter:
    """`load` in a worker process or actor, given `threads` of the cores:
    coreseg's kernel threads and, for an ONNX model, its intra-op threads
    unless `load_kwargs` says otherwise (Core ML schedules its own work).
    ``assumptions=False`` keeps its AssumptionWarnings quiet: the parent
    loaded the model first and said them once, before its progress bar (a
    worker's copy would land on the bar's line)."""
    if threads is not None:
        set_num_threads(threads)
        if Path(model_path).suffix.lower() == ".onnx":
            load_kwargs.setdefault("threads", threads)
    if assumptions:
        return load(model_path, **load_kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AssumptionWarning)
        return load(model_path, **load_kwargs)
