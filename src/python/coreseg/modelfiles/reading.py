"""`inspect`: a model file's `ModelInfo`, on any OS, from the reader its
format needs (coreml_file.py for Core ML, onnx_file.py for ONNX). Each
reader imports its heavy library (coremltools' protobuf classes, onnx)
only when a file of its kind is read."""

from __future__ import annotations

import os
from pathlib import Path

from . import coreml_file, onnx_file
from .info import ModelInfo
from .settings import arg

__all__ = ["inspect"]


#: What `inspect` takes of `load`'s settings for Core ML files (their image
#: input states its own layout and scaling, and its sizes are in the file).
_COREML_SETTINGS = ("labels", "output", "output_layout", "output_activation", "threshold")


def inspect(path, **settings) -> ModelInfo:
    """Read what a segmentation model takes and returns, on any OS.

    Parameters
    ----------
    path : str or os.PathLike
        A Core ML ``.mlpackage`` folder or ``.mlmodel`` file (read with
        coremltools' protobuf classes), or an ``.onnx`` file (read with the
        ``onnx`` package, ``coreseg[onnx]``). Both are read under the model
        contract of coreseg.contract.
    **settings
        What `coreseg.load` would be told about the model (labels, mean,
        std, layout, color_layout, output, output_layout,
        output_activation, threshold, multiple, max_side): the result is
        what `load` would use, with each setting's source in ``sources``.

    Returns
    -------
    ModelInfo

    Raises
    ------
    ModelError
        Naming the file and what is wrong: missing, not a model, a corrupt
        spec, no image input, no output that is a class map or scores, or
        malformed metadata.
    """
    path = Path(os.fspath(path))
    if path.suffix.lower() == ".onnx":
        return onnx_file.describe(onnx_file.read(path), **settings)[0]
    other = [arg(k) for k in settings if k not in _COREML_SETTINGS]
    if other:
        raise ValueError(f"{', '.join(other)}: not used by Core ML models, whose image input says how its pixels "
                         "are laid out and scaled, and which sizes it takes")
    return coreml_file.describe(coreml_file.read(path), **settings)[0]
