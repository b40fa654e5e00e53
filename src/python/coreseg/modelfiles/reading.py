"""`inspect`: a model file's `ModelInfo`, on any OS, from the reader its
format needs (coreml_file.py for Core ML, onnx_file.py for ONNX). Each
reader imports its heavy library (coremltools' protobuf classes, onnx)
only when a file of its kind is read."""

from __future__ import annotations

import os
from pathlib import Path

from . import coreml_file, onnx_file
from .info import ModelInfo

__all__ = ["inspect"]


def inspect(path) -> ModelInfo:
    """Read what a segmentation model takes and returns, on any OS.

    Parameters
    ----------
    path : str or os.PathLike
        A Core ML ``.mlpackage`` folder or ``.mlmodel`` file (read with
        coremltools' protobuf classes), or an ``.onnx`` file (read with the
        ``onnx`` package, ``coreseg[onnx]``). Both are read under the model
        contract of coreseg.contract.

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
        return onnx_file.describe(onnx_file.read(path))[0]
    return coreml_file.describe(coreml_file.read(path))[0]
